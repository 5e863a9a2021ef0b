/**
 * WorkerRegistry on DynamoDB (table `workersTable` in ./tables.ts): one item per running worker.
 *
 * `live` Scans the whole table with a filter on `expires`. That is deliberate: the table only ever holds one
 * small item per running worker (workers remove themselves on shutdown, and in AWS the TTL attribute `ttl`
 * deletes the entries of workers that died), so a Scan reads a handful of items; an index would not be cheaper.
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  PutItemCommand,
  ScanCommand,
} from '@aws-sdk/client-dynamodb'
import type { WorkerInfo, WorkerRegistry } from '../../core/ports.ts'

type Item = Record<string, AttributeValue>

/** How long after `expires` DynamoDB's TTL may delete an entry (TTL deletion is itself lazy). */
const TTL_GRACE_SECONDS = 60 * 60

export interface DynamoWorkerRegistryOptions {
  client: DynamoDBClient
  tableName: string
}

/**
 * Attributes: id S, multiaddrs L(S), expires N (epoch ms), ttl N (epoch seconds, for DynamoDB TTL), ready BOOL
 * and problem S (absent in entries of older workers: ready).
 */
export function encodeWorker(info: WorkerInfo): Item {
  return {
    id: { S: info.id },
    multiaddrs: { L: info.multiaddrs.map((a) => ({ S: a })) },
    expires: { N: String(info.expires) },
    ttl: { N: String(Math.ceil(info.expires / 1000) + TTL_GRACE_SECONDS) },
    ...(info.ready === undefined ? {} : { ready: { BOOL: info.ready } }),
    ...(info.problem === undefined ? {} : { problem: { S: info.problem } }),
  }
}

export function decodeWorker(item: Item): WorkerInfo {
  const id = item.id?.S
  const expires = Number(item.expires?.N)
  const list = item.multiaddrs?.L
  if (id === undefined || !Number.isFinite(expires) || list === undefined) {
    throw new Error('worker item: missing or mistyped id, expires or multiaddrs')
  }
  const multiaddrs = list.map((v) => {
    if (v.S === undefined) throw new Error('worker item: a multiaddr is not a string')
    return v.S
  })
  const ready = item.ready?.BOOL
  const problem = item.problem?.S
  return {
    id,
    multiaddrs,
    expires,
    ...(ready === undefined ? {} : { ready }),
    ...(problem === undefined ? {} : { problem }),
  }
}

export function createDynamoWorkerRegistry({
  client,
  tableName,
}: DynamoWorkerRegistryOptions): WorkerRegistry {
  return {
    async announce(info) {
      await client.send(new PutItemCommand({ TableName: tableName, Item: encodeWorker(info) }))
    },

    async remove(id) {
      await client.send(new DeleteItemCommand({ TableName: tableName, Key: { id: { S: id } } }))
    },

    async live(now) {
      const workers: WorkerInfo[] = []
      let startKey: Item | undefined
      do {
        const res = await client.send(
          new ScanCommand({
            TableName: tableName,
            FilterExpression: '#expires > :now',
            ExpressionAttributeNames: { '#expires': 'expires' },
            ExpressionAttributeValues: { ':now': { N: String(now) } },
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        )
        for (const item of res.Items ?? []) workers.push(decodeWorker(item))
        startKey = res.LastEvaluatedKey
      } while (startKey)
      return workers.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    },
  }
}
