/**
 * The AWS SDK clients pickup builds (the deployed system's and local mode's) run without the SDK's logger
 * middleware, and only without it: calls still succeed, are signed and retried, and fail with the service's
 * named errors (against local mode's dynalite, through the SDK).
 */
import { GetItemCommand, ResourceNotFoundException } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createDynamoTokenStore } from '../../adapters/dynamodb/tokens.ts'
import { type Services, startServices } from '../../local/services.ts'

type Stack = { middlewareStack: { identify(): string[] } }
const names = (client: Stack) => client.middlewareStack.identify().map((m) => m.split(' ')[0])

describe('AWS SDK clients', () => {
  it("the deployed system's clients have no logger middleware and keep signing, retries and (de)serialising", () => {
    const clients = createAwsClients({ AWS_REGION: 'us-east-1', S3_FORCE_PATH_STYLE: false })
    for (const [service, client] of Object.entries(clients)) {
      const stack = names(client)
      expect(stack, service).not.toContain('loggerMiddleware')
      for (const kept of [
        'serializerMiddleware',
        'retryMiddleware',
        'httpSigningMiddleware',
        'deserializerMiddleware',
      ]) {
        expect(stack, service).toContain(kept)
      }
      client.destroy()
    }
  })

  describe("local mode's clients", () => {
    let services: Services
    beforeAll(async () => {
      services = await startServices()
    })
    afterAll(async () => {
      await services?.stop()
    })

    it('have no logger middleware, and calls still succeed and fail with named errors', async () => {
      for (const [service, client] of Object.entries(services.clients)) {
        expect(names(client), service).not.toContain('loggerMiddleware')
      }
      const tokens = createDynamoTokenStore({
        client: services.clients.dynamodb,
        tableName: services.names.tokensTable,
      })
      await tokens.put({ hash: 'ab'.repeat(32), user: 'alice', created: 1 })
      expect(await tokens.get('ab'.repeat(32))).toEqual({ hash: 'ab'.repeat(32), user: 'alice', created: 1 })
      await expect(
        services.clients.dynamodb.send(
          new GetItemCommand({ TableName: 'no-such-table', Key: { id: { S: 'x' } } }),
        ),
      ).rejects.toBeInstanceOf(ResourceNotFoundException)
    })
  })
})
