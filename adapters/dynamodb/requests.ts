/**
 * RequestStore on DynamoDB (table `requestsTable` in ./tables.ts): one item per request, plus one counter item
 * per owner. Single-item conditional writes only (dynalite has no transactions).
 *
 * Request item: requestid S, owner S, cid S, sourceCid S, name S?, meta M(S), origins L(S), created N,
 * knownPinned BOOL?, and the derived index keys ownerCid S (`<owner>#<cid>`), nameLower S? and ownerName S?
 * (`<owner>#<lowercased name>`, when there is a name), knownFailed BOOL? (present only when true),
 * pendingOwner S? (only while knownPinned is false: `<owner>`, or `<owner>#failed` with knownFailed). Owners
 * must not contain `#`.
 *
 * Owner item (requestid `#owner#<owner>`, no `owner` attribute, so in no index): lastCreated N (the latest
 * `reserveCreated` value), version N (incremented after every put and delete of the owner's requests),
 * lastWrite N (epoch ms of that increment).
 *
 * Which index answers `find` and `count`:
 * - `cids`: `owner-cid-created`, one Query per CID (a user rarely holds more than a few requests per CID);
 * - `name` exact or iexact: `owner-name-created` (exact adds a filter on the original case);
 * - `notKnownPinned`: `pending-created`, sparse, holding only requests not yet seen pinned, in two partitions
 *   per owner: pending (`<owner>`, all `notKnownFailed` asks for) and known failed (`<owner>#failed`);
 * - otherwise `owner-created` (`owner-created-keys`, KEYS_ONLY, when counting with nothing but a time range).
 * `before`/`after` are key conditions on `created`; the remaining conditions (partial names, meta) are filter
 * expressions on the chosen index.
 *
 * Counting: a count reads every matching index entry (DynamoDB keeps no counts under arbitrary conditions),
 * and clients page through a large listing asking for `count` with every page (kubo stops when it equals what
 * it received). So the sorted `created` values of the requests matching a filter (time range aside) are cached
 * in memory per owner and filter (at most `maxValues` values in all), and any `before`/`after` range is
 * counted from them by binary search. An entry is used only while the owner's `version` is the one it was
 * computed at (one consistent GetItem per count; any put or delete of the owner's requests changes it) and for
 * at most `ttlMs`; it is not stored while the owner's last write is younger than `indexSettleMs`, since GSIs
 * are eventually consistent. For a user with 100,000 requests, a count with no filter but a time range reads
 * `owner-created-keys`: ~110 bytes an entry, ~11 MB in ~11 Query pages, ~1,400 read request units (a fraction
 * of a cent) and a few hundred milliseconds, once per listing (the cache is per process: a Lambda instance
 * serves one client's consecutive pages as a rule; another instance recomputes); each further page costs one
 * GetItem. Filters
 * on CIDs or exact names read only their own small partitions. `find` and `count` with a partial name or meta
 * read until they have their answer, however many entries do not match: the Pinning Service API's listings
 * use them only for filters an index answers (core/request-filter.ts indexAnswers), and `scan`, whose reads
 * are bounded, for the rest.
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  type DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb'
import { InvalidInputError } from '../../core/errors.ts'
import type { PinRequest, RequestPage, RequestScan, RequestStore } from '../../core/ports.ts'
import type { RequestFilter } from '../../core/request-filter.ts'
import { requestCursor } from '../cursors.ts'
import { batchGetAll } from './batch-get.ts'
import { type Item, isConditionFailed, itemReader, n, S } from './item.ts'
import { queryPage } from './query-page.ts'
import { indexNamed, requestsTable } from './tables.ts'

const OWNER_INDEX = indexNamed(requestsTable, 'owner-created')
const CID_INDEX = indexNamed(requestsTable, 'cid')
const OWNER_KEYS_INDEX = indexNamed(requestsTable, 'owner-created-keys')
const OWNER_CID_INDEX = indexNamed(requestsTable, 'owner-cid-created')
const OWNER_NAME_INDEX = indexNamed(requestsTable, 'owner-name-created')
const PENDING_INDEX = indexNamed(requestsTable, 'pending-created')

const OWNER_ITEM_PREFIX = '#owner#'

export interface CountCacheOptions {
  /** Longest an entry is used. Default 60 s. */
  ttlMs?: number
  /** Entries are not stored until the owner's last write is this old (GSI propagation). Default 2 s. */
  indexSettleMs?: number
  /** Most `created` values kept over all entries, 8 bytes each (least recently used go first). Default 1M. */
  maxValues?: number
}

