import { GetItemCommand } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { workersTable } from '../../adapters/dynamodb/tables.ts'
import { createDynamoWorkerRegistry } from '../../adapters/dynamodb/workers.ts'
import { createMemoryWorkerRegistry } from '../../adapters/memory/workers.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createRandomTable } from './harness.ts'
import { workerRegistrySuite } from './worker-registry.suite.ts'

let services: Services
beforeAll(async () => {
  services = await startServices()
})
afterAll(async () => {
  await services?.stop()
})

workerRegistrySuite('memory', async () => createMemoryWorkerRegistry())

workerRegistrySuite('DynamoDB (dynalite)', async () => {
  const tableName = await createRandomTable(services, workersTable)
  return createDynamoWorkerRegistry({ client: services.clients.dynamodb, tableName })
})

describe('DynamoDB worker entries', () => {
  it('carry a TTL attribute in epoch seconds, an hour past expiry', async () => {
    const tableName = await createRandomTable(services, workersTable)
    const registry = createDynamoWorkerRegistry({ client: services.clients.dynamodb, tableName })
    await registry.announce({ id: 'w1', multiaddrs: [], expires: 1_700_000_000_500 })
    const { Item } = await services.clients.dynamodb.send(
      new GetItemCommand({ TableName: tableName, Key: { id: { S: 'w1' } } }),
    )
    expect(Item?.ttl).toEqual({ N: String(1_700_000_001 + 3600) })
  })
})
