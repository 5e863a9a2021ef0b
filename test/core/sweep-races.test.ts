/**
 * The sweep of unreferenced content racing a new request for the same content, through the in-memory twins and
 * the real core functions (cluster API pin/unpin, fetch, promote, sweep). The CAR key is content-addressed, so
 * the content fetched again is stored at the very key the sweep is about to delete. Whatever the interleaving,
 * a `pinned` pin must have its CAR.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryEventSink } from '../../adapters/memory/events.ts'
import { createMemoryObjectStore } from '../../adapters/memory/objects.ts'
import { createMemoryPinStore, type MemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import { contentKey } from '../../core/cid.ts'
import { pinForCluster, unpinForCluster } from '../../core/cluster.ts'
import { fetchPin } from '../../core/fetch-pin.ts'
import type { ObjectStore, PinStore, RequestStore } from '../../core/ports.ts'
import { type PromoteContext, promoteCar } from '../../core/promote-car.ts'
import { sweepUnreferenced } from '../../core/unreferenced-content.ts'
import { rawBlock } from '../fixtures/dags.ts'
import { testFetchLimits } from '../helpers/fetch-limits.ts'
import { createTestLogger } from '../helpers/log.ts'
import { createMemoryBlockSource } from '../helpers/memory-block-source.ts'

const limits = testFetchLimits()
const promoteOpts = {
  maxCarBytes: limits.maxCarBytes,
  maxAttempts: 3,
  retry: { baseDelaySeconds: 0, maxDelaySeconds: 0 },
}
const clock = { now: () => Date.now() }
const log = createTestLogger()
let ids = 0
const newId = () => `attempt${++ids}`

let pins: MemoryPinStore
let requests: RequestStore
let queue: MemoryJobQueue
let temp: ObjectStore
let destination: ObjectStore

beforeEach(() => {
  pins = createMemoryPinStore()
  requests = createMemoryRequestStore()
  queue = createMemoryJobQueue()
  temp = createMemoryObjectStore({ bucket: 'temp' })
  destination = createMemoryObjectStore({ bucket: 'cars' })
})

const dag = rawBlock(2000, 'swept and wanted again')
const cid = contentKey(dag.root)
const ipfs = () => createMemoryBlockSource(dag.blocks)
const cluster = () => ({ pins, requests, queue, clock })
const promoteCtx = (over: Partial<PromoteContext> = {}): PromoteContext => ({
  pins,
  temp,
  destination,
  queue,
  events: createMemoryEventSink(),
  clock,
  log,
  ...over,
})

/** Fetches the content (the queued job) into the temporary bucket; returns the upload's key. */
async function fetchIt(): Promise<string> {
  const [job] = await queue.receive({ max: 1, waitSeconds: 0 })
  expect(job).toBeDefined()
  await queue.delete(job!.receipt)
  const out = await fetchPin(job!.job, limits, { pins, temp, ipfs: ipfs(), clock, log, newId })
  if (out.kind !== 'uploaded') throw new Error(`fetch: ${out.kind}`)
  return out.key
}

/** Content pinned, then unpinned: unreferenced, due for the sweep. Returns its CAR key. */
async function pinnedThenUnwanted(): Promise<string> {
  await pinForCluster({ cid, name: '', meta: {}, origins: [] }, cluster())
  expect((await promoteCar(await fetchIt(), promoteOpts, promoteCtx())).kind).toBe('pinned')
  const carKey = (await pins.get(cid))!.car!.key
  await unpinForCluster(cid, cluster())
  expect((await pins.get(cid))?.unreferencedSince).toBeDefined()
  return carKey
}

/** The invariant: a pinned pin has its CAR; otherwise its content is on its way to being fetched again. */
async function expectPinnedHasItsCar(store: PinStore = pins) {
  const pin = await store.get(cid)
  expect(pin).toBeDefined()
  if (pin!.status === 'pinned') expect(await destination.head(pin!.car!.key)).toBeDefined()
  else expect(pin!.status).toBe('queued')
}

describe('the sweep racing a new request for the content', () => {
  it('the content is requested, fetched and promoted again before the sweep deletes its CAR', async () => {
    const carKey = await pinnedThenUnwanted()
    // The sweep deleted the record; before it deletes the CAR, the content is wanted, fetched and promoted again.
    const racing: ObjectStore = {
      ...destination,
      delete: async (key) => {
        expect(key).toBe(carKey)
        expect(await pins.get(cid)).toBeUndefined()
        await pinForCluster({ cid, name: '', meta: {}, origins: [] }, cluster())
        expect((await promoteCar(await fetchIt(), promoteOpts, promoteCtx())).kind).toBe('pinned')
        expect((await pins.get(cid))?.car?.key).toBe(carKey)
        return destination.delete(key)
      },
    }
    const swept = await sweepUnreferenced(
      { pins, requests, destination: racing, clock, log },
      { retentionMs: 0, limit: 10 },
    )
    expect(swept.deleted).toBe(1)
    await expectPinnedHasItsCar()
    // Queued again, it is fetched and stored again.
    if ((await pins.get(cid))?.status === 'queued') {
      await queue.send({ cid, origins: [] })
      expect((await promoteCar(await fetchIt(), promoteOpts, promoteCtx())).kind).toBe('pinned')
    }
    expect(await destination.head(carKey)).toBeDefined()
    expect((await pins.get(cid))?.status).toBe('pinned')
  })

  it('the sweep deletes the CAR between the validator copying it and marking the pin', async () => {
    const carKey = await pinnedThenUnwanted()
    const racing: ObjectStore = {
      ...destination,
      delete: async (key) => {
        await pinForCluster({ cid, name: '', meta: {}, origins: [] }, cluster())
        const upload = await fetchIt()
        // The validator copies the CAR; the sweep's delete lands before it marks the pin, and the sweep's
        // own re-check runs before that mark too.
        let copied!: () => void
        const afterCopy = new Promise<void>((r) => (copied = r))
        let release!: () => void
        const held = new Promise<void>((r) => (release = r))
        const slowPins: PinStore = {
          ...pins,
          markPinned: async (...args) => {
            copied()
            await held
            return pins.markPinned(...args)
          },
        }
        const promoting = promoteCar(upload, promoteOpts, promoteCtx({ pins: slowPins }))
        await afterCopy
        await destination.delete(key)
        // The mark lands once the sweep has finished (its re-check included): the twins answer in microtasks.
        setImmediate(release)
        promoted = promoting
      },
    }
    let promoted: ReturnType<typeof promoteCar> | undefined
    await sweepUnreferenced(
      { pins, requests, destination: racing, clock, log },
      { retentionMs: 0, limit: 10 },
    )
    expect((await pins.get(cid))?.status).toBe('pinning')
    expect((await promoted)?.kind).toBe('pinned')
    expect((await pins.get(cid))?.status).toBe('pinned')
    expect(await destination.head(carKey)).toBeDefined()
  })
})
