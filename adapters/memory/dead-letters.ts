/**
 * In-memory DeadLetterQueue with the SQS adapter's semantics (adapters/sqs/dead-letters.ts against SQS or
 * fauxqs): receiving hides a message for `hideSeconds` and counts a receive; a released or expired message
 * is visible again; only a message's latest receipt releases or deletes it. `add` puts a message in, as SQS
 * does when a job's receives run out (its receive count and first send time kept).
 */
import { randomUUID } from 'node:crypto'
import { parsePinJob } from '../../core/pin.ts'
import type { Clock, DeadLetter, DeadLetterQueue } from '../../core/ports.ts'

export interface MemoryDeadLetterQueue extends DeadLetterQueue {
  /** Adds a message; returns its id. */
  add(body: string, opts?: { receiveCount?: number; sentAt?: number }): string
  /** Every message's id, body and visibility, for assertions. */
  all(): Array<{ id: string; body: string; visible: boolean }>
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
        sentAt: o.sentAt ?? clock.now(),
        visibleAt: clock.now(),
      })
      return id
    },

    all() {
      const now = clock.now()
      return [...letters.values()].map((l) => ({ id: l.id, body: l.body, visible: l.visibleAt <= now }))
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
