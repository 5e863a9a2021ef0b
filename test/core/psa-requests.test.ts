/**
 * The Pinning Service API's core against in-memory ports: status filters and counts as content moves along,
 * replace races, failures to queue, and the sweep of unreferenced content.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryDeadLetterQueue } from '../../adapters/memory/dead-letters.ts'
import { createMemoryObjectStore } from '../../adapters/memory/objects.ts'
import { createMemoryPinStore, type MemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import { normalizeCid } from '../../core/cid.ts'
import { redriveDeadLetters } from '../../core/dead-letters.ts'
import { ListingTooSparseError, RequestNotFoundError } from '../../core/errors.ts'
import type { CarInfo } from '../../core/pin.ts'
import { retryPin } from '../../core/pin-admin.ts'
import type { ObjectStore, PinStore, RequestStore } from '../../core/ports.ts'
import {
  createPsaRequest,
  deletePsaRequest,
  getPsaRequest,
  listBudget,
  listPsaRequests,
  type PsaListQuery,
  type PsaRequestView,
  replacePsaRequest,
} from '../../core/psa-requests.ts'
import { releaseContent, sweepUnreferenced } from '../../core/unreferenced-content.ts'
import { rawBlock } from '../fixtures/dags.ts'
import { createTestLogger } from '../helpers/log.ts'

let now = 1_700_000_000_000
const clock = { now: () => now }
let pins: MemoryPinStore
let requests: RequestStore
let queue: MemoryJobQueue
let destination: ObjectStore
let ctx: Parameters<typeof createPsaRequest>[1]

let n = 0
const newCid = () => rawBlock(8, `core-psa-${++n}`).root.toString()
const key = (cid: string) => normalizeCid(cid).key
const pin = (cid: string) => ({ cid, origins: [], meta: {} })

async function pinned(cid: string): Promise<CarInfo> {
  const car: CarInfo = { cid: `bagcar${n}`, bytes: 100, blocks: 1, key: `bagcar${n}/bagcar${n}.car` }
  await destination.put(
    car.key,
    (async function* () {
      yield new Uint8Array(100)
    })(),
  )
  await pins.markPinned(key(cid), 'att', car, now)
  return car
}

beforeEach(() => {
  pins = createMemoryPinStore()
  requests = createMemoryRequestStore()
  queue = createMemoryJobQueue({ clock })
  destination = createMemoryObjectStore({ bucket: 'cars' })
  ctx = { requests, pins, queue, clock }
})

describe('status queries', () => {
  it('count and list by status as content moves, recording requests found pinned', async () => {
    const cids = Array.from({ length: 6 }, newCid)
    const made = []
    for (const c of cids) {
      now += 1
      made.push(await createPsaRequest({ user: 'alice', pin: pin(c) }, ctx))
    }
    const count = async (statuses?: Array<'queued' | 'pinning' | 'pinned' | 'failed'>) =>
      (
        await listPsaRequests(
          { user: 'alice', query: { limit: 100, ...(statuses ? { statuses } : {}) } },
          ctx,
        )
      ).count
    expect(await count()).toBe(0)
    expect(await count(['queued'])).toBe(6)

    await pinned(cids[0]!)
    await pinned(cids[1]!)
    await pins.settle(key(cids[2]!), undefined, { status: 'failed', error: 'E: x' }, now)
    expect(await count()).toBe(2)
    expect(await count(['queued'])).toBe(3)
    expect(await count(['failed', 'pinned'])).toBe(3)
    expect(await count(['queued', 'pinning', 'pinned', 'failed'])).toBe(6)
    // Listing found them pinned: they are known pinned now, outside the pending set.
    expect((await requests.get(made[0]!.request.requestid))!.knownPinned).toBe(true)
    expect(await requests.count('psa:alice', { notKnownPinned: true })).toBe(4)

    // Failed content requested again (by anyone) is queued again: the request follows.
    await createPsaRequest({ user: 'bob', pin: pin(cids[2]!) }, ctx)
    expect(await count(['failed'])).toBe(0)
    expect(await count(['queued'])).toBe(4)

    const page = await listPsaRequests(
      { user: 'alice', query: { limit: 2, statuses: ['queued', 'pinned'] } },
      ctx,
    )
    expect(page.count).toBe(6)
    expect(page.results.map((r) => r.request.requestid)).toEqual([
      made[5]!.request.requestid,
      made[4]!.request.requestid,
    ])
  })

  it('marks a request known pinned when its status is read as pinned', async () => {
    const c = newCid()
    const made = await createPsaRequest({ user: 'alice', pin: pin(c) }, ctx)
    expect(made.request.knownPinned).toBe(false)
    await pinned(c)
    const got = await getPsaRequest({ user: 'alice', requestid: made.request.requestid }, ctx)
    expect(got.status).toBe('pinned')
    expect((await requests.get(made.request.requestid))!.knownPinned).toBe(true)
  })
})

describe('status listings read a bounded amount', () => {
  /** The twin stores, counting what each listing reads: requests scanned and pins got. */
  function counted() {
    const read = { requests: 0, pins: 0 }
    const countingRequests: RequestStore = {
      ...requests,
      scan: async (owner, filter, maxRead) => {
        const scanned = await requests.scan(owner, filter, maxRead)
        read.requests += scanned.requests.length
        return scanned
      },
      find: async (owner, filter, limit) => {
        const found = await requests.find(owner, filter, limit)
        read.requests += found.length
        return found
      },
    }
    const countingPins: PinStore = {
      ...pins,
      getMany: async (cids) => {
        read.pins += cids.length
        return pins.getMany(cids)
      },
    }
    return { read, ctx: { ...ctx, requests: countingRequests, pins: countingPins } }
  }

  /** `n` queued requests of one user, oldest first; the first `failed` of them failed. */
  async function backlog(user: string, n: number, failed = 0) {
    const made = []
    for (let i = 0; i < n; i++) {
      now += 1
      const c = newCid()
      made.push(await createPsaRequest({ user, pin: pin(c) }, ctx))
      if (i < failed) await pins.settle(key(c), undefined, { status: 'failed', error: 'E: x' }, now)
    }
    return made
  }

  it('reads at most its budget of a user with thousands of requests not yet pinned, and says more exist', async () => {
    const made = await backlog('alice', 2500, 1)
    const { read, ctx: counting } = counted()
    const page = await listPsaRequests(
      { user: 'alice', query: { limit: 10, statuses: ['queued', 'pinning'] } },
      counting,
    )
    expect(page.results.map((r) => r.request.requestid)).toEqual(
      made
        .slice(-10)
        .reverse()
        .map((m) => m.request.requestid),
    )
    // Not read to the end: not a count of 10 (that would say the page is all there is).
    expect(page.count).toBe(listBudget(10) + 1)
    expect(read.requests).toBeLessThanOrEqual(listBudget(10))
    expect(read.pins).toBeLessThanOrEqual(listBudget(10))
  })

  it('pages the way kubo does through more requests than one budget reads, each exactly once', async () => {
    const made = await backlog('alice', 2500)
    const seen: string[] = []
    let before: number | undefined
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(10)
      const { read, ctx: counting } = counted()
      const page = await listPsaRequests(
        { user: 'alice', query: { limit: 1000, statuses: ['queued'], ...(before ? { before } : {}) } },
        counting,
      )
      expect(read.requests).toBeLessThanOrEqual(listBudget(1000))
      seen.push(...page.results.map((r) => r.request.requestid))
      if (page.count === page.results.length) break
      before = page.results.at(-1)!.request.created
    }
    expect(seen).toEqual(made.reverse().map((m) => m.request.requestid))
  })

  it('answers a listing that found nothing within its budget with an error naming where to go on, never an empty page', async () => {
    const made = await backlog('alice', 1500, 1)
    const { read, ctx: counting } = counted()
    const sparse = await listPsaRequests(
      { user: 'alice', query: { limit: 10, statuses: ['failed'] } },
      counting,
    ).catch((err: unknown) => err)
    expect(sparse).toBeInstanceOf(ListingTooSparseError)
    expect(read.requests).toBeLessThanOrEqual(listBudget(10))
    const before = (sparse as ListingTooSparseError).continueBefore!
    expect((sparse as Error).message).toContain(`before=${new Date(before).toISOString()}`)
    const rest = await listPsaRequests(
      { user: 'alice', query: { limit: 10, statuses: ['failed'], before } },
      ctx,
    )
    expect(rest).toEqual({ count: 1, results: [expect.objectContaining({ status: 'failed' })] })
    expect(rest.results[0]!.request.requestid).toBe(made[0]!.request.requestid)
  })
})

