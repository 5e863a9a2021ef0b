/**
 * The DynamoDB tables, one definition per persisted shape. Plain data, so that the CDK stack
 * (`new Table(stack, id, { partitionKey: def.partitionKey, ... })`: CDK's `AttributeType` values are the same
 * 'S' | 'N' | 'B' strings) and the local harness (`createTableInput`) build the same tables.
 */
import type { CreateTableCommandInput } from '@aws-sdk/client-dynamodb'

export type KeyType = 'S' | 'N' | 'B'

export interface KeyAttribute {
  readonly name: string
  readonly type: KeyType
}

export interface GlobalSecondaryIndexDefinition {
  readonly indexName: string
  readonly partitionKey: KeyAttribute
  readonly sortKey?: KeyAttribute
  readonly projection: 'ALL' | 'KEYS_ONLY'
}

export interface TableDefinition {
  /** The table is named `<prefix>-<nameSuffix>` (see `tableName`). */
  readonly nameSuffix: string
  readonly partitionKey: KeyAttribute
  readonly sortKey?: KeyAttribute
  readonly globalSecondaryIndexes: readonly GlobalSecondaryIndexDefinition[]
  /** Epoch-seconds attribute DynamoDB's TTL deletes items by (AWS only: dynalite has no TTL). */
  readonly timeToLiveAttribute?: string
}

/**
 * The index of `table` called `name`, looked up by name: a misspelt or removed index fails to compile (and,
 * should the definitions be built otherwise, to load), and reordering the indexes changes nothing.
 */
export function indexNamed<
  T extends TableDefinition,
  N extends T['globalSecondaryIndexes'][number]['indexName'],
>(table: T, name: N): N {
  if (!table.globalSecondaryIndexes.some((g) => g.indexName === name)) {
    throw new TypeError(`table ${table.nameSuffix} has no index ${name}`)
  }
  return name
}

/** One item per pin (content), keyed by the DAG root CID. See adapters/dynamodb/pins.ts for the item shape. */
export const pinsTable = {
  nameSuffix: 'pins',
  partitionKey: { name: 'cid', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: 'status-updated',
      partitionKey: { name: 'status', type: 'S' },
      sortKey: { name: 'updated', type: 'N' },
      projection: 'ALL',
    },
    {
      // Sparse: only pins no request wants any longer carry `unreferenced` (the constant 'true'), so the
      // sweep reads exactly those, oldest mark first.
      indexName: 'unreferenced-since',
      partitionKey: { name: 'unreferenced', type: 'S' },
      sortKey: { name: 'unreferencedSince', type: 'N' },
      projection: 'ALL',
    },
  ],
} as const satisfies TableDefinition

/** One item per running worker, announcing its multiaddrs. See adapters/dynamodb/workers.ts. */
export const workersTable = {
  nameSuffix: 'workers',
  partitionKey: { name: 'id', type: 'S' },
  globalSecondaryIndexes: [],
  timeToLiveAttribute: 'ttl',
} as const satisfies TableDefinition

/**
 * Requests (a Pinning Service API request, or the cluster API's claim); many may point at one pin. See
 * adapters/dynamodb/requests.ts for the item shape, the per-owner counter items and what each index serves.
 * The indexes other than `owner-created` and `cid` are sparse or derived attributes: `ownerCid`, `ownerName`
 * and `pendingOwner` are `<owner>#<cid>`, `<owner>#<lowercased name>` and `<owner>` (the last only while the
 * request is not known to be pinned).
 */
