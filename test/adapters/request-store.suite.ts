/**
 * The RequestStore contract (core/ports.ts), run against every implementation.
 */
import { randomBytes } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../core/errors.ts'
import type { CarInfo } from '../../core/pin.ts'
import type { PinRequest, PinStore, RequestStore } from '../../core/ports.ts'
import type { RequestFilter } from '../../core/request-filter.ts'
import { getRequestsWithPins, getRequestWithPin } from '../../core/requests-with-pins.ts'

/** A fresh, empty request store per test, with the pin store it joins with. */
export type RequestStoreFactory = () => Promise<{ store: RequestStore; pins: PinStore }>

const T0 = 1_700_000_000_000
const car: CarInfo = { cid: 'bagcar', bytes: 1234, blocks: 7, key: 'bagcar/bagcar.car' }

function cid(): string {
  return `bafy${randomBytes(12).toString('hex')}`
}

function request(over: Partial<PinRequest> & { owner: string }): PinRequest {
  const c = over.cid ?? cid()
  return {
    requestid: `r-${randomBytes(8).toString('hex')}`,
    cid: c,
    sourceCid: c,
    meta: {},
    origins: [],
    created: T0,
    ...over,
  }
}

/** The filter semantics, written out independently of either store. */
function reference(all: PinRequest[], owner: string, f: RequestFilter): PinRequest[] {
  return all
    .filter((r) => r.owner === owner)
    .filter((r) => f.cids === undefined || f.cids.includes(r.cid))
    .filter((r) => f.before === undefined || r.created < f.before)
    .filter((r) => f.after === undefined || r.created > f.after)
    .filter((r) => !f.notKnownPinned || r.knownPinned === false)
    .filter((r) => !f.notKnownFailed || r.knownFailed !== true)
    .filter((r) => {
      if (!f.name) return true
      if (r.name === undefined) return false
      const [a, b] = f.name.match.startsWith('i')
        ? [r.name.toLowerCase(), f.name.text.toLowerCase()]
        : [r.name, f.name.text]
      return f.name.match.endsWith('exact') ? a === b : a.includes(b)
    })
    .filter((r) => Object.entries(f.meta ?? {}).every(([k, v]) => r.meta[k] === v))
    .sort((a, b) => b.created - a.created)
}