describe('failed requests leave the listings of unfinished statuses', () => {
  /** The twin request store, counting the requests each scan answers. */
  function counted() {
    const read = { requests: 0 }
    const counting: RequestStore = {
      ...requests,
      scan: async (owner, filter, maxRead) => {
        const scanned = await requests.scan(owner, filter, maxRead)
        read.requests += scanned.requests.length
        return scanned
      },
    }
    return { read, ctx: { ...ctx, requests: counting } }
  }

  /** `queued` requests of alice, then `failed` newer ones whose content failed. */
  async function history(queued: number, failed: number) {
    const made = { queued: [] as PsaRequestView[], failed: [] as PsaRequestView[] }
    for (let i = 0; i < queued + failed; i++) {
      now += 1
      const c = newCid()
      const v = await createPsaRequest({ user: 'alice', pin: pin(c) }, ctx)
      if (i < queued) made.queued.push(v)
      else {
        await pins.settle(key(c), undefined, { status: 'failed', error: 'E: x' }, now)
        made.failed.push(v)
      }
    }
    return made
  }
  const ids = (vs: PsaRequestView[]) => vs.map((v) => v.request.requestid)
  const queuedOf = (query: Partial<PsaListQuery> = {}, c = ctx) =>
    listPsaRequests({ user: 'alice', query: { limit: 10, statuses: ['queued', 'pinning'], ...query } }, c)

  it('once a listing has seen them failed, so a user’s failures do not fill the budget of every listing', async () => {
    const made = await history(5, listBudget(10) + 200)
    // The first listing reads past the failures (none is known failed yet), and records what it saw.
    const first = await queuedOf().catch((err: unknown) => err)
    expect(first).toBeInstanceOf(ListingTooSparseError)
    const rest = await queuedOf({ before: (first as ListingTooSparseError).continueBefore! })
    expect(ids(rest.results)).toEqual(ids(made.queued).reverse())
    // Later listings read the pending requests only.
    const { read, ctx: counting } = counted()
    const again = await queuedOf({}, counting)
    expect(again.count).toBe(5)
    expect(ids(again.results)).toEqual(ids(made.queued).reverse())
    expect(read.requests).toBe(5)
    // Failed listings still find every one of them.
    const failed = await listPsaRequests(
      {
        user: 'alice',
        query: { limit: 1000, statuses: ['failed'], before: made.failed.at(-1)!.request.created + 1 },
      },
      ctx,
    )
    expect(failed.results[0]!.request.requestid).toBe(made.failed.at(-1)!.request.requestid)
    expect(failed.results.every((v) => v.status === 'failed')).toBe(true)
  })

  it('come back when their content is requested again, retried or redriven', async () => {
    const made = await history(1, 3)
    const [a, b, c] = made.failed.map((v) => v.request)
    expect((await queuedOf()).count).toBe(1) // records the three known failed
    for (const r of [a, b, c]) expect((await requests.get(r!.requestid))!.knownFailed).toBe(true)
    // Requested again by another user; retried by an operator; redriven from the failed-jobs queue.
    await createPsaRequest({ user: 'bob', pin: pin(a!.sourceCid) }, ctx)
    await retryPin(b!.cid, {}, { ...ctx, log: createTestLogger() })
    const deadLetters = createMemoryDeadLetterQueue()
    deadLetters.add(JSON.stringify({ cid: c!.cid, origins: [] }))
    await redriveDeadLetters({ hideSeconds: 0 }, { ...ctx, deadLetters, log: createTestLogger() })
    const listed = await queuedOf()
    expect(listed.count).toBe(4)
    expect(ids(listed.results)).toEqual([c, b, a, made.queued[0]!.request].map((r) => r!.requestid))
  })

  it('come back when read by requestid, if whatever queued their content again stopped before moving them', async () => {
    const made = await history(0, 1)
    const r = made.failed[0]!.request
    await queuedOf() // records it known failed
    expect((await requests.get(r.requestid))!.knownFailed).toBe(true)
    // Queued again by a write alone, as if its mover had died after it.
    const failed = (await pins.get(r.cid))!
    expect(await pins.settleIfUnchanged(r.cid, failed, { status: 'queued', error: 'E: x' }, now)).toBe(true)
    expect((await queuedOf()).count).toBe(0)
    expect((await getPsaRequest({ user: 'alice', requestid: r.requestid }, ctx)).status).toBe('queued')
    expect(ids((await queuedOf()).results)).toEqual([r.requestid])
  })

  it('come back when their content is queued again between the listing’s read of its pin and its write', async () => {
    const made = await history(0, 1)
    const r = made.failed[0]!.request
    // The listing reads the pin failed; then, before it records the request known failed, another user
    // requests the content again (which finds no request to move back yet).
    const racing: RequestStore = {
      ...requests,
      markKnownFailed: async (rs) => {
        await createPsaRequest({ user: 'bob', pin: pin(r.sourceCid) }, ctx)
        return requests.markKnownFailed(rs)
      },
    }
    expect(await queuedOf({}, { ...ctx, requests: racing })).toEqual({ count: 0, results: [] })
    expect((await pins.get(r.cid))!.status).toBe('queued')
    const listed = await queuedOf()
    expect(ids(listed.results)).toEqual([r.requestid])
  })
})

