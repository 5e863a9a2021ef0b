/**
 * Archiving a collection against in-memory ports: the chain is the enumeration port's twin (a list of pages;
 * the EVM adapter itself is tested against anvil in test/adapters/evm-enumerate.test.ts), stored files the
 * content reader's twin (a map of root and path to bytes).
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryCollectionStore } from '../../../adapters/memory/collections.ts'
import { createMemoryPinStore, type MemoryPinStore } from '../../../adapters/memory/pins.ts'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../../adapters/memory/requests.ts'
import {
  addCollection,
  advanceCollection,
  type CollectionContext,
  type CollectionJobs,
  collectionSummary,
  enumerateCollection,
  getCollection,
  rememberBounded,
  removeCollection,
  type StoredContentReader,
  summarizeCollection,
} from '../../../core/collections/archive.ts'
import type { CollectionEnumerator, EnumerationPage } from '../../../core/collections/enumeration.ts'
import { collectionOwner, rootRequestId } from '../../../core/collections/model.ts'
import { CollectionNotFoundError, InvalidInputError } from '../../../core/errors.ts'
import { createPsaRequest } from '../../../core/psa-requests.ts'
import { rawBlock } from '../../fixtures/dags.ts'

let now = 1_700_000_000_000
const clock = { now: () => now }
let pins: MemoryPinStore
let queue: MemoryJobQueue
let ctx: CollectionContext
let sent: Array<{ collectionId: string; step: string }>
const jobs: CollectionJobs = { send: async (job) => void sent.push(job) }
const chains = new Set([1])

const cid = (seed: string) => rawBlock(8, seed).root.toString()
const ROOT = cid('metadata-dir')
const IMAGES = cid('image-dir')
const LOST = cid('nobody-serves-this')
const ADDRESS = '0x00000000000000000000000000000000000000AB'

const files = new Map<string, string>([
  [`${ROOT}/1`, JSON.stringify({ name: 'one', image: `ipfs://${IMAGES}/1.png` })],
  [`${ROOT}/2`, JSON.stringify({ name: 'two', image: `https://ipfs.io/ipfs/${IMAGES}/2.png` })],
  [`${ROOT}/3`, 'not json'],
])
const reader: StoredContentReader = {
  async readFile(pin, path) {
    const text = files.get(`${pin.cid}/${path}`)
    if (text === undefined) throw new InvalidInputError('PATH_NOT_FOUND', `no ${path} under ${pin.cid}`)
    return new TextEncoder().encode(text)
  },
}

const dataJson = `data:application/json;base64,${Buffer.from(
  JSON.stringify({ image: `ipfs://${IMAGES}/4.png`, animation_url: 'https://example.com/4.mp4' }),
).toString('base64')}`

const pages: EnumerationPage[] = [
  {
    standard: 'erc721',
    tokens: [
      { tokenId: '1', uri: `ipfs://${ROOT}/1` },
      { tokenId: '2', uri: `https://${ROOT}.ipfs.dweb.link/2` },
      { tokenId: '3', uri: `ipfs://ipfs/${ROOT}/3` },
    ],
    checkpoint: { standard: 'erc721', method: 'index', total: '6', next: '3' },
  },
  {
    standard: 'erc721',
    tokens: [
      { tokenId: '4', uri: dataJson },
      { tokenId: '5', uri: `ipfs://${LOST}` },
      { tokenId: '6', error: 'the URI call reverted: execution reverted' },
    ],
    checkpoint: { standard: 'erc721', method: 'index', total: '6', next: '6' },
  },
]
/** Resumes at the page after the checkpoint's. */
const enumerator: CollectionEnumerator = {
  async *enumerate({ checkpoint }) {
    const start = checkpoint?.method === 'index' ? Number(checkpoint.next) / 3 : 0
    yield* pages.slice(start)
  },
}

