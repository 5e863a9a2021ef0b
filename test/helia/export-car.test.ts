/**
 * exportCar against real Helia nodes on 127.0.0.1 (an origin holding the DAG and a fetcher pulling it over
 * libp2p/bitswap), plus a few edge cases against an in-memory BlockSource where a network adds nothing.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { unixfs } from '@helia/unixfs'
import { CarBlockIterator } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { sha256 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHeliaBlockSource } from '../../adapters/helia/block-source.ts'
import { createHeliaNode, type HeliaNode } from '../../adapters/helia/node.ts'
import { CarTooLargeError, UnsupportedCodecError } from '../../core/errors.ts'
import { exportCar } from '../../core/export-car.ts'
import { blockKey } from '../../core/links.ts'
import type { BlockSource, Logger } from '../../core/ports.ts'
import { createTestLogger } from '../helpers/log.ts'

const silentLog: Logger = {
  info() {},
  warn() {},
  error() {},
  debug() {},
  child() {
    return silentLog
  },
}

const MiB = 1024 * 1024
/** Plain JSON: no links pickup could follow, so not supported. */
const JOSE_CODEC = 0x85 // dag-jose: pickup cannot follow its links
const NO_LIMIT = Number.MAX_SAFE_INTEGER

/** Every export gets a deadline, so that a broken fetch fails its test quickly instead of hanging it. */
function testSignal(): AbortSignal {
  return AbortSignal.timeout(10_000)
}

async function cidOf(code: number, bytes: Uint8Array): Promise<CID> {
  return CID.createV1(code, await sha256.digest(bytes))
}

/** Block keys as the origin's MemoryBlockstore knows them: by multihash (its `getAll` reports every CID as raw). */
function mhKey(cid: CID): string {
  return Buffer.from(cid.multihash.bytes).toString('base64')
}

interface ParsedCar {
  roots: CID[]
  blocks: Array<{ cid: CID; bytes: Uint8Array }>
}

async function parseCar(chunks: AsyncIterable<Uint8Array>): Promise<ParsedCar> {
  const iterator = await CarBlockIterator.fromIterable(chunks)
  const blocks: ParsedCar['blocks'] = []
  for await (const block of iterator) blocks.push(block)
  return { roots: await iterator.getRoots(), blocks }
}

async function collectChunks(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for await (const chunk of chunks) out.push(chunk)
  return out
}

/** Every block hashes to its CID and appears once, and the blocks are exactly `expected` (multihash keys). */
async function expectCarHolds(car: ParsedCar, expected: ReadonlySet<string>): Promise<void> {
  const keys = new Set<string>()
  for (const { cid, bytes } of car.blocks) {
    expect(cid.multihash.code).toBe(sha256.code)
    const digest = await sha256.digest(bytes)
    expect(Buffer.from(digest.digest).equals(Buffer.from(cid.multihash.digest))).toBe(true)
    const key = mhKey(cid)
    expect(keys.has(key), `block ${cid} written twice`).toBe(false)
    keys.add(key)
  }
  expect([...keys].sort()).toEqual([...expected].sort())
}

/** Wraps a source to count the gets started and settled. */
function countingSource(inner: BlockSource) {
  const counts = { started: 0, settled: 0 }
  const source: BlockSource = {
    connect: (addrs, opts) => inner.connect(addrs, opts),
    multiaddrs: () => inner.multiaddrs(),
    async get(cid, opts) {
      counts.started++
      try {
        return await inner.get(cid, opts)
      } finally {
        counts.settled++
      }
    },
  }
  return { source, counts }
}

interface Dag {
  /** A dag-cbor root linking to a multi-block UnixFS file, raw blocks, a dag-json block and inline CIDs. */
  root: CID
  /** The multihash keys of every block of the DAG. */
  keys: Set<string>
  bytes: number
}

