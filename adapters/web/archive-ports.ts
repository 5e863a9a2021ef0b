/**
 * What the collection-jobs consumer needs to archive web-hosted content (core/collections/web.ts), the same in
 * AWS and in local mode: the guarded importer, the temporary bucket the validator watches, attempt ids. Kept
 * beside the web adapters rather than in adapters/compose.ts, so that entry points without collections do
 * not load the importer.
 */
import { randomUUID } from 'node:crypto'
import type { WebArchivePorts } from '../../core/collections/web.ts'
import { type CollectionWebConfig, webArchiveLimitsFromConfig } from '../../core/collections/web-config.ts'
import type { WorkerConfig } from '../../core/config.ts'
import type { Logger } from '../../core/ports.ts'
import type { Stores } from '../compose.ts'
import { createWebImporter } from './importer.ts'

export function webArchivePorts(
  stores: Pick<Stores, 'temp'>,
  cfg: CollectionWebConfig &
    Pick<WorkerConfig, 'MAX_CAR_BYTES' | 'VISIBILITY_TIMEOUT_SECONDS' | 'UPLOAD_PART_BYTES'>,
  log: Logger,
): WebArchivePorts {
  return {
    importer: createWebImporter({
      allowPrivate: cfg.COLLECTION_WEB_ALLOW_PRIVATE,
      timeoutMs: cfg.COLLECTION_WEB_TIMEOUT_MS,
      maxRedirects: cfg.COLLECTION_WEB_MAX_REDIRECTS,
    }),
    temp: stores.temp(),
    newId: () => randomUUID().replaceAll('-', ''),
    limits: webArchiveLimitsFromConfig(cfg),
    log,
  }
}
