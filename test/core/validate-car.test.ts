import * as dagPb from '@ipld/dag-pb'
import { importBytes } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { describe, expect, it, vi } from 'vitest'
import { CAR_CODEC } from '../../core/car-format.ts'
import {
  CAR_FAULT_CODES,
  type CarFaultCode,
  type CarVerdict,
  HASH_RING_SLOTS,
  HASH_WORKER_THRESHOLD,
  MAX_BLOCK_SIZE,
  type ValidateCarOptions,
  validateCar,
} from '../../core/validate-car.ts'
import {
  type BadCar,
  badCars,
  carSync,
  chunked,
  flippedByte,
  missingBlock,
  oversize,
  sectionOffset,
  trailingGarbage,
  truncatedMidBlock,
  unreachableBlock,
} from '../fixtures/cars.ts'
import {
  type Block,
  block,
  carBytes,
  carCidOf,
  carFromBlocks,
  collect,
  dagCborDag,
  inlineCid,
  pseudoRandomBytes,
  rawBlock,
  unixfsFile,
  unixfsFileBlocks,
} from '../fixtures/dags.ts'

const MiB = 1024 * 1024
const CHUNKINGS = [1, 7, MiB]

function validate(car: Uint8Array, chunk: number, opts: ValidateCarOptions): Promise<CarVerdict> {
  return validateCar(chunked(car, chunk), opts)
}

/** Verdicts with the CAR's CID as a string, for deep comparison. */
function plain(v: CarVerdict): unknown {
  return v.valid ? { ...v, carCid: v.carCid.toString() } : v
}

async function expectValid(
  car: Uint8Array,
  root: CID,
  blocks: number,
  opts: Partial<ValidateCarOptions> = {},
) {
  for (const size of CHUNKINGS) {
    const v = await validate(car, size, { root, ...opts })
    expect(plain(v), `in chunks of ${size}`).toEqual({
      valid: true,
      carCid: carCidOf(car).toString(),
      bytes: car.length,
      blocks,
    })
  }
}

