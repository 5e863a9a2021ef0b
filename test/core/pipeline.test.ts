/**
 * The pin pipeline's core against in-memory ports: request, fetch, validate and promote, with the failure
 * paths. The same functions run against the AWS adapters in the end-to-end suite.
 */
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryDeadLetterQueue, createMemoryFailedJobs } from '../../adapters/memory/dead-letters.ts'
import { createMemoryEventSink, type MemoryEventSink } from '../../adapters/memory/events.ts'
import { createMemoryObjectStore } from '../../adapters/memory/objects.ts'
import { createMemoryPinStore, type MemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import { contentKey } from '../../core/cid.ts'
import { failDeadLetter } from '../../core/dead-letter.ts'
import { fetchPin } from '../../core/fetch-pin.ts'
import { tempCarKey } from '../../core/pin.ts'
import type { BlockSource, ObjectStore } from '../../core/ports.ts'
import { promoteCar } from '../../core/promote-car.ts'
import { requestPin } from '../../core/request-pin.ts'
import { sweepUnreferenced } from '../../core/unreferenced-content.ts'
import { validateCar } from '../../core/validate-car.ts'
import { carBytes, collect, dagCborDag, rawBlock } from '../fixtures/dags.ts'
import { testFetchLimits } from '../helpers/fetch-limits.ts'
import { createTestLogger } from '../helpers/log.ts'
import { createMemoryBlockSource } from '../helpers/memory-block-source.ts'

const limits = testFetchLimits({ fetchChunkTimeoutMs: 200 })

let pins: MemoryPinStore
let queue: MemoryJobQueue
let temp: ObjectStore
let destination: ObjectStore
let events: MemoryEventSink
const clock = { now: () => Date.now() }
const log = createTestLogger()
let ids = 0
const newId = () => `attempt${++ids}`

beforeEach(() => {
  pins = createMemoryPinStore()
  queue = createMemoryJobQueue()
  temp = createMemoryObjectStore({ bucket: 'temp' })
  destination = createMemoryObjectStore({ bucket: 'cars' })
  events = createMemoryEventSink()
})

async function keys(store: ObjectStore): Promise<string[]> {
  const out: string[] = []
  for await (const o of store.list()) out.push(o.key)
  return out
}

async function* chunks(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes
}

const promoteOpts = {
  maxCarBytes: limits.maxCarBytes,
  maxAttempts: 3,
  retry: { baseDelaySeconds: 0, maxDelaySeconds: 0 },
}
const promoteCtx = () => ({ pins, temp, destination, queue, events, clock, log })
const fetchCtx = (ipfs: BlockSource) => ({ pins, temp, ipfs, clock, log, newId })

describe('requestPin', () => {
  it('queues new content once, and CIDv0 and CIDv1 of it are one pin', async () => {
    const v0 = 'QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n'
    const v1 = CID.parse(v0).toV1().toString()
    const first = await requestPin(
      { cid: v0, origins: ['/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWA'] },
      { pins, queue, clock, requests: createMemoryRequestStore() },
    )
    const second = await requestPin(
      { cid: v1, origins: [] },
      { pins, queue, clock, requests: createMemoryRequestStore() },
    )
    expect(first.cid).toBe(v1)
    expect(second.cid).toBe(v1)
    expect(second.status).toBe('queued')
    const received = await queue.receive({ max: 10, waitSeconds: 0 })
    expect(received.map((r) => r.job)).toEqual([
      { cid: v1, origins: ['/ip4/1.2.3.4/tcp/4001/p2p/12D3KooWA'] },
    ])
  })

  it('re-queues failed content', async () => {
    const { root } = rawBlock(10)
    const cid = contentKey(root)
    await requestPin({ cid, origins: [] }, { pins, queue, clock, requests: createMemoryRequestStore() })
    await pins.settle(cid, undefined, { status: 'failed', error: 'X: y' }, clock.now())
    const again = await requestPin(
      { cid, origins: [] },
      { pins, queue, clock, requests: createMemoryRequestStore() },
    )
    expect(again.status).toBe('queued')
    expect(await queue.receive({ max: 10, waitSeconds: 0 })).toHaveLength(2)
  })

  it('rejects an invalid CID without storing or enqueueing anything', async () => {
    await expect(
      requestPin(
        { cid: 'not-a-cid', origins: [] },
        { pins, queue, clock, requests: createMemoryRequestStore() },
      ),
    ).rejects.toThrow(/not a valid CID/)
    expect(pins.all()).toEqual([])
    expect(queue.stats()).toEqual({ visible: 0, invisible: 0 })
  })
})

describe('fetch then promote', () => {
  it('stores a dag-cbor DAG as a verified CAR and pins it', async () => {
    const dag = dagCborDag()
    const cid = contentKey(dag.root)
    const ipfs = createMemoryBlockSource(dag.blocks)
    await requestPin(
      { cid, origins: ['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWA'] },
      { pins, queue, clock, requests: createMemoryRequestStore() },
    )

    const outcome = await fetchPin(
      { cid, origins: ['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWA'] },
      limits,
      fetchCtx(ipfs),
    )
    expect(outcome.kind).toBe('uploaded')
    expect(ipfs.connected).toEqual([['/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWA']])
    expect((await pins.get(cid))?.status).toBe('pinning')
    const [key] = await keys(temp)
    expect(key).toBe(tempCarKey(cid, outcome.kind === 'uploaded' ? outcome.attemptId : ''))

    const promoted = await promoteCar(key!, promoteOpts, promoteCtx())
    expect(promoted.kind).toBe('pinned')
    const pin = await pins.get(cid)
    expect(pin?.status).toBe('pinned')
    expect(pin?.car?.blocks).toBe(dag.blocks.length)
    expect(await keys(temp)).toEqual([])
    expect(await keys(destination)).toEqual([pin?.car?.key])
    expect(events.events.map((e) => e.cid)).toEqual([cid])

    // The stored CAR verifies on its own and its CAR CID is what the pin says.
    const stored = await destination.get(pin!.car!.key)
    const verdict = await validateCar(stored!.body, { root: dag.root })
    expect(verdict.valid && verdict.carCid.toString()).toBe(pin?.car?.cid)
  })

  it('a duplicate S3 event for a promoted CAR changes nothing', async () => {
    const dag = rawBlock(1000)
    const cid = contentKey(dag.root)
    await pins.request(cid, [], clock.now())
    const ipfs = createMemoryBlockSource(dag.blocks)
    const out = await fetchPin({ cid, origins: [] }, limits, fetchCtx(ipfs))
    const key = out.kind === 'uploaded' ? out.key : ''
    expect((await promoteCar(key, promoteOpts, promoteCtx())).kind).toBe('pinned')
    expect(await promoteCar(key, promoteOpts, promoteCtx())).toEqual({
      kind: 'ignored',
      why: 'object already handled',
    })
    expect(await keys(destination)).toHaveLength(1)
    expect(events.events).toHaveLength(1)
  })

  it('a second attempt for pinned content is acknowledged without fetching', async () => {
    const dag = rawBlock(1000)
    const cid = contentKey(dag.root)
    await pins.request(cid, [], clock.now())
    const ipfs = createMemoryBlockSource(dag.blocks)
    const out = await fetchPin({ cid, origins: [] }, limits, fetchCtx(ipfs))
    await promoteCar(out.kind === 'uploaded' ? out.key : '', promoteOpts, promoteCtx())
    const gets = ipfs.gets
    expect(await fetchPin({ cid, origins: [] }, limits, fetchCtx(ipfs))).toEqual({
      kind: 'already-pinned',
    })
    expect(ipfs.gets).toBe(gets)
  })

  it('a job for content without a pin record (nobody asked for it) is dropped without fetching', async () => {
    const dag = rawBlock(100, 'nobody')
    const ipfs = createMemoryBlockSource(dag.blocks)
    expect(await fetchPin({ cid: contentKey(dag.root), origins: [] }, limits, fetchCtx(ipfs))).toEqual({
      kind: 'unwanted',
    })
    expect(ipfs.gets).toBe(0)
    expect(pins.all()).toEqual([])
  })

  it('a job for a pin another attempt holds is busy until that lease runs out', async () => {
    const dag = rawBlock(1000, 'held')
    const cid = contentKey(dag.root)
    const ipfs = createMemoryBlockSource(dag.blocks)
    const lease = clock.now() + 60_000
    await pins.request(cid, [], clock.now())
    await pins.claim(cid, 'other', lease, clock.now())
    expect(await fetchPin({ cid, origins: [] }, limits, fetchCtx(ipfs))).toEqual({
      kind: 'busy',
      attemptId: 'other',
      leaseExpires: lease,
    })
    expect(ipfs.gets).toBe(0)
  })

  it('two CARs for the same content: the second is discarded, one copy stays', async () => {
    const dag = dagCborDag()
    const cid = contentKey(dag.root)
    await pins.request(cid, [], clock.now())
    const ipfs = createMemoryBlockSource(dag.blocks)
    const a = await fetchPin({ cid, origins: [] }, limits, fetchCtx(ipfs))
    // A second worker got a duplicate delivery after the first one's lease ran out.
    const car = await carBytes(dag.root, [...dag.blocks].reverse())
    await temp.put(tempCarKey(cid, 'late'), chunks(car))
    await promoteCar(a.kind === 'uploaded' ? a.key : '', promoteOpts, promoteCtx())
    expect((await promoteCar(tempCarKey(cid, 'late'), promoteOpts, promoteCtx())).kind).toBe('duplicate')
    expect(await keys(destination)).toHaveLength(1)
    expect(await keys(temp)).toEqual([])
  })

  it('a CAR validated while its pin was swept is not promoted and does not bring the record back', async () => {
    const dag = rawBlock(1000, 'swept meanwhile')
    const cid = contentKey(dag.root)
    const requests = { forContent: async () => [] }
    await pins.request(cid, [], clock.now())
    await pins.claim(cid, 'late', clock.now() + 60_000, clock.now())
    // The attempt's CAR is in the temporary bucket when the pin is given up on and its last request deleted.
    await temp.put(tempCarKey(cid, 'late'), chunks(await carBytes(dag.root, dag.blocks)))
    await pins.settle(cid, 'late', { status: 'failed', error: 'FETCH_TIMEOUT: gave up' }, clock.now())
    await pins.markUnreferenced(cid, clock.now() - 10)
    // The sweep runs while the validator is verifying that CAR: it deletes the record just before the copy.
    const racingTemp: ObjectStore = {
      ...temp,
      copyTo: async (...args) => {
        const swept = await sweepUnreferenced(
          { pins, requests, destination, clock, log },
          { retentionMs: 0, limit: 10 },
        )
        expect(swept.deleted).toBe(1)
        return temp.copyTo(...args)
      },
    }
    const out = await promoteCar(tempCarKey(cid, 'late'), promoteOpts, { ...promoteCtx(), temp: racingTemp })
    expect(out).toEqual({ kind: 'ignored', why: 'no pin record' })
    expect(await pins.get(cid)).toBeUndefined()
    expect(await keys(destination)).toEqual([])
    expect(await keys(temp)).toEqual([])
    expect(events.events).toEqual([])
  })

  it('a CAR replaced in the temporary bucket after it was verified is not promoted: only verified bytes are', async () => {
    const dag = rawBlock(1000, 'replaced')
    const cid = contentKey(dag.root)
    await pins.request(cid, [], clock.now())
    await pins.claim(cid, 'att', clock.now() + 60_000, clock.now())
    const key = tempCarKey(cid, 'att')
    await temp.put(key, chunks(await carBytes(dag.root, dag.blocks)))
    const unverified = new TextEncoder().encode('not the CAR that was verified')
    // Someone overwrites the object between the validator's read and its copy.
    const racingTemp: ObjectStore = {
      ...temp,
      copyTo: async (...args) => {
        await temp.put(key, chunks(unverified))
        return temp.copyTo(...args)
      },
    }
    const out = await promoteCar(key, promoteOpts, { ...promoteCtx(), temp: racingTemp })
    expect(out).toEqual({ kind: 'ignored', why: 'object changed since it was verified' })
    expect(await keys(destination)).toEqual([])
    expect((await pins.get(cid))?.status).toBe('pinning')
    expect(events.events).toEqual([])
    // The new object is left for its own ObjectCreated event, which verifies it.
    expect(await collect((await temp.get(key))!.body)).toEqual(unverified)
  })
})

describe('failures', () => {
  it('a DAG with an unreachable block stalls, and the pin goes back to the queue with the reason', async () => {
    const dag = dagCborDag()
    const cid = contentKey(dag.root)
    await pins.request(cid, [], clock.now())
    const ipfs = createMemoryBlockSource(dag.blocks.filter((b) => b !== dag.byName.leafRaw))
    const out = await fetchPin({ cid, origins: [] }, limits, fetchCtx(ipfs))
    expect(out).toMatchObject({ kind: 'failed', code: 'FETCH_STALLED', retryable: true, attempts: 1 })
    const pin = await pins.get(cid)
    expect(pin?.status).toBe('queued')
    expect(pin?.error).toMatch(/^FETCH_STALLED: no data received for 200 ms/)
    expect(await keys(temp)).toEqual([])
  })

  it('a DAG over the size limit fails at once, without retry', async () => {
    const dag = rawBlock(2000)
    const cid = contentKey(dag.root)
    await pins.request(cid, [], clock.now())
    const ipfs = createMemoryBlockSource(dag.blocks)
    const out = await fetchPin({ cid, origins: [] }, { ...limits, maxCarBytes: 1000 }, fetchCtx(ipfs))
    expect(out).toMatchObject({ kind: 'failed', code: 'CAR_TOO_LARGE', retryable: false })
    expect((await pins.get(cid))?.status).toBe('failed')
    expect(await keys(temp)).toEqual([])
  })

  it('an invalid CAR is never promoted; the pin is retried, then failed after the last attempt', async () => {
    const dag = dagCborDag()
    const cid = contentKey(dag.root)
    const incomplete = await carBytes(dag.root, dag.blocks.slice(0, -1))
    await pins.request(cid, [], clock.now())
    for (let attempt = 1; attempt <= 3; attempt++) {
      const claim = await pins.claim(cid, `bad${attempt}`, clock.now() + 60_000, clock.now())
      expect(claim.kind).toBe('claimed')
      await temp.put(tempCarKey(cid, `bad${attempt}`), chunks(incomplete))
      const out = await promoteCar(tempCarKey(cid, `bad${attempt}`), promoteOpts, promoteCtx())
      expect(out).toMatchObject({ kind: 'invalid', code: 'DAG_INCOMPLETE', retried: attempt < 3 })
    }
    const pin = await pins.get(cid)
    expect(pin?.status).toBe('failed')
    expect(pin?.error).toMatch(/^DAG_INCOMPLETE: /)
    expect(await keys(destination)).toEqual([])
    expect(await keys(temp)).toEqual([])
    expect(queue.stats().visible).toBe(2)
  })

  it('an invalid CAR whose fault no attempt can change fails its pin at once, without a retry (re-fetch)', async () => {
    // A dag-cbor block that hashes right but does not decode: every fetch of this DAG gets the same bytes.
    const bytes = new Uint8Array([0xa1, 0x61])
    const root = CID.createV1(0x71, await sha256.digest(bytes))
    const cid = contentKey(root)
    await pins.request(cid, [], clock.now())
    expect((await pins.claim(cid, 'att1', clock.now() + 60_000, clock.now())).kind).toBe('claimed')
    await temp.put(tempCarKey(cid, 'att1'), chunks(await carBytes(root, [{ cid: root, bytes }])))
    const out = await promoteCar(tempCarKey(cid, 'att1'), promoteOpts, promoteCtx())
    expect(out).toMatchObject({ kind: 'invalid', code: 'BLOCK_DECODE_FAILED', retried: false })
    const pin = await pins.get(cid)
    expect(pin?.status).toBe('failed')
    expect(pin?.attempts).toBe(1)
    expect(pin?.error).toMatch(/^BLOCK_DECODE_FAILED: /)
    expect(queue.stats()).toEqual({ visible: 0, invisible: 0 })
  })

  it('a dead letter fails its pin with the last reason and is forwarded for operators; pinned and live pins are left alone', async () => {
    const a = contentKey(rawBlock(1, 'a').root)
    const b = contentKey(rawBlock(1, 'b').root)
    await pins.request(a, [], clock.now())
    await pins.settle(a, undefined, { status: 'queued', error: 'FETCH_STALLED: no data' }, clock.now())
    await pins.request(b, [], clock.now())
    await pins.claim(b, 'live', clock.now() + 60_000, clock.now())
    const failed = createMemoryDeadLetterQueue()
    const ctx = { pins, failedJobs: createMemoryFailedJobs(failed), clock, log }
    const bodyA = JSON.stringify({ cid: a, origins: [] })
    const before = clock.now()
    expect(await failDeadLetter({ body: bodyA, receiveCount: 4, sentAt: 1000 }, ctx)).toBe('failed')
    const bodyB = JSON.stringify({ cid: b, origins: [] })
    expect(await failDeadLetter({ body: bodyB, receiveCount: 4 }, ctx)).toBe('skipped')
    const reason = 'FETCH_STALLED: no data (gave up after 4 receives)'
    expect((await pins.get(a))?.error).toBe(reason)
    expect((await pins.get(b))?.status).toBe('pinning')
    const forwarded = failed.all()
    expect(forwarded).toEqual([
      expect.objectContaining({
        body: bodyA,
        failure: { reason, receiveCount: 4, sentAt: 1000, failedAt: expect.any(Number) },
      }),
    ])
    expect(forwarded[0]!.failure!.failedAt).toBeGreaterThanOrEqual(before)
  })

  it('the stored CAR is byte for byte what the worker uploaded', async () => {
    const dag = rawBlock(5000)
    const cid = contentKey(dag.root)
    await pins.request(cid, [], clock.now())
    const out = await fetchPin({ cid, origins: [] }, limits, fetchCtx(createMemoryBlockSource(dag.blocks)))
    const key = out.kind === 'uploaded' ? out.key : ''
    const uploaded = await collect((await temp.get(key))!.body)
    await promoteCar(key, promoteOpts, promoteCtx())
    const pin = await pins.get(cid)
    expect(await collect((await destination.get(pin!.car!.key))!.body)).toEqual(uploaded)
    expect(pin?.car?.bytes).toBe(uploaded.length)
  })
})
