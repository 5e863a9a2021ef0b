/**
 * Memory is bounded whatever the DAG's shape: a per-job budget of distinct blocks (link targets included)
 * bounds what the export and the validator hold, and a DAG over it fails at once, without retry, with a reason
 * naming the budget. The hostile shape: a few dag-cbor blocks of thousands of links each, which the walk would
 * otherwise queue in full before a single byte of theirs is counted against MAX_CAR_BYTES. Real DAGs and CARs;
 * the export through the in-memory block source, the fetch and the promotion through the ports' twins.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as raw from 'multiformats/codecs/raw'
import { describe, expect, it } from 'vitest'
import { createMemoryEventSink } from '../../adapters/memory/events.ts'
import { createMemoryObjectStore } from '../../adapters/memory/objects.ts'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import { DagTooLargeError } from '../../core/errors.ts'
import { exportCar } from '../../core/export-car.ts'
import { fetchPin } from '../../core/fetch-pin.ts'
import { tempCarKey } from '../../core/pin.ts'
import { promoteCar } from '../../core/promote-car.ts'
import { PERMANENT_CAR_FAULTS, validateCar } from '../../core/validate-car.ts'
import { type Block, block, carBytes, pseudoRandomBytes } from '../fixtures/dags.ts'
import { testFetchLimits } from '../helpers/fetch-limits.ts'
import { createTestLogger } from '../helpers/log.ts'
import { createMemoryBlockSource } from '../helpers/memory-block-source.ts'

/** A root linking `fanout` dag-cbor blocks, each linking `links` raw blocks nobody has. */
function wideDag(fanout: number, links: number) {
  const mids: Block[] = []
  for (let m = 0; m < fanout; m++) {
    const targets = Array.from(
      { length: links },
      (_, i) => block(raw.code, pseudoRandomBytes(8, `w${m}`, i)).cid,
    )
    mids.push(block(dagCbor.code, dagCbor.encode({ targets })))
  }
  const root = block(dagCbor.code, dagCbor.encode({ mids: mids.map((b) => b.cid) }))
  return { root: root.cid, blocks: [root, ...mids] }
}

/** A complete DAG of `n` blocks: a root and n - 1 raw leaves. */
function completeDag(n: number) {
  const leaves = Array.from({ length: n - 1 }, (_, i) => block(raw.code, pseudoRandomBytes(16, 'leaf', i)))
  const root = block(dagCbor.code, dagCbor.encode({ leaves: leaves.map((b) => b.cid) }))
  return { root: root.cid, blocks: [root, ...leaves] }
}

const limits = testFetchLimits({
  maxCarBytes: 64 * 1024 * 1024,
  fetchTimeoutMs: 30_000,
  fetchChunkTimeoutMs: 5_000,
  maxDagBlocks: 5_000,
})