describe('create, replace, delete', () => {
  it('stores no request when the content cannot be queued', async () => {
    const failing = { ...ctx, queue: { send: async () => Promise.reject(new Error('queue down')) } }
    const c = newCid()
    await expect(createPsaRequest({ user: 'alice', pin: pin(c) }, failing)).rejects.toThrow('queue down')
    expect(await requests.count('psa:alice', {})).toBe(0)
    expect((await pins.get(key(c)))!.status).toBe('failed')
    // A retry queues it again.
    const again = await createPsaRequest({ user: 'alice', pin: pin(c) }, ctx)
    expect(again.status).toBe('queued')
    expect(queue.stats().visible).toBe(1)
  })

  it('lets exactly one of two concurrent replaces win', async () => {
    const old = await createPsaRequest({ user: 'alice', pin: pin(newCid()) }, ctx)
    const results = await Promise.allSettled([
      replacePsaRequest({ user: 'alice', requestid: old.request.requestid, pin: pin(newCid()) }, ctx),
      replacePsaRequest({ user: 'alice', requestid: old.request.requestid, pin: pin(newCid()) }, ctx),
    ])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const lost = results.find((r) => r.status === 'rejected')
    expect(lost?.status === 'rejected' && lost.reason).toBeInstanceOf(RequestNotFoundError)
    expect(await requests.count('psa:alice', {})).toBe(1)
  })

  it('never lets a user touch another user’s request', async () => {
    const mine = await createPsaRequest({ user: 'alice', pin: pin(newCid()) }, ctx)
    const id = mine.request.requestid
    await expect(getPsaRequest({ user: 'bob', requestid: id }, ctx)).rejects.toBeInstanceOf(
      RequestNotFoundError,
    )
    await expect(deletePsaRequest({ user: 'bob', requestid: id }, ctx)).rejects.toBeInstanceOf(
      RequestNotFoundError,
    )
    await expect(
      replacePsaRequest({ user: 'bob', requestid: id, pin: pin(newCid()) }, ctx),
    ).rejects.toBeInstanceOf(RequestNotFoundError)
    expect(await requests.get(id)).toBeDefined()
  })

  it('counts the cluster claim as wanting the content', async () => {
    const c = newCid()
    await requests.put({
      requestid: `cluster:${key(c)}`,
      owner: 'cluster',
      cid: key(c),
      sourceCid: c,
      meta: {},
      origins: [],
      created: now,
    })
    const mine = await createPsaRequest({ user: 'alice', pin: pin(c) }, ctx)
    await deletePsaRequest({ user: 'alice', requestid: mine.request.requestid }, ctx)
    expect((await pins.get(key(c)))!.unreferencedSince).toBeUndefined()
    await requests.delete(`cluster:${key(c)}`)
    expect(await releaseContent(key(c), ctx)).toBe(true)
    expect((await pins.get(key(c)))!.unreferencedSince).toBe(now)
  })
})

