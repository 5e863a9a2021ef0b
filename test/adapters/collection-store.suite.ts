/**
 * The CollectionStore contract (core/collections/ports.ts), run against every implementation.
 */
import { randomBytes } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import type { CollectionRecord, CollectionToken } from '../../core/collections/model.ts'
import { type CollectionStore, tokenScanBudget } from '../../core/collections/ports.ts'

export type CollectionStoreFactory = () => Promise<CollectionStore>

const id = () => randomBytes(8).toString('hex')

function record(over: Partial<CollectionRecord> = {}): CollectionRecord {
  return {
    id: id(),
    owner: 'psa:alice',
    chainId: 1,
    address: '0x00000000000000000000000000000000000000aa',
    follow: false,
    status: 'enumerating',
    created: 100,
    updated: 100,
    ...over,
  }
}

function token(collectionId: string, tokenId: string, over: Partial<CollectionToken> = {}): CollectionToken {
  return {
    collectionId,
    tokenId,
    tokenURI: `ipfs://bafyroot/${tokenId}`,
    metadata: {
      uri: `ipfs://bafyroot/${tokenId}`,
      kind: 'ipfs',
      cid: 'bafyroot',
      path: tokenId,
      cidSource: 'chain',
      status: 'pending',
    },
    media: [],
    updated: 5,
    ...over,
  }
}

