/**
 * Settings of web-hosted token content (core/collections/web.ts), for every collection-jobs consumer: local
 * mode's and the Lambda's. Parsed once at start with the rest of the entry point's configuration.
 */
import { z } from 'zod'
import type { WebArchiveLimits } from './web.ts'

const MiB = 1024 ** 2

const flag = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1')

export const collectionWebSchema = z.object({
  /**
   * Largest web-hosted file archived (256 MiB): it is imported onto disk (a Lambda's /tmp, 512 MiB by
   * default) and uploaded within one job (at the 60 s timeout, 4.5 MB/s); a larger one is reported per token
   * as WEB_TOO_LARGE.
   */
  COLLECTION_WEB_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(256 * MiB),
  /**
   * Longest one web fetch may take, redirects and body included (60 s). With COLLECTION_WEB_WINDOW_MS it
   * bounds one archiving pass: together they stay well below a job's deadline (the consumer's 300 s timeout,
   * COLLECTION_JOB_TIMEOUT_SECONDS, less a margin; the deploy
   * configuration checks it), or every pass would be aborted before its last fetch ends.
   */
  COLLECTION_WEB_TIMEOUT_MS: z.coerce.number().int().min(1).default(60_000),
  /** Redirects followed at most, each to an address checked again. */
  COLLECTION_WEB_MAX_REDIRECTS: z.coerce.number().int().min(0).max(20).default(5),
  /**
   * Whether web fetches may reach loopback, private and other non-public addresses. Off outside local mode:
   * a token's URL must not steer pickup into its own network.
   */
  COLLECTION_WEB_ALLOW_PRIVATE: flag(false),
  /**
   * One archiving pass starts web fetches only within this long of its start (45 s), so that a pass with its
   * last fetch (COLLECTION_WEB_TIMEOUT_MS) ends within its job's deadline (the consumer's timeout); the
   * rest wait for the next pass.
   */
  COLLECTION_WEB_WINDOW_MS: z.coerce.number().int().min(1).default(45_000),
})

export type CollectionWebConfig = z.infer<typeof collectionWebSchema>

/** The limits of archiving web content, from the web settings and the worker's pin settings it shares. */
export function webArchiveLimitsFromConfig(
  cfg: CollectionWebConfig & {
    MAX_CAR_BYTES: number
    VISIBILITY_TIMEOUT_SECONDS: number
    UPLOAD_PART_BYTES: number
  },
): WebArchiveLimits {
  return {
    maxBytes: cfg.COLLECTION_WEB_MAX_BYTES,
    maxCarBytes: cfg.MAX_CAR_BYTES,
    leaseMs: cfg.VISIBILITY_TIMEOUT_SECONDS * 1000,
    // As a worker's: the validator has this long to check the CAR before the pin may be claimed again.
    validationLeaseMs: 20 * 60 * 1000,
    partBytes: cfg.UPLOAD_PART_BYTES,
  }
}
