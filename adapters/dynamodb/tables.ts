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
  ],
} as const satisfies TableDefinition

/** One item per running worker, announcing its multiaddrs. See adapters/dynamodb/workers.ts. */
export const workersTable = {
  nameSuffix: 'workers',
  partitionKey: { name: 'id', type: 'S' },
  globalSecondaryIndexes: [],
  timeToLiveAttribute: 'ttl',
} as const satisfies TableDefinition

/** Pinning Service API requests (one per user request; many may point at one pin). Used by the API. */
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
  ],
} as const satisfies TableDefinition

export const tables = { pins: pinsTable, workers: workersTable, requests: requestsTable } as const

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
