import type { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createS3ObjectStore } from '../../adapters/s3/objects.ts'
import { createStoredContentReader } from '../../adapters/stored-content.ts'
import type { Pin } from '../../core/pin.ts'
import type { ObjectStore } from '../../core/ports.ts'
import { type Services, startServices } from '../../local/services.ts'
import { carBytes, unixfsDirectory } from '../fixtures/dags.ts'
import { createRandomBucket } from './harness.ts'

let services: Services
let destination: ObjectStore
beforeAll(async () => {
  services = await startServices()
  destination = createS3ObjectStore({
    client: services.clients.s3,
    bucket: await createRandomBucket(services),
  })
})
afterAll(async () => {
  await services?.stop()
})

async function stored(root: CID, car: Uint8Array, name: string): Promise<Pin> {
  const key = `${name}/${name}.car`
  await destination.put(
    key,
    (async function* () {
      yield car
    })(),
  )
  return {
    cid: root.toV1().toString(),
    status: 'pinned',
    created: 1,
    updated: 1,
    attempts: 1,
    origins: [],
    car: { cid: name, bytes: car.length, blocks: 1, key },
  } as Pin
}

describe('reading files out of stored CARs', () => {
  it('reads a file at a path, verified; refuses missing paths, directories, oversize files and CARs', async () => {
    const one = new TextEncoder().encode('{"image":"ipfs://x"}')
    const big = new Uint8Array(3000).fill(7)
    const { root, blocks } = await unixfsDirectory({ '1': one, 'img/big.bin': big })
    const pin = await stored(root, await carBytes(root, blocks), 'car-good')
    const reader = createStoredContentReader({ destination, maxCarBytes: 1024 * 1024 })
    expect(await reader.readFile(pin, '1', { maxBytes: 1000 })).toEqual(one)
    expect(await reader.readFile(pin, 'img/big.bin', { maxBytes: 5000 })).toEqual(big)
    await expect(reader.readFile(pin, '2', { maxBytes: 1000 })).rejects.toMatchObject({
      code: 'PATH_NOT_FOUND',
    })
    await expect(reader.readFile(pin, 'img', { maxBytes: 1000 })).rejects.toMatchObject({
      code: 'NOT_A_FILE',
    })
    await expect(reader.readFile(pin, 'img/big.bin', { maxBytes: 1000 })).rejects.toMatchObject({
      code: 'FILE_TOO_LARGE',
    })
    const small = createStoredContentReader({ destination, maxCarBytes: 100 })
    await expect(small.readFile(pin, '1', { maxBytes: 1000 })).rejects.toMatchObject({
      code: 'CAR_TOO_LARGE_TO_READ',
    })
  })

  it('refuses a CAR with a block that does not match its CID', async () => {
    const { root, blocks } = await unixfsDirectory({ '1': new TextEncoder().encode('{"a":1}') })
    const tampered = blocks.map((b) => {
      const bytes = new Uint8Array(b.bytes)
      const last = bytes.length - 1
      if (last >= 0 && !b.cid.equals(root)) bytes[last] = (bytes[last] ?? 0) ^ 1
      return { cid: b.cid, bytes }
    })
    const pin = await stored(root, await carBytes(root, tampered), 'car-bad')
    const reader = createStoredContentReader({ destination, maxCarBytes: 1024 * 1024 })
    await expect(reader.readFile(pin, '1', { maxBytes: 1000 })).rejects.toMatchObject({
      code: 'BLOCK_HASH_MISMATCH',
    })
  })
})
