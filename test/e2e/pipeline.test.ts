/**
 * End to end in local mode: pins go through the real HTTP API, SQS, the worker with an embedded Helia node
 * fetching over real libp2p/bitswap from an origin Helia node, the S3 upload, the S3-event validator and the
 * promotion. Each CAR in the destination bucket is re-verified independently of pickup's validator.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { normalizeCid } from '../../core/cid.ts'
import { CANCELLED_ERROR } from '../../core/pin.ts'
import { dagCborDag, rawBlock, unixfsFile } from '../fixtures/dags.ts'
import { listKeys, startTestSystem, type TestSystem, verifyStoredCar } from '../helpers/system.ts'

let t: TestSystem
beforeAll(async () => {
  t = await startTestSystem()
})
afterAll(async () => {
  await t?.stop()
})

async function pinAndWait(cid: string): Promise<void> {
  const origins = t.originAddrs().join(',')
  const res = await t.api(`/pins/${cid}?origins=${encodeURIComponent(origins)}`, { method: 'POST' })
  expect(res.status).toBe(200)
  await t.waitForStatus(cid, 'pinned', 120_000)
}

async function storedCarKey(cid: string): Promise<string> {
  const keys = (await listKeys(t.destination)).filter(Boolean)
  const pin = await t.pins.get(normalizeCid(cid).key)
  expect(pin?.car?.key).toBeDefined()
  expect(keys).toContain(pin!.car!.key)
  return pin!.car!.key
}

describe('the pin pipeline, end to end', () => {
  it('pins a single raw block', async () => {
    const dag = rawBlock(1024, 'e2e-raw')
    await t.addToOrigin(dag.blocks)
    await pinAndWait(dag.root.toString())
    const key = await storedCarKey(dag.root.toString())
    expect(await verifyStoredCar(t.destination, key, dag.root, dag.blocks)).toEqual({ blocks: 1 })
    expect(await listKeys(t.temp)).toEqual([])
  })

  it('pins a dag-cbor DAG with dag-json, raw and inline links', async () => {
    const dag = dagCborDag()
    await t.addToOrigin(dag.blocks)
    await pinAndWait(dag.root.toString())
    const key = await storedCarKey(dag.root.toString())
    expect((await verifyStoredCar(t.destination, key, dag.root, dag.blocks)).blocks).toBe(dag.blocks.length)
    expect(await listKeys(t.temp)).toEqual([])
  })

  it('pins a 50 MiB multi-level UnixFS file in 256 KiB chunks, asked for as CIDv0', async () => {
    const file = await unixfsFile(50 * 1024 * 1024, { chunkSize: 256 * 1024, seed: 'e2e-unixfs' })
    await t.addToOrigin(file.blocks)
    const v0 = file.root.toV0().toString()
    await pinAndWait(v0)
    const key = await storedCarKey(v0)
    const { blocks } = await verifyStoredCar(t.destination, key, file.root.toV1(), file.blocks)
    expect(blocks).toBeGreaterThan(200)
    expect(await listKeys(t.temp)).toEqual([])
    // The same content asked for as CIDv1 is the same pin: already pinned, nothing fetched again.
    const again = await t.api(`/pins/${file.root.toV1()}`, { method: 'POST' })
    expect(again.status).toBe(200)
    expect((await listKeys(t.destination)).filter((k) => k === key)).toHaveLength(1)
  })

  it('stops a search when its content is unpinned: the pin says cancelled, nothing is stored', async () => {
    // Its own system, whose searches never stall: only the worker's watcher of deleted content can end one.
    const own = await startTestSystem({ FETCH_CHUNK_TIMEOUT_MS: String(30 * 60_000) })
    try {
      const dag = rawBlock(64, `e2e-unpinned ${Math.random()}`)
      const cid = dag.root.toString()
      expect((await own.api(`/pins/${cid}`, { method: 'POST' })).status).toBe(200)
      const searching = await own.waitForPin(cid, 'pinning')
      expect(searching.progress?.phase).toBe('searching')
      expect((await own.api(`/pins/${cid}`, { method: 'DELETE' })).status).toBe(200)
      // The watcher reads the marks of unpinned content in the pins table's index (dynalite here), and all
      // running pins every 12th interval.
      const cancelled = await own.waitForPin(cid, 'failed')
      expect(cancelled.error).toBe(CANCELLED_ERROR)
      expect(cancelled.attempts).toBe(searching.attempts)
      expect((await listKeys(own.temp)).filter((k) => k.startsWith(normalizeCid(cid).key))).toEqual([])
    } finally {
      await own.stop()
    }
  })
})
