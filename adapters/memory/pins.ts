/**
 * In-memory PinStore with the DynamoDB store's semantics (adapters/dynamodb/pins.ts): each method reads and
 * writes in one synchronous step, as atomic as a conditional write, and every write sets `updated`.
 * Pins are copied in and out, so callers never share state with the store.
 */

import { InvalidInputError } from '../../core/errors.ts'
import { CANCELLED_ERROR, copyProgress, mergeOrigins, type Pin } from '../../core/pin.ts'
import type { ClaimResult, PinPage, PinStore } from '../../core/ports.ts'
import { pinCursor, unreferencedCursor } from '../cursors.ts'

export interface MemoryPinStore extends PinStore {
  /** Every pin, for assertions. */
  all(): Pin[]
}

/** Newest first, as the status-updated index reads backwards; ties by cid, descending. */
function compareNewestFirst(
  a: { updated: number; cid: string },
  b: { updated: number; cid: string },
): number {
  if (a.updated !== b.updated) return b.updated - a.updated
  return a.cid < b.cid ? 1 : a.cid > b.cid ? -1 : 0
}

export function createMemoryPinStore(initial: readonly Pin[] = []): MemoryPinStore {
  const pins = new Map<string, Pin>(initial.map((p) => [p.cid, structuredClone(p)]))
  const out = (pin: Pin): Pin => structuredClone(pin)

  return {
    all() {
      return [...pins.values()].map(out)
    },

    async get(cid) {
      const pin = pins.get(cid)
      return pin && out(pin)
    },

    async getMany(cids) {
      const result = new Map<string, Pin>()
      for (const cid of cids) {
        const pin = pins.get(cid)
        if (pin) result.set(cid, out(pin))
      }
      return result
    },

    async request(cid, origins, now) {
      const pin = pins.get(cid)
      if (!pin) {
        const created: Pin = {
          cid,
          status: 'queued',
          created: now,
          updated: now,
          attempts: 0,
          origins: mergeOrigins([], origins),
        }
        pins.set(cid, created)
        return { pin: out(created), enqueue: true }
      }
      const merged = mergeOrigins(pin.origins, origins)
      const requeue = pin.status === 'failed'
      const marked = pin.unreferencedSince !== undefined
      const changed = merged.length !== pin.origins.length || merged.some((o, i) => o !== pin.origins[i])
      if (!requeue && !changed && !marked) return { pin: out(pin), enqueue: false }
      pin.origins = merged
      pin.updated = now
      delete pin.unreferencedSince
      if (requeue) {
        // A new request starts a new round of attempts.
        pin.status = 'queued'
        pin.attempts = 0
      }
      return { pin: out(pin), enqueue: requeue, ...(requeue ? { requeued: true as const } : {}) }
    },

    async claim(cid, attemptId, leaseExpires, now, progress): Promise<ClaimResult> {
      const pin = pins.get(cid)
      if (!pin) return { kind: 'missing' }
      if (pin.status === 'pinned') return { kind: 'pinned', pin: out(pin) }
      if (pin.status === 'pinning' && pin.leaseExpires !== undefined && pin.leaseExpires >= now) {
        return { kind: 'busy', pin: out(pin) }
      }
      if (pin.unreferencedSince !== undefined) {
        pin.status = 'failed'
        pin.error = CANCELLED_ERROR
        pin.updated = now
        delete pin.leaseExpires
        delete pin.progress
        return { kind: 'cancelled', pin: out(pin) }
      }
      pin.status = 'pinning'
      pin.attempts += 1
      pin.attemptId = attemptId
      pin.leaseExpires = leaseExpires
      pin.updated = now
      if (progress === undefined) delete pin.progress
      else pin.progress = copyProgress(progress)
      return { kind: 'claimed', pin: out(pin) }
    },

    async heartbeat(cid, attemptId, leaseExpires, progress, now) {
      const pin = pins.get(cid)
      if (pin?.status !== 'pinning' || pin.attemptId !== attemptId) return false
      pin.leaseExpires = leaseExpires
      pin.progress = copyProgress(progress)
      pin.updated = now
      return true
    },

    async cancel(cid, attemptId, now) {
      const pin = pins.get(cid)
      if (pin?.status !== 'pinning' || pin.attemptId !== attemptId || pin.unreferencedSince === undefined) {
        return false
      }
      pin.status = 'failed'
      pin.error = CANCELLED_ERROR
      pin.updated = now
      delete pin.leaseExpires
      delete pin.progress
      return true
    },

    async settle(cid, attemptId, outcome, now) {
      const pin = pins.get(cid)
      if (!pin) return false
      const holds =
        attemptId === undefined
          ? pin.status !== 'pinned'
          : pin.status === 'pinning' && pin.attemptId === attemptId
      if (!holds) return false
      pin.status = outcome.status
      pin.error = outcome.error
      pin.updated = now
      delete pin.leaseExpires
      delete pin.progress
      return true
    },

    async markPinned(cid, attemptId, car, now) {
      const pin = pins.get(cid)
      if (!pin || pin.status === 'pinned') return false
      pin.status = 'pinned'
      pin.car = { cid: car.cid, bytes: car.bytes, blocks: car.blocks, key: car.key }
      pin.attemptId = attemptId
      pin.updated = now
      delete pin.error
      delete pin.leaseExpires
      delete pin.progress
      return true
    },

    async requeueLostCar(cid, carKey, error, now) {
      const pin = pins.get(cid)
      if (pin?.status !== 'pinned' || pin.car?.key !== carKey) return false
      pin.status = 'queued'
      pin.error = error
      pin.attempts = 0
      pin.updated = now
      delete pin.car
      delete pin.attemptId
      delete pin.leaseExpires
      delete pin.progress
      return true
    },

    async listByStatus(status, { limit, cursor, order, updatedBefore }): Promise<PinPage> {
      if (!Number.isInteger(limit) || limit < 1) {
        throw new InvalidInputError('INVALID_LIMIT', `limit must be a positive integer, got ${limit}`)
      }
      const after = cursor === undefined ? undefined : pinCursor.decode(cursor, status)
      type Key = { updated: number; cid: string }
      const compare = order === 'oldest' ? (a: Key, b: Key) => compareNewestFirst(b, a) : compareNewestFirst
      const matching = [...pins.values()]
        .filter(
          (p) =>
            p.status === status &&
            (updatedBefore === undefined || p.updated < updatedBefore) &&
            (!after || compare(after, p) < 0),
        )
        .sort(compare)
      const page = matching.slice(0, limit).map(out)
      const last = page[page.length - 1]
      return matching.length > limit && last
        ? { pins: page, cursor: pinCursor.encode(status, last.updated, last.cid) }
        : { pins: page }
    },

    async countByStatus(status, { max }) {
      let count = 0
      for (const p of pins.values()) if (p.status === status) count++
      return Math.min(count, max)
    },

    async settleIfUnchanged(cid, seen, outcome, now) {
      const pin = pins.get(cid)
      if (
        !pin ||
        pin.status === 'pinned' ||
        pin.status !== seen.status ||
        pin.updated !== seen.updated ||
        pin.attempts !== seen.attempts
      ) {
        return false
      }
      pin.status = outcome.status
      pin.error = outcome.error
      pin.updated = now
      delete pin.leaseExpires
      delete pin.progress
      return true
    },

    async markUnreferenced(cid, now) {
      const pin = pins.get(cid)
      if (!pin) return false
      pin.unreferencedSince ??= now
      return true
    },

    async listUnreferenced({ markedBefore, markedSince, limit, cursor }): Promise<PinPage> {
      if (!Number.isInteger(limit) || limit < 1) {
        throw new InvalidInputError('INVALID_LIMIT', `limit must be a positive integer, got ${limit}`)
      }
      const after = cursor === undefined ? undefined : unreferencedCursor.decode(cursor)
      const key = (p: Pin) => [p.unreferencedSince!, p.cid] as const
      const isAfter = (p: Pin) =>
        !after ||
        p.unreferencedSince! > after.since ||
        (p.unreferencedSince === after.since && p.cid > after.cid)
      const matching = [...pins.values()]
        .filter(
          (p) =>
            p.unreferencedSince !== undefined &&
            p.unreferencedSince <= markedBefore &&
            p.unreferencedSince >= (markedSince ?? Number.NEGATIVE_INFINITY) &&
            isAfter(p),
        )
        .sort((a, b) => {
          const [sa, ca] = key(a)
          const [sb, cb] = key(b)
          return sa - sb || (ca < cb ? -1 : ca > cb ? 1 : 0)
        })
      const page = matching.slice(0, limit).map(out)
      const last = page[page.length - 1]
      return matching.length > limit && last
        ? { pins: page, cursor: unreferencedCursor.encode(last.unreferencedSince!, last.cid) }
        : { pins: page }
    },

    async clearUnreferenced(cid, since) {
      const pin = pins.get(cid)
      if (pin?.unreferencedSince !== since) return false
      delete pin.unreferencedSince
      return true
    },

    async deleteUnreferenced(cid, since) {
      const pin = pins.get(cid)
      if (!pin || pin.unreferencedSince !== since) return undefined
      if (pin.status !== 'pinned' && pin.status !== 'failed') return undefined
      pins.delete(cid)
      return out(pin)
    },
  }
}