describe('validateCar: valid CARs', () => {
  it('accepts a raw block', async () => {
    const { root, blocks } = rawBlock(1000, 'one')
    const car = await carBytes(root, blocks)
    await expectValid(car, root, 1)
  })

  it('accepts an empty raw block', async () => {
    const { root, blocks } = rawBlock(0)
    await expectValid(await carBytes(root, blocks), root, 1)
  })

  it('gives the CAR CID as CIDv1, codec car, sha2-256', async () => {
    const { root, blocks } = rawBlock(10)
    const car = await carBytes(root, blocks)
    const v = await validate(car, 1 << 20, { root })
    expect(v.valid).toBe(true)
    if (!v.valid) return
    expect(v.carCid.version).toBe(1)
    expect(v.carCid.code).toBe(CAR_CODEC)
    expect(v.carCid.multihash.code).toBe(0x12)
    expect(v.carCid.equals(carCidOf(car))).toBe(true)
  })

  it('accepts a multi-level UnixFS file with raw leaves', async () => {
    // 40 leaves, 4 links per node: 10 + 3 + 1 nodes, three levels above the leaves.
    const dag = await unixfsFile(40 * 1024, { chunkSize: 1024, maxChildren: 4, seed: 'small' })
    const car = await collect(carFromBlocks(dag.root, dag.blocks))
    await expectValid(car, dag.root, 54)
  })

  it('accepts a UnixFS file with dag-pb leaves and CIDv0, by its CIDv0 or its CIDv1', async () => {
    const dag = await unixfsFile(10 * 1000 + 17, {
      chunkSize: 1000,
      maxChildren: 3,
      rawLeaves: false,
      cidVersion: 0,
    })
    expect(dag.root.version).toBe(0)
    const car = await collect(carFromBlocks(dag.root, dag.blocks))
    // 11 leaves -> 4 -> 2 -> 1
    await expectValid(car, dag.root, 18)
    await expectValid(car, dag.root.toV1(), 18)
  })

  it('accepts a header naming the CIDv1 when the CIDv0 is expected', async () => {
    const dag = await unixfsFile(5000, { chunkSize: 1000, rawLeaves: false, cidVersion: 0 })
    const blocks: Block[] = []
    for await (const b of dag.blocks) blocks.push(b)
    await expectValid(carSync(dag.root.toV1(), blocks), dag.root, 6)
  })

  it('refuses a root of the same multihash but another codec', async () => {
    const dag = await unixfsFile(5000, { chunkSize: 1000, rawLeaves: false, cidVersion: 0 })
    const car = await collect(carFromBlocks(dag.root, dag.blocks))
    const asRaw = CID.createV1(raw.code, dag.root.multihash)
    const v = await validate(car, 1 << 20, { root: asRaw })
    expect(v).toMatchObject({ valid: false, code: 'CAR_ROOT_MISMATCH' })
  })

  it('accepts the dag-cbor DAG (dag-json, raw, sha2-512 and inline links)', async () => {
    const dag = dagCborDag()
    await expectValid(await carBytes(dag.root, dag.blocks), dag.root, 6)
  })

  it('accepts blocks in any order', async () => {
    const dag = dagCborDag()
    await expectValid(carSync(dag.root, [...dag.blocks].reverse()), dag.root, 6)
  })

  it('tolerates repeated blocks and counts them once', async () => {
    const dag = dagCborDag()
    const car = carSync(dag.root, [...dag.blocks, dag.blocks[1]!, dag.blocks[3]!, dag.blocks[0]!])
    await expectValid(car, dag.root, 6)
  })

  it('verifies every copy of a repeated block', async () => {
    const dag = dagCborDag()
    const leaf = dag.byName.leafRaw
    const bad = { cid: leaf.cid, bytes: leaf.bytes.slice() }
    bad.bytes[0]! ^= 1
    const car = carSync(dag.root, [...dag.blocks, bad])
    const v = await validate(car, 1 << 20, { root: dag.root })
    expect(v).toMatchObject({ valid: false, code: 'BLOCK_HASH_MISMATCH' })
  })

  it('accepts an inline root with no block at all', async () => {
    const root = inlineCid(raw.code, new TextEncoder().encode('tiny'))
    await expectValid(carSync(root, []), root, 0)
  })

  it('accepts an inline block written out as a block too, and verifies it', async () => {
    const dag = dagCborDag()
    const data = new TextEncoder().encode('inline')
    const inline = { cid: inlineCid(raw.code, data), bytes: data }
    await expectValid(carSync(dag.root, [...dag.blocks, inline]), dag.root, 7)
    const v = await validate(carSync(dag.root, [...dag.blocks, { ...inline, bytes: data.subarray(1) }]), 7, {
      root: dag.root,
    })
    expect(v).toMatchObject({ valid: false, code: 'BLOCK_HASH_MISMATCH' })
  })

  it('accepts a CAR of exactly maxBytes', async () => {
    const dag = dagCborDag()
    const car = carSync(dag.root, dag.blocks)
    await expectValid(car, dag.root, 6, { maxBytes: car.length })
  })

  it('hashes a CAR larger than the ring on the worker thread, whatever the chunking', async () => {
    // Past the ring, this thread cannot go on without the worker having claimed the ring and read from it.
    const size = (HASH_RING_SLOTS + 4) * MiB + 123
    const dag = await unixfsFile(size, { seed: 'worker' })
    const car = await collect(carFromBlocks(dag.root, dag.blocks))
    const expected = { valid: true, carCid: carCidOf(car).toString(), bytes: car.length, blocks: 82 }
    // The stream as the fixture makes it (header, frames and blocks of assorted sizes) and fixed chunkings.
    expect(plain(await validateCar(carFromBlocks(dag.root, dag.blocks), { root: dag.root }))).toEqual(
      expected,
    )
    for (const size of [4099, 65536, 1 << 20, 5 << 20]) {
      expect(plain(await validate(car, size, { root: dag.root })), `in chunks of ${size}`).toEqual(expected)
    }
  })

  it('hashes a CAR just past HASH_WORKER_THRESHOLD, whichever thread gets to it', async () => {
    for (const size of [HASH_WORKER_THRESHOLD + MiB, 2 * HASH_WORKER_THRESHOLD, HASH_RING_SLOTS * MiB]) {
      const dag = await unixfsFile(size, { seed: size })
      const car = await collect(carFromBlocks(dag.root, dag.blocks))
      const v = await validate(car, 65536, { root: dag.root })
      expect(v.valid && v.carCid.toString()).toBe(carCidOf(car).toString())
    }
  })

  it('finds a fault past the ring', async () => {
    const blocks: Block[] = []
    const gen = unixfsFileBlocks((HASH_RING_SLOTS + 2) * MiB, { seed: 'late fault' })
    let r = await gen.next()
    while (!r.done) {
      blocks.push(r.value)
      r = await gen.next()
    }
    const root = r.value
    const i = blocks.length - 3
    const bytes = blocks[i]!.bytes.slice()
    bytes[1000]! ^= 4
    blocks[i] = { cid: blocks[i]!.cid, bytes }
    const car = carSync(root, blocks)
    for (const size of [65536, 1 << 20]) {
      const v = await validate(car, size, { root })
      expect(v).toEqual({
        valid: false,
        code: 'BLOCK_HASH_MISMATCH',
        reason: expect.stringContaining(
          `block ${blocks[i]!.cid} at offset ${sectionOffset(root, blocks, i)}`,
        ),
        bytes: sectionOffset(root, blocks, i),
      })
    }
  })
})

