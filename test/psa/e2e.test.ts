/**
 * End to end through the Pinning Service API: a real multi-block DAG on an origin Helia node is pinned with
 * `@ipfs-shipyard/pinning-service-client`, polled the way kubo polls it until `pinned`, stored as a CAR that
 * verifies independently; a second user's request for it is pinned at once; when both requests are deleted
 * the content is unreferenced and the sweep removes its CAR and record.
 */
import { Status } from '@ipfs-shipyard/pinning-service-client'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { normalizeCid } from '../../core/cid.ts'
import { sweepUnreferenced } from '../../core/unreferenced-content.ts'
import { unixfsFile } from '../fixtures/dags.ts'
import { createTestLogger } from '../helpers/log.ts'
import { listKeys, startTestSystem, type TestSystem, verifyStoredCar } from '../helpers/system.ts'
import { psaClient } from './helpers.ts'

let t: TestSystem
beforeAll(async () => {
  t = await startTestSystem()
})
afterAll(async () => {
  await t?.stop()
})

it('pins a real DAG from an origin node, shares it, and sweeps it once nobody wants it', async () => {
  const file = await unixfsFile(3 * 1024 * 1024, { chunkSize: 256 * 1024, seed: 'psa-e2e' })
  await t.addToOrigin(file.blocks)
  const alice = psaClient(t, await t.createPsaToken('alice'))
  const bob = psaClient(t, await t.createPsaToken('bob'))
  const cid = file.root.toString()

  const added = await alice.pinsPost({ pin: { cid, name: 'psa-e2e.bin', origins: t.originAddrs() } })
  expect([Status.Queued, Status.Pinning, Status.Pinned]).toContain(added.status)
  // The worker is live: its node's addresses are the delegates.
  const workerAddrs = t.system.helia!.libp2p.getMultiaddrs().map((a) => a.toString())
  expect(added.delegates.length).toBeGreaterThan(0)
  for (const d of added.delegates) {
    expect(d).toMatch(/\/p2p\/[^/]+$/)
    expect(workerAddrs).toContain(d)
  }

  // As kubo does: GET /pins/{requestid} every 500 ms until pinned.
  let status = added
  const deadline = Date.now() + 60_000
  while (status.status !== Status.Pinned) {
    expect(status.status).not.toBe(Status.Failed)
    expect(Date.now()).toBeLessThan(deadline)
    await new Promise((r) => setTimeout(r, 500))
    status = await alice.pinsRequestidGet({ requestid: added.requestid })
  }
  const pin = await t.pins.get(normalizeCid(cid).key)
  expect(status.info?.dag_size).toBe(String(pin!.car!.bytes))
  const { blocks } = await verifyStoredCar(t.destination, pin!.car!.key, file.root, file.blocks)
  expect(blocks).toBeGreaterThan(10)

  // Another user: pinned at once, nothing fetched again.
  const bobs = await bob.pinsPost({ pin: { cid } })
  expect(bobs.status).toBe(Status.Pinned)
  expect(await t.pins.get(normalizeCid(cid).key)).toEqual(pin)
  expect((await alice.pinsGet()).results.map((r) => r.requestid)).toEqual([added.requestid])

  // Both delete: unreferenced; the sweep (retention 0 here) removes the CAR and the record.
  await alice.pinsRequestidDelete({ requestid: added.requestid })
  const ctx = {
    pins: t.pins,
    requests: t.requests,
    destination: t.destination,
    clock: { now: () => Date.now() },
    log: createTestLogger(),
  }
  expect(await sweepUnreferenced(ctx, { retentionMs: 0, limit: 10 })).toMatchObject({ deleted: 0 })
  await bob.pinsRequestidDelete({ requestid: bobs.requestid })
  const marked = await t.pins.get(normalizeCid(cid).key)
  expect(marked!.unreferencedSince).toBeTypeOf('number')
  expect(await sweepUnreferenced(ctx, { retentionMs: 60_000, limit: 10 })).toMatchObject({ deleted: 0 })
  const swept = await sweepUnreferenced(ctx, { retentionMs: 0, limit: 10 })
  expect(swept).toMatchObject({ deleted: 1, bytesFreed: pin!.car!.bytes })
  expect(await t.pins.get(normalizeCid(cid).key)).toBeUndefined()
  expect(await listKeys(t.destination)).not.toContain(pin!.car!.key)
})
