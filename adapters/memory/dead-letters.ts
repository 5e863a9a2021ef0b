/**
 * The in-memory failed-jobs queue, with the SQS adapter's semantics (adapters/sqs/dead-letters.ts against SQS
 * or fauxqs): receiving hides a message for `hideSeconds` and counts a receive; a released or expired message
 * is visible again; only a message's latest receipt releases or deletes it. `add` puts a message in (for
 * tests: with any receive count and send time); `createMemoryFailedJobs` is the dead-letter consumer's side,
 * which puts the job in with what became of it, as the SQS adapter does with message attributes.
 */
import { randomUUID } from 'node:crypto'
import { parsePinJob } from '../../core/pin.ts'
import type { Clock, DeadLetter, DeadLetterQueue, FailedJobInfo, FailedJobs } from '../../core/ports.ts'

export interface MemoryDeadLetterQueue extends DeadLetterQueue {
  /** Adds a message; returns its id. */
  add(body: string, opts?: { receiveCount?: number; sentAt?: number; failure?: FailedJobInfo }): string
  /** Every message's id, body, visibility and failure info, for assertions. */
  all(): Array<{ id: string; body: string; visible: boolean; failure?: FailedJobInfo }>
  /** Makes the next `delete` calls fail for these receipts' messages (to test partial failures). */
  failDeletesOf(ids: readonly string[]): void
}

interface StoredLetter {
  id: string
  body: string
  receiveCount: number
  sentAt: number
  visibleAt: number
  receipt?: string
  failure?: FailedJobInfo
}

const systemClock: Clock = { now: () => Date.now() }

export function createMemoryDeadLetterQueue(opts: { clock?: Clock } = {}): MemoryDeadLetterQueue {
  const clock = opts.clock ?? systemClock
  const letters = new Map<string, StoredLetter>()
  const undeletable = new Set<string>()

  const byReceipt = (receipt: string): StoredLetter | undefined => {
    for (const l of letters.values()) if (l.receipt === receipt && l.visibleAt > clock.now()) return l
    return undefined
  }

  return {
    add(body, o = {}) {
      const id = randomUUID()
      letters.set(id, {
        id,
        body,
        receiveCount: o.receiveCount ?? 0,
        sentAt: o.failure?.sentAt ?? o.sentAt ?? clock.now(),
        visibleAt: clock.now(),
        ...(o.failure ? { failure: { ...o.failure } } : {}),
      })
      return id
    },

    all() {
      const now = clock.now()
      return [...letters.values()].map((l) => ({
        id: l.id,
        body: l.body,
        visible: l.visibleAt <= now,
        ...(l.failure ? { failure: { ...l.failure } } : {}),
      }))
    },

    failDeletesOf(ids) {
      for (const id of ids) undeletable.add(id)
    },

    async counts() {
      const now = clock.now()
      let visible = 0
      for (const l of letters.values()) if (l.visibleAt <= now) visible++
      return { visible, inFlight: letters.size - visible, delayed: 0 }
    },

    async receive({ max, hideSeconds }) {
      const now = clock.now()
      const out: DeadLetter[] = []
      for (const l of letters.values()) {
        if (out.length >= Math.min(10, Math.max(1, max))) break
        if (l.visibleAt > now) continue
        l.receiveCount += 1
        l.receipt = randomUUID()
        l.visibleAt = now + Math.max(0, hideSeconds) * 1000
        const job = parsePinJob(l.body)
        out.push({
          id: l.id,
          receipt: l.receipt,
          body: l.body,
          ...(job ? { job } : {}),
          receiveCount: l.receiveCount,
          sentAt: l.sentAt,
          ...(l.failure ? { failure: { ...l.failure } } : {}),
        })
      }
      // Received messages go to the back, as in SQS (and fauxqs) the same few do not come first every time.
      for (const m of out) {
        const l = letters.get(m.id)!
        letters.delete(m.id)
        letters.set(m.id, l)
      }
      return out
    },

    async release(receipts) {
      for (const r of receipts) {
        const l = byReceipt(r)
        if (l) l.visibleAt = clock.now()
      }
    },

    async delete(receipts) {
      const failed: string[] = []
      for (const r of receipts) {
        const l = byReceipt(r)
        if (l && undeletable.has(l.id)) failed.push(r)
        else if (l) letters.delete(l.id)
      }
      return { failed }
    },

    async purge() {
      letters.clear()
    },
  }
}

export interface MemoryFailedJobs extends FailedJobs {
  /** Makes the next `n` adds reject (to test a forward that fails). */
  failAdds(n: number): void
}

/** The dead-letter consumer's side of an in-memory failed-jobs queue: what it adds, `queue` gives back. */
export function createMemoryFailedJobs(queue: MemoryDeadLetterQueue): MemoryFailedJobs {
  let failing = 0
  return {
    async add(body, info) {
      if (failing > 0) {
        failing--
        throw new Error('the failed-jobs queue refused the message')
      }
      // The message starts unread, as a message SQS just took: the job's receives are in `failure`.
      queue.add(body, { receiveCount: 0, failure: info })
    },
    failAdds(n) {
      failing = n
    },
  }
}
