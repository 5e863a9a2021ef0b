/**
 * The worker's loop: long-polls the pin queue and runs each job on its own, under two bounds:
 *
 * - `searchSlots` (SEARCH_CONCURRENCY): jobs that have no block yet, searching for their content or holding
 *   their first block until a transfer slot is free. A search costs a held message, a lease and one want in
 *   the IPFS node, so hundreds run at once, and content nobody serves (which searches until its stall
 *   timeout) does not hold up content that can be served.
 * - `transferSlots` (BATCH_SIZE): jobs moving bytes. A job takes one when its first block arrives and keeps
 *   it until it ends; jobs that found their content while every transfer slot was taken wait for one,
 *   keeping what they have. A freed slot goes to a waiting job of the requester with the fewest jobs in hand
 *   (searching, waiting or transferring), the one that found its content first among equals: the fair
 *   queue's rule (adapters/sqs/fair-order.ts) applied again here, since one requester's backlog of reachable
 *   content is received at once into the search slots and would otherwise take every transfer slot in turn.
 *
 * The worker receives only messages it can start searching at once (never more than it has free search
 * slots), so it holds at most `searchSlots + transferSlots` messages. Up to `receiveConcurrency` receives are
 * in flight at once (a round trip to SQS takes 20-50 ms and brings at most ten messages, so one at a time
 * would start a backlog of thousands at a few hundred a second): each reserves the search slots it may fill
 * before it is sent (it asks for at most min(10, free slots - slots reserved by the others)) and gives back
 * what it did not fill when it returns, after its messages' jobs are counted. It keeps receiving while jobs
 * wait for a transfer slot, so that another requester's message, which the fair queue delivers first, reaches
 * the worker to take the next freed slot (when it stopped receiving while `transferSlots` jobs waited, one
 * requester's reachable backlog, found at once by hundreds of searches, kept every other requester out until
 * it had drained). A waiting job holds its first block, so receiving stops while the blocks held by waiting
 * jobs reach `maxWaitingBytes`: a few KiB each for UnixFS roots, up to a few MiB for a single-block DAG.
 * While a job runs, its message's visibility is extended: every third of the visibility timeout one tick
 * extends every held message at once (`extendMany`: ten a call on SQS), so thousands of searches cost a few
 * hundred calls an interval, not one each. When a job ends, its message is deleted (done, cancelled, or
 * failed for good) or released with a growing delay (to be retried).
 */
import { ShutdownError } from './errors.ts'
import type { FetchOutcome } from './fetch-pin.ts'
import type { PinJob } from './pin.ts'
import {
  type Clock,
  type JobQueue,
  type Logger,
  type ReceivedJob,
  systemClock,
  systemTimers,
  type Timers,
} from './ports.ts'
import {
  jobRetryDelaySeconds,
  MAX_DELAY_SECONDS,
  type RetryPolicy,
  receiveBackoffMs,
} from './retry-policy.ts'

/** The first blocks jobs waiting for a transfer slot may hold before the worker stops receiving. */
export const DEFAULT_MAX_WAITING_BYTES = 64 * 1024 * 1024

/** Past a lease's expiry before claiming it again: room for the clocks of two workers to differ. */
const LEASE_MARGIN_MS = 1000

export interface PinWorkerOptions {
  /** Jobs transferring at once (BATCH_SIZE). */
  transferSlots: number
  /** Jobs searching (no block yet) or waiting for a transfer slot at once (SEARCH_CONCURRENCY). */
  searchSlots: number
  visibilityTimeoutSeconds: number
  /**
   * Visibility is no longer extended once a job has run this long, time spent waiting for a transfer slot
   * excluded (the job's own timeout ends it first).
   */
  fetchTimeoutMs: number
  /** Long-poll wait. */
  waitSeconds?: number
  /** Receives in flight at once (RECEIVE_CONCURRENCY); 1 by default. */
  receiveConcurrency?: number
  /** Receiving stops while jobs waiting for a transfer slot hold this many bytes; DEFAULT_MAX_WAITING_BYTES. */
  maxWaitingBytes?: number
  /** The delay of a retryable failure's release, by receive count (core/retry-policy.ts). */
  retry: RetryPolicy
  /** For the retry delay's jitter; Math.random by default. */
  random?: () => number
}

