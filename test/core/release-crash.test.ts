/**
 * A process that dies right after deleting a request, before releasing its content, must not leave the content
 * stored for ever: the content is already marked unreferenced when the request goes, so the sweep reclaims it
 * after the retention period. The crash is forced through the in-memory request store: its delete succeeds,
 * then the call throws as if the process had died there (nothing after it runs).
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryObjectStore } from '../../adapters/memory/objects.ts'
import { createMemoryPinStore, type MemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import { normalizeCid } from '../../core/cid.ts'
import { pinForCluster, unpinForCluster } from '../../core/cluster.ts'
import type { CarInfo } from '../../core/pin.ts'
import type { ObjectStore, RequestStore } from '../../core/ports.ts'
import { createPsaRequest, deletePsaRequest, replacePsaRequest } from '../../core/psa-requests.ts'
import { sweepUnreferenced } from '../../core/unreferenced-content.ts'
import { rawBlock } from '../fixtures/dags.ts'
import { createTestLogger } from '../helpers/log.ts'

const DAY = 24 * 60 * 60 * 1000
let now = 1_700_000_000_000
const clock = { now: () => now }
let pins: MemoryPinStore
let requests: RequestStore
let destination: ObjectStore
let n = 0
const newCid = () => rawBlock(8, `release-crash-${++n}`).root.toString()
const key = (cid: string) => normalizeCid(cid).key

class Crash extends Error {}

/** The request store, with a delete that takes effect and then "kills the process". */
function crashingAfterDelete(store: RequestStore): RequestStore {
  return {
    ...store,
    delete: async (requestid) => {
      await store.delete(requestid)
      throw new Crash('the process died after deleting the request')
    },
  }
}

async function stored(cid: string): Promise<CarInfo> {
  const car: CarInfo = { cid: `bagcar${n}`, bytes: 100, blocks: 1, key: `bagcar${n}/bagcar${n}.car` }
  await destination.put(
    car.key,
    (async function* () {
      yield new Uint8Array(100)
    })(),
  )
  await pins.claim(key(cid), 'att', now + 60_000, now)
  expect(await pins.markPinned(key(cid), 'att', car, now)).toBe(true)
  return car
}

/** After the retention period, the sweep deletes the content's record and CAR. */
async function expectReclaimed(cid: string, car: CarInfo) {
  expect((await pins.get(key(cid)))?.unreferencedSince).toBeTypeOf('number')
  now += 8 * DAY
  const swept = await sweepUnreferenced(
    { pins, requests, destination, clock, log: createTestLogger() },
    { retentionMs: 7 * DAY, limit: 100 },
  )
  expect(swept).toMatchObject({ deleted: 1, bytesFreed: car.bytes })
  expect(await pins.get(key(cid))).toBeUndefined()
  expect(await destination.head(car.key)).toBeUndefined()
}

beforeEach(() => {
  pins = createMemoryPinStore()
  requests = createMemoryRequestStore()
  destination = createMemoryObjectStore({ bucket: 'cars' })
})

describe('a crash between deleting a request and releasing its content', () => {
  it('Pinning Service API delete', async () => {
    const queue = createMemoryJobQueue({ clock })
    const cid = newCid()
    const made = await createPsaRequest(
      { user: 'alice', pin: { cid, origins: [], meta: {} } },
      { requests, pins, queue, clock },
    )
    const car = await stored(cid)
    await expect(
      deletePsaRequest(
        { user: 'alice', requestid: made.request.requestid },
        { requests: crashingAfterDelete(requests), pins, clock },
      ),
    ).rejects.toBeInstanceOf(Crash)
    expect(await requests.get(made.request.requestid)).toBeUndefined()
    await expectReclaimed(cid, car)
  })

  it('Pinning Service API replace (the old content)', async () => {
    const queue = createMemoryJobQueue({ clock })
    const [oldCid, newOne] = [newCid(), newCid()]
    const made = await createPsaRequest(
      { user: 'alice', pin: { cid: oldCid, origins: [], meta: {} } },
      { requests, pins, queue, clock },
    )
    const car = await stored(oldCid)
    await expect(
      replacePsaRequest(
        { user: 'alice', requestid: made.request.requestid, pin: { cid: newOne, origins: [], meta: {} } },
        { requests: crashingAfterDelete(requests), pins, queue, clock },
      ),
    ).rejects.toBeInstanceOf(Crash)
    expect(await requests.get(made.request.requestid)).toBeUndefined()
    await expectReclaimed(oldCid, car)
  })

  it('cluster API unpin', async () => {
    const queue = createMemoryJobQueue({ clock })
    const cid = newCid()
    await pinForCluster({ cid, name: '', meta: {}, origins: [] }, { requests, pins, queue, clock })
    const car = await stored(cid)
    await expect(
      unpinForCluster(cid, { requests: crashingAfterDelete(requests), pins, clock }),
    ).rejects.toBeInstanceOf(Crash)
    await expectReclaimed(cid, car)
  })

  it('a crash before the delete leaves the request, and the sweep keeps the content it still wants', async () => {
    const queue = createMemoryJobQueue({ clock })
    const cid = newCid()
    const made = await createPsaRequest(
      { user: 'alice', pin: { cid, origins: [], meta: {} } },
      { requests, pins, queue, clock },
    )
    const car = await stored(cid)
    const dying: RequestStore = {
      ...requests,
      delete: async () => {
        throw new Crash('the process died before deleting the request')
      },
    }
    await expect(
      deletePsaRequest(
        { user: 'alice', requestid: made.request.requestid },
        { requests: dying, pins, clock },
      ),
    ).rejects.toBeInstanceOf(Crash)
    now += 8 * DAY
    const swept = await sweepUnreferenced(
      { pins, requests, destination, clock, log: createTestLogger() },
      { retentionMs: 7 * DAY, limit: 100 },
    )
    expect(swept.deleted).toBe(0)
    expect((await pins.get(key(cid)))?.status).toBe('pinned')
    expect((await pins.get(key(cid)))?.unreferencedSince).toBeUndefined()
    expect(await destination.head(car.key)).toBeDefined()
  })
})
