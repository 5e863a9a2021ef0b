/**
 * Issue 16 end to end: local mode persisted on disk, as `npm start` runs it, pins UnixFS files in Helia's default
 * 1 MiB blocks and in 256 KiB blocks from a Helia origin; each stored CAR is re-verified independently of
 * pickup's validator. 128 MiB each here, to keep the suite's time reasonable; `node bench/pipeline.ts` runs the
 * same at 256 MiB, 1 GiB and beyond.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { normalizeCid } from '../../core/cid.ts'
import { unixfsFile } from '../fixtures/dags.ts'
import { listKeys, startTestSystem, type TestSystem, verifyStoredCar } from '../helpers/system.ts'

const MiB = 1024 * 1024
let t: TestSystem
let dir: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pickup-e2e-large-'))
  // A stall here is a failure, not something for a quick retry to paper over.
  t = await startTestSystem(
    { FETCH_CHUNK_TIMEOUT_MS: '60000', UPLOAD_PART_BYTES: String(8 * MiB) },
    { dataDir: dir },
  )
})
afterAll(async () => {
  await t?.stop()
  await rm(dir, { recursive: true, force: true })
})

describe('large blocks, end to end through local mode on disk', () => {
  for (const chunkSize of [MiB, 256 * 1024]) {
    it(`pins a 128 MiB UnixFS file in ${chunkSize / 1024} KiB blocks on the first attempt`, async () => {
      const file = await unixfsFile(128 * MiB, {
        chunkSize,
        maxChildren: 1024,
        seed: `e2e-large-${chunkSize}`,
      })
      await t.addToOrigin(file.blocks)
      const cid = file.root.toString()
      const origins = t.originAddrs().join(',')
      const res = await t.api(`/pins/${cid}?origins=${encodeURIComponent(origins)}`, { method: 'POST' })
      expect(res.status).toBe(200)
      await t.waitForStatus(cid, 'pinned', 240_000)
      const pin = await t.pins.get(normalizeCid(cid).key)
      expect(pin?.attempts).toBe(1)
      const key = pin!.car!.key
      const { blocks } = await verifyStoredCar(t.destination, key, file.root, file.blocks)
      expect(blocks).toBe(Math.ceil((128 * MiB) / chunkSize) + 1)
      expect(await listKeys(t.temp)).toEqual([])
    }, 240_000)
  }
})
