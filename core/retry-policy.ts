/**
 * How long pickup waits before trying again, in one place:
 *
 * - a job whose attempt failed and may be retried, released by the worker (`core/pin-worker.ts`) or re-sent
 *   by the validator after an invalid CAR (`core/promote-car.ts`): `jobRetryDelaySeconds`, the same schedule
 *   for both, counted in attempts (SQS receives for the worker, the pin's attempts for the validator);
 * - the worker's receive loop after a failed receive (SQS unreachable, say): `receiveBackoffMs`.
 *
 * Jitter: a job's delay is the exponential one plus up to 20% more (uniform), never above the cap, so jobs
 * that failed together (one origin went down under many pins) come back spread over a fifth of the delay
 * rather than in one burst. The receive backoff has none: one loop per worker, and workers' failures are
 * already spread by their own timing.
 */

/** SQS's longest message delay: no retry waits longer. */
export const MAX_DELAY_SECONDS = 900

export interface RetryPolicy {
  /** The first retry's delay; it doubles with every attempt. */
  baseDelaySeconds: number
  /** The longest delay (at most MAX_DELAY_SECONDS). */
  maxDelaySeconds: number
}

export function retryPolicyFromConfig(cfg: {
  RETRY_BASE_DELAY_SECONDS: number
  RETRY_MAX_DELAY_SECONDS: number
}): RetryPolicy {
  return { baseDelaySeconds: cfg.RETRY_BASE_DELAY_SECONDS, maxDelaySeconds: cfg.RETRY_MAX_DELAY_SECONDS }
}

/**
 * Delay before the retry of a job whose `attempt`-th attempt (1-based) failed: base x 2^(attempt-1), capped,
 * plus up to 20% jitter within the cap. `random` in [0, 1).
 */
export function jobRetryDelaySeconds(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number {
  const max = Math.min(policy.maxDelaySeconds, MAX_DELAY_SECONDS)
  const capped = Math.min(max, policy.baseDelaySeconds * 2 ** Math.max(0, attempt - 1))
  return Math.min(max, Math.round(capped * (1 + 0.2 * random())))
}

/** Pause of the receive loop after its `failures`-th failed receive in a row: 500 ms, doubling, at most 30 s. */
export function receiveBackoffMs(failures: number): number {
  return Math.min(30_000, 250 * 2 ** Math.max(1, failures))
}