describe('exportCar between two Helia nodes over loopback bitswap', () => {
  let origin: HeliaNode
  let fetcher: HeliaNode
  let source: BlockSource

  async function originKeys(): Promise<Map<string, number>> {
    const keys = new Map<string, number>()
    for await (const { cid, bytes } of origin.blockstore.getAll()) {
      let length = 0
      for await (const chunk of bytes) length += chunk.length
      keys.set(mhKey(cid), length)
    }
    return keys
  }

  async function put(code: number, bytes: Uint8Array): Promise<CID> {
    const cid = await cidOf(code, bytes)
    await origin.blockstore.put(cid, bytes)
    return cid
  }

  /**
   * A new DAG on the origin for each test: the fetcher drops the blocks it fetched, and a Helia origin will
   * not send the same block to the same peer again for 5 s (bitswap's doNotResendBlockWindow).
   */
  async function freshDag(): Promise<Dag> {
    const before = await originKeys()
    // A 3 MiB UnixFS file in 256 KiB chunks, at most 4 children per node: 12 leaves under 4 levels.
    const fileRoot = await unixfs(origin).addBytes(randomBytes(3 * MiB), {
      chunker: fixedSize({ chunkSize: 256 * 1024 }),
      layout: balanced({ maxChildrenPerNode: 4 }),
      rawLeaves: true,
      cidVersion: 1,
    })
    expect(fileRoot.code).toBe(dagPb.code)
    const raws = await Promise.all([1, 2, 3].map(() => put(raw.code, randomBytes(10_000))))
    const inlineLeaf = CID.createV1(raw.code, identity.digest(new TextEncoder().encode('inline')))
    const inlineWithLink = CID.createV1(dagCbor.code, identity.digest(dagCbor.encode({ hidden: raws[2] })))
    const json = await put(dagJson.code, dagJson.encode({ note: 'json', leaf: raws[0], file: fileRoot }))
    const root = await put(
      dagCbor.code,
      dagCbor.encode({
        file: fileRoot,
        // The same dag-pb block as CIDv0: written once.
        fileV0: fileRoot.toV0(),
        leaves: [raws[0], raws[1], raws[0]],
        json,
        inline: [inlineLeaf, inlineWithLink],
      }),
    )
    const keys = new Set<string>()
    let bytes = 0
    for (const [key, length] of await originKeys()) {
      if (before.has(key)) continue
      keys.add(key)
      bytes += length
    }
    return { root, keys, bytes }
  }

  beforeAll(async () => {
    const started = Date.now()
    ;[origin, fetcher] = await Promise.all([createHeliaNode(), createHeliaNode()])
    const startMs = Date.now() - started
    source = createHeliaBlockSource(fetcher, { log: silentLog })
    const connectStarted = Date.now()
    await source.connect(await createHeliaBlockSource(origin, { log: silentLog }).multiaddrs())
    console.info(`two Helia nodes started in ${startMs} ms, connected in ${Date.now() - connectStarted} ms`)
  })

  afterAll(async () => {
    const started = Date.now()
    await Promise.all([origin?.stop(), fetcher?.stop()])
    console.info(`two Helia nodes stopped in ${Date.now() - started} ms`)
  })

  it('streams the whole DAG once, every block verified, root as given', async () => {
    const dag = await freshDag()
    expect(dag.keys.size).toBeGreaterThan(18)
    const progress: Array<{ bytes: number; blocks: number }> = []
    const started = Date.now()
    const car = await parseCar(
      exportCar(dag.root, source, {
        maxBytes: NO_LIMIT,
        signal: testSignal(),
        onProgress: (p) => progress.push(p),
      }),
    )
    console.info(
      `exported ${car.blocks.length} blocks, ${(dag.bytes / MiB).toFixed(2)} MiB in ${Date.now() - started} ms`,
    )
    expect(car.roots.map(String)).toEqual([dag.root.toString()])
    await expectCarHolds(car, dag.keys)
    expect(progress.at(-1)?.blocks).toBe(dag.keys.size)
    expect(progress.at(-1)?.bytes).toBeGreaterThan(dag.bytes)
  })

  it('gives the same blocks with one get at a time', async () => {
    const dag = await freshDag()
    const car = await parseCar(
      exportCar(dag.root, source, { maxBytes: NO_LIMIT, concurrency: 1, signal: testSignal() }),
    )
    await expectCarHolds(car, dag.keys)
  })

  it('keeps no fetched block in the fetcher (its memory does not grow with the DAG)', async () => {
    const dag = await freshDag()
    await collectChunks(exportCar(dag.root, source, { maxBytes: NO_LIMIT, signal: testSignal() }))
    await sleep(50)
    let held = 0
    for await (const _ of fetcher.blockstore.getAll()) held++
    expect(held).toBe(0)
  })

  it('with retainBlocks a second export is served from the fetcher itself', async () => {
    const dag = await freshDag()
    const keeper = await createHeliaNode()
    try {
      const retaining = createHeliaBlockSource(keeper, { log: silentLog, retainBlocks: true })
      await retaining.connect(await createHeliaBlockSource(origin, { log: silentLog }).multiaddrs())
      await collectChunks(exportCar(dag.root, retaining, { maxBytes: NO_LIMIT, signal: testSignal() }))
      await keeper.libp2p.hangUp(origin.libp2p.peerId)
      expect(keeper.libp2p.getConnections()).toEqual([])
      const car = await parseCar(
        exportCar(dag.root, retaining, { maxBytes: NO_LIMIT, signal: AbortSignal.timeout(2_000) }),
      )
      await expectCarHolds(car, dag.keys)
    } finally {
      await keeper.stop()
    }
  })

  it('the CAR bytes add up to what onProgress says, two chunks per block', async () => {
    const dag = await freshDag()
    let last = { bytes: 0, blocks: 0 }
    const chunks = await collectChunks(
      exportCar(dag.root, source, {
        maxBytes: NO_LIMIT,
        signal: testSignal(),
        onProgress: (p) => {
          last = p
        },
      }),
    )
    expect(chunks.reduce((n, c) => n + c.length, 0)).toBe(last.bytes)
    expect(chunks.length).toBe(1 + 2 * dag.keys.size)
  })

  it('throws CarTooLargeError past maxBytes, before yielding the bytes over it', async () => {
    const dag = await freshDag()
    const maxBytes = 1 * MiB
    let yielded = 0
    const run = async () => {
      for await (const chunk of exportCar(dag.root, source, { maxBytes, signal: testSignal() }))
        yielded += chunk.length
    }
    await expect(run()).rejects.toBeInstanceOf(CarTooLargeError)
    expect(yielded).toBeLessThanOrEqual(maxBytes)
  })

  it('a header alone over maxBytes fails at once', async () => {
    const { source: counted, counts } = countingSource(source)
    const root = await put(raw.code, randomBytes(10))
    await expect(collectChunks(exportCar(root, counted, { maxBytes: 10 }))).rejects.toBeInstanceOf(
      CarTooLargeError,
    )
    expect(counts.started).toBe(0)
  })

  it('rejects promptly with the reason when aborted mid-way, and cancels the gets in flight', async () => {
    const dag = await freshDag()
    const { source: counted, counts } = countingSource(source)
    const controller = new AbortController()
    const reason = new Error('stop now')
    let blocks = 0
    const run = async () => {
      for await (const _ of exportCar(dag.root, counted, {
        maxBytes: NO_LIMIT,
        concurrency: 2,
        signal: AbortSignal.any([controller.signal, testSignal()]),
        onProgress: (p) => {
          blocks = p.blocks
        },
      })) {
        if (blocks === 3) controller.abort(reason)
      }
    }
    // Rejects with the reason (not once the walk ends: the gets in flight are cancelled).
    await expect(run()).rejects.toBe(reason)
    await sleep(50)
    expect(counts.settled).toBe(counts.started)
    expect(counts.started).toBeLessThan(dag.keys.size)
  })

  it('a block the origin lacks rejects once the signal times out, and promptly', async () => {
    const here = await put(raw.code, randomBytes(1000))
    const missing = await cidOf(raw.code, randomBytes(100))
    const root = await put(dagCbor.code, dagCbor.encode({ here, missing }))
    const { source: counted, counts } = countingSource(source)
    const started = Date.now()
    const chunks: Uint8Array[] = []
    const run = async () => {
      for await (const chunk of exportCar(root, counted, {
        maxBytes: NO_LIMIT,
        signal: AbortSignal.timeout(600),
      }))
        chunks.push(chunk)
    }
    const err = await run().catch((e: unknown) => e)
    const ms = Date.now() - started
    expect((err as Error).name).toBe('TimeoutError')
    expect(ms).toBeGreaterThanOrEqual(590)
    // The header, the root and the block the origin has arrived before the timeout.
    expect(chunks.length).toBe(5)
    await sleep(50)
    expect(counts.settled).toBe(counts.started)
  })

  it('a slow consumer holds back the fetching (gets started <= blocks consumed + concurrency)', async () => {
    const dag = await freshDag()
    const concurrency = 3
    const { source: counted, counts } = countingSource(source)
    let consumed = 0
    let worst = 0
    const iterator = exportCar(dag.root, counted, {
      maxBytes: NO_LIMIT,
      concurrency,
      signal: testSignal(),
      onProgress: (p) => {
        consumed = p.blocks
      },
    })[Symbol.asyncIterator]()
    for (;;) {
      const { done } = await iterator.next()
      if (done) break
      // Stall the consumer long enough for every fetch to complete if nothing held it back.
      if (consumed === 2 || consumed === 8) await sleep(150)
      worst = Math.max(worst, counts.started - consumed)
      expect(counts.started).toBeLessThanOrEqual(consumed + concurrency)
    }
    expect(consumed).toBe(dag.keys.size)
    expect(counts.started).toBe(dag.keys.size)
    expect(worst).toBe(concurrency)
  })

  it('stopping the iteration early cancels the gets in flight', async () => {
    const dag = await freshDag()
    const { source: counted, counts } = countingSource(source)
    let n = 0
    for await (const _ of exportCar(dag.root, counted, {
      maxBytes: NO_LIMIT,
      concurrency: 2,
      signal: testSignal(),
    })) {
      if (++n === 4) break
    }
    await sleep(100)
    expect(counts.settled).toBe(counts.started)
    expect(counts.started).toBeLessThan(dag.keys.size)
  })
})

