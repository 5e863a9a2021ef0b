/**
 * Strongly consistent BatchGetItem over any number of keys, in any tables: chunks of 100 (the API's most),
 * and the keys DynamoDB leaves unprocessed (throttling) retried with jittered backoff.
 */

import { setTimeout as sleep } from 'node:timers/promises'
import { BatchGetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { Item } from './item.ts'

const BATCH_GET_MAX_KEYS = 100
const BATCH_GET_MAX_RETRIES = 8

/** The items found, by table name (missing keys are simply absent). */
export async function batchGetAll(
  client: DynamoDBClient,
  keys: ReadonlyArray<{ table: string; key: Item }>,
): Promise<Map<string, Item[]>> {
  const found = new Map<string, Item[]>()
  for (let start = 0; start < keys.length; start += BATCH_GET_MAX_KEYS) {
    let pending: Record<string, { Keys: Item[]; ConsistentRead: boolean }> = {}
    for (const { table, key } of keys.slice(start, start + BATCH_GET_MAX_KEYS)) {
      pending[table] ??= { Keys: [], ConsistentRead: true }
      pending[table].Keys.push(key)
    }
    for (let attempt = 0; Object.keys(pending).length > 0; attempt++) {
      if (attempt > BATCH_GET_MAX_RETRIES) {
        throw new Error(`BatchGetItem left keys unprocessed after ${attempt} attempts`)
      }
      if (attempt > 0) await sleep(Math.min(25 * 2 ** attempt, 2_000) * (0.5 + Math.random()))
      const res = await client.send(new BatchGetItemCommand({ RequestItems: pending }))
      for (const [table, items] of Object.entries(res.Responses ?? {})) {
        const list = found.get(table) ?? []
        list.push(...items)
        found.set(table, list)
      }
      pending = {}
      for (const [table, value] of Object.entries(res.UnprocessedKeys ?? {})) {
        if (value.Keys && value.Keys.length > 0) pending[table] = { Keys: value.Keys, ConsistentRead: true }
      }
    }
  }
  return found
}
