import { PutObjectCommand } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryObjectStore } from '../../adapters/memory/objects.ts'
import { createS3ObjectStore } from '../../adapters/s3/objects.ts'
import { type Services, startServices } from '../../local/services.ts'
import { collect, createRandomBucket, randomName } from './harness.ts'
import { objectStoreSuite } from './object-store.suite.ts'

const MiB = 1024 * 1024

let services: Services
beforeAll(async () => {
  services = await startServices()
})
afterAll(async () => {
  await services?.stop()
})

objectStoreSuite('memory', async () => ({
  store: createMemoryObjectStore({ bucket: randomName('mem') }),
  other: createMemoryObjectStore({ bucket: randomName('mem') }),
}))

objectStoreSuite('S3 (local mode, on disk)', async () => {
  const client = services.clients.s3
  const [bucket, otherBucket] = await Promise.all([
    createRandomBucket(services),
    createRandomBucket(services),
  ])
  return {
    store: createS3ObjectStore({ client, bucket }),
    other: createS3ObjectStore({ client, bucket: otherBucket }),
    partwiseCopier: createS3ObjectStore({ client, bucket, multipartCopyThreshold: 0, copyPartSize: 5 * MiB }),
  }
})

describe('S3 object store', () => {
  it('lists past the 1000 keys of one ListObjectsV2 page', async () => {
    const bucket = await createRandomBucket(services)
    const keys = Array.from({ length: 1003 }, (_, i) => `k/${String(i).padStart(4, '0')}`)
    for (let i = 0; i < keys.length; i += 100) {
      await Promise.all(
        keys
          .slice(i, i + 100)
          .map((Key) => services.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: 'x' }))),
      )
    }
    const store = createS3ObjectStore({ client: services.clients.s3, bucket })
    const listed = await collect(store.list('k/'))
    expect(listed.map((o) => o.key)).toEqual(keys)
    expect(listed.every((o) => o.size === 1)).toBe(true)
  })

  it('copies only to another S3 store', async () => {
    const bucket = await createRandomBucket(services)
    const store = createS3ObjectStore({ client: services.clients.s3, bucket })
    await expect(store.copyTo('k', createMemoryObjectStore({ bucket: 'm' }), 'k')).rejects.toBeInstanceOf(
      TypeError,
    )
  })
})
