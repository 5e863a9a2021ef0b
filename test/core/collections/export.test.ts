/**
 * Archive then export, over in-memory stores holding a real CAR (a UnixFS directory built by @helia/unixfs),
 * read back through the real stored-content reader into a real directory: the files equal the originals.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createDirectorySink } from '../../../adapters/export-dir.ts'
import { createMemoryCollectionStore } from '../../../adapters/memory/collections.ts'
import { createMemoryObjectStore } from '../../../adapters/memory/objects.ts'
import { createMemoryPinStore } from '../../../adapters/memory/pins.ts'
import { createMemoryJobQueue } from '../../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../../adapters/memory/requests.ts'
import { createStoredContentReader } from '../../../adapters/stored-content.ts'
import { addCollection, advanceCollection, enumerateCollection } from '../../../core/collections/archive.ts'
import { EXPORT_PAGE_TOKENS, exportCollection, type Manifest } from '../../../core/collections/export.ts'
import type { CollectionToken } from '../../../core/collections/model.ts'
import type { CollectionStore } from '../../../core/collections/ports.ts'
import { carBytes, pseudoRandomBytes, rawBlock, unixfsDirectory } from '../../fixtures/dags.ts'

let dir: string | undefined
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('export', () => {
  it("writes every archived token's files from the stored CARs, and a manifest with what failed and why", async () => {
    const image1 = pseudoRandomBytes(70_000, 'img1')
    const image2 = pseudoRandomBytes(5_000, 'img2')
    const { root, blocks } = await unixfsDirectory({
      'img/1.png': image1,
      'img/2.png': image2,
    })
    const rootKey = root.toV1().toString()
    const lost = rawBlock(8, 'export-lost').root.toString()
    // Token 1's metadata names its image by a path under the same root.
    const meta1 = JSON.stringify({ name: 'one', image: `ipfs://${rootKey}/img/1.png` })
    const { root: root2, blocks: blocks2 } = await unixfsDirectory({
      'meta/1.json': new TextEncoder().encode(meta1),
    })
    const metaRoot = root2.toV1().toString()
    const data2 = `data:application/json,${encodeURIComponent(JSON.stringify({ image: `ipfs://${rootKey}/img/2.png`, animation_url: `ipfs://${lost}` }))}`

    const pins = createMemoryPinStore()
    const destination = createMemoryObjectStore({ bucket: 'cars' })
    const ctx = {
      collections: createMemoryCollectionStore(),
      requests: createMemoryRequestStore(),
      pins,
      queue: createMemoryJobQueue(),
      clock: { now: () => 1_700_000_000_000 },
    }
    const reader = createStoredContentReader({ destination, maxCarBytes: 64 * 1024 * 1024 })
    const { record } = await addCollection(
      { user: 'alice', chainId: 1, address: `0x${'cd'.repeat(20)}`, name: 'Export' },
      { ...ctx, jobs: { send: async () => {} }, chains: new Set([1]) },
    )
    await enumerateCollection(
      { collectionId: record.id },
      {
        ...ctx,
        enumerator: {
          async *enumerate() {
            yield {
              standard: 'erc721',
              tokens: [
                { tokenId: '1', uri: `ipfs://${metaRoot}/meta/1.json` },
                { tokenId: '2', uri: data2 },
                { tokenId: '3', uri: 'ftp://example.com/3' },
              ],
              checkpoint: { standard: 'erc721', method: 'index', total: '3', next: '3' },
            }
          },
        },
      },
    )
    // The worker and validator's part: both roots stored as CARs; the unreachable one failed.
    for (const [cid, car] of [
      [metaRoot, await carBytes(root2, blocks2)],
      [rootKey, await carBytes(root, blocks)],
    ] as const) {
      const key = `car-${cid}/car-${cid}.car`
      await destination.put(
        key,
        (async function* () {
          yield car
        })(),
      )
      await pins.markPinned(cid, 'att', { cid: `car-${cid}`, bytes: car.length, blocks: 1, key }, 1)
    }
    await pins.settle(
      lost,
      undefined,
      { status: 'failed', error: 'FETCH_STALLED: no data received for 500 ms' },
      2,
    )
    await advanceCollection({ collectionId: record.id }, { ...ctx, reader })
    expect(await advanceCollection({ collectionId: record.id }, { ...ctx, reader })).toMatchObject({
      done: true,
    })

    dir = await mkdtemp(join(tmpdir(), 'pickup-export-'))
    const summary = await exportCollection(
      { collectionId: record.id },
      { ...ctx, reader, sink: createDirectorySink(dir) },
    )
    expect(summary).toMatchObject({ files: 4, tokens: 3, incomplete: 2 })
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest
    expect(await readFile(join(dir, '1/metadata.json'), 'utf8')).toBe(meta1)
    expect(new Uint8Array(await readFile(join(dir, '1/image.png')))).toEqual(image1)
    expect(new Uint8Array(await readFile(join(dir, '2/image.png')))).toEqual(image2)
    expect(JSON.parse(await readFile(join(dir, '2/metadata.json'), 'utf8'))).toMatchObject({
      animation_url: `ipfs://${lost}`,
    })
    expect(manifest.files).toBe(4)
    expect(manifest.tokens).toEqual([
      {
        tokenId: '1',
        tokenURI: `ipfs://${metaRoot}/meta/1.json`,
        metadata: expect.objectContaining({
          cid: metaRoot,
          path: 'meta/1.json',
          carCid: `car-${metaRoot}`,
          file: '1/metadata.json',
          status: 'archived',
          cidSource: 'chain',
        }),
        media: [
          expect.objectContaining({ field: 'image', cid: rootKey, path: 'img/1.png', file: '1/image.png' }),
        ],
      },
      {
        tokenId: '2',
        tokenURI: data2,
        metadata: expect.objectContaining({ file: '2/metadata.json', status: 'archived' }),
        media: [
          expect.objectContaining({ field: 'image', file: '2/image.png', carCid: `car-${rootKey}` }),
          expect.objectContaining({
            field: 'animation_url',
            status: 'failed',
            error: 'FETCH_STALLED: no data received for 500 ms',
          }),
        ],
      },
      {
        tokenId: '3',
        tokenURI: 'ftp://example.com/3',
        metadata: expect.objectContaining({
          status: 'failed',
          error: expect.stringMatching(/^UNSUPPORTED_URI/),
        }),
        media: [],
      },
    ])
    expect(manifest.collection).toEqual({
      id: record.id,
      chainId: 1,
      address: record.address,
      standard: 'erc721',
      name: 'Export',
    })
  })

  it('holds one page of tokens at a time: the store is read 100 tokens a page, the manifest appended page by page', async () => {
    const collections = createMemoryCollectionStore()
    const now = 1_700_000_000_000
    const { record } = await addCollection(
      { user: 'bob', chainId: 1, address: `0x${'ef'.repeat(20)}` },
      { collections, jobs: { send: async () => {} }, chains: new Set([1]), clock: { now: () => now } },
    )
    // 250 on-chain tokens (data: URIs, nothing to read from a CAR), one of them with an unsupported media URI.
    const tokens: CollectionToken[] = Array.from({ length: 250 }, (_, i) => {
      const json = { name: `t${i}`, ...(i === 7 ? { image: 'ftp://example.com/7.png' } : {}) }
      const uri = `data:application/json,${encodeURIComponent(JSON.stringify(json))}`
      return {
        collectionId: record.id,
        tokenId: String(i),
        tokenURI: uri,
        metadata: { uri, kind: 'data', status: 'archived' },
        media:
          i === 7
            ? [
                {
                  field: 'image',
                  uri: 'ftp://example.com/7.png',
                  kind: 'unsupported',
                  status: 'failed',
                  error: 'UNSUPPORTED_URI: ftp',
                },
              ]
            : [],
        updated: now,
      }
    })
    await collections.putTokens(tokens)
    // A store twin that records the most tokens any one read answered.
    let largestPage = 0
    const counting: CollectionStore = {
      ...collections,
      async listTokens(id, opts) {
        const page = await collections.listTokens(id, opts)
        largestPage = Math.max(largestPage, page.tokens.length)
        return page
      },
    }
    const files = new Map<string, string>()
    let manifestWrites = 0
    const progress: number[] = []
    const summary = await exportCollection(
      { collectionId: record.id, onToken: (n) => progress.push(n) },
      {
        collections: counting,
        pins: createMemoryPinStore(),
        reader: createStoredContentReader({
          destination: createMemoryObjectStore({ bucket: 'cars' }),
          maxCarBytes: 1,
        }),
        sink: {
          async write(path, bytes) {
            if (path === 'manifest.json') manifestWrites++
            files.set(path, new TextDecoder().decode(bytes))
          },
          async append(path, bytes) {
            if (path === 'manifest.json') manifestWrites++
            files.set(path, (files.get(path) ?? '') + new TextDecoder().decode(bytes))
          },
        },
      },
    )
    expect(summary).toMatchObject({ files: 250, tokens: 250, incomplete: 1 })
    expect(largestPage).toBe(EXPORT_PAGE_TOKENS)
    // The opening, three pages of entries, the closing.
    expect(manifestWrites).toBe(5)
    expect(progress).toEqual(Array.from({ length: 250 }, (_, i) => i + 1))
    const manifest = JSON.parse(files.get('manifest.json') ?? '') as Manifest
    expect(manifest.files).toBe(250)
    expect(manifest.tokens.map((t) => t.tokenId)).toEqual(tokens.map((t) => t.tokenId))
    expect(manifest.tokens[7]?.media).toEqual([
      expect.objectContaining({ field: 'image', status: 'failed', error: 'UNSUPPORTED_URI: ftp' }),
    ])
    expect(files.get('7/metadata.json')).toBe(
      JSON.stringify({ name: 't7', image: 'ftp://example.com/7.png' }),
    )
  })

  it('writes a well-formed manifest for a collection without tokens', async () => {
    const collections = createMemoryCollectionStore()
    const { record } = await addCollection(
      { user: 'bob', chainId: 1, address: `0x${'ab'.repeat(20)}` },
      { collections, jobs: { send: async () => {} }, chains: new Set([1]), clock: { now: () => 1 } },
    )
    let text = ''
    const summary = await exportCollection(
      { collectionId: record.id },
      {
        collections,
        pins: createMemoryPinStore(),
        reader: createStoredContentReader({
          destination: createMemoryObjectStore({ bucket: 'cars' }),
          maxCarBytes: 1,
        }),
        sink: {
          async write(_path, bytes) {
            text = new TextDecoder().decode(bytes)
          },
          async append(_path, bytes) {
            text += new TextDecoder().decode(bytes)
          },
        },
      },
    )
    expect(summary).toMatchObject({ files: 0, tokens: 0, incomplete: 0 })
    expect(JSON.parse(text)).toEqual({
      collection: expect.objectContaining({ id: record.id }),
      tokens: [],
      files: 0,
    })
  })
})