export const requestsTable = {
  nameSuffix: 'requests',
  partitionKey: { name: 'requestid', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: 'owner-created',
      partitionKey: { name: 'owner', type: 'S' },
      sortKey: { name: 'created', type: 'N' },
      projection: 'ALL',
    },
    {
      indexName: 'cid',
      partitionKey: { name: 'cid', type: 'S' },
      sortKey: { name: 'requestid', type: 'S' },
      projection: 'ALL',
    },
    {
      // Counting: the same keys as owner-created without the rest of the item, ~5x fewer bytes per request.
      indexName: 'owner-created-keys',
      partitionKey: { name: 'owner', type: 'S' },
      sortKey: { name: 'created', type: 'N' },
      projection: 'KEYS_ONLY',
    },
    {
      indexName: 'owner-cid-created',
      partitionKey: { name: 'ownerCid', type: 'S' },
      sortKey: { name: 'created', type: 'N' },
      projection: 'ALL',
    },
    {
      indexName: 'owner-name-created',
      partitionKey: { name: 'ownerName', type: 'S' },
      sortKey: { name: 'created', type: 'N' },
      projection: 'ALL',
    },
    {
      indexName: 'pending-created',
      partitionKey: { name: 'pendingOwner', type: 'S' },
      sortKey: { name: 'created', type: 'N' },
      projection: 'ALL',
    },
  ],
} as const satisfies TableDefinition

/**
 * Pinning Service API access tokens: one item per token, keyed by the token's sha256 (hex); the token itself
 * is never stored. See adapters/dynamodb/tokens.ts.
 */
export const tokensTable = {
  nameSuffix: 'tokens',
  partitionKey: { name: 'hash', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: 'user-created',
      partitionKey: { name: 'user', type: 'S' },
      sortKey: { name: 'created', type: 'N' },
      projection: 'ALL',
    },
  ],
} as const satisfies TableDefinition

/**
 * NFT collections archived by pickup: the collection, its tokens and its roots under one partition each. See
 * adapters/dynamodb/collections.ts.
 */
export const collectionsTable = {
  nameSuffix: 'collections',
  partitionKey: { name: 'pk', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  globalSecondaryIndexes: [
    {
      indexName: 'owner-created',
      partitionKey: { name: 'owner', type: 'S' },
      sortKey: { name: 'created', type: 'N' },
      projection: 'ALL',
    },
    {
      // Sparse: only a collection that follows its contract carries `following`. The follow tick reads it,
      // longest unchecked first.
      indexName: 'following-due',
      partitionKey: { name: 'following', type: 'S' },
      sortKey: { name: 'followDue', type: 'N' },
      projection: 'ALL',
    },
  ],
} as const satisfies TableDefinition

export const tables = {
  pins: pinsTable,
  workers: workersTable,
  requests: requestsTable,
  tokens: tokensTable,
  collections: collectionsTable,
} as const

export function tableName(prefix: string, def: TableDefinition): string {
  return `${prefix}-${def.nameSuffix}`
}

/** Every attribute used by the table's or an index's key, once each. */
export function attributeDefinitions(def: TableDefinition): KeyAttribute[] {
  const all: KeyAttribute[] = [def.partitionKey]
  if (def.sortKey) all.push(def.sortKey)
  for (const gsi of def.globalSecondaryIndexes) {
    all.push(gsi.partitionKey)
    if (gsi.sortKey) all.push(gsi.sortKey)
  }
  const byName = new Map<string, KeyAttribute>()
  for (const attr of all) {
    const seen = byName.get(attr.name)
    if (seen && seen.type !== attr.type) {
      throw new Error(`attribute ${attr.name} is declared as both ${seen.type} and ${attr.type}`)
    }
    byName.set(attr.name, attr)
  }
  return [...byName.values()]
}

function keySchema(partitionKey: KeyAttribute, sortKey: KeyAttribute | undefined) {
  return [
    { AttributeName: partitionKey.name, KeyType: 'HASH' as const },
    ...(sortKey ? [{ AttributeName: sortKey.name, KeyType: 'RANGE' as const }] : []),
  ]
}

/** The CreateTable request for a definition (on-demand billing, as the stack deploys it). */
export function createTableInput(def: TableDefinition, name: string): CreateTableCommandInput {
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    KeySchema: keySchema(def.partitionKey, def.sortKey),
    AttributeDefinitions: attributeDefinitions(def).map((a) => ({
      AttributeName: a.name,
      AttributeType: a.type,
    })),
    ...(def.globalSecondaryIndexes.length > 0
      ? {
          GlobalSecondaryIndexes: def.globalSecondaryIndexes.map((gsi) => ({
            IndexName: gsi.indexName,
            KeySchema: keySchema(gsi.partitionKey, gsi.sortKey),
            Projection: { ProjectionType: gsi.projection },
          })),
        }
      : {}),
  }
}
