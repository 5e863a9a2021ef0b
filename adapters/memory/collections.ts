/**
 * In-memory CollectionStore with the DynamoDB store's semantics (adapters/dynamodb/collections.ts).
 */

import {
  type CollectionRecord,
  type CollectionRoot,
  type CollectionToken,
  tokenSortKey,
  tokenStatus,
} from '../../core/collections/model.ts'
import { type CollectionPatch, type CollectionStore, tokenScanBudget } from '../../core/collections/ports.ts'
import { InvalidInputError } from '../../core/errors.ts'
import { collectionCursor, rootCursor, tokenCursor } from '../cursors.ts'

const copy = <T>(v: T): T => structuredClone(v)

function checkLimit(limit: number) {
  if (!Number.isInteger(limit) || limit < 1)
    throw new InvalidInputError('INVALID_LIMIT', `limit must be a positive integer, got ${limit}`)
}

export function applyPatch(record: CollectionRecord, patch: CollectionPatch, now: number): CollectionRecord {
  const { remove, ...set } = patch
  const next: CollectionRecord = { ...record, ...copy(set), updated: now }
  for (const key of remove ?? []) delete next[key]
  return next
}

export function createMemoryCollectionStore(): CollectionStore {
  const records = new Map<string, CollectionRecord>()
  const tokens = new Map<string, Map<string, CollectionToken>>()
  const roots = new Map<string, Map<string, CollectionRoot>>()

  return {
    async create(record) {
      const existing = records.get(record.id)
      if (existing) return { record: copy(existing), created: false }
      records.set(record.id, copy(record))
      return { record: copy(record), created: true }
    },
    async get(id) {
      const r = records.get(id)
      return r && copy(r)
    },
    async update(id, patch, now, opts = {}) {
      const r = records.get(id)
      if (!r) return undefined
      if (opts.ifStatus && !opts.ifStatus.includes(r.status)) return undefined
      if (opts.ifJobId !== undefined && (r.jobId ?? null) !== opts.ifJobId) return undefined
      const next = applyPatch(r, patch, now)
      records.set(id, next)
      return copy(next)
    },
    async putSummary(id, summary) {
      const r = records.get(id)
      if (!r || (r.summary && r.summary.asOf > summary.asOf)) return false
      records.set(id, { ...r, summary: copy(summary) })
      return true
    },
    async putJobFailure(id, failure) {
      const r = records.get(id)
      if (!r) return false
      records.set(id, { ...r, lastJobFailure: { ...failure } })
      return true
    },
    async listFollowing(opts) {
      checkLimit(opts.limit)
      const due = (r: CollectionRecord) => r.followChecked ?? 0
      return [...records.values()]
        .filter((r) => r.follow)
        .sort((a, b) => due(a) - due(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .slice(0, opts.limit)
        .map(copy)
    },
    async listByOwner(owner, opts) {
      checkLimit(opts.limit)
      const after = opts.cursor === undefined ? undefined : collectionCursor.decode(opts.cursor)
      const all = [...records.values()]
        .filter((r) => r.owner === owner)
        .sort((a, b) => b.created - a.created || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
        .filter(
          (r) => !after || r.created < after.created || (r.created === after.created && r.id < after.id),
        )
      const page = all.slice(0, opts.limit)
      const last = page.at(-1)
      return {
        collections: page.map(copy),
        ...(all.length > opts.limit && last
          ? { cursor: collectionCursor.encode(last.created, last.id) }
          : {}),
      }
    },
    async putTokens(list) {
      for (const t of list) {
        const m = tokens.get(t.collectionId) ?? new Map<string, CollectionToken>()
        tokens.set(t.collectionId, m)
        m.set(t.tokenId, copy(t))
      }
    },
    async getTokens(collectionId, tokenIds) {
      const found = new Map<string, CollectionToken>()
      for (const id of tokenIds) {
        const t = tokens.get(collectionId)?.get(id)
        if (t) found.set(id, copy(t))
      }
      return found
    },
    async getToken(collectionId, tokenId) {
      const t = tokens.get(collectionId)?.get(tokenId)
      return t && copy(t)
    },
    async listTokens(collectionId, opts) {
      checkLimit(opts.limit)
      const after = opts.cursor === undefined ? undefined : tokenSortKey(tokenCursor.decode(opts.cursor))
      const following = [...(tokens.get(collectionId)?.values() ?? [])]
        .map((t) => ({ t, key: tokenSortKey(t.tokenId) }))
        .filter(({ key }) => after === undefined || key > after)
        .sort((a, b) => (a.key < b.key ? -1 : 1))
      // With a status, the DynamoDB store's bounded read: what lies past the budget is not looked at.
      const budget = opts.status ? tokenScanBudget(opts.limit) : following.length
      const read = following.slice(0, budget)
      const all = read.filter(({ t }) => !opts.status || tokenStatus(t) === opts.status)
      const page = all.slice(0, opts.limit).map(({ t }) => copy(t))
      const last =
        all.length > opts.limit
          ? page.at(-1)?.tokenId
          : following.length > budget
            ? read.at(-1)?.t.tokenId
            : undefined
      return { tokens: page, ...(last !== undefined ? { cursor: tokenCursor.encode(last) } : {}) }
    },
    async putRoots(collectionId, list) {
      const m = roots.get(collectionId) ?? new Map<string, CollectionRoot>()
      roots.set(collectionId, m)
      for (const r of list) m.set(r.cid, copy(r))
    },
    async listRoots(collectionId, opts) {
      checkLimit(opts.limit)
      const after = opts.cursor === undefined ? undefined : rootCursor.decode(opts.cursor)
      const all = [...(roots.get(collectionId)?.values() ?? [])]
        .filter((r) => after === undefined || r.cid > after)
        .sort((a, b) => (a.cid < b.cid ? -1 : 1))
      const page = all.slice(0, opts.limit).map(copy)
      const last = page.at(-1)
      return {
        roots: page,
        ...(all.length > opts.limit && last ? { cursor: rootCursor.encode(last.cid) } : {}),
      }
    },
    async delete(id) {
      tokens.delete(id)
      roots.delete(id)
      return records.delete(id)
    },
  }
}
