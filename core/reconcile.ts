/**
 * The reconciler, run on a schedule: finds pins that no job will ever move and moves them.
 *
 * A pin is `queued` because a job for it is on the pin queue, or `pinning` because a worker holds it under a
 * lease it renews. Both can stop being true behind the pin's back: the job was never sent (the record was
 * written, then the process died), SQS dropped it (retention), an operator deleted or purged it, or the worker
 * died on the job's last receive (its message went to the dead-letter queue and the pin stayed `pinning`).
 *
 * No queue can say whether it holds a message for a given pin, so the reconciler goes by time. A pin is
 * stuck when it is
 * - `queued` and unchanged for `staleAfterMs`, or
 * - `pinning` under a lease that expired more than `staleAfterMs` ago (its worker is dead; a live worker
 *   renews its lease every third of it, and a dead worker's job is normally claimed again one visibility
 *   timeout later).
 * `staleAfterMs` must exceed the longest normal wait of a queued pin: the longest retry delay
 * (RETRY_MAX_DELAY_SECONDS, 15 min) plus the visibility timeout (VISIBILITY_TIMEOUT_SECONDS, 5 min), plus a
 * margin for a backlog. Default: 1 hour, or twice that sum when it is more (`staleAfterMsFor`). A pin waiting
 * longer than that behind a deep backlog only gets a duplicate job: harmless, since the worker claims by pin
 * state and the duplicate finds the pin pinned or held.
 *
 * A stuck pin with `attempts` < `maxAttempts` is set `queued` (error `RECONCILED: ...`, the last real error
 * kept in it) and a job is sent; one with `attempts` >= `maxAttempts` is set `failed` instead, so content no
 * worker can get never loops through the queue for ever. The write is conditional on the pin being exactly as
 * read (`settleIfUnchanged`), so a pin a worker claimed meanwhile is left alone and two concurrent runs never
 * both enqueue one pin. It is made before the send: a crash in between leaves a `queued` pin with no job,
 * which the next run after `staleAfterMs` picks up again, and the fresh `updated` keeps later runs from
 * enqueueing the same pin again before `staleAfterMs` has passed.
 *
 * Bounded: at most `limit` pins examined per run, oldest first; the next run continues.
 */
import type { Pin } from './pin.ts'
import type { Clock, Logger, PinQueue, PinStore } from './ports.ts'

export const DEFAULT_RECONCILE_AFTER_MS = 60 * 60 * 1000
export const DEFAULT_RECONCILE_LIMIT = 500

/** `staleAfterMs` for a pipeline's retry and visibility settings: 1 h, or twice their sum if that is more. */
export function staleAfterMsFor(cfg: {
  retryMaxDelaySeconds: number
  visibilityTimeoutSeconds: number
}): number {
  return Math.max(
    DEFAULT_RECONCILE_AFTER_MS,
    2 * (cfg.retryMaxDelaySeconds + cfg.visibilityTimeoutSeconds) * 1000,
  )
}

export interface ReconcileOptions {
  staleAfterMs: number
  /** Attempts after which a stuck pin is failed rather than enqueued again (MAX_ATTEMPTS). */
  maxAttempts: number
  /** Most pins examined in one run. */
  limit: number
}

export interface ReconcileContext {
  pins: Pick<PinStore, 'listByStatus' | 'settleIfUnchanged'>
  queue: PinQueue
  clock: Clock
  log: Logger
}

export interface ReconcileResult {
  examined: number
  /** Set `queued` and sent to the pin queue again. */
  enqueued: number
  /** Set `failed`: stuck after `maxAttempts` attempts. */
  failed: number
  /** Changed while the run looked at them (a worker took them): left alone. */
  changed: number
  /** `pinning` under a lease still live or only recently expired. */
  live: number
  /** Set `queued` but the send failed: the next run after `staleAfterMs` sends again. */
  sendFailed: number
}

const PREFIX = 'RECONCILED: '

/** A pin's last error that is not the reconciler's own note (which carries the previous one). */
export function lastFailure(error: string | undefined): string | undefined {
  if (!error?.startsWith(PREFIX)) return error
  return /\(last error: (.*)\)$/.exec(error)?.[1]
}

function duration(ms: number): string {
  return ms < 120_000 ? `${Math.max(0, Math.round(ms / 1000))} s` : `${Math.round(ms / 60_000)} min`
}

export async function reconcilePins(opts: ReconcileOptions, ctx: ReconcileContext): Promise<ReconcileResult> {
  const started = ctx.clock.now()
  const cutoff = started - opts.staleAfterMs
  const result: ReconcileResult = { examined: 0, enqueued: 0, failed: 0, changed: 0, live: 0, sendFailed: 0 }

  const handle = async (pin: Pin): Promise<void> => {
    const log = ctx.log.child({ cid: pin.cid, status: pin.status, attempts: pin.attempts })
    let since = pin.updated
    if (pin.status === 'pinning') {
      since = pin.leaseExpires ?? pin.updated
      if (since >= cutoff) {
        result.live++
        return
      }
    }
    const stuckFor = started - since
    const what =
      pin.status === 'pinning'
        ? `its attempt's lease expired ${duration(stuckFor)} ago (the worker died)`
        : `queued for ${duration(stuckFor)} with no job`
    const last = lastFailure(pin.error)
    if (pin.attempts >= opts.maxAttempts) {
      const error = `${last ?? 'STUCK: no attempt finished'} (gave up after ${pin.attempts} attempts: ${what})`
      if (await ctx.pins.settleIfUnchanged(pin.cid, pin, { status: 'failed', error }, ctx.clock.now())) {
        result.failed++
        log.warn({ error }, 'reconciler: stuck pin failed')
      } else result.changed++
      return
    }
    const error = `${PREFIX}${what}; enqueued again${last ? ` (last error: ${last})` : ''}`
    if (!(await ctx.pins.settleIfUnchanged(pin.cid, pin, { status: 'queued', error }, ctx.clock.now()))) {
      result.changed++
      return
    }
    try {
      await ctx.queue.send({ cid: pin.cid, origins: pin.origins })
      result.enqueued++
      log.info({ stuckMs: stuckFor }, `reconciler: ${what}; enqueued again`)
    } catch (err) {
      result.sendFailed++
      log.error(
        { err: err instanceof Error ? err.message : String(err) },
        'reconciler: the pin queue refused the job; the next run tries again',
      )
    }
  }

  for (const status of ['queued', 'pinning'] as const) {
    let cursor: string | undefined
    do {
      const left = opts.limit - result.examined
      if (left <= 0) break
      const page = await ctx.pins.listByStatus(status, {
        limit: Math.min(100, left),
        order: 'oldest',
        // A pinning pin's lease outlives its last update, so this never leaves out a stuck one.
        updatedBefore: cutoff,
        ...(cursor === undefined ? {} : { cursor }),
      })
      cursor = page.cursor
      for (const pin of page.pins) {
        result.examined++
        await handle(pin)
      }
    } while (cursor !== undefined)
  }
  const level = result.enqueued + result.failed + result.sendFailed > 0 ? 'info' : 'debug'
  ctx.log[level](
    { ...result, ms: ctx.clock.now() - started, staleAfterMs: opts.staleAfterMs },
    'reconcile done',
  )
  return result
}