export function collectionStoreSuite(name: string, factory: CollectionStoreFactory): void {
  describe(`CollectionStore: ${name}`, () => {
    let store: CollectionStore
    beforeEach(async () => {
      store = await factory()
    })

    it('creates a collection once: creating it again answers the stored one', async () => {
      const r = record({ name: 'Punks' })
      expect(await store.create(r)).toEqual({ record: r, created: true })
      expect(await store.create({ ...r, name: 'other', created: 999 })).toEqual({ record: r, created: false })
      expect(await store.get(r.id)).toEqual(r)
      expect(await store.get(id())).toBeUndefined()
    })

    it('updates fields, removes optional ones, and honours a status condition', async () => {
      const r = record()
      await store.create(r)
      const checkpoint = { standard: 'erc721', method: 'index', total: '10', next: '5' } as const
      const a = await store.update(r.id, { standard: 'erc721', checkpoint, error: 'X: y' }, 200)
      expect(a).toEqual({ ...r, standard: 'erc721', checkpoint, error: 'X: y', updated: 200 })
      expect(await store.get(r.id)).toEqual(a)
      expect(await store.update(r.id, { status: 'done' }, 300, { ifStatus: ['archiving'] })).toBeUndefined()
      const b = await store.update(
        r.id,
        { status: 'archiving', remove: ['error', 'checkpoint'], follow: true },
        300,
        {
          ifStatus: ['enumerating', 'failed'],
        },
      )
      expect(b).toEqual({ ...r, standard: 'erc721', status: 'archiving', follow: true, updated: 300 })
      expect(await store.update(id(), { status: 'done' }, 1)).toBeUndefined()
    })

    it('honours a job condition: the named job, or none (null)', async () => {
      const r = record()
      await store.create(r)
      expect(await store.update(r.id, { jobId: 'b' }, 200, { ifJobId: 'a' })).toBeUndefined()
      const a = await store.update(r.id, { jobId: 'a' }, 200, { ifJobId: null })
      expect(a).toEqual({ ...r, jobId: 'a', updated: 200 })
      expect(await store.update(r.id, { jobId: 'c' }, 300, { ifJobId: null })).toBeUndefined()
      // Both conditions hold, or nothing is written.
      expect(
        await store.update(r.id, { jobId: 'b' }, 300, { ifJobId: 'a', ifStatus: ['done'] }),
      ).toBeUndefined()
      const b = await store.update(r.id, { jobId: 'b' }, 300, { ifJobId: 'a', ifStatus: ['enumerating'] })
      expect(b).toEqual({ ...r, jobId: 'b', updated: 300 })
      expect(await store.get(r.id)).toEqual(b)
    })

    it('keeps the latest count: a count begun earlier does not replace a later one', async () => {
      const r = record()
      await store.create(r)
      const summary = (asOf: number, total: number) => ({
        asOf,
        tokens: { total, archived: total, incomplete: 0, failed: 0 },
        cids: { total: 1, pinned: 1, queued: 0, pinning: 0, failed: 0 },
      })
      expect(await store.putSummary(r.id, summary(500, 3))).toBe(true)
      expect(await store.putSummary(r.id, summary(400, 2))).toBe(false)
      expect(await store.get(r.id)).toEqual({ ...r, summary: summary(500, 3) })
      expect(await store.putSummary(r.id, summary(500, 4))).toBe(true)
      expect(await store.putSummary(r.id, summary(600, 5))).toBe(true)
      expect((await store.get(r.id))?.summary).toEqual(summary(600, 5))
      expect(await store.putSummary(id(), summary(1, 1))).toBe(false)
      // The tombstone and the follow tick's time are numbers like the others.
      const deleting = await store.update(r.id, { deleting: 700, followChecked: 650 }, 700)
      expect(deleting).toMatchObject({ deleting: 700, followChecked: 650, summary: summary(600, 5) })
      expect(await store.get(r.id)).toEqual(deleting)
    })

    it('records the last job failure alone, without changing updated, and only on a record that exists', async () => {
      const r = record({ status: 'enumerating', jobId: 'job-1' })
      await store.create(r)
      const failure = { step: 'enumerate', error: 'RPC_ERROR: rate limited', at: 900, receives: 2 }
      expect(await store.putJobFailure(r.id, failure)).toBe(true)
      expect(await store.get(r.id)).toEqual({ ...r, lastJobFailure: failure })
      const later = { step: 'advance', error: 'E: again', at: 950, receives: 3 }
      expect(await store.putJobFailure(r.id, later)).toBe(true)
      // The job chain's conditional writes are untouched by it.
      const advanced = await store.update(r.id, { status: 'archiving' }, 1_000, { ifJobId: 'job-1' })
      expect(advanced).toMatchObject({ status: 'archiving', updated: 1_000, lastJobFailure: later })
      expect(await store.get(r.id)).toEqual(advanced)
      const gone = id()
      expect(await store.putJobFailure(gone, failure)).toBe(false)
      expect(await store.get(gone)).toBeUndefined()
    })

    it('lists the collections that follow their contract, never checked first, then the longest unchecked', async () => {
      const checkedLong = record({ follow: true, followChecked: 1_000 })
      const never = record({ follow: true })
      const checkedLately = record({ follow: true, followChecked: 2_000 })
      const notFollowing = record({ followChecked: 10 })
      for (const r of [checkedLong, never, checkedLately, notFollowing]) await store.create(r)
      expect((await store.listFollowing({ limit: 10 })).map((r) => r.id)).toEqual([
        never.id,
        checkedLong.id,
        checkedLately.id,
      ])
      expect((await store.listFollowing({ limit: 1 })).map((r) => r.id)).toEqual([never.id])
      // Checked now: last in line. Turned off: not listed. Turned on: listed, before those checked.
      await store.update(never.id, { followChecked: 3_000 }, 3_000)
      await store.update(checkedLong.id, { follow: false }, 3_000)
      await store.update(notFollowing.id, { follow: true }, 3_000)
      expect((await store.listFollowing({ limit: 10 })).map((r) => r.id)).toEqual([
        notFollowing.id,
        checkedLately.id,
        never.id,
      ])
    })

    it("lists an owner's collections newest first, in pages", async () => {
      const rs = [1, 2, 3, 4, 5].map((c) => record({ created: c * 10 }))
      for (const r of rs) await store.create(r)
      await store.create(record({ owner: 'psa:bob' }))
      const first = await store.listByOwner('psa:alice', { limit: 2 })
      expect(first.collections.map((c) => c.created)).toEqual([50, 40])
      const second = await store.listByOwner('psa:alice', { limit: 2, cursor: first.cursor })
      const third = await store.listByOwner('psa:alice', { limit: 2, cursor: second.cursor })
      expect([...second.collections, ...third.collections].map((c) => c.created)).toEqual([30, 20, 10])
      expect(third.cursor).toBeUndefined()
      await expect(store.listByOwner('psa:alice', { limit: 2, cursor: 'nope' })).rejects.toThrow(/cursor/)
    })

    it('reads a bounded number of tokens for a status, with a cursor to go on from', async () => {
      const r = record()
      await store.create(r)
      const n = tokenScanBudget(10) + 50
      const all = Array.from({ length: n }, (_, i) => token(r.id, String(i + 1)))
      // The one failed token is the last.
      all[n - 1] = token(r.id, String(n), {
        metadata: { uri: 'ipfs://x', kind: 'ipfs', cid: 'bafyx', path: '', status: 'failed', error: 'E: x' },
      })
      await store.putTokens(all)
      // Not read to the end: no token of the status yet, but a cursor, not a last page.
      const first = await store.listTokens(r.id, { limit: 10, status: 'failed' })
      expect(first.tokens).toEqual([])
      expect(first.cursor).toBeDefined()
      const second = await store.listTokens(r.id, { limit: 10, status: 'failed', cursor: first.cursor! })
      expect(second.tokens.map((t) => t.tokenId)).toEqual([String(n)])
      expect(second.cursor).toBeUndefined()
      // Paging through a status meets every token of it once, in order.
      const seen: string[] = []
      let cursor: string | undefined
      do {
        const page = await store.listTokens(r.id, {
          limit: 400,
          status: 'incomplete',
          ...(cursor ? { cursor } : {}),
        })
        seen.push(...page.tokens.map((t) => t.tokenId))
        cursor = page.cursor
      } while (cursor)
      expect(seen).toEqual(all.slice(0, n - 1).map((t) => t.tokenId))
    })

    it('keeps tokens in numeric order, replaces them by id, pages and filters by status', async () => {
      const r = record()
      await store.create(r)
      const ids = ['1', '2', '10', '100', `${2n ** 256n - 1n}`, '3']
      await store.putTokens(ids.map((t) => token(r.id, t)))
      const archived = token(r.id, '10', {
        metadata: { uri: 'data:,{}', kind: 'data', status: 'archived' },
        media: [
          {
            field: 'image',
            uri: 'ipfs://bafyimg',
            kind: 'ipfs',
            cid: 'bafyimg',
            path: '',
            status: 'archived',
          },
        ],
        updated: 9,
      })
      const failed = token(r.id, '2', {
        metadata: {
          uri: 'ipfs://x',
          kind: 'ipfs',
          cid: 'bafyx',
          path: '',
          status: 'failed',
          error: 'FETCH_STALLED: no',
        },
      })
      await store.putTokens([archived, failed])
      expect(await store.getToken(r.id, '10')).toEqual(archived)
      const some = await store.getTokens(r.id, ['10', '2', '404', '10'])
      expect([...some.keys()].sort()).toEqual(['10', '2'])
      expect(some.get('10')).toEqual(archived)
      expect(some.get('2')).toEqual(failed)
      const pages: string[] = []
      let cursor: string | undefined
      do {
        const page = await store.listTokens(r.id, { limit: 4, ...(cursor ? { cursor } : {}) })
        pages.push(...page.tokens.map((t) => t.tokenId))
        cursor = page.cursor
      } while (cursor)
      expect(pages).toEqual(['1', '2', '3', '10', '100', `${2n ** 256n - 1n}`])
      expect((await store.listTokens(r.id, { limit: 10, status: 'archived' })).tokens).toEqual([archived])
      expect((await store.listTokens(r.id, { limit: 10, status: 'failed' })).tokens).toEqual([failed])
      const incomplete = await store.listTokens(r.id, { limit: 2, status: 'incomplete' })
      expect(incomplete.tokens.map((t) => t.tokenId)).toEqual(['1', '3'])
      const more = await store.listTokens(r.id, { limit: 2, status: 'incomplete', cursor: incomplete.cursor })
      expect(more.tokens.map((t) => t.tokenId)).toEqual(['100', `${2n ** 256n - 1n}`])
      expect(more.cursor).toBeUndefined()
    })

    it('records roots once each, and deletes the collection with its tokens and roots', async () => {
      const r = record()
      const other = record()
      await store.create(r)
      await store.create(other)
      const roots = ['bafyc', 'bafya', 'bafyb'].map((cid) => ({ cid, requestid: `req-${cid}` }))
      await store.putRoots(r.id, roots)
      await store.putRoots(r.id, roots.slice(0, 1))
      await store.putRoots(other.id, roots.slice(0, 1))
      const first = await store.listRoots(r.id, { limit: 2 })
      const rest = await store.listRoots(r.id, { limit: 2, cursor: first.cursor })
      expect([...first.roots, ...rest.roots].map((x) => x.cid)).toEqual(['bafya', 'bafyb', 'bafyc'])
      await store.putTokens([token(r.id, '1'), token(other.id, '1')])

      expect(await store.delete(r.id)).toBe(true)
      expect(await store.get(r.id)).toBeUndefined()
      expect((await store.listTokens(r.id, { limit: 10 })).tokens).toEqual([])
      expect((await store.listRoots(r.id, { limit: 10 })).roots).toEqual([])
      expect(await store.delete(r.id)).toBe(false)
      // The other collection is untouched.
      expect((await store.listRoots(other.id, { limit: 10 })).roots).toHaveLength(1)
      expect(await store.getToken(other.id, '1')).toBeDefined()
    })
  })
}