export interface DynamoRequestStoreOptions {
  client: DynamoDBClient
  tableName: string
  /** See the module comment; `false` turns the cache off. */
  countCache?: false | CountCacheOptions
  /** Wall clock for the count cache. Default Date.now. */
  now?: () => number
}

// ---------------------------------------------------------------- encoding

export function encodeRequest(r: PinRequest): Item {
  if (r.owner.includes('#')) throw new TypeError(`request owner must not contain '#': ${r.owner}`)
  const item: Item = {
    requestid: S(r.requestid),
    owner: S(r.owner),
    cid: S(r.cid),
    sourceCid: S(r.sourceCid),
    ownerCid: S(`${r.owner}#${r.cid}`),
    meta: { M: Object.fromEntries(Object.entries(r.meta).map(([k, v]) => [k, S(v)])) },
    origins: { L: r.origins.map(S) },
    created: n(r.created),
  }
  if (r.name !== undefined) {
    const lower = r.name.toLowerCase()
    item.name = S(r.name)
    item.nameLower = S(lower)
    item.ownerName = S(`${r.owner}#${lower}`)
  }
  if (r.knownPinned !== undefined) item.knownPinned = { BOOL: r.knownPinned }
  const knownFailed = r.knownPinned === false && r.knownFailed === true
  if (knownFailed) item.knownFailed = { BOOL: true }
  if (r.knownPinned === false) item.pendingOwner = S(pendingPartition(r.owner, knownFailed))
  return item
}

const { str, num, map, strings, fail } = itemReader('request')

/** The owner's partition of `pending-created` a request not known pinned sits in. */
function pendingPartition(owner: string, knownFailed: boolean): string {
  return knownFailed ? `${owner}#failed` : owner
}

export function decodeRequest(item: Item): PinRequest {
  const meta: Record<string, string> = {}
  for (const [k, v] of Object.entries(map(item, 'meta'))) {
    meta[k] = v.S === undefined ? fail('a meta value is not a string') : v.S
  }
  if (item.origins?.L === undefined) fail('origins is not a list')
  const origins = strings(item, 'origins')
  const request: PinRequest = {
    requestid: str(item, 'requestid'),
    owner: str(item, 'owner'),
    cid: str(item, 'cid'),
    sourceCid: str(item, 'sourceCid'),
    meta,
    origins,
    created: num(item, 'created'),
  }
  if (item.name !== undefined) request.name = str(item, 'name')
  if (item.knownPinned !== undefined) {
    const b = item.knownPinned.BOOL
    request.knownPinned = b === undefined ? fail('knownPinned is not a boolean') : b
  }
  if (item.knownFailed !== undefined) {
    if (item.knownFailed.BOOL !== true) fail('knownFailed is not true')
    request.knownFailed = true
  }
  return request
}

/** A request item, as opposed to an owner's counter item. */
const isRequestItem = (item: Item): boolean => item.owner !== undefined

// ---------------------------------------------------------------- cursors

function requestStartKey(owner: string, after: { created: number; requestid: string }): Item {
  return { owner: S(owner), created: n(after.created), requestid: S(after.requestid) }
}

// ---------------------------------------------------------------- query plans

interface QueryPlan {
  index: string
  partition: { name: string; value: string }
  filters: string[]
  names: Record<string, string>
  values: Record<string, AttributeValue>
}

/** Inclusive integer bounds on `created` for the filter's exclusive `after`/`before`; undefined: none. */
function createdRange(filter: RequestFilter): { lo?: number; hi?: number; empty: boolean } {
  const lo = filter.after === undefined ? undefined : Math.floor(filter.after) + 1
  const hi = filter.before === undefined ? undefined : Math.ceil(filter.before) - 1
  return { lo, hi, empty: lo !== undefined && hi !== undefined && lo > hi }
}