export function requestStoreSuite(name: string, factory: RequestStoreFactory): void {
  describe(`RequestStore: ${name}`, () => {
    let store: RequestStore
    let pins: PinStore
    beforeEach(async () => {
      ;({ store, pins } = await factory())
    })

    describe('put / get / delete', () => {
      it('creates, replaces and deletes a request, saying whether it existed', async () => {
        const r = request({
          owner: 'psa:alice',
          name: 'Report.PDF',
          meta: { app: 'x', 'dotted.key': 'y' },
          origins: ['/ip4/1.2.3.4/tcp/4001/p2p/QmPeer'],
          knownPinned: false,
        })
        expect(await store.get(r.requestid)).toBeUndefined()
        await store.put(r)
        expect(await store.get(r.requestid)).toEqual(r)
        const replaced = { ...r, name: undefined, meta: {}, knownPinned: true }
        delete replaced.name
        await store.put(replaced)
        expect(await store.get(r.requestid)).toEqual(replaced)
        expect(await store.delete(r.requestid)).toBe(true)
        expect(await store.get(r.requestid)).toBeUndefined()
        expect(await store.delete(r.requestid)).toBe(false)
      })

      it('keeps a cluster claim without knownPinned as it is', async () => {
        const r = request({ owner: 'cluster', requestid: `cluster:${cid()}`, name: '' })
        await store.put(r)
        expect(await store.get(r.requestid)).toEqual(r)
      })

      it('putKeepingCreated creates a request, then replaces it keeping its created', async () => {
        const r = request({
          owner: 'cluster',
          requestid: `cluster:${cid()}`,
          name: 'first',
          meta: { a: '1' },
          created: T0 + 5,
        })
        expect(await store.putKeepingCreated(r)).toBe(T0 + 5)
        expect(await store.get(r.requestid)).toEqual(r)
        const again = { ...r, name: 'second', meta: {}, origins: ['/dns4/x/tcp/1'], created: T0 + 9 }
        expect(await store.putKeepingCreated(again)).toBe(T0 + 5)
        expect(await store.get(r.requestid)).toEqual({ ...again, created: T0 + 5 })
        // Counted once, with its first created, and counts follow the replacement.
        expect(await store.count('cluster', {})).toBe(1)
        expect(await store.count('cluster', { name: { match: 'exact', text: 'second' } })).toBe(1)
        expect(await store.find('cluster', { before: T0 + 6 }, 10)).toEqual([{ ...again, created: T0 + 5 }])
        // Deleted, it is new again.
        expect(await store.delete(r.requestid)).toBe(true)
        expect(await store.putKeepingCreated(again)).toBe(T0 + 9)
        expect(await store.get(r.requestid)).toEqual(again)
      })

      it('refuses owners with #, which its index keys use as a separator', async () => {
        await expect(store.put(request({ owner: 'psa:a#b' }))).rejects.toThrow(/#/)
        await expect(store.putKeepingCreated(request({ owner: 'psa:a#b' }))).rejects.toThrow(/#/)
        expect(await store.count('psa:a', {})).toBe(0)
      })

      it('returns copies', async () => {
        const r = request({ owner: 'psa:alice', meta: { a: '1' } })
        await store.put(r)
        r.meta.a = 'changed'
        const got = (await store.get(r.requestid))!
        expect(got.meta).toEqual({ a: '1' })
        got.origins.push('/x')
        expect((await store.get(r.requestid))!.origins).toEqual([])
      })
    })

    describe('forContent', () => {
      it('lists requests for the content from any owner, up to the limit, and forgets deleted ones', async () => {
        const c = cid()
        const a = request({ owner: 'psa:alice', cid: c })
        const b = request({ owner: 'psa:bob', cid: c })
        const k = request({ owner: 'cluster', requestid: `cluster:${c}`, cid: c })
        for (const r of [a, b, k, request({ owner: 'psa:alice' })]) await store.put(r)
        expect((await store.forContent(c, 10)).map((r) => r.requestid).sort()).toEqual(
          [a, b, k].map((r) => r.requestid).sort(),
        )
        expect(await store.forContent(c, 1)).toHaveLength(1)
        await store.delete(a.requestid)
        await store.delete(k.requestid)
        expect(await store.forContent(c, 10)).toEqual([b])
        await store.delete(b.requestid)
        expect(await store.forContent(c, 1)).toEqual([])
        expect(await store.forContent(cid(), 1)).toEqual([])
      })
    })

    describe('listByOwner', () => {
      it('pages through one owner, newest first', async () => {
        const mine = Array.from({ length: 7 }, (_, i) => request({ owner: 'cluster', created: T0 + i * 10 }))
        for (const r of [...mine, request({ owner: 'psa:other', created: T0 + 5 })]) await store.put(r)
        const seen: PinRequest[] = []
        let cursor: string | undefined
        do {
          const page = await store.listByOwner('cluster', { limit: 3, ...(cursor ? { cursor } : {}) })
          expect(page.requests.length).toBeLessThanOrEqual(3)
          seen.push(...page.requests)
          cursor = page.cursor
        } while (cursor)
        expect(seen.map((r) => r.created)).toEqual(mine.map((r) => r.created).reverse())
        expect((await store.listByOwner('psa:nobody', { limit: 5 })).requests).toEqual([])
      })

      it('rejects foreign cursors and bad limits', async () => {
        await expect(store.listByOwner('x', { limit: 5, cursor: 'nonsense' })).rejects.toBeInstanceOf(
          InvalidInputError,
        )
        await expect(store.listByOwner('x', { limit: 0 })).rejects.toBeInstanceOf(InvalidInputError)
      })
    })

    describe('getMany, and the join with pins (core/requests-with-pins.ts)', () => {
      it('reads a request and its pin together', async () => {
        const ctx = { requests: store, pins }
        const r = request({ owner: 'psa:alice' })
        await store.put(r)
        expect(await getRequestWithPin(r.requestid, r.cid, ctx)).toEqual({ request: r })
        await pins.request(r.cid, [], T0)
        await pins.claim(r.cid, 'att', T0 + 1000, T0)
        await pins.markPinned(r.cid, 'att', car, T0 + 1)
        const both = await getRequestWithPin(r.requestid, r.cid, ctx)
        expect(both.request).toEqual(r)
        expect(both.pin).toMatchObject({ cid: r.cid, status: 'pinned', car })
        expect(await getRequestWithPin('r-missing', r.cid, ctx)).toEqual({ pin: both.pin })
      })

      it('getMany answers the requests that exist, and never an owner counter', async () => {
        const r = request({ owner: 'psa:alice' })
        await store.put(r)
        await store.reserveCreated('psa:alice', T0)
        const found = await store.getMany([r.requestid, 'r-missing', r.requestid, '#owner#psa:alice'])
        expect([...found.keys()]).toEqual([r.requestid])
        expect(found.get(r.requestid)).toEqual(r)
        expect((await store.getMany([])).size).toBe(0)
      })

      it('reads many pairs in order, across more keys than one batch holds', async () => {
        const rs = Array.from({ length: 70 }, () => request({ owner: 'psa:alice' }))
        for (const r of rs) await store.put(r)
        for (const r of rs.slice(0, 35)) await pins.request(r.cid, [], T0)
        const pairs = [...rs, rs[0]!].map((r) => ({ requestid: r.requestid, cid: r.cid }))
        pairs.push({ requestid: 'r-missing', cid: cid() })
        const got = await getRequestsWithPins(pairs, { requests: store, pins })
        expect(got).toHaveLength(72)
        got.slice(0, 70).forEach((g, i) => {
          expect(g.request).toEqual(rs[i])
          if (i < 35) expect(g.pin).toMatchObject({ cid: rs[i]!.cid, status: 'queued' })
          else expect(g.pin).toBeUndefined()
        })
        expect(got[70]!.request).toEqual(rs[0])
        expect(got[71]).toEqual({})
        expect(await getRequestsWithPins([], { requests: store, pins })).toEqual([])
      })
    })

    describe('reserveCreated', () => {
      it('gives each owner strictly increasing values, at least the time asked for', async () => {
        expect(await store.reserveCreated('psa:a', T0)).toBe(T0)
        expect(await store.reserveCreated('psa:a', T0)).toBe(T0 + 1)
        expect(await store.reserveCreated('psa:a', T0 - 50)).toBe(T0 + 2)
        expect(await store.reserveCreated('psa:a', T0 + 100)).toBe(T0 + 100)
        expect(await store.reserveCreated('psa:b', T0)).toBe(T0)
      })

      it('never gives two concurrent requests the same value', async () => {
        const values = await Promise.all(Array.from({ length: 40 }, () => store.reserveCreated('psa:c', T0)))
        expect(new Set(values).size).toBe(40)
        expect(Math.min(...values)).toBe(T0)
        expect(Math.max(...values)).toBe(T0 + 39)
      })
    })

    describe('find / count', () => {
      const owner = 'psa:alice'
      const cids = [cid(), cid(), cid()]
      const names = ['Report.pdf', 'report.PDF', 'old report', 'photo', undefined]
      let all: PinRequest[]

      beforeEach(async () => {
        all = Array.from({ length: 40 }, (_, i) =>
          request({
            owner,
            cid: cids[i % 3]!,
            created: T0 + i * 10,
            ...(names[i % 5] === undefined ? {} : { name: names[i % 5] }),
            meta: i % 2 === 0 ? { app: 'a', tier: String(i % 4) } : { app: 'b' },
            knownPinned: i % 7 !== 0,
            // Some of those not known pinned were seen failed.
            ...(i % 14 === 0 ? { knownFailed: true } : {}),
          }),
        )
        all.push(
          request({
            owner: 'psa:bob',
            cid: cids[0]!,
            created: T0 + 5,
            name: 'Report.pdf',
            meta: { app: 'a' },
          }),
        )
        for (const r of all) await store.put(r)
      })

      const filters: Array<[string, RequestFilter]> = [
        ['none', {}],
        ['one cid', { cids: [cids[0]!] }],
        ['two cids and an unknown one', { cids: [cids[1]!, cids[2]!, cid()] }],
        ['no cids', { cids: [] }],
        ['exact name', { name: { text: 'Report.pdf', match: 'exact' } }],
        ['iexact name', { name: { text: 'REPORT.pdf', match: 'iexact' } }],
        ['partial name', { name: { text: 'report', match: 'partial' } }],
        ['ipartial name', { name: { text: 'REPORT', match: 'ipartial' } }],
        ['meta', { meta: { app: 'a' } }],
        ['two meta pairs', { meta: { app: 'a', tier: '2' } }],
        ['meta key nobody has', { meta: { nope: 'a' } }],
        ['before', { before: T0 + 200 }],
        ['after', { after: T0 + 200 }],
        ['before and after, exclusive', { after: T0 + 100, before: T0 + 200 }],
        ['fractional bounds', { after: T0 + 100.5, before: T0 + 200.5 }],
        ['empty range', { after: T0 + 100, before: T0 + 101 }],
        ['not known pinned', { notKnownPinned: true }],
        ['pending: not known pinned nor failed', { notKnownPinned: true, notKnownFailed: true }],
        ['not known failed', { notKnownFailed: true }],
        [
          'everything at once',
          {
            cids: [cids[0]!, cids[1]!],
            name: { text: 'report', match: 'ipartial' },
            meta: { app: 'a' },
            before: T0 + 350,
          },
        ],
        ['cid and not known pinned', { cids: [cids[0]!], notKnownPinned: true }],
        ['name and not known pinned', { name: { text: 'photo', match: 'exact' }, notKnownPinned: true }],
      ]

      for (const [label, filter] of filters) {
        it(`finds and counts with ${label}`, async () => {
          const expected = reference(all, owner, filter)
          expect(await store.count(owner, filter)).toBe(expected.length)
          expect((await store.find(owner, filter, 1000)).map((r) => r.requestid)).toEqual(
            expected.map((r) => r.requestid),
          )
          const top = await store.find(owner, filter, 3)
          expect(top).toEqual(expected.slice(0, 3))
        })
      }

      // One filter per index and kind of condition (each test puts 41 requests: kept to a few).
      const scanned = new Set([
        'none',
        'two cids and an unknown one',
        'exact name',
        'partial name',
        'meta key nobody has',
        'before and after, exclusive',
        'not known pinned',
        'pending: not known pinned nor failed',
        'everything at once',
      ])
      for (const [label, filter] of filters.filter(([l]) => scanned.has(l))) {
        it(`scans with ${label}, a bounded read at a time, to the same requests`, async () => {
          // Per CID; pending and known failed, when both are asked for.
          const partitions =
            filter.cids !== undefined
              ? new Set(filter.cids).size
              : filter.notKnownPinned && !filter.notKnownFailed
                ? 2
                : 1
          const seen: PinRequest[] = []
          let before = filter.before
          for (let calls = 0; ; calls++) {
            expect(calls).toBeLessThan(50)
            const scanned = await store.scan(
              owner,
              { ...filter, ...(before === undefined ? {} : { before }) },
              4,
            )
            expect(scanned.requests.length).toBeLessThanOrEqual(4 * Math.max(1, partitions))
            for (const r of scanned.requests) {
              if (scanned.next !== undefined) expect(r.created).toBeGreaterThanOrEqual(scanned.next)
            }
            seen.push(...scanned.requests)
            if (scanned.next === undefined) break
            before = scanned.next
          }
          expect(seen.map((r) => r.requestid)).toEqual(reference(all, owner, filter).map((r) => r.requestid))
        })
      }

      it('stops a scan after the entries it may read, even when none of them matches', async () => {
        // find reads the whole partition looking for a match; scan answers after 4 entries.
        const scanned = await store.scan(owner, { meta: { nope: 'a' } }, 4)
        expect(scanned.requests).toEqual([])
        expect(scanned.read).toBe(4)
        expect(scanned.next).toBe(all[36]!.created)
        const rest = await store.scan(owner, { meta: { app: 'b' }, before: scanned.next! }, 4)
        expect(rest.requests.map((r) => r.requestid)).toEqual([all[35]!, all[33]!].map((r) => r.requestid))
        await expect(store.scan(owner, {}, 0)).rejects.toBeInstanceOf(InvalidInputError)
      })

      it('pages by `before` = the last created', async () => {
        const filter: RequestFilter = { meta: { app: 'a' } }
        const seen: PinRequest[] = []
        let before: number | undefined
        for (;;) {
          const page = await store.find(owner, { ...filter, ...(before === undefined ? {} : { before }) }, 4)
          seen.push(...page)
          if (page.length < 4) break
          before = page[page.length - 1]!.created
        }
        expect(seen).toEqual(reference(all, owner, filter))
      })

      it('keeps counts exact as requests come and go', async () => {
        const filter: RequestFilter = { after: T0 + 50 }
        expect(await store.count(owner, filter)).toBe(reference(all, owner, filter).length)
        expect(await store.count(owner, filter)).toBe(reference(all, owner, filter).length)
        const extra = request({ owner, created: T0 + 10_000 })
        await store.put(extra)
        all.push(extra)
        expect(await store.count(owner, filter)).toBe(reference(all, owner, filter).length)
        await store.delete(all[10]!.requestid)
        all.splice(10, 1)
        expect(await store.count(owner, filter)).toBe(reference(all, owner, filter).length)
        expect(await store.count(owner, { ...filter, before: T0 + 300 })).toBe(
          reference(all, owner, { ...filter, before: T0 + 300 }).length,
        )
      })

      it('marks requests known pinned', async () => {
        const pending = reference(all, owner, { notKnownPinned: true })
        expect(pending.length).toBeGreaterThan(1)
        await store.markKnownPinned([pending[0]!.requestid, 'r-missing'])
        expect((await store.get(pending[0]!.requestid))!.knownPinned).toBe(true)
        expect(await store.count(owner, { notKnownPinned: true })).toBe(pending.length - 1)
        expect((await store.find(owner, { notKnownPinned: true }, 100)).map((r) => r.requestid)).toEqual(
          pending.slice(1).map((r) => r.requestid),
        )
        expect(await store.get('r-missing')).toBeUndefined()
      })

      it('moves requests between the pending and the known-failed, and back when their content is queued again', async () => {
        const pending = reference(all, owner, { notKnownPinned: true, notKnownFailed: true })
        const unpinned = reference(all, owner, { notKnownPinned: true })
        const [a, b] = pending
        const knownFailed = unpinned.find((r) => r.knownFailed === true)!
        const knownPinned = all.find((r) => r.owner === owner && r.knownPinned === true)!
        // Only pending requests move: not one known failed already, nor one known pinned, nor one deleted.
        const moved = await store.markKnownFailed([
          a!,
          b!,
          knownFailed,
          knownPinned,
          { ...a!, requestid: 'r-missing' },
        ])
        expect(moved.sort()).toEqual([a!.requestid, b!.requestid].sort())
        expect((await store.get(a!.requestid))!.knownFailed).toBe(true)
        expect((await store.get(knownPinned.requestid))!.knownFailed).toBeUndefined()
        expect(await store.get('r-missing')).toBeUndefined()
        const pendingNow = async () =>
          (await store.find(owner, { notKnownPinned: true, notKnownFailed: true }, 100)).map(
            (r) => r.requestid,
          )
        expect(await pendingNow()).toEqual(pending.slice(2).map((r) => r.requestid))
        expect(await store.count(owner, { notKnownPinned: true, notKnownFailed: true })).toBe(
          pending.length - 2,
        )
        expect(await store.count(owner, { notKnownPinned: true })).toBe(unpinned.length)

        await store.markPending([a!, knownPinned])
        expect((await store.get(a!.requestid))!.knownFailed).toBeUndefined()
        expect((await store.get(knownPinned.requestid))!.knownPinned).toBe(true)
        expect(await pendingNow()).toEqual(pending.filter((r) => r !== b).map((r) => r.requestid))

        // Content queued again: every known-failed request for it, of any owner, is pending again.
        const bobs = request({ owner: 'psa:bob', cid: b!.cid, knownPinned: false, knownFailed: true })
        await store.put(bobs)
        const failedOfContent = (await Promise.all([...all, bobs].map((r) => store.get(r.requestid)))).filter(
          (r) => r?.cid === b!.cid && r.knownFailed === true,
        )
        expect(failedOfContent.length).toBeGreaterThan(2)
        expect(await store.returnToPending(b!.cid)).toBe(failedOfContent.length)
        for (const r of failedOfContent) expect((await store.get(r!.requestid))!.knownFailed).toBeUndefined()
        expect(await store.find('psa:bob', { notKnownPinned: true, notKnownFailed: true }, 10)).toEqual([
          { ...bobs, knownFailed: undefined },
        ])
        expect(await store.returnToPending(b!.cid)).toBe(0)

        // Seen pinned: no longer failed either.
        await store.markKnownFailed([a!])
        await store.markKnownPinned([a!.requestid])
        expect(await store.get(a!.requestid)).toMatchObject({ knownPinned: true })
        expect((await store.get(a!.requestid))!.knownFailed).toBeUndefined()
        expect(
          (await store.find(owner, { notKnownPinned: true }, 100)).map((r) => r.requestid),
        ).not.toContain(a!.requestid)
      })

      it('rejects a limit below 1', async () => {
        await expect(store.find(owner, {}, 0)).rejects.toBeInstanceOf(InvalidInputError)
      })
    })
  })
}