/** What a running job can ask of the worker. */
export interface JobControl {
  /**
   * Resolves once the job holds a transfer slot (kept until it ends); rejects with the signal's reason.
   * `heldBytes`: what the job holds meanwhile (its first block).
   */
  startTransfer(signal: AbortSignal, heldBytes?: number): Promise<void>
}

export interface PinWorkerContext {
  queue: JobQueue
  log: Logger
  run: (job: PinJob, signal: AbortSignal, control: JobControl) => Promise<FetchOutcome>
  /** Told when the number of jobs in hand changes (ECS task protection hangs off it). */
  onBusyChange?: (jobs: number) => void
  /**
   * Told, once per receive that brought messages, how many it brought, after their jobs are counted (and
   * `onBusyChange` told): a gate counting what receives hand out (adapters/kubo/disk-gate.ts) stops counting
   * them here.
   */
  onReceived?: (messages: number) => void
  /** The system's by default. */
  clock?: Clock
  /** Visibility extension, the receive backoff and the shutdown grace; the system's by default. */
  timers?: Timers
}

export interface PinWorkerLoad {
  /** Jobs with no block yet. */
  searching: number
  /** Jobs holding their first block until a transfer slot frees. */
  waiting: number
  transferring: number
}

export interface PinWorker {
  start(): void
  /** Stops polling; jobs still running after `graceMs` are aborted and their messages released. */
  stop(graceMs: number): Promise<void>
  /** Messages in hand: every job searching, waiting or transferring. */
  readonly inFlight: number
  readonly load: PinWorkerLoad
  /**
   * Whether receiving waits by design: every search slot is taken, or jobs waiting for a transfer slot hold
   * `maxWaitingBytes`. A health check tells a stopped receive loop from a full one with it.
   */
  readonly full: boolean
}

/** A message in hand, as the visibility tick sees it. */
interface Held {
  /** The latest receipt: SQS settles a message delivered again only through its newest one. */
  receipt: string
  /** Time the job has run, time spent waiting for a transfer slot excluded. */
  activeMs(): number
  log: Logger
}

interface Waiter {
  /** The job's requester: its fairness group. */
  group: string
  heldBytes: number
  grant: () => void
  signal: AbortSignal
  onAbort: () => void
}