/** One Query per plan; their results are disjoint. Empty when nothing can match. */
function planQueries(owner: string, filter: RequestFilter, counting: boolean): QueryPlan[] {
  const names: Record<string, string> = {}
  const values: Record<string, AttributeValue> = {}
  const filters: string[] = []
  let index: string
  let partitions: Array<{ name: string; value: string }>
  const name = filter.name
  let nameCovered = false
  let pendingCovered = false

  if (filter.cids !== undefined) {
    index = OWNER_CID_INDEX
    partitions = [...new Set(filter.cids)].map((cid) => ({ name: 'ownerCid', value: `${owner}#${cid}` }))
  } else if (name && (name.match === 'exact' || name.match === 'iexact')) {
    index = OWNER_NAME_INDEX
    partitions = [{ name: 'ownerName', value: `${owner}#${name.text.toLowerCase()}` }]
    nameCovered = name.match === 'iexact'
  } else if (filter.notKnownPinned) {
    index = PENDING_INDEX
    partitions = [{ name: 'pendingOwner', value: pendingPartition(owner, false) }]
    if (!filter.notKnownFailed)
      partitions.push({ name: 'pendingOwner', value: pendingPartition(owner, true) })
    pendingCovered = true
  } else {
    index = OWNER_INDEX
    partitions = [{ name: 'owner', value: owner }]
  }

  if (name && !nameCovered) {
    names['#name'] = name.match === 'exact' || name.match === 'partial' ? 'name' : 'nameLower'
    values[':name'] = S(
      name.match === 'exact' || name.match === 'partial' ? name.text : name.text.toLowerCase(),
    )
    filters.push(
      name.match === 'exact' || name.match === 'iexact' ? '#name = :name' : 'contains(#name, :name)',
    )
  }
  if (filter.meta) {
    const pairs = Object.entries(filter.meta)
    if (pairs.length > 0) names['#meta'] = 'meta'
    pairs.forEach(([k, v], i) => {
      names[`#mk${i}`] = k
      values[`:mv${i}`] = S(v)
      filters.push(`#meta.#mk${i} = :mv${i}`)
    })
  }
  if (filter.notKnownPinned && !pendingCovered) {
    names['#pendingOwner'] = 'pendingOwner'
    filters.push('attribute_exists(#pendingOwner)')
  }
  if (filter.notKnownFailed && !pendingCovered) {
    names['#knownFailed'] = 'knownFailed'
    filters.push('attribute_not_exists(#knownFailed)')
  }
  if (counting && index === OWNER_INDEX && filters.length === 0) index = OWNER_KEYS_INDEX
  return partitions.map((partition) => ({ index, partition, filters, names, values }))
}

function queryInput(
  tableName: string,
  plan: QueryPlan,
  range: { lo?: number; hi?: number },
  extra: Partial<QueryCommandInput>,
): QueryCommandInput {
  let key = '#pk = :pk'
  const names: Record<string, string> = { ...plan.names, '#pk': plan.partition.name }
  const values: Record<string, AttributeValue> = { ...plan.values, ':pk': S(plan.partition.value) }
  if (range.lo !== undefined || range.hi !== undefined) names['#created'] = 'created'
  if (range.lo !== undefined && range.hi !== undefined) {
    key += ' AND #created BETWEEN :lo AND :hi'
    values[':lo'] = n(range.lo)
    values[':hi'] = n(range.hi)
  } else if (range.lo !== undefined) {
    key += ' AND #created >= :lo'
    values[':lo'] = n(range.lo)
  } else if (range.hi !== undefined) {
    key += ' AND #created <= :hi'
    values[':hi'] = n(range.hi)
  }
  return {
    TableName: tableName,
    IndexName: plan.index,
    KeyConditionExpression: key,
    ...(plan.filters.length > 0 ? { FilterExpression: plan.filters.join(' AND ') } : {}),
    ExpressionAttributeNames: names,
    ExpressionAttributeValues: values,
    ScanIndexForward: false,
    ...extra,
  }
}

/** Newest first; ties (only possible across owners) by requestid, descending. */
function compareNewestFirst(a: PinRequest, b: PinRequest): number {
  if (a.created !== b.created) return b.created - a.created
  return a.requestid < b.requestid ? 1 : a.requestid > b.requestid ? -1 : 0
}

