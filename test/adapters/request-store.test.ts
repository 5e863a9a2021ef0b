import { GetItemCommand } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { countCacheKey, createDynamoRequestStore } from '../../adapters/dynamodb/requests.ts'
import { pinsTable, requestsTable } from '../../adapters/dynamodb/tables.ts'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import type { RequestFilter } from '../../core/request-filter.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createRandomTable } from './harness.ts'
import { requestStoreSuite } from './request-store.suite.ts'

let services: Services
beforeAll(async () => {
  services = await startServices()
})
afterAll(async () => {
  await services?.stop()
})

requestStoreSuite('memory', async () => {
  const pins = createMemoryPinStore()
  return { store: createMemoryRequestStore(), pins }
})

async function dynamo(opts: { countCache?: false | { indexSettleMs: number } } = {}) {
  const [tableName, pinsTableName] = await Promise.all([
    createRandomTable(services, requestsTable),
    createRandomTable(services, pinsTable),
  ])
  const client = services.clients.dynamodb
  return {
    tableName,
    store: createDynamoRequestStore({ client, tableName, ...opts }),
    pins: createDynamoPinStore({ client, tableName: pinsTableName }),
  }
}

requestStoreSuite('DynamoDB (dynalite), count cache off', () => dynamo({ countCache: false }))
// dynalite updates indexes with the item, so the cache may store entries right after a write: the suite's
// counts after puts and deletes then exercise the invalidation.
requestStoreSuite('DynamoDB (dynalite), count cache on', () => dynamo({ countCache: { indexSettleMs: 0 } }))

describe('DynamoDB request items', () => {
  it('store the documented shape, with derived index keys', async () => {
    const { store, tableName } = await dynamo()
    await store.put({
      requestid: 'r1',
      owner: 'psa:alice',
      cid: 'bafyx',
      sourceCid: 'Qmx',
      name: 'My File',
      meta: { k: 'v' },
      origins: ['/ip4/1.2.3.4/tcp/1'],
      created: 5,
      knownPinned: false,
    })
    const { Item } = await services.clients.dynamodb.send(
      new GetItemCommand({ TableName: tableName, Key: { requestid: { S: 'r1' } }, ConsistentRead: true }),
    )
    expect(Item).toEqual({
      requestid: { S: 'r1' },
      owner: { S: 'psa:alice' },
      cid: { S: 'bafyx' },
      sourceCid: { S: 'Qmx' },
      ownerCid: { S: 'psa:alice#bafyx' },
      name: { S: 'My File' },
      nameLower: { S: 'my file' },
      ownerName: { S: 'psa:alice#my file' },
      meta: { M: { k: { S: 'v' } } },
      origins: { L: [{ S: '/ip4/1.2.3.4/tcp/1' }] },
      created: { N: '5' },
      knownPinned: { BOOL: false },
      pendingOwner: { S: 'psa:alice' },
    })
  })

  it('keep the owner counter item out of reads and deletes', async () => {
    const { store } = await dynamo()
    await store.reserveCreated('psa:alice', 10)
    expect(await store.get('#owner#psa:alice')).toBeUndefined()
    expect(await store.delete('#owner#psa:alice')).toBe(false)
    expect(await store.reserveCreated('psa:alice', 10)).toBe(11)
  })
})

describe('the count cache key', () => {
  const full: RequestFilter = {
    cids: ['bafya', 'bafyb'],
    name: { text: 'x', match: 'ipartial' },
    meta: { a: '1', b: '2' },
    before: 500,
    after: 100,
    notKnownPinned: true,
  }

  it('is derived from every condition of the filter, so no two filters share an entry', () => {
    const key = countCacheKey('psa:u', full)
    const variants: RequestFilter[] = [
      { ...full, cids: ['bafya'] },
      { ...full, cids: undefined },
      { ...full, name: { text: 'x', match: 'partial' } },
      { ...full, name: undefined },
      { ...full, meta: { a: '1' } },
      { ...full, meta: undefined },
      { ...full, notKnownPinned: undefined },
      // A condition added to RequestFilter later keys its own entries without anyone listing it.
      { ...full, ...{ codec: 'dag-pb' } } as RequestFilter,
    ]
    for (const v of variants) expect(countCacheKey('psa:u', v), JSON.stringify(v)).not.toBe(key)
    expect(countCacheKey('psa:v', full)).not.toBe(key)
  })

  it('leaves out the time range (counted from the cached values) and the order fields are given in', () => {
    const key = countCacheKey('psa:u', full)
    expect(countCacheKey('psa:u', { ...full, before: 900, after: undefined })).toBe(key)
    expect(
      countCacheKey('psa:u', {
        notKnownPinned: true,
        meta: { b: '2', a: '1' },
        name: { match: 'ipartial', text: 'x' },
        cids: ['bafya', 'bafyb'],
      }),
    ).toBe(key)
  })
})