/** A BlockSource over a map, with an optional hook run before each get. */
function memorySource(
  blocks: Map<string, Uint8Array>,
  hook?: (cid: CID, signal?: AbortSignal) => Promise<void>,
) {
  const requested: string[] = []
  const source: BlockSource = {
    async connect() {},
    async multiaddrs() {
      return []
    },
    async get(cid, opts) {
      requested.push(cid.toString())
      await hook?.(cid, opts?.signal)
      const bytes = blocks.get(blockKey(cid))
      if (!bytes) throw new Error(`no block ${cid}`)
      return bytes
    },
  }
  return { source, requested }
}

async function addTo(blocks: Map<string, Uint8Array>, code: number, bytes: Uint8Array): Promise<CID> {
  const cid = await cidOf(code, bytes)
  blocks.set(blockKey(cid), bytes)
  return cid
}

describe('exportCar edge cases (in-memory BlockSource)', () => {
  it('refuses a link with an unsupported codec without fetching it', async () => {
    const blocks = new Map<string, Uint8Array>()
    const odd = CID.createV1(JOSE_CODEC, await sha256.digest(new Uint8Array([1])))
    const root = await addTo(blocks, dagCbor.code, dagCbor.encode({ odd }))
    const { source, requested } = memorySource(blocks)
    await expect(collectChunks(exportCar(root, source, { maxBytes: NO_LIMIT }))).rejects.toBeInstanceOf(
      UnsupportedCodecError,
    )
    expect(requested).toEqual([root.toString()])
  })

  it('refuses a root with an unsupported codec before yielding anything', async () => {
    const root = CID.createV1(JOSE_CODEC, await sha256.digest(new Uint8Array([1])))
    const { source, requested } = memorySource(new Map())
    const chunks: Uint8Array[] = []
    const run = async () => {
      for await (const c of exportCar(root, source, { maxBytes: NO_LIMIT })) chunks.push(c)
    }
    await expect(run()).rejects.toBeInstanceOf(UnsupportedCodecError)
    expect(chunks).toEqual([])
    expect(requested).toEqual([])
  })

  it('keeps a CIDv0 root as given and writes a block linked as v0 and v1 once', async () => {
    const blocks = new Map<string, Uint8Array>()
    const leaf = await addTo(blocks, raw.code, new Uint8Array([1, 2, 3]))
    const inner = await addTo(
      blocks,
      dagPb.code,
      dagPb.encode({ Links: [{ Hash: leaf, Name: 'a', Tsize: 3 }] }),
    )
    const rootBytes = dagPb.encode({
      Links: [
        { Hash: inner.toV0(), Name: 'v0', Tsize: 10 },
        { Hash: inner, Name: 'v1', Tsize: 10 },
      ],
    })
    const rootV1 = await addTo(blocks, dagPb.code, rootBytes)
    const root = rootV1.toV0()
    const { source } = memorySource(blocks)
    const car = await parseCar(exportCar(root, source, { maxBytes: NO_LIMIT }))
    expect(car.roots[0]?.version).toBe(0)
    expect(car.roots[0]?.toString()).toBe(root.toString())
    await expectCarHolds(car, new Set([leaf, inner, rootV1].map(mhKey)))
  })

  it('an inline root is not written but its links are followed', async () => {
    const blocks = new Map<string, Uint8Array>()
    const leaf = await addTo(blocks, raw.code, new Uint8Array([9]))
    const root = CID.createV1(dagCbor.code, identity.digest(dagCbor.encode({ leaf })))
    const { source, requested } = memorySource(blocks)
    const car = await parseCar(exportCar(root, source, { maxBytes: NO_LIMIT }))
    expect(car.roots[0]?.equals(root)).toBe(true)
    expect(requested).toEqual([leaf.toString()])
    expect(car.blocks.map((b) => b.cid.toString())).toEqual([leaf.toString()])
  })

  it('the first get error wins and the other gets are cancelled', async () => {
    const blocks = new Map<string, Uint8Array>()
    const leaves = await Promise.all([1, 2, 3, 4, 5].map((i) => addTo(blocks, raw.code, new Uint8Array([i]))))
    const root = await addTo(blocks, dagCbor.code, dagCbor.encode({ leaves }))
    const first = new Error('first')
    const aborted: unknown[] = []
    const { source } = memorySource(blocks, async (cid, signal) => {
      if (cid.equals(leaves[1])) {
        await sleep(10)
        throw first
      }
      if (cid.equals(leaves[2])) {
        await sleep(30)
        throw new Error('second')
      }
      if (cid.equals(root)) return
      await new Promise<void>((_, reject) =>
        signal?.addEventListener('abort', () => {
          aborted.push(signal.reason)
          reject(signal.reason)
        }),
      )
    })
    await expect(collectChunks(exportCar(root, source, { maxBytes: NO_LIMIT }))).rejects.toBe(first)
    expect(aborted).toEqual([first, first, first])
  })

  it('an already aborted signal throws its reason before anything else', async () => {
    const reason = new Error('already')
    const { source, requested } = memorySource(new Map())
    const root = await cidOf(raw.code, new Uint8Array([1]))
    await expect(
      collectChunks(exportCar(root, source, { maxBytes: NO_LIMIT, signal: AbortSignal.abort(reason) })),
    ).rejects.toBe(reason)
    expect(requested).toEqual([])
  })
})