describe('validateCar: invalid CARs', () => {
  const cases = badCars()

  it('covers every verdict code', () => {
    // Each code has a bad CAR here, but those a test of its own proves (named with where).
    const provedApart: Partial<Record<CarFaultCode, string>> = {
      DAG_TOO_MANY_BLOCKS: 'test/core/dag-budget.test.ts',
    }
    expect(new Set(cases.map((c) => c.code))).toEqual(new Set(CAR_FAULT_CODES.filter((c) => !provedApart[c])))
  })

  it.each(cases.map((c) => [c.name, c] as [string, BadCar]))(
    '%s: the same verdict in chunks of 1, 7 and 1 MiB',
    async (_name, c) => {
      const verdicts: CarVerdict[] = []
      for (const size of CHUNKINGS) {
        verdicts.push(await validate(c.car, size, { root: c.root, maxBytes: c.maxBytes }))
      }
      expect(verdicts[0]).toMatchObject({ valid: false, code: c.code })
      expect(verdicts[1]).toEqual(verdicts[0])
      expect(verdicts[2]).toEqual(verdicts[0])
      const v = verdicts[0]!
      if (!v.valid) {
        expect(v.reason.length).toBeGreaterThan(10)
        expect(v.bytes).toBeGreaterThanOrEqual(0)
      }
    },
  )

  it('names the block and offset of a hash mismatch', async () => {
    const dag = dagCborDag()
    const c = flippedByte()
    const at = sectionOffset(dag.root, dag.blocks, dag.blocks.indexOf(dag.byName.leafRaw))
    const v = await validate(c.car, 1 << 20, { root: c.root })
    expect(v).toEqual({
      valid: false,
      code: 'BLOCK_HASH_MISMATCH',
      reason: expect.stringContaining(`block ${dag.byName.leafRaw.cid} at offset ${at}`),
      bytes: at,
    })
  })

  it('names the missing block and counts them', async () => {
    const dag = dagCborDag()
    const v = await validate(missingBlock().car, 1 << 20, { root: dag.root })
    expect(v).toMatchObject({
      valid: false,
      code: 'DAG_INCOMPLETE',
      reason: expect.stringMatching(new RegExp(`${dag.byName.json.cid}.*1 linked block is missing`)),
    })
  })

  it('names the unreachable block', async () => {
    const c = unreachableBlock()
    const junk = block(raw.code, new TextEncoder().encode('junk'))
    const v = await validate(c.car, 1 << 20, { root: c.root })
    expect(v).toMatchObject({
      valid: false,
      code: 'CAR_UNREACHABLE_BLOCK',
      reason: expect.stringContaining(`block ${junk.cid} at offset ${c.car.length - 4 - 37}`),
      bytes: c.car.length,
    })
  })

  it('says where a truncated CAR ends', async () => {
    const c = truncatedMidBlock()
    const v = await validate(c.car, 7, { root: c.root })
    expect(v).toMatchObject({
      valid: false,
      code: 'CAR_TRUNCATED',
      reason: expect.stringContaining(`the CAR ends at offset ${c.car.length} inside block`),
      bytes: c.car.length,
    })
  })

  it('reports trailing garbage at its offset', async () => {
    const dag = dagCborDag()
    const v = await validate(trailingGarbage().car, 1, { root: dag.root })
    const at = carSync(dag.root, dag.blocks).length
    expect(v).toMatchObject({
      valid: false,
      code: 'CAR_BLOCK_INVALID',
      reason: expect.stringContaining(`offset ${at}`),
      bytes: at,
    })
  })

  it('stops reading at once past maxBytes', async () => {
    const c = oversize()
    let pulled = 0
    let released = false
    async function* body() {
      try {
        for (let off = 0; off < c.car.length; off += 16) {
          pulled += 16
          yield c.car.subarray(off, off + 16)
        }
        yield new Uint8Array(1 << 20)
      } finally {
        released = true
      }
    }
    const v = await validateCar(body(), { root: c.root, maxBytes: 64 })
    expect(v).toEqual({ valid: false, code: 'CAR_TOO_LARGE', reason: expect.any(String), bytes: 65 })
    expect(pulled).toBe(80)
    expect(released).toBe(true)
  })

  it('reports a fault before maxBytes rather than the size, whatever the chunking', async () => {
    const c = flippedByte()
    for (const size of CHUNKINGS) {
      const v = await validate(c.car, size, { root: c.root, maxBytes: c.car.length - 1 })
      expect(v).toMatchObject({ valid: false, code: 'BLOCK_HASH_MISMATCH' })
    }
  })

  it('refuses a section over MAX_BLOCK_SIZE before reading its data', async () => {
    const b = block(raw.code, new Uint8Array(MAX_BLOCK_SIZE + 1))
    const car = carSync(b.cid, [b])
    let pulled = 0
    async function* body() {
      for (let off = 0; off < car.length; off += 1024) {
        pulled += 1024
        yield car.subarray(off, off + 1024)
      }
    }
    const v = await validateCar(body(), { root: b.cid })
    expect(v).toMatchObject({ valid: false, code: 'CAR_BLOCK_INVALID', bytes: 59 })
    expect(pulled).toBe(1024)
  })

  it('releases the body when it stops early', async () => {
    const c = flippedByte()
    let released = false
    async function* body() {
      try {
        yield* chunked(c.car, 5)
        yield new Uint8Array(1000)
      } finally {
        released = true
      }
    }
    const v = await validateCar(body(), { root: c.root })
    expect(v).toMatchObject({ valid: false, code: 'BLOCK_HASH_MISMATCH' })
    expect(released).toBe(true)
  })
})

