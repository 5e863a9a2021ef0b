/**
 * One hash policy for the worker and the validator: a block the worker accepts (kubo's verification, the
 * export's walk) is one the validator accepts, and a hash the validator refuses fails the fetch at once,
 * without retry and without fetching the block. Real CAR bytes through the real validator; the kubo adapter's
 * own verification function; the export through the in-memory block source.
 */
import { createHash, randomBytes } from 'node:crypto'
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { describe, expect, it } from 'vitest'
import { verifyBlock } from '../../adapters/kubo/block-source.ts'
import { createMemoryObjectStore } from '../../adapters/memory/objects.ts'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import { UnsupportedHashError } from '../../core/errors.ts'
import { exportCar } from '../../core/export-car.ts'
import { fetchPin } from '../../core/fetch-pin.ts'
import { validateCar } from '../../core/validate-car.ts'
import { carBytes } from '../fixtures/dags.ts'
import { testFetchLimits } from '../helpers/fetch-limits.ts'
import { createTestLogger } from '../helpers/log.ts'
import { createMemoryBlockSource } from '../helpers/memory-block-source.ts'

/** A raw block hashed with node:crypto's `algorithm` under multihash `code`, its digest cut to `length`. */
function hashed(code: number, algorithm: string, bytes: Uint8Array, length?: number) {
  const digest = createHash(algorithm).update(bytes).digest()
  return {
    cid: CID.createV1(raw.code, Digest.create(code, digest.subarray(0, length ?? digest.length))),
    bytes,
  }
}

const data = new Uint8Array(randomBytes(1000))
const cases = {
  'sha2-256': hashed(0x12, 'sha256', data),
  'sha2-512': hashed(0x13, 'sha512', data),
  'sha2-256 truncated to 20 bytes': hashed(0x12, 'sha256', data, 20),
  'sha2-512 truncated to 32 bytes': hashed(0x13, 'sha512', data, 32),
  'sha3-256': hashed(0x16, 'sha3-256', data),
  'sha3-512': hashed(0x14, 'sha3-512', data),
}

async function validatorAccepts(block: { cid: CID; bytes: Uint8Array }): Promise<boolean> {
  const verdict = await validateCar(
    (async function* () {
      yield await carBytes(block.cid, [block])
    })(),
    { root: block.cid },
  )
  return verdict.valid
}

function workerAccepts(block: { cid: CID; bytes: Uint8Array }): boolean {
  try {
    verifyBlock(block.cid, block.bytes)
    return true
  } catch (err) {
    if (err instanceof UnsupportedHashError) return false
    throw err
  }
}

describe('one hash policy for worker and validator', () => {
  for (const [name, block] of Object.entries(cases)) {
    it(`${name}: the kubo adapter accepts it exactly when the validator does`, async () => {
      expect(workerAccepts(block)).toBe(await validatorAccepts(block))
    })
  }

  it('a DAG linking a block whose hash the validator refuses fails the fetch at once, without retry or fetching it', async () => {
    const bad = cases['sha3-256']
    const rootBytes = dagCbor.encode({ link: bad.cid })
    const root = CID.createV1(
      dagCbor.code,
      Digest.create(0x12, createHash('sha256').update(rootBytes).digest()),
    )
    const ipfs = createMemoryBlockSource([{ cid: root, bytes: rootBytes }, bad])
    // The export alone: the refusal names the hash, and the block is never asked for.
    const chunks: Uint8Array[] = []
    await expect(
      (async () => {
        for await (const c of exportCar(root, ipfs, { maxBytes: 1024 * 1024 })) chunks.push(c)
      })(),
    ).rejects.toBeInstanceOf(UnsupportedHashError)
    expect(ipfs.gets).toBe(1)

    // The whole fetch: failed at once, not retryable, nothing uploaded.
    const pins = createMemoryPinStore()
    const temp = createMemoryObjectStore({ bucket: 'temp' })
    const cid = root.toString()
    await pins.request(cid, [], Date.now())
    const limits = testFetchLimits()
    const out = await fetchPin({ cid, origins: [] }, limits, {
      pins,
      temp,
      ipfs,
      clock: { now: () => Date.now() },
      log: createTestLogger(),
      newId: () => 'att',
    })
    expect(out).toMatchObject({ kind: 'failed', code: 'UNSUPPORTED_HASH', retryable: false })
    expect((await pins.get(cid))?.status).toBe('failed')
    const left: string[] = []
    for await (const o of temp.list()) left.push(o.key)
    expect(left).toEqual([])
  })
})
