/**
 * Lambda handler for the scheduled sweep of unreferenced content (an EventBridge schedule, e.g. hourly):
 * deletes the CARs and pin records of content no request has wanted for the retention period. Throws when the
 * run failed so the invocation shows as an error; a partial run is harmless, the next one continues.
 *
 * The stack passes the resources (PIN_TABLE, REQUEST_TABLE, DESTINATION_BUCKET) and, optionally, the settings
 * of `sweepUnreferencedSchema`. The function needs Query/GetItem/UpdateItem/DeleteItem on the pins table and
 * its `unreferenced-since` index, Query on the requests table's `cid` index plus BatchGetItem on the table,
 * and s3:DeleteObject, s3:GetObject (the re-check after a delete) and s3:ListBucket on the destination bucket.
 */
import { z } from 'zod'
import {
  DEFAULT_UNREFERENCED_RETENTION_MS,
  MIN_UNREFERENCED_RETENTION_MS,
  type SweepContext,
  type SweepOptions,
  type SweepResult,
  sweepUnreferenced,
} from '../core/unreferenced-content.ts'

export const sweepUnreferencedSchema = z.object({
  /**
   * How long content no request wants is kept before its CAR is deleted. 7 days; at least 1 hour, so the
   * requests' CID index has caught up with a request created as the content was marked (see
   * MIN_UNREFERENCED_RETENTION_MS).
   */
  UNREFERENCED_RETENTION_MS: z.coerce
    .number()
    .int()
    .min(
      MIN_UNREFERENCED_RETENTION_MS,
      `at least ${MIN_UNREFERENCED_RETENTION_MS} ms (1 hour): a shorter retention can sweep content a request created at the same moment wants`,
    )
    .default(DEFAULT_UNREFERENCED_RETENTION_MS),
  /** Most pins one run examines (a run must finish within the function's timeout). */
  UNREFERENCED_SWEEP_LIMIT: z.coerce.number().int().min(1).default(1000),
})

export function sweepOptionsFromConfig(cfg: z.infer<typeof sweepUnreferencedSchema>): SweepOptions {
  return { retentionMs: cfg.UNREFERENCED_RETENTION_MS, limit: cfg.UNREFERENCED_SWEEP_LIMIT }
}

export function createSweepUnreferencedHandler(opts: SweepOptions, ctx: SweepContext) {
  return async (): Promise<SweepResult> => sweepUnreferenced(ctx, opts)
}
