import { afterAll, beforeAll } from 'vitest'
import { createDynamoCollectionStore } from '../../adapters/dynamodb/collections.ts'
import { collectionsTable } from '../../adapters/dynamodb/tables.ts'
import { createMemoryCollectionStore } from '../../adapters/memory/collections.ts'
import { type Services, startServices } from '../../local/services.ts'
import { collectionStoreSuite } from './collection-store.suite.ts'
import { createRandomTable } from './harness.ts'

let services: Services
beforeAll(async () => {
  services = await startServices()
})
afterAll(async () => {
  await services?.stop()
})

collectionStoreSuite('memory', async () => createMemoryCollectionStore())

collectionStoreSuite('DynamoDB (dynalite)', async () => {
  const tableName = await createRandomTable(services, collectionsTable)
  return createDynamoCollectionStore({ client: services.clients.dynamodb, tableName })
})
