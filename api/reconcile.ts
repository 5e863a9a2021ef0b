/**
 * Lambda handler for the scheduled reconciler (an EventBridge schedule, e.g. every 5 minutes): re-enqueues
 * pins that no job will move any more and fails those stuck after MAX_ATTEMPTS attempts (core/reconcile.ts).
 * Throws when the run failed so the invocation shows as an error; a partial run is harmless, the next one
 * continues. Runs may overlap: every write is conditional on the pin being as read.
 *
 * The stack (stacks/pipeline.ts) runs it every RECONCILE_INTERVAL_MINUTES and passes the resources (PIN_TABLE,
 * PIN_QUEUE_URL) and the settings of `reconcileSchema` (its environment: `reconcileEnvSchema` in
 * api/lambda/env.ts): MAX_ATTEMPTS, VISIBILITY_TIMEOUT_SECONDS and RETRY_MAX_DELAY_SECONDS as the worker has
 * them (they set the default threshold), optionally RECONCILE_AFTER_MS and RECONCILE_LIMIT. The function needs
 * Query on the pins table's `status-updated` index, UpdateItem on the table, and sqs:SendMessage on the pin
 * queue.
 */
import { z } from 'zod'
import { workerSchema } from '../core/config.ts'
import {
  DEFAULT_RECONCILE_LIMIT,
  type ReconcileContext,
  type ReconcileOptions,
  type ReconcileResult,
  reconcilePins,
  staleAfterMsFor,
} from '../core/reconcile.ts'

/** The reconciler's own settings (local mode adds them to its configuration). */
export const reconcileSettingsSchema = z.object({
  /**
   * How long a pin stays `queued`, or `pinning` under an expired lease, before it is taken to have no job.
   * Default: 1 hour, or 2 x (RETRY_MAX_DELAY_SECONDS + VISIBILITY_TIMEOUT_SECONDS) when that is more.
   */
  RECONCILE_AFTER_MS: z.coerce.number().int().min(1).optional(),
  /** Most pins one run examines (a run must finish within the function's timeout; the next continues). */
  RECONCILE_LIMIT: z.coerce.number().int().min(1).default(DEFAULT_RECONCILE_LIMIT),
})

export const reconcileSchema = reconcileSettingsSchema.extend(
  workerSchema.pick({ MAX_ATTEMPTS: true, VISIBILITY_TIMEOUT_SECONDS: true, RETRY_MAX_DELAY_SECONDS: true })
    .shape,
)

export function reconcileOptionsFromConfig(cfg: z.infer<typeof reconcileSchema>): ReconcileOptions {
  return {
    staleAfterMs:
      cfg.RECONCILE_AFTER_MS ??
      staleAfterMsFor({
        retryMaxDelaySeconds: cfg.RETRY_MAX_DELAY_SECONDS,
        visibilityTimeoutSeconds: cfg.VISIBILITY_TIMEOUT_SECONDS,
      }),
    maxAttempts: cfg.MAX_ATTEMPTS,
    limit: cfg.RECONCILE_LIMIT,
  }
}

export function createReconcileHandler(opts: ReconcileOptions, ctx: ReconcileContext) {
  return async (): Promise<ReconcileResult> => reconcilePins(opts, ctx)
}