describe('validateCar: abort', () => {
  it('throws the reason of an already aborted signal without reading', async () => {
    const reason = new Error('stop now')
    let pulled = false
    async function* body() {
      pulled = true
      yield new Uint8Array(1)
    }
    const { root } = rawBlock(1)
    await expect(validateCar(body(), { root, signal: AbortSignal.abort(reason) })).rejects.toBe(reason)
    expect(pulled).toBe(false)
  })

  it('throws the reason when aborted while waiting for the body', async () => {
    const dag = dagCborDag()
    const car = carSync(dag.root, dag.blocks)
    const ac = new AbortController()
    let released = false
    async function* body() {
      try {
        yield car.subarray(0, 100)
        await new Promise((resolve) => setTimeout(resolve, 200))
        yield car.subarray(100)
      } finally {
        released = true
      }
    }
    setTimeout(() => ac.abort(new Error('aborted mid-stream')), 20)
    await expect(validateCar(body(), { root: dag.root, signal: ac.signal })).rejects.toThrow(
      'aborted mid-stream',
    )
    await vi.waitFor(() => expect(released).toBe(true))
  })

  it('throws the reason when aborted between chunks, past the worker threshold', async () => {
    const dag = await unixfsFile(HASH_WORKER_THRESHOLD + 2 * MiB, { seed: 'abort' })
    const ac = new AbortController()
    let bytes = 0
    async function* body() {
      for await (const c of carFromBlocks(dag.root, dag.blocks)) {
        bytes += c.length
        if (bytes > HASH_WORKER_THRESHOLD + MiB) ac.abort(new Error('enough'))
        yield c
      }
    }
    await expect(validateCar(body(), { root: dag.root, signal: ac.signal })).rejects.toThrow('enough')
  })
})

