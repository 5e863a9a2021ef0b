/**
 * The worker's loop: long-polls the pin queue with continuous bounded concurrency. Each of `slots` jobs runs
 * on its own, so a four-hour fetch never holds back the other slots, and the worker never asks for more
 * messages than it has free slots. While a job runs, its message's visibility is extended; when it ends, the
 * message is deleted (done, or failed for good) or released with a growing delay (to be retried).
 */
import { describeError, ShutdownError } from './errors.ts'
import type { FetchOutcome } from './fetch-pin.ts'
import type { PinJob } from './pin.ts'
import type { JobQueue, Logger, ReceivedJob } from './ports.ts'

/** SQS's longest message delay. */
const MAX_DELAY_SECONDS = 900

export interface PinWorkerOptions {
  slots: number
  visibilityTimeoutSeconds: number
  /** Visibility is no longer extended past this (the job's own timeout ends it first). */
  fetchTimeoutMs: number
  /** Long-poll wait. */
  waitSeconds?: number
  retryDelaySeconds: (receiveCount: number) => number
}

export interface PinWorkerContext {
  queue: JobQueue
  log: Logger
  run: (job: PinJob, signal: AbortSignal) => Promise<FetchOutcome>
  /** Told when the number of jobs in hand changes (ECS task protection hangs off it). */
  onBusyChange?: (jobs: number) => void
}

export interface PinWorker {
  start(): void
  /** Stops polling; jobs still running after `graceMs` are aborted and their messages released. */
  stop(graceMs: number): Promise<void>
  readonly inFlight: number
}

export function createPinWorker(opts: PinWorkerOptions, ctx: PinWorkerContext): PinWorker {
  const running = new Set<Promise<void>>()
  const jobAborts = new Set<AbortController>()
  const polling = new AbortController()
  let loop: Promise<void> | undefined
  let slotFreed: (() => void) | undefined
  const log = ctx.log

  const track = (p: Promise<void>) => {
    running.add(p)
    ctx.onBusyChange?.(running.size)
    // handle() settles its own failures; a rejection reaching here is still logged, never left unhandled.
    void p
      .catch((err) => log.error({ err: describeError(err) }, 'job handling failed'))
      .finally(() => {
        running.delete(p)
        ctx.onBusyChange?.(running.size)
        slotFreed?.()
      })
  }

  async function poll(): Promise<void> {
    let failures = 0
    while (!polling.signal.aborted) {
      const free = opts.slots - running.size
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve
        })
        continue
      }
      try {
        const messages = await ctx.queue.receive({
          max: Math.min(free, 10),
          waitSeconds: opts.waitSeconds ?? 20,
          signal: polling.signal,
        })
        failures = 0
        for (const message of messages) track(handle(message))
      } catch (err) {
        if (polling.signal.aborted) break
        failures++
        const backoffMs = Math.min(30_000, 250 * 2 ** failures)
        log.error({ err: describeError(err), backoffMs }, 'receive failed')
        await sleep(backoffMs, polling.signal)
      }
    }
  }

  async function handle(message: ReceivedJob): Promise<void> {
    const jobLog = log.child({
      cid: message.job.cid,
      messageId: message.id,
      receiveCount: message.receiveCount,
    })
    const abort = new AbortController()
    jobAborts.add(abort)
    const started = Date.now()
    const extendEveryMs = (opts.visibilityTimeoutSeconds * 1000) / 3
    const extender = setInterval(() => {
      if (Date.now() - started > opts.fetchTimeoutMs) return clearInterval(extender)
      ctx.queue.extend(message.receipt, opts.visibilityTimeoutSeconds).catch((err) => {
        jobLog.warn({ err: describeError(err) }, 'visibility extension failed')
      })
    }, extendEveryMs)
    try {
      let outcome: FetchOutcome | undefined
      try {
        outcome = await ctx.run(message.job, abort.signal)
      } catch (err) {
        // An unexpected error (the pin table unreachable, say): leave the message to come back after a delay.
        jobLog.error({ err: describeError(err) }, 'job crashed')
      }
      if (outcome) await settleMessage(message, outcome, jobLog)
      else await releaseOrResend(message, opts.retryDelaySeconds(message.receiveCount), jobLog)
    } catch (err) {
      // SQS refused to settle the message (release and the fallback send both failed). It stays in flight
      // and SQS delivers it again once its visibility timeout runs out: nothing is lost, the worker goes on.
      jobLog.error(
        { err: describeError(err) },
        'settling the message failed: it comes back after its visibility timeout',
      )
    } finally {
      clearInterval(extender)
      jobAborts.delete(abort)
    }
  }

  async function settleMessage(message: ReceivedJob, outcome: FetchOutcome, jobLog: Logger): Promise<void> {
    if (outcome.kind === 'busy') {
      // Not deleted: if the holder died, this message is the only one left for the pin. It comes back when
      // the lease has run out (then the claim succeeds) or been renewed (a live holder: busy again; a
      // duplicate that keeps finding the pin busy ends in the dead-letter queue, whose consumer leaves a
      // pin with a live lease alone).
      const delay = Math.ceil(Math.max(0, outcome.leaseExpires - Date.now()) / 1000) + 1
      await releaseOrResend(message, Math.min(delay, MAX_DELAY_SECONDS), jobLog)
      return
    }
    if (outcome.kind !== 'failed' || !outcome.retryable) {
      await ctx.queue.delete(message.receipt).catch((err) => {
        jobLog.warn({ err: describeError(err) }, 'delete failed: the message will be delivered again')
      })
      return
    }
    const delay = outcome.code === new ShutdownError().code ? 0 : opts.retryDelaySeconds(message.receiveCount)
    await releaseOrResend(message, delay, jobLog)
  }

  /**
   * Makes the message visible again after `delay`. If it is gone (another delivery of the same message was
   * deleted meanwhile), sends the job again so the retry is not lost.
   */
  async function releaseOrResend(message: ReceivedJob, delaySeconds: number, jobLog: Logger): Promise<void> {
    try {
      await ctx.queue.release(message.receipt, delaySeconds)
    } catch (err) {
      jobLog.warn({ err: describeError(err) }, 'release failed: sending the job again')
      await ctx.queue.send(message.job, { delaySeconds: Math.min(MAX_DELAY_SECONDS, delaySeconds) })
    }
  }

  return {
    start() {
      loop ??= poll()
    },
    async stop(graceMs: number) {
      polling.abort(new ShutdownError())
      slotFreed?.()
      await loop
      const all = Promise.allSettled([...running])
      const timer = setTimeout(() => {
        for (const a of jobAborts) a.abort(new ShutdownError())
      }, graceMs)
      await all
      clearTimeout(timer)
    },
    get inFlight() {
      return running.size
    },
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => {
      clearTimeout(t)
      resolve()
    })
  })
}