describe('the Helia adapters (node and BlockSource) on loopback', () => {
  it('verifies what bitswap brings, and stops cleanly', async () => {
    const [origin, fetcher] = await Promise.all([createHeliaNode(), createHeliaNode()])
    try {
      // Off the public network a node dials nobody by itself.
      await sleep(200)
      expect(fetcher.libp2p.getConnections()).toEqual([])
      expect(fetcher.libp2p.getDialQueue()).toEqual([])

      // The origin serves bytes that do not match the CID: the fetcher's Helia refuses them.
      const honest = randomBytes(1000)
      const cid = await cidOf(raw.code, honest)
      await origin.blockstore.put(cid, randomBytes(1000))
      const source = createHeliaBlockSource(fetcher, { log: silentLog })
      await source.connect(await createHeliaBlockSource(origin, { log: silentLog }).multiaddrs())
      expect(fetcher.libp2p.getConnections()).toHaveLength(1)
      await expect(source.get(cid, { signal: AbortSignal.timeout(500) })).rejects.toThrow()
      expect(await fetcher.blockstore.has(cid)).toBe(false)
    } finally {
      await Promise.all([origin.stop(), fetcher.stop()])
    }
  })

  it('allowPrivateDials: false refuses to dial loopback origins, without throwing', async () => {
    const [origin, guarded] = await Promise.all([
      createHeliaNode(),
      createHeliaNode({ allowPrivateDials: false }),
    ])
    try {
      const lines: Array<{ level: string; msg?: string; obj: object }> = []
      const source = createHeliaBlockSource(guarded, { log: createTestLogger(lines) })
      const addrs = await createHeliaBlockSource(origin, { log: silentLog }).multiaddrs()
      await source.connect(addrs)
      expect(guarded.libp2p.getConnections()).toEqual([])
      expect(lines.filter((l) => l.level === 'warn')).toHaveLength(addrs.length)
      expect(JSON.stringify(lines)).toMatch(/denyDialMultiaddr|gater/i)
    } finally {
      await Promise.all([origin.stop(), guarded.stop()])
    }
  })

  it('connect logs and survives addresses it cannot use', async () => {
    const node = await createHeliaNode()
    try {
      const lines: Array<{ level: string; msg?: string; obj: object }> = []
      const source = createHeliaBlockSource(node, { log: createTestLogger(lines), dialTimeoutMs: 500 })
      const unusable = [
        'not a multiaddr',
        `/ip4/127.0.0.1/tcp/1/p2p/${node.libp2p.peerId}`,
        '/ip4/127.0.0.1/tcp/1',
      ]
      await source.connect(unusable)
      // Each is given up for its own reason, at once: none waits for the dial timeout.
      const reasons = lines
        .filter((l) => l.level === 'warn')
        .map((l) => l.obj as { addr: string; err: string })
        .sort((a, b) => unusable.indexOf(a.addr) - unusable.indexOf(b.addr))
      expect(reasons).toEqual([
        { addr: unusable[0], ms: expect.any(Number), err: expect.stringMatching(/must start with/) },
        { addr: unusable[1], ms: expect.any(Number), err: expect.stringMatching(/dial self/i) },
        { addr: unusable[2], ms: expect.any(Number), err: expect.stringMatching(/ECONNREFUSED/) },
      ])
      for (const { err } of reasons) expect(err).not.toMatch(/abort|timeout|timed out/i)
      const addrs = await source.multiaddrs()
      expect(addrs.length).toBeGreaterThan(0)
      for (const addr of addrs)
        expect(addr).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${node.libp2p.peerId}$`))
    } finally {
      await node.stop()
    }
  })

  it('with a dataDir the key and the blocks persist, and large blocks read back whole', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'pickup-helia-'))
    try {
      const bytes = randomBytes(1 * MiB)
      const cid = await cidOf(raw.code, bytes)
      const first = await createHeliaNode({ dataDir })
      const peerId = first.libp2p.peerId.toString()
      await first.blockstore.put(cid, bytes)
      await first.stop()

      const second = await createHeliaNode({ dataDir })
      try {
        expect(second.libp2p.peerId.toString()).toBe(peerId)
        const source = createHeliaBlockSource(second, { log: silentLog })
        // blockstore-fs streams a block in 64 KiB chunks: the source returns it whole.
        expect(Buffer.from(await source.get(cid)).equals(bytes)).toBe(true)
        // A block the node already held is not dropped after a get.
        expect(await second.blockstore.has(cid)).toBe(true)
      } finally {
        await second.stop()
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
