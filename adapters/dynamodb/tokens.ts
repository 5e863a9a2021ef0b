/**
 * TokenStore on DynamoDB (table `tokensTable` in ./tables.ts): one item per access token, keyed by its sha256.
 * Attributes: hash S, user S, created N, label S?. Listing one user's tokens reads the `user-created` index;
 * listing every token (an operator's `pickup token list`) is a Scan of this small table, one item per token.
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb'
import type { AccessTokenRecord, TokenStore } from '../../core/ports.ts'
import { indexNamed, tokensTable } from './tables.ts'

type Item = Record<string, AttributeValue>

const USER_INDEX = indexNamed(tokensTable, 'user-created')

export interface DynamoTokenStoreOptions {
  client: DynamoDBClient
  tableName: string
}

export function encodeToken(record: AccessTokenRecord): Item {
  const item: Item = {
    hash: { S: record.hash },
    user: { S: record.user },
    created: { N: String(record.created) },
  }
  if (record.label !== undefined) item.label = { S: record.label }
  return item
}

export function decodeToken(item: Item): AccessTokenRecord {
  const hash = item.hash?.S
  const user = item.user?.S
  const created = Number(item.created?.N)
  if (hash === undefined || user === undefined || !Number.isFinite(created)) {
    throw new Error('token item: missing or mistyped hash, user or created')
  }
  const record: AccessTokenRecord = { hash, user, created }
  if (item.label !== undefined) {
    if (item.label.S === undefined) throw new Error('token item: label is not a string')
    record.label = item.label.S
  }
  return record
}

function byCreated(a: AccessTokenRecord, b: AccessTokenRecord): number {
  return a.created - b.created || (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0)
}

export function createDynamoTokenStore({ client, tableName }: DynamoTokenStoreOptions): TokenStore {
  return {
    async put(record) {
      await client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: encodeToken(record),
          ConditionExpression: 'attribute_not_exists(#hash)',
          ExpressionAttributeNames: { '#hash': 'hash' },
        }),
      )
    },

    async get(hash) {
      const res = await client.send(
        new GetItemCommand({ TableName: tableName, Key: { hash: { S: hash } }, ConsistentRead: true }),
      )
      return res.Item ? decodeToken(res.Item) : undefined
    },

    async list(opts = {}) {
      const records: AccessTokenRecord[] = []
      let startKey: Item | undefined
      do {
        const res =
          opts.user === undefined
            ? await client.send(
                new ScanCommand({
                  TableName: tableName,
                  ...(startKey ? { ExclusiveStartKey: startKey } : {}),
                }),
              )
            : await client.send(
                new QueryCommand({
                  TableName: tableName,
                  IndexName: USER_INDEX,
                  KeyConditionExpression: '#user = :user',
                  ExpressionAttributeNames: { '#user': 'user' },
                  ExpressionAttributeValues: { ':user': { S: opts.user } },
                  ...(startKey ? { ExclusiveStartKey: startKey } : {}),
                }),
              )
        for (const item of res.Items ?? []) records.push(decodeToken(item))
        startKey = res.LastEvaluatedKey
      } while (startKey)
      return records.sort(byCreated)
    },

    async delete(hash) {
      const res = await client.send(
        new DeleteItemCommand({ TableName: tableName, Key: { hash: { S: hash } }, ReturnValues: 'ALL_OLD' }),
      )
      return res.Attributes !== undefined
    },
  }
}