beforeEach(() => {
  pins = createMemoryPinStore()
  queue = createMemoryJobQueue({ clock })
  ctx = {
    collections: createMemoryCollectionStore(),
    requests: createMemoryRequestStore(),
    pins,
    queue,
    clock,
  }
  sent = []
})

async function pin(root: string) {
  await pins.markPinned(root, 'att', { cid: `bagcar-${root}`, bytes: 1, blocks: 1, key: `k/${root}` }, now)
}

describe('archiving a collection', () => {
  it('refuses bad input with a code, per field', async () => {
    const add = (input: object) =>
      addCollection({ user: 'alice', ...input } as never, { ...ctx, jobs, chains })
    await expect(add({ chainId: '1', address: ADDRESS })).rejects.toMatchObject({ code: 'INVALID_CHAIN_ID' })
    await expect(add({ chainId: 5, address: ADDRESS })).rejects.toMatchObject({ code: 'UNKNOWN_CHAIN' })
    await expect(add({ chainId: 1, address: '0x12' })).rejects.toMatchObject({ code: 'INVALID_ADDRESS' })
    await expect(add({ chainId: 1, address: ADDRESS, follow: 'yes' })).rejects.toMatchObject({
      code: 'INVALID_FOLLOW',
    })
    expect(sent).toEqual([])
  })

  it('enumerates, pins each shared root once, reads metadata from stored CARs, reports what failed, and is done', async () => {
    const { record, created } = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS, name: 'Test' },
      { ...ctx, jobs, chains },
    )
    expect(created).toBe(true)
    expect(record).toMatchObject({
      status: 'enumerating',
      address: ADDRESS.toLowerCase(),
      owner: 'psa:alice',
    })
    expect(sent).toEqual([{ collectionId: record.id, step: 'enumerate', id: record.jobId }])
    // The same collection again is the same record.
    const again = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS.toLowerCase() },
      { ...ctx, jobs, chains },
    )
    expect(again).toMatchObject({ created: false, record: { id: record.id } })

    // A run cut short after one page (a Lambda's time), then resumed from the checkpoint.
    expect(
      await enumerateCollection({ collectionId: record.id, maxPages: 1 }, { ...ctx, enumerator }),
    ).toEqual({
      finished: false,
      tokens: 3,
    })
    expect(await enumerateCollection({ collectionId: record.id }, { ...ctx, enumerator })).toEqual({
      finished: true,
      tokens: 3,
    })
    expect((await ctx.collections.get(record.id))?.status).toBe('archiving')

    // One request per distinct root (3 tokens share ROOT; IMAGES via token 4's on-chain JSON), owned by the
    // collection, and one job each.
    const owned = await ctx.requests.listByOwner(collectionOwner(record.id), { limit: 10 })
    expect(new Set(owned.requests.map((r) => r.cid))).toEqual(new Set([ROOT, IMAGES, LOST]))
    expect(owned.requests).toHaveLength(3)
    expect((await queue.receive({ max: 10, waitSeconds: 0 })).map((j) => j.job.cid).sort()).toEqual(
      [ROOT, IMAGES, LOST].sort(),
    )

    // Nothing stored yet: nothing to advance but token 4's web-hosted media, reported at once (this context
    // has no web import: test/core/collections/web.test.ts has).
    expect(await advanceCollection({ collectionId: record.id }, { ...ctx, reader })).toEqual({
      done: false,
      changed: 1,
    })

    // The metadata root is stored; the unreachable one failed after its stall timeout.
    now += 1000
    await pin(ROOT)
    await pins.settle(
      LOST,
      undefined,
      { status: 'failed', error: 'FETCH_STALLED: no data received for 500 ms' },
      now,
    )
    expect(await advanceCollection({ collectionId: record.id }, { ...ctx, reader })).toMatchObject({
      done: false,
    })
    const one = await ctx.collections.getToken(record.id, '1')
    expect(one?.metadata).toMatchObject({ status: 'archived', cid: ROOT, path: '1', cidSource: 'chain' })
    expect(one?.media).toEqual([
      {
        field: 'image',
        uri: `ipfs://${IMAGES}/1.png`,
        kind: 'ipfs',
        cid: IMAGES,
        path: '1.png',
        cidSource: 'chain',
        status: 'pending',
      },
    ])
    expect((await ctx.collections.getToken(record.id, '3'))?.metadata).toMatchObject({
      status: 'failed',
      error: 'INVALID_METADATA: not a JSON object',
    })
    expect((await ctx.collections.getToken(record.id, '5'))?.metadata).toMatchObject({
      status: 'failed',
      error: 'FETCH_STALLED: no data received for 500 ms',
    })

    await pin(IMAGES)
    expect(await advanceCollection({ collectionId: record.id }, { ...ctx, reader })).toMatchObject({
      done: true,
    })
    expect((await ctx.collections.get(record.id))?.status).toBe('done')
    // Still one request for the images root, however many tokens and fields name it.
    expect((await ctx.requests.listByOwner(collectionOwner(record.id), { limit: 10 })).requests).toHaveLength(
      3,
    )

    expect(await summarizeCollection(record.id, ctx)).toEqual({
      tokens: { total: 6, archived: 2, incomplete: 1, failed: 3 },
      cids: { total: 3, pinned: 2, queued: 0, pinning: 0, failed: 1 },
    })
    const four = await ctx.collections.getToken(record.id, '4')
    expect(four?.metadata).toMatchObject({ kind: 'data', status: 'archived' })
    expect(four?.media.map((m) => [m.field, m.status, m.error?.split(':')[0]])).toEqual([
      ['image', 'archived', undefined],
      ['animation_url', 'failed', 'WEB_CONTENT_NOT_ARCHIVED'],
    ])
    expect((await ctx.collections.getToken(record.id, '6'))?.metadata.error).toMatch(/^TOKEN_URI_UNREADABLE/)

    // Posting a finished collection again enumerates again, keeping what was found for known tokens.
    sent = []
    const restarted = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS },
      { ...ctx, jobs, chains },
    )
    expect(restarted.record.status).toBe('enumerating')
    expect(sent).toHaveLength(1)
    await enumerateCollection({ collectionId: record.id }, { ...ctx, enumerator })
    expect((await ctx.collections.getToken(record.id, '1'))?.metadata.status).toBe('archived')
  })

  it("deleting releases the collection's requests: content nobody else wants is marked unreferenced", async () => {
    const { record } = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS },
      { ...ctx, jobs, chains },
    )
    await enumerateCollection({ collectionId: record.id }, { ...ctx, enumerator })
    // Someone else wants the images too.
    await createPsaRequest({ user: 'bob', pin: { cid: IMAGES, origins: [], meta: {} } }, ctx)
    await expect(removeCollection({ user: 'bob', id: record.id }, ctx)).rejects.toBeInstanceOf(
      CollectionNotFoundError,
    )
    await removeCollection({ user: 'alice', id: record.id }, ctx)
    await expect(getCollection({ user: 'alice', id: record.id }, ctx)).rejects.toBeInstanceOf(
      CollectionNotFoundError,
    )
    expect(await ctx.requests.get(rootRequestId(record.id, ROOT))).toBeUndefined()
    expect((await pins.get(ROOT))?.unreferencedSince).toBeDefined()
    expect((await pins.get(LOST))?.unreferencedSince).toBeDefined()
    expect((await pins.get(IMAGES))?.unreferencedSince).toBeUndefined()
  })

  // A DELETE running to its end at a point of a step that had read the collection before: before the step
  // records its roots (the delete finds none, and deletes the record), or after, before it puts a request
  // (the delete lists the roots but finds no request yet).
  for (const at of ['putRoots', 'requests.put'] as const)
    it(`a delete racing enumeration (done before the step's ${at}) leaves no request behind`, async () => {
      const { record } = await addCollection(
        { user: 'alice', chainId: 1, address: ADDRESS },
        { ...ctx, jobs, chains },
      )
      const { collections, requests } = ctx
      let raced = false
      const race = async () => {
        if (raced) return
        raced = true
        await removeCollection({ user: 'alice', id: record.id }, ctx)
      }
      const stepCtx: CollectionContext = {
        ...ctx,
        collections: {
          ...collections,
          putRoots: async (id, roots) => {
            if (at === 'putRoots') await race()
            return collections.putRoots(id, roots)
          },
        },
        requests: {
          ...requests,
          put: async (r) => {
            if (at === 'requests.put') await race()
            return requests.put(r)
          },
        },
      }
      expect(await enumerateCollection({ collectionId: record.id }, { ...stepCtx, enumerator })).toEqual({
        finished: true,
        tokens: 0,
      })
      expect(raced).toBe(true)
      expect((await requests.listByOwner(collectionOwner(record.id), { limit: 10 })).requests).toEqual([])
      expect(await collections.get(record.id)).toBeUndefined()
      expect((await collections.listRoots(record.id, { limit: 10 })).roots).toEqual([])
      expect((await collections.listTokens(record.id, { limit: 10 })).tokens).toEqual([])
      // What the first page requested is released (nobody else wants it); the step stopped there.
      expect((await pins.get(ROOT))?.unreferencedSince).toBeDefined()
      expect(await pins.get(LOST)).toBeUndefined()
    })

  it('a delete racing an archiving pass: the media requests the pass makes are released too', async () => {
    const { record } = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS },
      { ...ctx, jobs, chains },
    )
    await enumerateCollection({ collectionId: record.id }, { ...ctx, enumerator })
    await pin(ROOT)
    const { requests } = ctx
    const stepCtx: CollectionContext = {
      ...ctx,
      requests: {
        ...requests,
        put: async (r) => {
          // The images root is requested by this pass (token 1's metadata names it): the delete runs first.
          await removeCollection({ user: 'alice', id: record.id }, ctx)
          return requests.put(r)
        },
      },
    }
    // IMAGES was requested for token 4's on-chain JSON already: a root no token names yet, for this pass.
    await requests.delete(rootRequestId(record.id, IMAGES))
    expect(await advanceCollection({ collectionId: record.id }, { ...stepCtx, reader })).toMatchObject({
      done: false,
    })
    expect((await requests.listByOwner(collectionOwner(record.id), { limit: 10 })).requests).toEqual([])
    expect(await ctx.collections.get(record.id)).toBeUndefined()
  })

  it('counts are stored by the steps and read from the record; a pass delivered twice at once counts right', async () => {
    const { record } = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS },
      { ...ctx, jobs, chains },
    )
    const none = await ctx.collections.get(record.id)
    if (!none) throw new Error('no record')
    expect(await collectionSummary(none, ctx)).toBeUndefined() // enumerating: not counted yet
    await enumerateCollection({ collectionId: record.id }, { ...ctx, enumerator })
    const counted = await ctx.collections.get(record.id)
    expect(counted?.summary).toEqual({
      asOf: now,
      tokens: { total: 6, archived: 0, incomplete: 5, failed: 1 },
      cids: { total: 3, pinned: 0, queued: 3, pinning: 0, failed: 0 },
    })
    now += 1000
    await pin(ROOT)
    await pin(IMAGES)
    await pins.settle(LOST, undefined, { status: 'failed', error: 'FETCH_STALLED: no data' }, now)
    // The same advance job twice at once (a redelivery while the first still runs).
    const [a, b] = await Promise.all([
      advanceCollection({ collectionId: record.id }, { ...ctx, reader }),
      advanceCollection({ collectionId: record.id }, { ...ctx, reader }),
    ])
    expect(a.done || b.done).toBe(true)
    const expected = {
      tokens: { total: 6, archived: 2, incomplete: 1, failed: 3 },
      cids: { total: 3, pinned: 2, queued: 0, pinning: 0, failed: 1 },
    }
    const stored = await ctx.collections.get(record.id)
    expect(stored?.summary).toEqual({ asOf: now, ...expected })
    const { summary: _, ...recordWithout } = stored ?? record
    // Read from the record: not one token read, however many there are.
    let tokenReads = 0
    const counting = {
      ...ctx,
      collections: {
        ...ctx.collections,
        listTokens: async (...args: Parameters<typeof ctx.collections.listTokens>) => {
          tokenReads++
          return ctx.collections.listTokens(...args)
        },
      },
    }
    expect(await collectionSummary(stored ?? record, counting)).toEqual({ asOf: now, ...expected })
    expect(tokenReads).toBe(0)
    // A finished collection stored before counts were kept is counted once, then read.
    expect(await collectionSummary(recordWithout, counting)).toEqual({ asOf: now, ...expected })
    expect(tokenReads).toBeGreaterThan(0)
  })

  it("memory: enumeration, an archiving pass and a recount read the store a page at a time, whatever the collection's size", async () => {
    // 600 tokens of on-chain metadata, each with an image under a root of its own: 600 roots.
    const images = Array.from({ length: 600 }, (_, i) => cid(`paged-image-${i}`))
    const onChain = (i: number) =>
      `data:application/json,${encodeURIComponent(JSON.stringify({ image: `ipfs://${images[i]}` }))}`
    const many: CollectionEnumerator = {
      async *enumerate() {
        for (let first = 0; first < 600; first += 100)
          yield {
            standard: 'erc721',
            tokens: images.slice(first, first + 100).map((_, k) => ({
              tokenId: String(first + k),
              uri: onChain(first + k),
            })),
            checkpoint: { standard: 'erc721', method: 'index', total: '600', next: String(first + 100) },
          }
      },
    }
    // Twins of the stores that record the most items any one read answered.
    const largest = { tokens: 0, roots: 0, pins: 0 }
    const store = ctx.collections
    const paged: CollectionContext = {
      ...ctx,
      collections: {
        ...store,
        async listTokens(id, opts) {
          const page = await store.listTokens(id, opts)
          largest.tokens = Math.max(largest.tokens, page.tokens.length)
          return page
        },
        async listRoots(id, opts) {
          const page = await store.listRoots(id, opts)
          largest.roots = Math.max(largest.roots, page.roots.length)
          return page
        },
      },
      pins: {
        ...pins,
        async getMany(cids) {
          largest.pins = Math.max(largest.pins, cids.length)
          return pins.getMany(cids)
        },
      },
    }
    const { record } = await addCollection(
      { user: 'carol', chainId: 1, address: ADDRESS },
      { ...paged, jobs, chains },
    )
    await enumerateCollection({ collectionId: record.id }, { ...paged, enumerator: many })
    for (const image of images.slice(0, 500)) await pin(image)
    expect(await advanceCollection({ collectionId: record.id }, { ...paged, reader })).toMatchObject({
      done: false,
    })
    expect(await summarizeCollection(record.id, paged)).toEqual({
      tokens: { total: 600, archived: 500, incomplete: 100, failed: 0 },
      cids: { total: 600, pinned: 500, queued: 100, pinning: 0, failed: 0 },
    })
    // Pages of 100 tokens in a pass, 500 in a recount; roots and their pins 100 at a time.
    expect(largest).toEqual({ tokens: 500, roots: 100, pins: 100 })
  })

  it('a pass remembers the outcomes of its most recent web URLs only: the oldest is forgotten past the bound, one met again counts as recent', () => {
    const seen = new Map<string, number>()
    for (const [i, url] of ['a', 'b', 'c'].entries()) rememberBounded(seen, url, i, 3)
    rememberBounded(seen, 'a', 9, 3) // met again: now the most recent
    rememberBounded(seen, 'd', 3, 3)
    expect([...seen]).toEqual([
      ['c', 2],
      ['a', 9],
      ['d', 3],
    ])
  })
})
