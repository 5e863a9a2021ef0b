/**
 * `GET /pins` (the cluster client's `statusAll`) does bounded work and never passes a failure off as a short
 * success: a listing reads at most MAX_LISTED_PINS pins and answers an error beyond, and a store failure
 * part-way is an error status, not a 200 missing lines (the client parses NDJSON line by line and would
 * return what it got). The real app over the in-memory twins, a real HTTP server, the real
 * `@nftstorage/ipfs-cluster` client.
 */
import { Cluster } from '@nftstorage/ipfs-cluster'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_LISTED_PINS } from '../../api/http/cluster.ts'
import { pinForCluster } from '../../core/cluster.ts'
import type { RequestStore } from '../../core/ports.ts'
import { rawBlock } from '../fixtures/dags.ts'
import { startTestHttpApp, TEST_TOKEN, type TestHttpApp } from '../helpers/http-app.ts'

let n = 0
const newCid = () => rawBlock(8, `list-bounds-${++n}`).root.toString()

/** Pins `count` new CIDs through the cluster's core (queued: no worker runs). */
async function pinMany(t: TestHttpApp, count: number): Promise<string[]> {
  const cids = Array.from({ length: count }, newCid)
  const ctx = { pins: t.pins, requests: t.requests, queue: t.queue, clock: { now: () => Date.now() } }
  for (const cid of cids) await pinForCluster({ cid, name: '', meta: {}, origins: [] }, ctx)
  return cids
}

describe('a listing', () => {
  let t: TestHttpApp
  let cluster: Cluster
  beforeAll(async () => {
    t = await startTestHttpApp()
    cluster = new Cluster(t.url, { headers: { Authorization: `Basic ${TEST_TOKEN}` } })
  })
  afterAll(async () => {
    await t?.stop()
  })

  it('lists every pin up to the bound, over several pages', async () => {
    const cids = await pinMany(t, 120)
    const listed = await cluster.statusAll({ filter: ['pin_queued'] })
    expect(listed.map((s) => s.cid).sort()).toEqual([...cids].sort())
  })

  it('beyond the bound, answers an error instead of a truncated or unbounded list', async () => {
    await pinMany(t, MAX_LISTED_PINS + 1 - 120)
    const pinsRead = { n: 0 }
    const listByStatus = t.pins.listByStatus.bind(t.pins)
    t.pins.listByStatus = async (status, opts) => {
      const page = await listByStatus(status, opts)
      pinsRead.n += page.pins.length
      return page
    }
    const res = await t.api('/pins?filter=pin_queued')
    expect(res.status).toBe(400)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await res.json()).toMatchObject({ code: 400, message: expect.stringMatching(/cids/) })
    expect(pinsRead.n).toBeLessThanOrEqual(MAX_LISTED_PINS + 50)
    await expect(cluster.statusAll({ filter: ['pin_queued'] })).rejects.toThrow(/400/)
  })
})

describe('a store failure part-way', () => {
  let t: TestHttpApp
  let cluster: Cluster
  const failing = { after: Number.POSITIVE_INFINITY }
  beforeAll(async () => {
    // The batch read of requests fails once it has been made `failing.after` times.
    t = await startTestHttpApp({
      requests: (store) => {
        let calls = 0
        const getMany: RequestStore['getMany'] = async (requestids) => {
          if (++calls > failing.after) throw new Error('DynamoDB throttled the batch read')
          return store.getMany(requestids)
        }
        return Object.assign(Object.create(store), { getMany, all: () => store.all() })
      },
    })
    cluster = new Cluster(t.url, { headers: { Authorization: `Basic ${TEST_TOKEN}` } })
  })
  afterAll(async () => {
    await t?.stop()
  })

  it('of a filtered listing is a JSON 500 the client rejects, not a 200 missing lines', async () => {
    await pinMany(t, 120)
    failing.after = 1
    try {
      const res = await t.api('/pins?filter=pin_queued')
      expect(res.status).toBe(500)
      expect(await res.json()).toEqual({ code: 500, message: 'internal error' })
      failing.after += 1
      await expect(cluster.statusAll({ filter: ['pin_queued'] })).rejects.toThrow(/500/)
    } finally {
      failing.after = Number.POSITIVE_INFINITY
    }
  })

  it('of a status by CIDs is a JSON 500 the client rejects, not a 200 missing lines', async () => {
    const cids = Array.from({ length: 100 }, newCid)
    failing.after = 1
    try {
      const res = await t.api(`/pins?cids=${cids.join(',')}`)
      expect(res.status).toBe(500)
      failing.after += 1
      await expect(cluster.statusAll({ cids })).rejects.toThrow(/500/)
    } finally {
      failing.after = Number.POSITIVE_INFINITY
    }
  })
})
