import { afterAll, beforeAll } from 'vitest'
import { tokensTable } from '../../adapters/dynamodb/tables.ts'
import { createDynamoTokenStore } from '../../adapters/dynamodb/tokens.ts'
import { createMemoryTokenStore } from '../../adapters/memory/tokens.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createRandomTable } from './harness.ts'
import { tokenStoreSuite } from './token-store.suite.ts'

let services: Services
beforeAll(async () => {
  services = await startServices()
})
afterAll(async () => {
  await services?.stop()
})

tokenStoreSuite('memory', async () => createMemoryTokenStore())

tokenStoreSuite('DynamoDB (dynalite)', async () => {
  const tableName = await createRandomTable(services, tokensTable)
  return createDynamoTokenStore({ client: services.clients.dynamodb, tableName })
})