describe('sweepUnreferenced', () => {
  const DAY = 24 * 60 * 60 * 1000

  it('deletes CARs and records after the retention, keeps what is wanted again, waits for unsettled pins', async () => {
    const [gone, back, failed, busy] = [newCid(), newCid(), newCid(), newCid()]
    const made = []
    for (const c of [gone, back, failed, busy])
      made.push(await createPsaRequest({ user: 'alice', pin: pin(c) }, ctx))
    const car = await pinned(gone)
    await pinned(back)
    await pins.settle(key(failed), undefined, { status: 'failed', error: 'E: x' }, now)
    for (const m of made) await deletePsaRequest({ user: 'alice', requestid: m.request.requestid }, ctx)
    const log = createTestLogger()
    const sweepCtx = { pins, requests, destination, clock, log }

    now += DAY
    expect(await sweepUnreferenced(sweepCtx, { retentionMs: 7 * DAY, limit: 100 })).toMatchObject({
      examined: 0,
    })

    // Someone wants `back` again, but only its request exists (the mark is cleared by the sweep, not lost).
    await requests.put({ ...made[1]!.request, requestid: 'r-back', owner: 'psa:bob' })
    now += 7 * DAY
    const result = await sweepUnreferenced(sweepCtx, { retentionMs: 7 * DAY, limit: 100 })
    expect(result).toMatchObject({ examined: 4, deleted: 2, kept: 1, skipped: 1, bytesFreed: car.bytes })
    expect(await pins.get(key(gone))).toBeUndefined()
    expect(await destination.head(car.key)).toBeUndefined()
    expect(await pins.get(key(failed))).toBeUndefined()
    expect((await pins.get(key(back)))!.unreferencedSince).toBeUndefined()
    expect((await pins.get(key(busy)))!.status).toBe('queued')
  })
})
