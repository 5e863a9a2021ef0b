/**
 * Web-hosted token content through the pin protocol, over in-memory ports with the real importer (a local HTTP
 * server, local mode's setting) and the real validator (core/promote-car.ts): the pin is claimed like a
 * worker's, its CAR uploaded under `<cid>/<attempt>.car` and promoted; no job goes to the pin queue.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { unixfs } from '@helia/unixfs'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createMemoryCollectionStore } from '../../../adapters/memory/collections.ts'
import { createMemoryEventSink } from '../../../adapters/memory/events.ts'
import { createMemoryObjectStore } from '../../../adapters/memory/objects.ts'
import { createMemoryPinStore, type MemoryPinStore } from '../../../adapters/memory/pins.ts'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../../adapters/memory/requests.ts'
import { createStoredContentReader } from '../../../adapters/stored-content.ts'
import { createWebImporter } from '../../../adapters/web/importer.ts'
import {
  advanceCollection,
  type CollectionContext,
  removeCollection,
} from '../../../core/collections/archive.ts'
import { type CollectionRecord, collectionOwner } from '../../../core/collections/model.ts'
import {
  archiveWebContent,
  type WebArchiveContext,
  type WebArchivePorts,
} from '../../../core/collections/web.ts'
import type { ObjectStore } from '../../../core/ports.ts'
import { promoteCar } from '../../../core/promote-car.ts'
import { pseudoRandomBytes } from '../../fixtures/dags.ts'
import { createTestLogger } from '../../helpers/log.ts'

let server: Server
let flaky = 0
let base: string
const files = new Map<string, Uint8Array>()
const image = pseudoRandomBytes(1_300_000, 'web-core-image') // two 1 MiB chunks
files.set('/image.png', image)
files.set('/meta.json', new TextEncoder().encode(JSON.stringify({ name: 'w', image: '' })))

beforeAll(async () => {
  server = createServer((req, res) => {
    // `/down` always answers 503; `/flaky` the first time only.
    if (req.url === '/down' || (req.url === '/flaky' && flaky++ === 0)) {
      res.writeHead(503).end()
      return
    }
    const bytes = files.get(req.url === '/flaky' ? '/image.png' : (req.url ?? ''))
    if (bytes) res.writeHead(200).end(bytes)
    else res.writeHead(404).end()
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  files.set('/meta.json', new TextEncoder().encode(JSON.stringify({ name: 'w', image: `${base}/image.png` })))
})
afterAll(async () => {
  await new Promise((ok) => server.close(ok))
})

const now = 1_700_000_000_000
const clock = { now: () => now }
const log = createTestLogger()
let pins: MemoryPinStore
let queue: MemoryJobQueue
let temp: ObjectStore
let destination: ObjectStore
let ctx: CollectionContext
let web: WebArchivePorts
let ids = 0

const collection = (id: string): CollectionRecord => ({
  id,
  owner: 'psa:alice',
  chainId: 1,
  address: '0x00000000000000000000000000000000000000ab',
  follow: false,
  status: 'archiving',
  created: now,
  updated: now,
})

beforeEach(() => {
  pins = createMemoryPinStore()
  queue = createMemoryJobQueue({ clock })
  temp = createMemoryObjectStore({ bucket: 'temp' })
  destination = createMemoryObjectStore({ bucket: 'cars' })
  ctx = {
    collections: createMemoryCollectionStore(),
    requests: createMemoryRequestStore(),
    pins,
    queue,
    clock,
  }
  web = {
    importer: createWebImporter({ allowPrivate: true, timeoutMs: 5_000, maxRedirects: 2 }),
    temp,
    newId: () => `web${++ids}`,
    limits: {
      maxBytes: 4 * 1024 * 1024,
      maxCarBytes: 8 * 1024 * 1024,
      leaseMs: 60_000,
      validationLeaseMs: 600_000,
      partBytes: 5 * 1024 * 1024,
    },
    log,
  }
})

const webCtx = (): WebArchiveContext => ({ ...ctx, ...web })

async function tempKeys(): Promise<string[]> {
  const out: string[] = []
  for await (const o of temp.list()) out.push(o.key)
  return out
}

async function validate(key: string) {
  return promoteCar(
    key,
    { maxCarBytes: 8 * 1024 * 1024, maxAttempts: 3, retry: { baseDelaySeconds: 0, maxDelaySeconds: 0 } },
    { pins, temp, destination, queue, events: createMemoryEventSink(), clock, log },
  )
}

describe('archiving web content', () => {
  it('claims the pin as a worker does, uploads the CAR for the validator, which pins it; nothing is enqueued', async () => {
    const expected = (await unixfs({ blockstore: new MemoryBlockstore() }).addBytes(image)).toString()
    const c = collection('c1')
    const out = await archiveWebContent({ collection: c, url: `${base}/image.png` }, webCtx())
    expect(out).toEqual({ cid: expected, url: `${base}/image.png`, fetched: now, bytes: image.byteLength })
    expect(await pins.get(expected)).toMatchObject({ status: 'pinning', attempts: 1, attemptId: 'web1' })
    expect(await tempKeys()).toEqual([`${expected}/web1.car`])
    expect(await queue.receive({ max: 10, waitSeconds: 0 })).toEqual([])
    const [request] = (await ctx.requests.listByOwner(collectionOwner(c.id), { limit: 10 })).requests
    expect(request).toMatchObject({
      cid: expected,
      meta: expect.objectContaining({ url: `${base}/image.png` }),
    })

    expect(await validate(`${expected}/web1.car`)).toMatchObject({ kind: 'pinned' })
    const pin = await pins.get(expected)
    expect(pin?.status).toBe('pinned')
    // The stored CAR holds the file, every block verified on the way out.
    const reader = createStoredContentReader({ destination, maxCarBytes: 8 * 1024 * 1024 })
    expect(await reader.readFile(pin!, '', { maxBytes: 4 * 1024 * 1024 })).toEqual(image)

    // Another collection with the same file: its own request, the same pin, nothing uploaded again.
    const again = await archiveWebContent(
      { collection: collection('c2'), url: `${base}/image.png` },
      webCtx(),
    )
    expect(again.cid).toBe(expected)
    expect(await tempKeys()).toEqual([])
    expect((await ctx.requests.listByOwner(collectionOwner('c2'), { limit: 10 })).requests).toHaveLength(1)
  })

  it('leaves a pin another attempt is storing to that attempt', async () => {
    const cid = (await unixfs({ blockstore: new MemoryBlockstore() }).addBytes(image)).toString()
    await pins.request(cid, [], now)
    await pins.claim(cid, 'other', now + 60_000, now)
    await archiveWebContent({ collection: collection('c1'), url: `${base}/image.png` }, webCtx())
    expect(await pins.get(cid)).toMatchObject({ status: 'pinning', attemptId: 'other', attempts: 1 })
    expect(await tempKeys()).toEqual([])
  })

  it('fails the pin when the upload fails, and says why', async () => {
    const broken: ObjectStore = {
      ...temp,
      bucket: temp.bucket,
      put: async () => {
        throw new Error('S3 said no')
      },
    }
    await expect(
      archiveWebContent(
        { collection: collection('c1'), url: `${base}/image.png` },
        { ...webCtx(), temp: broken },
      ),
    ).rejects.toThrow('S3 said no')
    const cid = (await unixfs({ blockstore: new MemoryBlockstore() }).addBytes(image)).toString()
    expect(await pins.get(cid)).toMatchObject({ status: 'failed', error: 'INTERNAL: S3 said no' })
  })

  it('a transient failure is tried again on later passes, a lasting one reported after WEB_FETCH_ATTEMPTS', async () => {
    const c = collection('c1')
    await ctx.collections.create(c)
    const token = (tokenId: string, url: string) => ({
      collectionId: c.id,
      tokenId,
      metadata: { uri: 'data:application/json,{}', kind: 'data' as const, status: 'archived' as const },
      media: [{ field: 'image', uri: url, kind: 'web' as const, url, status: 'pending' as const }],
      updated: now,
    })
    await ctx.collections.putTokens([token('1', `${base}/flaky`), token('2', `${base}/down`)])
    const reader = createStoredContentReader({ destination, maxCarBytes: 8 * 1024 * 1024 })
    const advance = () => advanceCollection({ collectionId: c.id }, { ...ctx, reader, web })
    const media = async (id: string) => (await ctx.collections.getToken(c.id, id))?.media[0]

    await advance()
    for (const id of ['1', '2'])
      expect(await media(id)).toMatchObject({
        status: 'pending',
        attempts: 1,
        error: `WEB_HTTP_ERROR: HTTP 503 from ${base}`,
      })
    await advance()
    expect(await media('1')).toMatchObject({ status: 'pending', cidSource: 'pickup' })
    expect((await media('1'))?.error).toBeUndefined()
    expect(await media('2')).toMatchObject({ status: 'pending', attempts: 2 })
    for (const key of await tempKeys()) await validate(key)
    expect(await advance()).toEqual({ done: true, changed: 2 })
    expect(await media('1')).toMatchObject({ status: 'archived' })
    expect(await media('2')).toMatchObject({
      status: 'failed',
      attempts: 3,
      error: expect.stringMatching(/^WEB_HTTP_ERROR: HTTP 503 /),
    })
  })

  it('advancing a collection: web metadata read from its stored CAR, its web media imported; no import after the pass window', async () => {
    const c = collection('c1')
    await ctx.collections.create(c)
    await ctx.collections.putTokens([
      {
        collectionId: c.id,
        tokenId: '1',
        tokenURI: `${base}/meta.json`,
        metadata: { uri: `${base}/meta.json`, kind: 'web', url: `${base}/meta.json`, status: 'pending' },
        media: [],
        updated: now,
      },
    ])
    const reader = createStoredContentReader({ destination, maxCarBytes: 8 * 1024 * 1024 })
    const advance = (webUntil?: number) =>
      advanceCollection(
        { collectionId: c.id, ...(webUntil === undefined ? {} : { webUntil }) },
        { ...ctx, reader, web },
      )
    // The window has closed: nothing fetched, the token still pending.
    expect(await advance(now)).toEqual({ done: false, changed: 0 })
    expect(await advance()).toEqual({ done: false, changed: 1 })
    for (const key of await tempKeys()) await validate(key)
    expect(await advance()).toEqual({ done: false, changed: 1 }) // metadata read, its image imported
    for (const key of await tempKeys()) await validate(key)
    expect(await advance()).toEqual({ done: true, changed: 1 })
    const token = await ctx.collections.getToken(c.id, '1')
    expect(token?.metadata).toMatchObject({
      kind: 'web',
      cidSource: 'pickup',
      status: 'archived',
      fetched: now,
    })
    expect(token?.media).toEqual([
      expect.objectContaining({
        field: 'image',
        kind: 'web',
        cidSource: 'pickup',
        url: `${base}/image.png`,
        status: 'archived',
      }),
    ])
    expect(await queue.receive({ max: 10, waitSeconds: 0 })).toEqual([])
  })

  it('a delete racing a web import: the request the import makes after the roots were listed is released', async () => {
    const c = collection('c1')
    await ctx.collections.create(c)
    await ctx.collections.putTokens([
      {
        collectionId: c.id,
        tokenId: '1',
        metadata: { uri: 'data:application/json,{}', kind: 'data', status: 'archived' },
        media: [
          {
            field: 'image',
            uri: `${base}/image.png`,
            kind: 'web',
            url: `${base}/image.png`,
            status: 'pending',
          },
        ],
        updated: now,
      },
    ])
    const { requests } = ctx
    let raced = false
    const racing: CollectionContext = {
      ...ctx,
      requests: {
        ...requests,
        put: async (r) => {
          // The DELETE runs to its end after the import recorded the root, before its request is put.
          if (!raced) await removeCollection({ user: 'alice', id: c.id }, ctx)
          raced = true
          return requests.put(r)
        },
      },
    }
    const reader = createStoredContentReader({ destination, maxCarBytes: 8 * 1024 * 1024 })
    expect(await advanceCollection({ collectionId: c.id }, { ...racing, reader, web })).toMatchObject({
      done: false,
    })
    expect(raced).toBe(true)
    expect((await requests.listByOwner(collectionOwner(c.id), { limit: 10 })).requests).toEqual([])
    expect(await ctx.collections.get(c.id)).toBeUndefined()
    const cid = (await unixfs({ blockstore: new MemoryBlockstore() }).addBytes(image)).toString()
    expect((await pins.get(cid))?.unreferencedSince).toBeDefined()
  })
})
