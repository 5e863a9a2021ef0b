/**
 * In-memory JobQueue with SQS standard-queue semantics (adapters/sqs/queue.ts against SQS or fauxqs):
 * visibility timeouts, receive counts, per-message delays, long polls that wake when a message becomes
 * visible, fair-queue delivery order across requesters (message groups), and a dead-letter queue that takes a message on the receive after its `maxReceiveCount`th.
 *
 * Like SQS: `extend` and `release` reject with a `MessageNotInflight` error unless the receipt is the
 * message's latest and the message is still invisible; `delete` with an unknown or stale receipt does nothing.
 * Jobs are copied in and out. Timers use real time; `clock` only says what time it is.
 */
import { randomUUID } from 'node:crypto'
import { DEFAULT_VISIBILITY_TIMEOUT_SECONDS } from '../../core/config.ts'
import type { PinJob } from '../../core/pin.ts'
import type { Clock, JobQueue, ReceivedJob } from '../../core/ports.ts'
import { pickFairly } from '../sqs/fair-order.ts'
import { messageGroupOf } from '../sqs/queue.ts'

export interface MemoryJobQueueOptions {
  /** Default 300, as the deployed pin queue. */
  visibilityTimeoutSeconds?: number
  /** A message received `maxReceiveCount` times moves to `queue` on its next receive. */
  deadLetter?: { queue: MemoryJobQueue; maxReceiveCount: number }
  clock?: Clock
}

export interface MemoryJobQueue extends JobQueue {
  extendMany(receipts: readonly string[], seconds: number): Promise<string[]>
  /** Counts of messages by state, for assertions. */
  stats(): { visible: number; invisible: number }
}

/** The error SQS answers ChangeMessageVisibility with when the message is not in flight. */
export class MessageNotInflightError extends Error {
  override readonly name = 'MessageNotInflight'
  constructor() {
    super('Message does not exist or is not available for visibility timeout change.')
  }
}

interface StoredMessage {
  id: string
  job: PinJob
  receiveCount: number
  visibleAt: number
  /** Every delivery's receipt, the latest last. */
  receipts: string[]
}

const systemClock: Clock = { now: () => Date.now() }
/** Lets a queue hand a message to its dead-letter queue. */
const adopters = new WeakMap<MemoryJobQueue, (message: StoredMessage) => void>()

export function createMemoryJobQueue(options: MemoryJobQueueOptions = {}): MemoryJobQueue {
  const visibilityMs = (options.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS) * 1000
  const clock = options.clock ?? systemClock
  const messages = new Map<string, StoredMessage>()
  /** Every receipt ever issued, to the message id. */
  const receipts = new Map<string, string>()
  const waiters = new Set<() => void>()

  function wake() {
    for (const w of [...waiters]) w()
  }

  function copyJob(job: PinJob): PinJob {
    return {
      cid: job.cid,
      origins: [...job.origins],
      ...(job.requester === undefined ? {} : { requester: job.requester }),
    }
  }

  function adopt(message: StoredMessage) {
    messages.set(message.id, { ...message, receipts: [], visibleAt: clock.now() })
    wake()
  }

  function remove(m: StoredMessage) {
    messages.delete(m.id)
    for (const r of m.receipts) receipts.delete(r)
  }

  /** Delivers up to `max` visible messages in an SQS fair queue's order (adapters/sqs/fair-order.ts). */
  function take(max: number): ReceivedJob[] {
    const now = clock.now()
    const visible: StoredMessage[] = []
    const inFlight = new Map<string, number>()
    for (const m of messages.values()) {
      if (m.visibleAt <= now) visible.push(m)
      else if (m.receipts.length > 0) {
        const g = messageGroupOf(m.job)
        inFlight.set(g, (inFlight.get(g) ?? 0) + 1)
      }
    }
    const taken: ReceivedJob[] = []
    for (const i of pickFairly(
      visible.map((m) => messageGroupOf(m.job)),
      inFlight,
      visible.length,
    )) {
      if (taken.length >= max) break
      const m = visible[i]!
      const dlq = options.deadLetter
      if (dlq && m.receiveCount >= dlq.maxReceiveCount) {
        remove(m)
        adopters.get(dlq.queue)?.(m)
        continue
      }
      const receipt = randomUUID()
      m.receiveCount += 1
      m.receipts.push(receipt)
      m.visibleAt = now + visibilityMs
      receipts.set(receipt, m.id)
      taken.push({ id: m.id, receipt, job: copyJob(m.job), receiveCount: m.receiveCount })
    }
    return taken
  }

  /** Resolves at the deadline, when a message may have become visible, or on a wake; rejects on abort. */
  function waitUntil(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    const now = clock.now()
    let next = deadline
    for (const m of messages.values()) if (m.visibleAt > now) next = Math.min(next, m.visibleAt)
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer)
        waiters.delete(done)
        signal?.removeEventListener('abort', onAbort)
      }
      const done = () => {
        cleanup()
        resolve()
      }
      const onAbort = () => {
        cleanup()
        reject(signal?.reason)
      }
      const timer = setTimeout(done, Math.max(0, next - now))
      waiters.add(done)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  function inflight(receipt: string): StoredMessage {
    const id = receipts.get(receipt)
    const m = id === undefined ? undefined : messages.get(id)
    if (!m || m.receipts.at(-1) !== receipt || m.visibleAt <= clock.now()) throw new MessageNotInflightError()
    return m
  }

  const queue: MemoryJobQueue = {
    async send(job, opts) {
      const id = randomUUID()
      const delayMs = Math.max(0, Math.floor(opts?.delaySeconds ?? 0)) * 1000
      messages.set(id, {
        id,
        job: copyJob(job),
        receiveCount: 0,
        visibleAt: clock.now() + delayMs,
        receipts: [],
      })
      wake()
    },

    async receive({ max, waitSeconds, signal }) {
      signal?.throwIfAborted()
      const limit = Math.min(10, Math.max(1, Math.floor(max)))
      const deadline = clock.now() + Math.min(20, Math.max(0, waitSeconds)) * 1000
      for (;;) {
        const taken = take(limit)
        if (taken.length > 0 || clock.now() >= deadline) return taken
        await waitUntil(deadline, signal)
      }
    },

    async extend(receipt, seconds) {
      inflight(receipt).visibleAt = clock.now() + Math.max(0, seconds) * 1000
    },

    async extendMany(list, seconds) {
      const failed: string[] = []
      for (const receipt of list) {
        try {
          inflight(receipt).visibleAt = clock.now() + Math.max(0, seconds) * 1000
        } catch {
          failed.push(receipt)
        }
      }
      return failed
    },

    async release(receipt, delaySeconds) {
      inflight(receipt).visibleAt = clock.now() + Math.max(0, delaySeconds) * 1000
      wake()
    },

    async delete(receipt) {
      const id = receipts.get(receipt)
      const m = id === undefined ? undefined : messages.get(id)
      if (m) remove(m)
    },

    stats() {
      const now = clock.now()
      let visible = 0
      for (const m of messages.values()) if (m.visibleAt <= now) visible++
      return { visible, invisible: messages.size - visible }
    },
  }
  adopters.set(queue, adopt)
  return queue
}
