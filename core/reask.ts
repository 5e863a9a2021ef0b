/**
 * A BlockSource that asks again for a block that goes unanswered, instead of waiting on it until the job's
 * stall timeout. Both IPFS adapters wrap themselves in it.
 *
 * A get is asked again (its inner get cancelled and issued anew: a fresh want, sent to every connected peer,
 * with a provider lookup when routing is on, and `onReask` to redial origins) once it has waited `afterMs` and
 *
 * - gets asked after it have been answered meanwhile (`overtakenBy` of them): peers answer, but not this want,
 *   so its answer was lost (issue 16: a bitswap stream reset; the sender counts its blocks as sent), or
 * - nothing at all was answered for `afterMs`: the peers went quiet or the connection dropped.
 *
 * A get that is merely slow (a slow link answers wants in the order they were sent) is not overtaken and
 * others keep arriving, so it is left alone until `maxWaitMs`. Each further re-ask of one block waits twice
 * as long as the previous one, up to `maxWaitMs`. The job's stall timeout stays the last resort.
 */
import type { CID } from 'multiformats/cid'
import type { BlockSource, Logger } from './ports.ts'

export interface ReaskOptions {
  /** Least time a get waits before it may be asked again. Default 10 s (above bitswap's 5 s resend window). */
  afterMs?: number
  /** Gets asked later and answered first that mark a get as passed over. Default 4. */
  overtakenBy?: number
  /** A get unanswered this long is asked again whatever else happens. Default 60 s. */
  maxWaitMs?: number
  /** Called at each re-ask, before the get is issued again (e.g. to redial origins). Errors are logged. */
  onReask?: (cid: CID, reasks: number) => void | Promise<void>
  log?: Logger
  now?: () => number
}

export const DEFAULT_REASK_AFTER_MS = 10_000
export const DEFAULT_REASK_OVERTAKEN_BY = 4
export const DEFAULT_REASK_MAX_WAIT_MS = 60_000

export interface ReaskingBlockSource extends BlockSource {
  /** Re-asks so far, over every get. */
  reasks(): number
}

/** Thrown into an inner get to cancel it before it is issued again; never reaches the caller. */
class ReaskSignal extends Error {
  override name = 'ReaskSignal'
}

interface Want {
  cid: CID
  /** Order of the current ask: later asks answered first overtake it. */
  seq: number
  since: number
  overtaken: number
  reasks: number
  controller: AbortController
}

export function withReasking(source: BlockSource, opts: ReaskOptions = {}): ReaskingBlockSource {
  const afterMs = opts.afterMs ?? DEFAULT_REASK_AFTER_MS
  const overtakenBy = opts.overtakenBy ?? DEFAULT_REASK_OVERTAKEN_BY
  const maxWaitMs = Math.max(afterMs, opts.maxWaitMs ?? DEFAULT_REASK_MAX_WAIT_MS)
  const now = opts.now ?? Date.now
  const tickMs = Math.max(10, Math.min(1_000, Math.floor(afterMs / 4)))
  const waiting = new Set<Want>()
  let seq = 0
  let lastAnswer = now()
  let total = 0
  let timer: ReturnType<typeof setInterval> | undefined

  const reask = (want: Want): void => {
    want.reasks++
    total++
    opts.log?.info(
      {
        cid: want.cid.toString(),
        reasks: want.reasks,
        waitedMs: now() - want.since,
        overtaken: want.overtaken,
      },
      'block unanswered: asking again',
    )
    want.controller.abort(new ReaskSignal())
  }

  const check = (): void => {
    const t = now()
    const quiet = t - lastAnswer >= afterMs
    for (const want of waiting) {
      const waited = t - want.since
      const bound = Math.min(afterMs * 2 ** want.reasks, maxWaitMs)
      if (waited < bound) continue
      if (want.overtaken >= overtakenBy || quiet || waited >= maxWaitMs) reask(want)
    }
  }

  const track = (want: Want): void => {
    waiting.add(want)
    if (!timer) {
      timer = setInterval(check, tickMs)
      timer.unref?.()
    }
  }

  const untrack = (want: Want): void => {
    waiting.delete(want)
    if (waiting.size === 0 && timer) {
      clearInterval(timer)
      timer = undefined
    }
  }

  return {
    connect: (addrs, connectOpts) => source.connect(addrs, connectOpts),
    multiaddrs: () => source.multiaddrs(),
    ...(source.release ? { release: source.release.bind(source) } : {}),
    reasks: () => total,

    async get(cid, getOpts) {
      const outer = getOpts?.signal
      outer?.throwIfAborted()
      const want: Want = {
        cid,
        seq: ++seq,
        since: now(),
        overtaken: 0,
        reasks: 0,
        controller: new AbortController(),
      }
      track(want)
      try {
        for (;;) {
          const signal = outer ? AbortSignal.any([outer, want.controller.signal]) : want.controller.signal
          try {
            const bytes = await source.get(cid, { signal })
            lastAnswer = now()
            for (const other of waiting) if (other.seq < want.seq) other.overtaken++
            return bytes
          } catch (err) {
            if (outer?.aborted || !(want.controller.signal.reason instanceof ReaskSignal)) throw err
          }
          // Asked again: a new controller, a new place in the order, a fresh count.
          want.controller = new AbortController()
          want.seq = ++seq
          want.since = now()
          want.overtaken = 0
          try {
            await opts.onReask?.(cid, want.reasks)
          } catch (err) {
            opts.log?.warn({ cid: cid.toString(), err }, 're-ask hook failed')
          }
          outer?.throwIfAborted()
        }
      } finally {
        untrack(want)
      }
    },
  }
}
