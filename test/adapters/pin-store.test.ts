import { GetItemCommand, PutItemCommand } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDynamoPinStore, decodePin, encodePin } from '../../adapters/dynamodb/pins.ts'
import { pinsTable } from '../../adapters/dynamodb/tables.ts'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import type { Pin } from '../../core/pin.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createRandomTable } from './harness.ts'
import { pinStoreSuite } from './pin-store.suite.ts'

let services: Services
beforeAll(async () => {
  services = await startServices()
})
afterAll(async () => {
  await services?.stop()
})

pinStoreSuite('memory', async () => createMemoryPinStore())

pinStoreSuite('DynamoDB (dynalite)', async () => {
  const tableName = await createRandomTable(services, pinsTable)
  return createDynamoPinStore({ client: services.clients.dynamodb, tableName })
})

describe('DynamoDB pin records', () => {
  const full: Pin = {
    cid: 'bafyfull',
    status: 'pinning',
    created: 1,
    updated: 2,
    attempts: 3,
    error: 'E: m',
    origins: ['/a', '/b'],
    attemptId: 'att',
    leaseExpires: 4,
    progress: { bytes: 5, blocks: 6 },
    car: { cid: 'bagcar', bytes: 7, blocks: 8, key: 'bagcar/bagcar.car' },
  }

  it('encode and decode are inverse, for minimal and full pins', () => {
    const minimal: Pin = {
      cid: 'bafymin',
      status: 'queued',
      created: 1,
      updated: 1,
      attempts: 0,
      origins: [],
    }
    expect(decodePin(encodePin(minimal))).toEqual(minimal)
    expect(decodePin(encodePin(full))).toEqual(full)
  })

  it('rejects malformed items instead of guessing', () => {
    const item = encodePin(full)
    expect(() => decodePin({ ...item, status: { S: 'lost' } })).toThrow(/status/)
    expect(() => decodePin({ ...item, updated: { S: '2' } })).toThrow(/updated/)
    expect(() => decodePin({ ...item, origins: { SS: ['/a'] } })).toThrow(/origins/)
    const { cid: _, ...noCid } = item
    expect(() => decodePin(noCid)).toThrow(/cid/)
  })

  it('stores the documented item shape', async () => {
    const tableName = await createRandomTable(services, pinsTable)
    const store = createDynamoPinStore({ client: services.clients.dynamodb, tableName })
    await store.request('bafyshape', ['/a'], 10)
    await store.claim('bafyshape', 'att', 1000, 11)
    const { Item } = await services.clients.dynamodb.send(
      new GetItemCommand({ TableName: tableName, Key: { cid: { S: 'bafyshape' } }, ConsistentRead: true }),
    )
    expect(Item).toEqual({
      cid: { S: 'bafyshape' },
      status: { S: 'pinning' },
      created: { N: '10' },
      updated: { N: '11' },
      attempts: { N: '1' },
      origins: { L: [{ S: '/a' }] },
      attemptId: { S: 'att' },
      leaseExpires: { N: '1000' },
      version: { N: '2' },
    })
  })

  it('reads items written without the version counter (by another writer)', async () => {
    const tableName = await createRandomTable(services, pinsTable)
    const failed: Pin = { cid: 'bafyv', status: 'failed', created: 1, updated: 1, attempts: 1, origins: [] }
    await services.clients.dynamodb.send(
      new PutItemCommand({ TableName: tableName, Item: encodePin(failed) }),
    )
    const store = createDynamoPinStore({ client: services.clients.dynamodb, tableName })
    const res = await store.request('bafyv', ['/x'], 5)
    expect(res).toMatchObject({ enqueue: true, pin: { status: 'queued', origins: ['/x'] } })
  })

  it('claims a pin left pinning without a lease (written by another writer), and only when wanted', async () => {
    const tableName = await createRandomTable(services, pinsTable)
    const put = (pin: Pin) =>
      services.clients.dynamodb.send(new PutItemCommand({ TableName: tableName, Item: encodePin(pin) }))
    const store = createDynamoPinStore({ client: services.clients.dynamodb, tableName })
    const leaseless: Pin = {
      cid: 'bafynolease',
      status: 'pinning',
      created: 1,
      updated: 1,
      attempts: 1,
      origins: [],
    }
    await put(leaseless)
    expect(await store.claim('bafynolease', 'att', 1000, 10)).toMatchObject({
      kind: 'claimed',
      pin: { attemptId: 'att', leaseExpires: 1000, attempts: 2 },
    })
    await put({ ...leaseless, cid: 'bafynoleasegone', unreferencedSince: 5 })
    expect(await store.claim('bafynoleasegone', 'att', 1000, 10)).toMatchObject({
      kind: 'cancelled',
      pin: { status: 'failed' },
    })
  })
})
