/**
 * CollectionStore on DynamoDB: one table (`collectionsTable`) holding, under the partition `c#<id>`, the
 * collection (sort key `meta`), its tokens (`t#<token id, zero-padded to 78 digits>`, so they sort
 * numerically) and the roots it pins (`r#<cid>`). Only the collection item carries `owner`, so the
 * `owner-created` index is sparse: one owner's collections, newest first.
 *
 * Attributes of the collection: id S, owner S, chainId N, address S, name S?, follow BOOL, standard S?,
 * status S, error S?, checkpoint S? (JSON), followChecked N?, deleting N?, jobId S?, summary S? (JSON) with
 * summaryAsOf N (for the condition that keeps the latest count), lastJobFailure S? (JSON), created N, updated N;
 * a following collection also has `following` S ('1') and `followDue` N (followChecked, 0 before the first
 * check), the keys of the sparse `following-due` index. Of a token: tokenId S, tokenURI S?, metadata S and
 * media S (JSON, checked against a schema as they are read), tokenStatus S (for the status filter), updated N.
 * Of a root: cid S, requestid S.
 */
import {
  type AttributeValue,
  BatchWriteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb'
import { z } from 'zod'
import type { EnumerationCheckpoint } from '../../core/collections/enumeration.ts'
import {
  COLLECTION_STATUSES,
  type CollectionRecord,
  type CollectionRoot,
  type CollectionToken,
  type ContentRef,
  type MediaEntry,
  REF_STATUSES,
  tokenSortKey,
  tokenStatus,
} from '../../core/collections/model.ts'
import { type CollectionStore, tokenScanBudget } from '../../core/collections/ports.ts'
import { InvalidInputError } from '../../core/errors.ts'
import { collectionCursor, rootCursor, tokenCursor } from '../cursors.ts'
import { batchGetAll } from './batch-get.ts'
import { type Item, isConditionFailed, itemReader, n, S } from './item.ts'
import { queryPage } from './query-page.ts'
import { collectionsTable, indexNamed } from './tables.ts'

const OWNER_INDEX = indexNamed(collectionsTable, 'owner-created')
const FOLLOWING_INDEX = indexNamed(collectionsTable, 'following-due')
const FOLLOWING = S('1')
const pk = (id: string) => S(`c#${id}`)
const META = S('meta')
const tokenSk = (tokenId: string) => S(`t#${tokenSortKey(tokenId)}`)
const rootSk = (cid: string) => S(`r#${cid}`)
/** The token id a token's sort key holds (`t#` and the id zero-padded, which tokenSortKey pads again). */
const tokenIdOfSk = (sk: string) => sk.slice(2).replace(/^0+(?=.)/, '')

const collectionReader = itemReader('collection')
const tokenReader = itemReader('collection token')

const checkpointSchema = z.union([
  z.object({
    standard: z.literal('erc721'),
    method: z.literal('index'),
    total: z.string(),
    next: z.string(),
  }),
  z.object({
    standard: z.enum(['erc721', 'erc1155']),
    method: z.literal('logs'),
    fromBlock: z.string(),
    toBlock: z.string(),
    span: z.number(),
    maxSpan: z.number(),
  }),
])

const count = z.number().int().min(0)
const jobFailureSchema = z.object({
  step: z.string(),
  error: z.string(),
  at: z.number(),
  receives: z.number(),
})
const summarySchema = z.object({
  asOf: z.number(),
  tokens: z.object({ total: count, archived: count, incomplete: count, failed: count }),
  cids: z.object({ total: count, pinned: count, queued: count, pinning: count, failed: count }),
})

const refShape = {
  uri: z.string(),
  kind: z.enum(['ipfs', 'data', 'web', 'unsupported']),
  cid: z.string().optional(),
  path: z.string().optional(),
  cidSource: z.enum(['chain', 'pickup']).optional(),
  url: z.string().optional(),
  fetched: z.number().optional(),
  attempts: z.number().optional(),
  status: z.enum(REF_STATUSES),
  error: z.string().optional(),
}
const refSchema = z.object(refShape)
const mediaSchema = z.array(z.object({ ...refShape, field: z.string() }))

function parseJson<T>(schema: z.ZodType<T>, text: string, what: string, fail: (w: string) => never): T {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return fail(`${what} is not JSON`)
  }
  const parsed = schema.safeParse(value)
  return parsed.success ? parsed.data : fail(`${what} does not have its shape`)
}

