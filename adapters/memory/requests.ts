/**
 * In-memory RequestStore with the DynamoDB store's semantics (adapters/dynamodb/requests.ts). Requests are
 * copied in and out.
 */

import { InvalidInputError } from '../../core/errors.ts'
import type { PinRequest, RequestPage, RequestScan, RequestStore } from '../../core/ports.ts'
import { matchesFilter, type RequestFilter } from '../../core/request-filter.ts'
import { requestCursor } from '../cursors.ts'

/** Newest first; ties (only possible across owners) by requestid, descending. */
function compareNewestFirst(a: PinRequest, b: PinRequest): number {
  if (a.created !== b.created) return b.created - a.created
  return a.requestid < b.requestid ? 1 : a.requestid > b.requestid ? -1 : 0
}

/**
 * The owner's requests as the DynamoDB store's indexes partition them for the filter (one list per CID with
 * `cids`, else one), each newest first: what a bounded scan reads in order.
 */
function indexPartitions(requests: PinRequest[], filter: RequestFilter): PinRequest[][] {
  const name = filter.name
  let parts: PinRequest[][]
  if (filter.cids !== undefined) {
    parts = [...new Set(filter.cids)].map((cid) => requests.filter((r) => r.cid === cid))
  } else if (name && (name.match === 'exact' || name.match === 'iexact')) {
    const lower = name.text.toLowerCase()
    parts = [requests.filter((r) => r.name?.toLowerCase() === lower)]
  } else if (filter.notKnownPinned) {
    // The DynamoDB store's sparse index holds pending and known-failed requests in a partition each.
    const pending = requests.filter((r) => r.knownPinned === false)
    parts = filter.notKnownFailed
      ? [pending.filter((r) => r.knownFailed !== true)]
      : [pending.filter((r) => r.knownFailed !== true), pending.filter((r) => r.knownFailed === true)]
  } else {
    parts = [requests]
  }
  return parts.map((p) => p.sort(compareNewestFirst))
}

export function createMemoryRequestStore(): RequestStore & { all(): PinRequest[] } {
  const requests = new Map<string, PinRequest>()
  const lastCreated = new Map<string, number>()
  const out = (r: PinRequest): PinRequest => structuredClone(r)
  const ofOwner = (owner: string) => [...requests.values()].filter((r) => r.owner === owner)

  async function put(request: PinRequest): Promise<void> {
    if (request.owner.includes('#'))
      throw new TypeError(`request owner must not contain '#': ${request.owner}`)
    requests.set(request.requestid, structuredClone(request))
  }

  return {
    all() {
      return [...requests.values()].map(out)
    },

    put,

    async putKeepingCreated(request) {
      const created = requests.get(request.requestid)?.created ?? request.created
      await put({ ...request, created })
      return created
    },

    async get(requestid) {
      const r = requests.get(requestid)
      return r && out(r)
    },

    async delete(requestid) {
      return requests.delete(requestid)
    },

    async forContent(cid, limit) {
      return [...requests.values()]
        .filter((r) => r.cid === cid)
        .sort((a, b) => (a.requestid < b.requestid ? -1 : 1))
        .slice(0, limit)
        .map(out)
    },

    async listByOwner(owner, { limit, cursor }): Promise<RequestPage> {
      if (!Number.isInteger(limit) || limit < 1) {
        throw new InvalidInputError('INVALID_LIMIT', `limit must be a positive integer, got ${limit}`)
      }
      const after = cursor === undefined ? undefined : requestCursor.decode(cursor)
      const matching = ofOwner(owner)
        .filter((r) => !after || compareNewestFirst({ ...r, ...after }, r) < 0)
        .sort(compareNewestFirst)
      const page = matching.slice(0, limit).map(out)
      const last = page[page.length - 1]
      return matching.length > limit && last
        ? { requests: page, cursor: requestCursor.encode(last.created, last.requestid) }
        : { requests: page }
    },

    async getMany(requestids) {
      const found = new Map<string, PinRequest>()
      for (const id of requestids) {
        const r = requests.get(id)
        if (r) found.set(id, out(r))
      }
      return found
    },

    async reserveCreated(owner, at) {
      if (!Number.isInteger(at)) throw new TypeError(`created must be an integer, got ${at}`)
      const last = lastCreated.get(owner)
      const created = last === undefined ? at : Math.max(at, last + 1)
      lastCreated.set(owner, created)
      return created
    },

    async find(owner, filter, limit) {
      if (!Number.isInteger(limit) || limit < 1) {
        throw new InvalidInputError('INVALID_LIMIT', `limit must be a positive integer, got ${limit}`)
      }
      return ofOwner(owner)
        .filter((r) => matchesFilter(r, filter))
        .sort(compareNewestFirst)
        .slice(0, limit)
        .map(out)
    },

    async count(owner, filter) {
      return ofOwner(owner).filter((r) => matchesFilter(r, filter)).length
    },

    async scan(owner, filter, maxRead): Promise<RequestScan> {
      if (!Number.isInteger(maxRead) || maxRead < 1) {
        throw new InvalidInputError('INVALID_LIMIT', `maxRead must be a positive integer, got ${maxRead}`)
      }
      const inRange = (r: PinRequest) =>
        (filter.before === undefined || r.created < filter.before) &&
        (filter.after === undefined || r.created > filter.after)
      const read: PinRequest[] = []
      let next: number | undefined
      for (const part of indexPartitions(ofOwner(owner).filter(inRange), filter)) {
        read.push(...part.slice(0, maxRead))
        if (part.length > maxRead) {
          const last = part[maxRead - 1]!.created
          next = next === undefined ? last : Math.max(next, last)
        }
      }
      const requests = read
        .filter((r) => matchesFilter(r, filter) && (next === undefined || r.created >= next))
        .sort(compareNewestFirst)
        .map(out)
      return next === undefined ? { requests, read: read.length } : { requests, read: read.length, next }
    },

    async markKnownPinned(requestids) {
      for (const id of requestids) {
        const r = requests.get(id)
        if (r) {
          r.knownPinned = true
          delete r.knownFailed
        }
      }
    },

    async markKnownFailed(rs) {
      const changed: string[] = []
      for (const { requestid } of rs) {
        const r = requests.get(requestid)
        if (r && r.knownPinned === false && r.knownFailed !== true) {
          r.knownFailed = true
          changed.push(requestid)
        }
      }
      return changed
    },

    async markPending(rs) {
      for (const { requestid } of rs) {
        const r = requests.get(requestid)
        if (r?.knownFailed === true) delete r.knownFailed
      }
    },

    async returnToPending(cid) {
      let moved = 0
      for (const r of requests.values()) {
        if (r.cid === cid && r.knownFailed === true) {
          delete r.knownFailed
          moved++
        }
      }
      return moved
    },
  }
}