/** How many sorted (ascending) values lie in [lo, hi]. */
function countInRange(sorted: Float64Array, lo: number | undefined, hi: number | undefined): number {
  const lowerBound = (x: number) => {
    let a = 0
    let b = sorted.length
    while (a < b) {
      const mid = (a + b) >>> 1
      if (sorted[mid]! < x) a = mid + 1
      else b = mid
    }
    return a
  }
  const start = lo === undefined ? 0 : lowerBound(lo)
  const end = hi === undefined ? sorted.length : lowerBound(hi + 1)
  return Math.max(0, end - start)
}

// ---------------------------------------------------------------- count cache

/**
 * The count cache's key: the owner and the whole filter but its time range (counted from the cached values),
 * as canonical JSON (object keys sorted at every depth, undefined fields dropped). Derived, not listed: a
 * filter field added later is part of the key without anyone remembering it, so no two filters that can
 * match different requests share an entry.
 */
export function countCacheKey(owner: string, filter: RequestFilter): string {
  const { before: _before, after: _after, ...conditions } = filter
  return canonicalJson([owner, conditions])
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

// ---------------------------------------------------------------- store

interface CacheEntry {
  version: number
  at: number
  created: Float64Array
}

export function createDynamoRequestStore(opts: DynamoRequestStoreOptions): RequestStore {
  const { client, tableName } = opts
  const now = opts.now ?? Date.now
  const cacheOpts = opts.countCache === false ? undefined : (opts.countCache ?? {})
  const ttlMs = cacheOpts?.ttlMs ?? 60_000
  const settleMs = cacheOpts?.indexSettleMs ?? 2_000
  const maxValues = cacheOpts?.maxValues ?? 1_000_000
  const cache = new Map<string, CacheEntry>()
  let cachedValues = 0
  const forget = (key: string) => {
    const entry = cache.get(key)
    if (entry) cachedValues -= entry.created.length
    cache.delete(key)
  }

  const ownerKey = (owner: string): Item => ({ requestid: S(`${OWNER_ITEM_PREFIX}${owner}`) })

  async function readOwner(owner: string): Promise<{ version: number; lastWrite: number }> {
    const res = await client.send(
      new GetItemCommand({ TableName: tableName, Key: ownerKey(owner), ConsistentRead: true }),
    )
    const item = res.Item
    return {
      version: item?.version ? num(item, 'version') : 0,
      lastWrite: item?.lastWrite ? num(item, 'lastWrite') : 0,
    }
  }

  /** Invalidates cached counts of the owner (every instance's: they compare versions). */
  async function bumpOwner(owner: string): Promise<void> {
    await client.send(
      new UpdateItemCommand({
        TableName: tableName,
        Key: ownerKey(owner),
        UpdateExpression: 'ADD #version :one SET #lastWrite = :now',
        ExpressionAttributeNames: { '#version': 'version', '#lastWrite': 'lastWrite' },
        ExpressionAttributeValues: { ':one': n(1), ':now': n(now()) },
      }),
    )
  }

  async function put(request: PinRequest): Promise<void> {
    await client.send(new PutItemCommand({ TableName: tableName, Item: encodeRequest(request) }))
    await bumpOwner(request.owner)
  }

  async function get(requestid: string): Promise<PinRequest | undefined> {
    const res = await client.send(
      new GetItemCommand({ TableName: tableName, Key: { requestid: S(requestid) }, ConsistentRead: true }),
    )
    return res.Item && isRequestItem(res.Item) ? decodeRequest(res.Item) : undefined
  }

  /** BatchGetItem, in chunks of 100 keys, retrying unprocessed keys. */
  async function getMany(requestIds: readonly string[]): Promise<Map<string, PinRequest>> {
    const requests = new Map<string, PinRequest>()
    const keys = [...new Set(requestIds)]
      .filter((id) => !id.startsWith(OWNER_ITEM_PREFIX))
      .map((id) => ({ table: tableName, key: { requestid: S(id) } }))
    const found = await batchGetAll(client, keys)
    for (const item of found.get(tableName) ?? []) {
      if (isRequestItem(item)) {
        const r = decodeRequest(item)
        requests.set(r.requestid, r)
      }
    }
    return requests
  }

  async function findByPlan(plan: QueryPlan, range: { lo?: number; hi?: number }, limit: number) {
    const found: PinRequest[] = []
    let startKey: Item | undefined
    do {
      const remaining = limit - found.length
      const res = await client.send(
        new QueryCommand(
          queryInput(tableName, plan, range, {
            // With a filter, read more than needed per page: most entries may not match.
            Limit: plan.filters.length > 0 ? Math.max(remaining * 4, 100) : remaining,
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        ),
      )
      for (const item of res.Items ?? []) {
        if (found.length < limit) found.push(decodeRequest(item))
      }
      startKey = res.LastEvaluatedKey
    } while (startKey && found.length < limit)
    return found
  }

  /** Every matching `created` value, any time, ascending (for the cache). */
  async function allCreated(plans: QueryPlan[]): Promise<Float64Array> {
    const values: number[] = []
    for (const plan of plans) {
      let startKey: Item | undefined
      do {
        const input = queryInput(
          tableName,
          plan,
          {},
          {
            ProjectionExpression: '#created',
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          },
        )
        input.ExpressionAttributeNames = { ...input.ExpressionAttributeNames, '#created': 'created' }
        const res = await client.send(new QueryCommand(input))
        for (const item of res.Items ?? []) values.push(num(item, 'created'))
        startKey = res.LastEvaluatedKey
      } while (startKey)
    }
    return Float64Array.from(values).sort()
  }

  async function countDirect(plans: QueryPlan[], range: { lo?: number; hi?: number }): Promise<number> {
    let total = 0
    for (const plan of plans) {
      let startKey: Item | undefined
      do {
        const res = await client.send(
          new QueryCommand(
            queryInput(tableName, plan, range, {
              Select: 'COUNT',
              ...(startKey ? { ExclusiveStartKey: startKey } : {}),
            }),
          ),
        )
        total += res.Count ?? 0
        startKey = res.LastEvaluatedKey
      } while (startKey)
    }
    return total
  }

  /**
   * Moves requests between the owner's pending and known-failed partitions of `pending-created`, each with a
   * write conditional on its being in the other one (so never a request known pinned, or deleted).
   */
  async function moveBetweenPartitions(
    requests: ReadonlyArray<{ requestid: string; owner: string }>,
    toFailed: boolean,
    onMoved?: (requestid: string) => void,
  ): Promise<void> {
    const unique = [...new Map(requests.map((r) => [r.requestid, r])).values()].filter(
      (r) => !r.requestid.startsWith(OWNER_ITEM_PREFIX),
    )
    for (let start = 0; start < unique.length; start += 25) {
      await Promise.all(
        unique.slice(start, start + 25).map(async ({ requestid, owner }) => {
          try {
            await client.send(
              new UpdateItemCommand({
                TableName: tableName,
                Key: { requestid: S(requestid) },
                UpdateExpression: toFailed
                  ? 'SET #pendingOwner = :to, #knownFailed = :true'
                  : 'SET #pendingOwner = :to REMOVE #knownFailed',
                ConditionExpression: '#pendingOwner = :from',
                ExpressionAttributeNames: { '#pendingOwner': 'pendingOwner', '#knownFailed': 'knownFailed' },
                ExpressionAttributeValues: {
                  ':from': S(pendingPartition(owner, !toFailed)),
                  ':to': S(pendingPartition(owner, toFailed)),
                  ...(toFailed ? { ':true': { BOOL: true } } : {}),
                },
              }),
            )
            onMoved?.(requestid)
          } catch (err) {
            if (!isConditionFailed(err)) throw err
          }
        }),
      )
    }
  }

  return {
    put,

    async putKeepingCreated(request) {
      // A new request (the usual case): one conditional write. An existing one: read it for its `created`,
      // then replace it as `put` does.
      const item = encodeRequest(request)
      try {
        await client.send(
          new PutItemCommand({
            TableName: tableName,
            Item: item,
            ConditionExpression: 'attribute_not_exists(#requestid)',
            ExpressionAttributeNames: { '#requestid': 'requestid' },
          }),
        )
        await bumpOwner(request.owner)
        return request.created
      } catch (err) {
        if (!isConditionFailed(err)) throw err
      }
      const created = (await get(request.requestid))?.created ?? request.created
      await put({ ...request, created })
      return created
    },

    get,

    async delete(requestid) {
      if (requestid.startsWith(OWNER_ITEM_PREFIX)) return false
      const res = await client.send(
        new DeleteItemCommand({
          TableName: tableName,
          Key: { requestid: S(requestid) },
          ReturnValues: 'ALL_OLD',
        }),
      )
      const owner = res.Attributes?.owner?.S
      if (owner === undefined) return false
      await bumpOwner(owner)
      return true
    },

    async forContent(cid, limit) {
      // The index is eventually consistent: what it lists is checked against the table, so a request that
      // was just deleted never counts as wanting the content.
      const found: PinRequest[] = []
      let startKey: Item | undefined
      do {
        const res = await client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: CID_INDEX,
            KeyConditionExpression: '#cid = :cid',
            ExpressionAttributeNames: { '#cid': 'cid' },
            ExpressionAttributeValues: { ':cid': S(cid) },
            Limit: Math.max(limit - found.length, 10),
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        )
        const ids = (res.Items ?? []).map((item) => str(item, 'requestid'))
        if (ids.length > 0) {
          const requests = await getMany(ids)
          for (const id of ids) {
            const r = requests.get(id)
            if (r && r.cid === cid && found.length < limit) found.push(r)
          }
        }
        startKey = res.LastEvaluatedKey
      } while (startKey && found.length < limit)
      return found
    },

    async listByOwner(owner, { limit, cursor }): Promise<RequestPage> {
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
        decodeRequest,
        {
          limit,
          startKey: cursor === undefined ? undefined : requestStartKey(owner, requestCursor.decode(cursor)),
        },
      )
      const last = items[items.length - 1]
      return more && last
        ? { requests: items, cursor: requestCursor.encode(last.created, last.requestid) }
        : { requests: items }
    },

    getMany,

    async reserveCreated(owner, at) {
      if (!Number.isInteger(at)) throw new TypeError(`created must be an integer, got ${at}`)
      // Usually `at` is later than anything reserved: one conditional write. Otherwise (same millisecond, or
      // a clock behind the last value) an atomic increment, whose results are unique without a retry loop;
      // values only ever grow, so neither way can return a value the other did.
      try {
        await client.send(
          new UpdateItemCommand({
            TableName: tableName,
            Key: ownerKey(owner),
            UpdateExpression: 'SET #lastCreated = :c',
            ConditionExpression: 'attribute_not_exists(#lastCreated) OR #lastCreated < :c',
            ExpressionAttributeNames: { '#lastCreated': 'lastCreated' },
            ExpressionAttributeValues: { ':c': n(at) },
          }),
        )
        return at
      } catch (err) {
        if (!isConditionFailed(err)) throw err
      }
      const res = await client.send(
        new UpdateItemCommand({
          TableName: tableName,
          Key: ownerKey(owner),
          UpdateExpression: 'ADD #lastCreated :one',
          ExpressionAttributeNames: { '#lastCreated': 'lastCreated' },
          ExpressionAttributeValues: { ':one': n(1) },
          ReturnValues: 'UPDATED_NEW',
        }),
      )
      if (!res.Attributes) throw new Error('UpdateItem returned no attributes')
      return num(res.Attributes, 'lastCreated')
    },

    async find(owner, filter, limit) {
      if (!Number.isInteger(limit) || limit < 1) {
        throw new InvalidInputError('INVALID_LIMIT', `limit must be a positive integer, got ${limit}`)
      }
      const range = createdRange(filter)
      if (range.empty) return []
      const plans = planQueries(owner, filter, false)
      const found = (await Promise.all(plans.map((plan) => findByPlan(plan, range, limit)))).flat()
      return found.sort(compareNewestFirst).slice(0, limit)
    },

    async count(owner, filter) {
      const range = createdRange(filter)
      if (range.empty) return 0
      const plans = planQueries(owner, filter, true)
      if (plans.length === 0) return 0
      // Counts of requests not known to be pinned or failed change without a put or delete: never cached.
      if (!cacheOpts || filter.notKnownPinned || filter.notKnownFailed) return countDirect(plans, range)
      const key = countCacheKey(owner, filter)
      const { version, lastWrite } = await readOwner(owner)
      const t = now()
      const hit = cache.get(key)
      if (hit && hit.version === version && t - hit.at < ttlMs) {
        cache.delete(key)
        cache.set(key, hit)
        return countInRange(hit.created, range.lo, range.hi)
      }
      const created = await allCreated(plans)
      forget(key)
      if (t - lastWrite >= settleMs && created.length <= maxValues) {
        cache.set(key, { version, at: t, created })
        cachedValues += created.length
        while (cachedValues > maxValues) forget(cache.keys().next().value!)
      }
      return countInRange(created, range.lo, range.hi)
    },

    async scan(owner, filter, maxRead): Promise<RequestScan> {
      if (!Number.isInteger(maxRead) || maxRead < 1) {
        throw new InvalidInputError('INVALID_LIMIT', `maxRead must be a positive integer, got ${maxRead}`)
      }
      const range = createdRange(filter)
      if (range.empty) return { requests: [], read: 0 }
      // One Query page per partition: `Limit` bounds the entries DynamoDB evaluates, matching or not.
      const pages = await Promise.all(
        planQueries(owner, filter, false).map(async (plan) => {
          const res = await client.send(
            new QueryCommand(queryInput(tableName, plan, range, { Limit: maxRead })),
          )
          const last = res.LastEvaluatedKey
          return {
            requests: (res.Items ?? []).map(decodeRequest),
            read: res.ScannedCount ?? 0,
            next: last === undefined ? undefined : num(last, 'created'),
          }
        }),
      )
      // With several partitions (CIDs), everything at or after the latest place one stopped was read in all.
      const stops = pages.flatMap((p) => (p.next === undefined ? [] : [p.next]))
      const next = stops.length > 0 ? Math.max(...stops) : undefined
      const requests = pages
        .flatMap((p) => p.requests)
        .filter((r) => next === undefined || r.created >= next)
        .sort(compareNewestFirst)
      const read = pages.reduce((sum, p) => sum + p.read, 0)
      return next === undefined ? { requests, read } : { requests, read, next }
    },

    async markKnownPinned(requestids) {
      const unique = [...new Set(requestids)].filter((id) => !id.startsWith(OWNER_ITEM_PREFIX))
      for (let start = 0; start < unique.length; start += 25) {
        await Promise.all(
          unique.slice(start, start + 25).map(async (id) => {
            try {
              await client.send(
                new UpdateItemCommand({
                  TableName: tableName,
                  Key: { requestid: S(id) },
                  UpdateExpression: 'SET #knownPinned = :true REMOVE #pendingOwner, #knownFailed',
                  ConditionExpression: 'attribute_exists(#owner)',
                  ExpressionAttributeNames: {
                    '#knownPinned': 'knownPinned',
                    '#pendingOwner': 'pendingOwner',
                    '#knownFailed': 'knownFailed',
                    '#owner': 'owner',
                  },
                  ExpressionAttributeValues: { ':true': { BOOL: true } },
                }),
              )
            } catch (err) {
              if (!isConditionFailed(err)) throw err
            }
          }),
        )
      }
    },

    async markKnownFailed(requests) {
      const changed: string[] = []
      await moveBetweenPartitions(requests, true, (id) => changed.push(id))
      return changed
    },

    async markPending(requests) {
      await moveBetweenPartitions(requests, false)
    },

    async returnToPending(cid) {
      // The content's requests of every owner, once: only the known-failed ones are answered.
      let moved = 0
      let startKey: Item | undefined
      do {
        const res = await client.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: CID_INDEX,
            KeyConditionExpression: '#cid = :cid',
            FilterExpression: 'attribute_exists(#knownFailed)',
            ExpressionAttributeNames: { '#cid': 'cid', '#knownFailed': 'knownFailed', '#owner': 'owner' },
            ExpressionAttributeValues: { ':cid': S(cid) },
            ProjectionExpression: 'requestid, #owner',
            ...(startKey ? { ExclusiveStartKey: startKey } : {}),
          }),
        )
        const found = (res.Items ?? []).map((item) => ({
          requestid: str(item, 'requestid'),
          owner: str(item, 'owner'),
        }))
        await moveBetweenPartitions(found, false, () => moved++)
        startKey = res.LastEvaluatedKey
      } while (startKey)
      return moved
    },
  }
}