/** Drops undefined properties (zod's optional output carries them explicitly). */
function defined<T extends object>(v: T): T {
  return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined)) as T
}

export function encodeCollection(r: CollectionRecord): Item {
  const item: Item = {
    pk: pk(r.id),
    sk: META,
    id: S(r.id),
    owner: S(r.owner),
    chainId: n(r.chainId),
    address: S(r.address),
    follow: { BOOL: r.follow },
    status: S(r.status),
    created: n(r.created),
    updated: n(r.updated),
  }
  if (r.name !== undefined) item.name = S(r.name)
  if (r.standard !== undefined) item.standard = S(r.standard)
  if (r.error !== undefined) item.error = S(r.error)
  if (r.checkpoint !== undefined) item.checkpoint = S(JSON.stringify(r.checkpoint))
  if (r.followChecked !== undefined) item.followChecked = n(r.followChecked)
  if (r.deleting !== undefined) item.deleting = n(r.deleting)
  if (r.jobId !== undefined) item.jobId = S(r.jobId)
  if (r.lastJobFailure !== undefined) item.lastJobFailure = S(JSON.stringify(r.lastJobFailure))
  if (r.summary !== undefined) {
    item.summary = S(JSON.stringify(r.summary))
    item.summaryAsOf = n(r.summary.asOf)
  }
  if (r.follow) {
    item.following = FOLLOWING
    item.followDue = n(r.followChecked ?? 0)
  }
  return item
}

export function decodeCollection(item: Item): CollectionRecord {
  const { str, num, fail } = collectionReader
  const status = str(item, 'status')
  if (!(COLLECTION_STATUSES as readonly string[]).includes(status)) fail(`status ${status} is not one`)
  const follow = item.follow?.BOOL
  if (follow === undefined) fail('follow is not a boolean')
  const r: CollectionRecord = {
    id: str(item, 'id'),
    owner: str(item, 'owner'),
    chainId: num(item, 'chainId'),
    address: str(item, 'address'),
    follow: follow === true,
    status: status as CollectionRecord['status'],
    created: num(item, 'created'),
    updated: num(item, 'updated'),
  }
  if (item.name !== undefined) r.name = str(item, 'name')
  if (item.standard !== undefined) {
    const standard = str(item, 'standard')
    if (standard !== 'erc721' && standard !== 'erc1155') fail(`standard ${standard} is not one`)
    r.standard = standard as 'erc721' | 'erc1155'
  }
  if (item.error !== undefined) r.error = str(item, 'error')
  if (item.checkpoint !== undefined)
    r.checkpoint = defined(
      parseJson(checkpointSchema, str(item, 'checkpoint'), 'checkpoint', fail),
    ) as EnumerationCheckpoint
  if (item.followChecked !== undefined) r.followChecked = num(item, 'followChecked')
  if (item.deleting !== undefined) r.deleting = num(item, 'deleting')
  if (item.jobId !== undefined) r.jobId = str(item, 'jobId')
  if (item.summary !== undefined) r.summary = parseJson(summarySchema, str(item, 'summary'), 'summary', fail)
  if (item.lastJobFailure !== undefined) {
    r.lastJobFailure = parseJson(jobFailureSchema, str(item, 'lastJobFailure'), 'lastJobFailure', fail)
  }
  return r
}

export function encodeToken(t: CollectionToken): Item {
  const item: Item = {
    pk: pk(t.collectionId),
    sk: tokenSk(t.tokenId),
    collectionId: S(t.collectionId),
    tokenId: S(t.tokenId),
    metadata: S(JSON.stringify(t.metadata)),
    media: S(JSON.stringify(t.media)),
    tokenStatus: S(tokenStatus(t)),
    updated: n(t.updated),
  }
  if (t.tokenURI !== undefined) item.tokenURI = S(t.tokenURI)
  return item
}