describe('fixtures', () => {
  it('unixfsFile makes the DAG ipfs-unixfs-importer makes (raw leaves, CIDv1)', async () => {
    const total = 50 * 1000 + 3
    const opts = { chunkSize: 1000, maxChildren: 5, seed: 7 }
    const dag = await unixfsFile(total, opts)
    const content = new Uint8Array(total)
    for (let i = 0; i * 1000 < total; i++)
      content.set(pseudoRandomBytes(Math.min(1000, total - i * 1000), 7, i), i * 1000)
    const stored = new Map<string, Uint8Array>()
    const result = await importBytes(
      content,
      {
        put: async (cid: CID, bytes: Uint8Array) => {
          stored.set(cid.toString(), bytes)
          return cid
        },
      },
      {
        cidVersion: 1,
        rawLeaves: true,
        chunker: fixedSize({ chunkSize: 1000 }),
        layout: balanced({ maxChildrenPerNode: 5 }),
      },
    )
    expect(dag.root.toString()).toBe(result.cid.toString())
    const ours = new Set<string>()
    for await (const b of dag.blocks) ours.add(b.cid.toString())
    expect(ours).toEqual(new Set(stored.keys()))
  })

  it('unixfsFile makes the DAG ipfs-unixfs-importer makes (dag-pb leaves, CIDv0)', async () => {
    const total = 7 * 512
    const dag = await unixfsFile(total, {
      chunkSize: 512,
      maxChildren: 2,
      rawLeaves: false,
      cidVersion: 0,
      seed: 3,
    })
    const content = new Uint8Array(total)
    for (let i = 0; i < 7; i++) content.set(pseudoRandomBytes(512, 3, i), i * 512)
    const result = await importBytes(
      content,
      { put: async (cid: CID) => cid },
      {
        cidVersion: 0,
        rawLeaves: false,
        chunker: fixedSize({ chunkSize: 512 }),
        layout: balanced({ maxChildrenPerNode: 2 }),
      },
    )
    expect(dag.root.toString()).toBe(result.cid.toString())
    expect(dag.root.code).toBe(dagPb.code)
  })

  it('unixfsFile re-generates the same blocks on each iteration', async () => {
    const dag = await unixfsFile(3000, { chunkSize: 1000, seed: 'again' })
    const a = await collect(carFromBlocks(dag.root, dag.blocks))
    const b = await collect(carFromBlocks(dag.root, dag.blocks))
    expect(Buffer.from(a).equals(b)).toBe(true)
  })
})