describe('a budget of blocks per DAG', () => {
  it('a DAG within the budget whose links fill many pages of the export queue is exported whole', async () => {
    // Two levels of 4 x 2,500 leaves: ~10,000 CIDs wait in the queue at once (several 64 KiB pages).
    const leaves: Block[] = []
    const mids: Block[] = []
    for (let m = 0; m < 4; m++) {
      const own = Array.from({ length: 2_500 }, (_, i) => block(raw.code, pseudoRandomBytes(16, `p${m}`, i)))
      leaves.push(...own)
      mids.push(block(dagCbor.code, dagCbor.encode({ leaves: own.map((b) => b.cid) })))
    }
    const root = block(dagCbor.code, dagCbor.encode({ mids: mids.map((b) => b.cid) }))
    const blocks = [root, ...mids, ...leaves]
    const out: Uint8Array[] = []
    for await (const c of exportCar(root.cid, createMemoryBlockSource(blocks), {
      maxBytes: 1 << 24,
      maxBlocks: blocks.length,
    }))
      out.push(c)
    const verdict = await validateCar(
      (async function* () {
        yield* out
      })(),
      { root: root.cid, maxBlocks: blocks.length },
    )
    expect(verdict).toMatchObject({ valid: true, blocks: blocks.length })
  })

  it('the export refuses a DAG with more distinct blocks than its budget, before fetching them', async () => {
    // 4 blocks of 3,000 links: 12,005 blocks, over a budget of 5,000. None of the linked leaves exists.
    const dag = wideDag(4, 3_000)
    const ipfs = createMemoryBlockSource(dag.blocks)
    const run = async () => {
      for await (const _ of exportCar(dag.root, ipfs, {
        maxBytes: limits.maxCarBytes,
        maxBlocks: 5_000,
        concurrency: 4,
      }));
    }
    const err = await run().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(DagTooLargeError)
    expect(err).toMatchObject({ code: 'DAG_TOO_MANY_BLOCKS', retryable: false, maxBlocks: 5_000 })
    expect((err as Error).message).toMatch(/more than 5000 blocks/)
    // The root, the four link blocks and at most `concurrency` leaves: refused once the second link block's
    // links were decoded, not after fetching what the first one listed.
    expect(ipfs.gets).toBeLessThanOrEqual(1 + 4 + 4)
  })

  it('the fetch of such a DAG fails the pin at once, without retry, naming the budget', async () => {
    const dag = wideDag(4, 3_000)
    const pins = createMemoryPinStore()
    const temp = createMemoryObjectStore({ bucket: 'temp' })
    const cid = dag.root.toString()
    await pins.request(cid, [], Date.now())
    const out = await fetchPin({ cid, origins: [] }, limits, {
      pins,
      temp,
      ipfs: createMemoryBlockSource(dag.blocks),
      clock: { now: () => Date.now() },
      log: createTestLogger(),
      newId: () => 'att',
    })
    expect(out).toMatchObject({ kind: 'failed', code: 'DAG_TOO_MANY_BLOCKS', retryable: false })
    const pin = await pins.get(cid)
    expect(pin?.status).toBe('failed')
    expect(pin?.error).toMatch(/^DAG_TOO_MANY_BLOCKS: .*5000/)
  })

  it('a DAG of exactly the budget is exported and validated; one block more is refused by both', async () => {
    const fits = completeDag(200)
    const car = await carBytes(fits.root, fits.blocks)
    const once = async function* (bytes: Uint8Array) {
      yield bytes
    }
    expect(await validateCar(once(car), { root: fits.root, maxBlocks: 200 })).toMatchObject({
      valid: true,
      blocks: 200,
    })
    const exported: Uint8Array[] = []
    for await (const c of exportCar(fits.root, createMemoryBlockSource(fits.blocks), {
      maxBytes: 1 << 20,
      maxBlocks: 200,
    }))
      exported.push(c)

    const over = completeDag(201)
    const overCar = await carBytes(over.root, over.blocks)
    const verdict = await validateCar(once(overCar), { root: over.root, maxBlocks: 200 })
    expect(verdict).toMatchObject({ valid: false, code: 'DAG_TOO_MANY_BLOCKS' })
    expect(!verdict.valid && verdict.reason).toMatch(/more than 200 blocks/)
    await expect(
      (async () => {
        for await (const _ of exportCar(over.root, createMemoryBlockSource(over.blocks), {
          maxBytes: 1 << 20,
          maxBlocks: 200,
        }));
      })(),
    ).rejects.toBeInstanceOf(DagTooLargeError)
  })

  it('the validator refuses a CAR over the budget as permanent: its pin fails at once', async () => {
    const over = completeDag(50)
    const pins = createMemoryPinStore()
    const temp = createMemoryObjectStore({ bucket: 'temp' })
    const queue = createMemoryJobQueue()
    const cid = over.root.toString()
    await pins.request(cid, [], Date.now())
    await pins.claim(cid, 'att', Date.now() + 60_000, Date.now())
    await temp.put(
      tempCarKey(cid, 'att'),
      (async function* () {
        yield await carBytes(over.root, over.blocks)
      })(),
    )
    expect(PERMANENT_CAR_FAULTS.has('DAG_TOO_MANY_BLOCKS')).toBe(true)
    const out = await promoteCar(
      tempCarKey(cid, 'att'),
      {
        maxCarBytes: 1 << 20,
        maxDagBlocks: 40,
        maxAttempts: 3,
        retry: { baseDelaySeconds: 0, maxDelaySeconds: 0 },
      },
      {
        pins,
        temp,
        destination: createMemoryObjectStore({ bucket: 'cars' }),
        queue,
        events: createMemoryEventSink(),
        clock: { now: () => Date.now() },
        log: createTestLogger(),
      },
    )
    expect(out).toMatchObject({ kind: 'invalid', code: 'DAG_TOO_MANY_BLOCKS', retried: false })
    expect((await pins.get(cid))?.status).toBe('failed')
    expect(queue.stats()).toEqual({ visible: 0, invisible: 0 })
  })
})