export function decodeToken(item: Item): CollectionToken {
  const { str, num, fail } = tokenReader
  const t: CollectionToken = {
    collectionId: str(item, 'collectionId'),
    tokenId: str(item, 'tokenId'),
    metadata: defined(parseJson(refSchema, str(item, 'metadata'), 'metadata', fail)) as ContentRef,
    media: parseJson(mediaSchema, str(item, 'media'), 'media', fail).map((m) => defined(m) as MediaEntry),
    updated: num(item, 'updated'),
  }
  if (item.tokenURI !== undefined) t.tokenURI = str(item, 'tokenURI')
  return t
}

export interface DynamoCollectionStoreOptions {
  client: DynamoDBClient
  tableName: string
}

export function createDynamoCollectionStore({
  client,
  tableName,
}: DynamoCollectionStoreOptions): CollectionStore {
  async function batchWrite(requests: Array<Record<string, unknown>>): Promise<void> {
    for (let i = 0; i < requests.length; i += 25) {
      let pending: unknown[] | undefined = requests.slice(i, i + 25)
      for (let attempt = 0; pending && pending.length > 0; attempt++) {
        if (attempt > 8) throw new Error('DynamoDB left writes unprocessed through 8 retries')
        if (attempt > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt))
        const res: { UnprocessedItems?: Record<string, unknown[]> } = await client.send(
          new BatchWriteItemCommand({ RequestItems: { [tableName]: pending as never } }),
        )
        pending = res.UnprocessedItems?.[tableName]
      }
    }
  }

  return {
    async create(record) {
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: encodeCollection(record),
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        )
        return { record, created: true }
      } catch (err) {
        if (!isConditionFailed(err)) throw err
        const existing = await this.get(record.id)
        if (!existing) throw err
        return { record: existing, created: false }
      }
    },

    async get(id) {
      const res = await client.send(
        new GetItemCommand({ TableName: tableName, Key: { pk: pk(id), sk: META }, ConsistentRead: true }),
      )
      return res.Item ? decodeCollection(res.Item) : undefined
    },

    async update(id, patch, now, opts = {}) {
      const names: Record<string, string> = { '#pk': 'pk', '#updated': 'updated' }
      const values: Record<string, AttributeValue> = { ':updated': n(now) }
      const sets = ['#updated = :updated']
      const { remove, ...set } = patch
      for (const [key, value] of Object.entries(set)) {
        if (value === undefined) continue
        names[`#${key}`] = key
        values[`:${key}`] =
          key === 'checkpoint'
            ? S(JSON.stringify(value))
            : typeof value === 'boolean'
              ? { BOOL: value }
              : typeof value === 'number'
                ? n(value)
                : S(String(value))
        sets.push(`#${key} = :${key}`)
      }
      const removes = (remove ?? []).map((key) => {
        names[`#${key}`] = key
        return `#${key}`
      })
      // The following-due index's keys go with `follow` and `followChecked`.
      if (set.follow === false) {
        names['#following'] = 'following'
        names['#followDue'] = 'followDue'
        removes.push('#following', '#followDue')
      } else {
        if (set.follow === true) {
          names['#following'] = 'following'
          values[':following'] = FOLLOWING
          sets.push('#following = :following')
        }
        if (set.followChecked !== undefined) {
          names['#followDue'] = 'followDue'
          sets.push('#followDue = :followChecked')
        } else if (set.follow === true) {
          names['#followDue'] = 'followDue'
          values[':due0'] = n(0)
          sets.push('#followDue = if_not_exists(#followDue, :due0)')
        }
      }
      let condition = 'attribute_exists(#pk)'
      if (opts.ifStatus) {
        names['#status'] = 'status'
        const keys = opts.ifStatus.map((s, i) => {
          values[`:if${i}`] = S(s)
          return `:if${i}`
        })
        condition += ` AND #status IN (${keys.join(', ')})`
      }
      if (opts.ifJobId !== undefined) {
        names['#jobId'] = 'jobId'
        if (opts.ifJobId === null) condition += ' AND attribute_not_exists(#jobId)'
        else {
          values[':ifJobId'] = S(opts.ifJobId)
          condition += ' AND #jobId = :ifJobId'
        }
      }
      try {
        const res = await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: { pk: pk(id), sk: META },
            UpdateExpression: `SET ${sets.join(', ')}${removes.length ? ` REMOVE ${removes.join(', ')}` : ''}`,
            ConditionExpression: condition,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
            ReturnValues: 'ALL_NEW',
          }),
        )
        return res.Attributes ? decodeCollection(res.Attributes) : undefined
      } catch (err) {
        if (isConditionFailed(err)) return undefined
        throw err
      }
    },

    async putSummary(id, summary) {
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: { pk: pk(id), sk: META },
            UpdateExpression: 'SET #summary = :summary, #asOf = :asOf',
            ConditionExpression: 'attribute_exists(#pk) AND (attribute_not_exists(#asOf) OR #asOf <= :asOf)',
            ExpressionAttributeNames: { '#pk': 'pk', '#summary': 'summary', '#asOf': 'summaryAsOf' },
            ExpressionAttributeValues: { ':summary': S(JSON.stringify(summary)), ':asOf': n(summary.asOf) },
          }),
        )
        return true
      } catch (err) {
        if (isConditionFailed(err)) return false
        throw err
      }
    },

    async putJobFailure(id, failure) {
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: { pk: pk(id), sk: META },
            UpdateExpression: 'SET #failure = :failure',
            ConditionExpression: 'attribute_exists(#pk)',
            ExpressionAttributeNames: { '#pk': 'pk', '#failure': 'lastJobFailure' },
            ExpressionAttributeValues: { ':failure': S(JSON.stringify(failure)) },
          }),
        )
        return true
      } catch (err) {
        if (isConditionFailed(err)) return false
        throw err
      }
    },

    async listFollowing(opts) {
      const { items } = await queryPage(
        client,
        {
          TableName: tableName,
          IndexName: FOLLOWING_INDEX,
          KeyConditionExpression: '#following = :following',
          ExpressionAttributeNames: { '#following': 'following' },
          ExpressionAttributeValues: { ':following': FOLLOWING },
        },
        decodeCollection,
        { limit: opts.limit },
      )
      return items
    },

    async listByOwner(owner, opts) {
      const after = opts.cursor === undefined ? undefined : collectionCursor.decode(opts.cursor)
      const { items, more } = await queryPage(
        client,
        {
          TableName: tableName,
          IndexName: OWNER_INDEX,
          KeyConditionExpression: '#owner = :owner',
          ExpressionAttributeNames: { '#owner': 'owner' },
          ExpressionAttributeValues: { ':owner': S(owner) },
          ScanIndexForward: false,
        },
        decodeCollection,
        {
          limit: opts.limit,
          ...(after
            ? { startKey: { pk: pk(after.id), sk: META, owner: S(owner), created: n(after.created) } }
            : {}),
        },
      )
      const last = items.at(-1)
      return {
        collections: items,
        ...(more && last ? { cursor: collectionCursor.encode(last.created, last.id) } : {}),
      }
    },

    async putTokens(tokens) {
      await batchWrite(tokens.map((t) => ({ PutRequest: { Item: encodeToken(t) } })))
    },

    async getTokens(collectionId, tokenIds) {
      const keys = [...new Set(tokenIds)].map((id) => ({
        table: tableName,
        key: { pk: pk(collectionId), sk: tokenSk(id) },
      }))
      const items = (await batchGetAll(client, keys)).get(tableName) ?? []
      return new Map(items.map((item) => [decodeToken(item).tokenId, decodeToken(item)]))
    },

    async getToken(collectionId, tokenId) {
      const res = await client.send(
        new GetItemCommand({
          TableName: tableName,
          Key: { pk: pk(collectionId), sk: tokenSk(tokenId) },
          ConsistentRead: true,
        }),
      )
      return res.Item ? decodeToken(res.Item) : undefined
    },

    async listTokens(collectionId, opts) {
      const after = opts.cursor === undefined ? undefined : tokenCursor.decode(opts.cursor)
      const input = {
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :t)',
        ExpressionAttributeValues: { ':pk': pk(collectionId), ':t': S('t#') } as Record<
          string,
          AttributeValue
        >,
        ConsistentRead: true,
      }
      const startKey = after !== undefined ? { pk: pk(collectionId), sk: tokenSk(after) } : undefined
      if (!opts.status) {
        const { items, more } = await queryPage(client, input, decodeToken, {
          limit: opts.limit,
          ...(startKey ? { startKey } : {}),
        })
        const last = items.at(-1)
        return { tokens: items, ...(more && last ? { cursor: tokenCursor.encode(last.tokenId) } : {}) }
      }
      // A status is a filter: `Limit` bounds the tokens read, matching or not, to the budget.
      if (!Number.isInteger(opts.limit) || opts.limit < 1) {
        throw new InvalidInputError('INVALID_LIMIT', `limit must be a positive integer, got ${opts.limit}`)
      }
      const budget = tokenScanBudget(opts.limit)
      const items: CollectionToken[] = []
      let read = 0
      let next: Item | undefined = startKey
      do {
        const res = await client.send(
          new QueryCommand({
            ...input,
            FilterExpression: 'tokenStatus = :status',
            ExpressionAttributeValues: { ...input.ExpressionAttributeValues, ':status': S(opts.status) },
            Limit: budget - read,
            ...(next ? { ExclusiveStartKey: next } : {}),
          }),
        )
        read += res.ScannedCount ?? 0
        for (const item of res.Items ?? []) items.push(decodeToken(item))
        next = res.LastEvaluatedKey
      } while (next && items.length <= opts.limit && read < budget)
      const page = items.slice(0, opts.limit)
      // More than a page found: go on after its last token. Stopped by the budget: after the last token read.
      const last =
        items.length > opts.limit
          ? page.at(-1)?.tokenId
          : next
            ? tokenIdOfSk(tokenReader.str(next, 'sk'))
            : undefined
      return { tokens: page, ...(last !== undefined ? { cursor: tokenCursor.encode(last) } : {}) }
    },

    async putRoots(collectionId, roots) {
      await batchWrite(
        roots.map((r) => ({
          PutRequest: {
            Item: { pk: pk(collectionId), sk: rootSk(r.cid), cid: S(r.cid), requestid: S(r.requestid) },
          },
        })),
      )
    },

    async listRoots(collectionId, opts) {
      const after = opts.cursor === undefined ? undefined : rootCursor.decode(opts.cursor)
      const { str } = itemReader('collection root')
      const { items, more } = await queryPage(
        client,
        {
          TableName: tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :r)',
          ExpressionAttributeValues: { ':pk': pk(collectionId), ':r': S('r#') },
          ConsistentRead: true,
        },
        (item): CollectionRoot => ({ cid: str(item, 'cid'), requestid: str(item, 'requestid') }),
        {
          limit: opts.limit,
          ...(after !== undefined ? { startKey: { pk: pk(collectionId), sk: rootSk(after) } } : {}),
        },
      )
      const last = items.at(-1)
      return { roots: items, ...(more && last ? { cursor: rootCursor.encode(last.cid) } : {}) }
    },

    async delete(id) {
      // Tokens and roots first, the record last: a delete interrupted midway leaves a record to delete again.
      let startKey: Item | undefined
      let found = false
      do {
        const res = await client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': pk(id) },
            ProjectionExpression: 'pk, sk',
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        )
        const keys = (res.Items ?? []).filter((k) => {
          if (k.sk?.S !== 'meta') return true
          found = true
          return false
        })
        await batchWrite(keys.map((Key) => ({ DeleteRequest: { Key } })))
        startKey = res.LastEvaluatedKey
      } while (startKey)
      if (!found) return false
      await batchWrite([{ DeleteRequest: { Key: { pk: pk(id), sk: META } } }])
      return true
    },
  }
}
