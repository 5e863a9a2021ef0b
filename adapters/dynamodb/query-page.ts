/**
 * One page of an index query: items from `startKey` on, up to `limit` of them, and whether more follow.
 * It asks for one item more than the page, so a page is followed by a cursor only when another page exists
 * (DynamoDB's own LastEvaluatedKey is also set when the last page happens to end exactly at `Limit`).
 */
import {
  type AttributeValue,
  type DynamoDBClient,
  QueryCommand,
  type QueryCommandInput,
} from '@aws-sdk/client-dynamodb'
import { InvalidInputError } from '../../core/errors.ts'

type Item = Record<string, AttributeValue>

export async function queryPage<T>(
  client: DynamoDBClient,
  input: Omit<QueryCommandInput, 'Limit' | 'ExclusiveStartKey'>,
  decode: (item: Item) => T,
  opts: { limit: number; startKey?: Item },
): Promise<{ items: T[]; more: boolean }> {
  const { limit } = opts
  if (!Number.isInteger(limit) || limit < 1) {
    throw new InvalidInputError('INVALID_LIMIT', `limit must be a positive integer, got ${limit}`)
  }
  const items: T[] = []
  let startKey = opts.startKey
  do {
    const res = await client.send(
      new QueryCommand({
        ...input,
        Limit: limit + 1 - items.length,
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    )
    for (const item of res.Items ?? []) items.push(decode(item))
    startKey = res.LastEvaluatedKey
  } while (startKey && items.length <= limit)
  return { items: items.slice(0, limit), more: items.length > limit }
}