export function createPinWorker(opts: PinWorkerOptions, ctx: PinWorkerContext): PinWorker {
  const running = new Set<Promise<void>>()
  const jobAborts = new Set<AbortController>()
  const polling = new AbortController()
  let loops: Promise<void>[] | undefined
  /** Receive loops waiting for a free search slot or for waiting bytes to drop. */
  const pollWaiters = new Set<() => void>()
  /** Search slots reserved by receives in flight: what they may still fill. */
  let reserved = 0
  let transferring = 0
  const waiters: Waiter[] = []
  /** Bytes the waiters hold. */
  let waitingBytes = 0
  const maxWaitingBytes = opts.maxWaitingBytes ?? DEFAULT_MAX_WAITING_BYTES
  /** Jobs in hand per requester. */
  const inHand = new Map<string, number>()
  const log = ctx.log
  const clock = ctx.clock ?? systemClock
  const timers = ctx.timers ?? systemTimers
  /** Messages whose visibility the tick extends; a job leaves once it ends or has run its fetch timeout. */
  const heldMessages = new Set<Held>()
  /** Every message whose job is in hand, by message id, until the message is settled. */
  const heldById = new Map<string, Held>()
  let extender: unknown
  const retryDelay = (message: ReceivedJob) =>
    jobRetryDelaySeconds(message.receiveCount, opts.retry, opts.random)

  /** Every waiting receive loop looks again. */
  const wake = () => {
    const waiting = [...pollWaiters]
    pollWaiters.clear()
    for (const resolve of waiting) resolve()
  }

  const track = (p: Promise<void>) => {
    running.add(p)
    ctx.onBusyChange?.(running.size)
    p.catch((err) => {
      // handle() logs and settles its own failures; this is the last line: never an unhandled rejection.
      log.error({ err }, 'job ended with an error: SQS will deliver its message again')
    }).finally(() => {
      running.delete(p)
      ctx.onBusyChange?.(running.size)
      wake()
    })
  }

  /** Jobs searching or waiting: what the search slots bound. */
  const searching = () => running.size - transferring

  /** The waiter of the requester with the fewest jobs in hand; the first to have found its content on a tie. */
  function nextWaiter(): Waiter {
    let best = 0
    for (let i = 1; i < waiters.length; i++) {
      if ((inHand.get(waiters[i]!.group) ?? 0) < (inHand.get(waiters[best]!.group) ?? 0)) best = i
    }
    const [w] = waiters.splice(best, 1)
    waitingBytes -= w!.heldBytes
    return w!
  }

  function grantTransfers(): void {
    while (transferring < opts.transferSlots && waiters.length > 0) {
      const w = nextWaiter()
      w.signal.removeEventListener('abort', w.onAbort)
      transferring++
      w.grant()
    }
    wake()
  }

  /**
   * One per job: the transfer slot it took (if any) is returned when the job ends, or when an attempt whose
   * claim found the pin busy waits to run again (its claim may come after its first block), which may then ask
   * for a slot again.
   */
  function jobControl(group: string): JobControl & { end(): void } {
    let holds = false
    let asked = false
    return {
      startTransfer(signal, heldBytes = 0) {
        if (asked) return Promise.reject(new Error('startTransfer called twice'))
        asked = true
        return new Promise<void>((resolve, reject) => {
          if (signal.aborted) return reject(signal.reason)
          const waiter: Waiter = {
            group,
            heldBytes,
            signal,
            grant: () => {
              holds = true
              resolve()
            },
            onAbort: () => {
              const i = waiters.indexOf(waiter)
              if (i >= 0) {
                waiters.splice(i, 1)
                waitingBytes -= waiter.heldBytes
              }
              wake()
              reject(signal.reason)
            },
          }
          signal.addEventListener('abort', waiter.onAbort, { once: true })
          waiters.push(waiter)
          waitingBytes += heldBytes
          grantTransfers()
        })
      },
      end() {
        asked = false
        if (holds) {
          holds = false
          transferring--
          grantTransfers()
        }
      },
    }
  }

  /** One visibility tick: every held message still within its fetch timeout, extended in as few calls as can be. */
  function extendHeld(): void {
    const due: Held[] = []
    for (const h of heldMessages) {
      if (h.activeMs() > opts.fetchTimeoutMs) heldMessages.delete(h)
      else due.push(h)
    }
    if (due.length === 0) return
    ctx.queue
      .extendMany(
        due.map((h) => h.receipt),
        opts.visibilityTimeoutSeconds,
      )
      .then(
        (failed) => {
          if (failed.length === 0) return
          const byReceipt = new Map(due.map((h) => [h.receipt, h]))
          for (const r of failed) byReceipt.get(r)?.log.warn({}, 'visibility extension failed')
        },
        (err) => log.warn({ err, messages: due.length }, 'visibility extension failed'),
      )
  }

  /**
   * One receive loop (`receiveConcurrency` of them run). The check of free slots and the reservation happen
   * together, with no await between, so loops never reserve the same slot twice.
   */
  async function poll(): Promise<void> {
    let failures = 0
    while (!polling.signal.aborted) {
      const free = opts.searchSlots - searching() - reserved
      if (free <= 0 || waitingBytes >= maxWaitingBytes) {
        await new Promise<void>((resolve) => {
          pollWaiters.add(resolve)
        })
        continue
      }
      const ask = Math.min(free, 10)
      reserved += ask
      let backoffMs = 0
      try {
        const messages = await ctx.queue.receive({
          max: ask,
          waitSeconds: opts.waitSeconds ?? 20,
          signal: polling.signal,
        })
        failures = 0
        if (messages.length > ask) {
          // A queue that hands out more than it was asked for: the extra jobs still run (their messages are
          // held either way), and the breach is told, since the worker's bound depends on it.
          log.error(
            { asked: ask, received: messages.length },
            'receive returned more messages than asked for',
          )
        }
        for (const message of messages) {
          const held = heldById.get(message.id)
          if (held) {
            // Delivered again while its job runs: its visibility was extended too late (a worker overloaded,
            // or SQS unreachable for a while). The running job takes the new receipt, and no second job
            // starts: that one would find the pin busy and give the message back, and every such delivery
            // spends one of the job's receives until the dead-letter queue takes a job that is still running.
            held.receipt = message.receipt
            held.log.warn({}, 'message delivered again while its job runs: kept by the running job')
            continue
          }
          track(handle(message))
        }
        if (messages.length > 0) ctx.onReceived?.(messages.length)
      } catch (err) {
        if (!polling.signal.aborted) {
          failures++
          backoffMs = receiveBackoffMs(failures)
          log.error({ err, backoffMs }, 'receive failed')
        }
      } finally {
        // The jobs started above count in `searching()` now: the reservation is given back whole (before any
        // backoff), and a loop waiting for slots it covered looks again.
        reserved -= ask
        wake()
      }
      if (backoffMs > 0) await sleep(backoffMs, polling.signal, timers)
    }
  }

  async function handle(message: ReceivedJob): Promise<void> {
    const jobLog = log.child({
      cid: message.job.cid,
      messageId: message.id,
      receiveCount: message.receiveCount,
      ...(message.job.requester === undefined ? {} : { requester: message.job.requester }),
    })
    const abort = new AbortController()
    jobAborts.add(abort)
    const group = message.job.requester ?? ''
    inHand.set(group, (inHand.get(group) ?? 0) + 1)
    const control = jobControl(group)
    const started = clock.now()
    let waitedMs = 0
    let waitingSince: number | undefined
    const timed: JobControl = {
      async startTransfer(signal, heldBytes) {
        waitingSince = clock.now()
        try {
          await control.startTransfer(signal, heldBytes)
        } finally {
          waitedMs += clock.now() - waitingSince
          waitingSince = undefined
        }
      },
    }
    const hold: Held = {
      receipt: message.receipt,
      activeMs: () => {
        const now = clock.now()
        return now - started - waitedMs - (waitingSince === undefined ? 0 : now - waitingSince)
      },
      log: jobLog,
    }
    heldMessages.add(hold)
    heldById.set(message.id, hold)
    let outcome: FetchOutcome | undefined
    try {
      outcome = await ctx.run(message.job, abort.signal, timed)
      // A lease that runs out within two visibility timeouts may be a holder that died (a live one keeps
      // renewing it): this message waits it out, kept invisible by the visibility tick, and claims again,
      // rather than being given back, which would spend one of its receives on nothing (after a worker's
      // crash, the receives a slow takeover spent could send the job to the dead-letter queue). A live holder
      // is still busy after the wait: then the message goes back as below.
      if (outcome.kind === 'busy') {
        const waitMs = Math.max(0, outcome.leaseExpires - clock.now()) + LEASE_MARGIN_MS
        if (waitMs <= 2 * opts.visibilityTimeoutSeconds * 1000) {
          jobLog.info({ waitMs, holder: outcome.attemptId }, 'pin busy: waiting out its lease to claim it')
          control.end()
          if (await sleep(waitMs, abort.signal, timers))
            outcome = await ctx.run(message.job, abort.signal, timed)
        }
      }
    } catch (err) {
      // An unexpected error (the pin table unreachable, say): the message comes back after a delay.
      jobLog.error({ err }, 'job crashed')
    } finally {
      heldMessages.delete(hold)
      jobAborts.delete(abort)
      const held = (inHand.get(group) ?? 1) - 1
      if (held > 0) inHand.set(group, held)
      else inHand.delete(group)
      // The transfer slot is free before the message is settled: the next job need not wait for SQS.
      control.end()
    }
    // Through its newest receipt (it may have been delivered again meanwhile). From here on a delivery of the
    // message is a new job: a release with no delay makes it visible again at once.
    const latest = { ...message, receipt: hold.receipt }
    heldById.delete(message.id)
    try {
      if (outcome) await settleMessage(latest, outcome, jobLog)
      else await releaseOrResend(latest, retryDelay(message), jobLog)
    } catch (err) {
      // Settling failed (SQS unreachable, say): the message reappears when its visibility runs out.
      jobLog.error({ err }, 'settling the message failed: SQS will deliver it again')
    }
  }

  async function settleMessage(message: ReceivedJob, outcome: FetchOutcome, jobLog: Logger): Promise<void> {
    if (outcome.kind === 'busy') {
      // Not deleted: if the holder died, this message is the only one left for the pin. It comes back when
      // the lease has run out (then the claim succeeds) or been renewed (a live holder: busy again; a
      // duplicate that keeps finding the pin busy ends in the dead-letter queue, whose consumer leaves a
      // pin with a live lease alone).
      const delay = Math.ceil((Math.max(0, outcome.leaseExpires - clock.now()) + LEASE_MARGIN_MS) / 1000)
      await releaseOrResend(message, Math.min(delay, MAX_DELAY_SECONDS), jobLog)
      return
    }
    if (outcome.kind !== 'failed' || !outcome.retryable) {
      await ctx.queue.delete(message.receipt).catch((err) => {
        jobLog.warn({ err }, 'delete failed: the message will be delivered again')
      })
      return
    }
    const now = outcome.retryNow || outcome.code === new ShutdownError().code
    await releaseOrResend(message, now ? 0 : retryDelay(message), jobLog)
  }

  /**
   * Makes the message visible again after `delay`. If it is gone (another delivery of the same message was
   * deleted meanwhile), sends the job again so the retry is not lost.
   */
  async function releaseOrResend(message: ReceivedJob, delaySeconds: number, jobLog: Logger): Promise<void> {
    try {
      await ctx.queue.release(message.receipt, delaySeconds)
    } catch (err) {
      jobLog.warn({ err }, 'release failed: sending the job again')
      await ctx.queue.send(message.job, { delaySeconds: Math.min(MAX_DELAY_SECONDS, delaySeconds) })
    }
  }

  return {
    start() {
      if (loops) return
      extender = timers.setInterval(extendHeld, (opts.visibilityTimeoutSeconds * 1000) / 3)
      loops = Array.from({ length: Math.max(1, opts.receiveConcurrency ?? 1) }, () => poll())
    },
    async stop(graceMs: number) {
      polling.abort(new ShutdownError())
      wake()
      await Promise.all(loops ?? [])
      const all = Promise.allSettled([...running])
      const timer = timers.setTimeout(() => {
        for (const a of jobAborts) a.abort(new ShutdownError())
      }, graceMs)
      await all
      timers.clearTimeout(timer)
      if (extender !== undefined) timers.clearInterval(extender)
      extender = undefined
    },
    get inFlight() {
      return running.size
    },
    get full() {
      return opts.searchSlots - searching() <= 0 || waitingBytes >= maxWaitingBytes
    },
    get load() {
      return {
        searching: running.size - transferring - waiters.length,
        waiting: waiters.length,
        transferring,
      }
    },
  }
}

/** Waits on the worker's timers: true when the time is up, false as soon as `signal` aborts. */
function sleep(ms: number, signal: AbortSignal, timers: Timers): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false)
    const t = timers.setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve(true)
    }, ms)
    function onAbort(): void {
      timers.clearTimeout(t)
      resolve(false)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
