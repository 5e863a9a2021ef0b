/**
 * The AWS services pickup uses, embedded in this process for local mode and tests, on 127.0.0.1 only:
 * DynamoDB is dynalite (in memory, or LevelDB under `<dataDir>/dynamodb`); SQS, SNS and S3 are fauxqs
 * (in memory, or SQLite under `<dataDir>/sqs` for SQS and SNS and files under `<dataDir>/s3` for S3).
 * The tables, queues, topic and buckets are created (idempotently) from the same definitions the stack uses.
 *
 * fauxqs ignores `x-amz-copy-source-if-match` on CopyObject and UploadPartCopy: a `preHandler` hook enforces
 * it as S3 does (412 PreconditionFailed when the source's ETag differs), so a copy conditional on the bytes the
 * validator read behaves here as in AWS.
 *
 * fauxqs has no S3 bucket notifications: an `onResponse` hook turns successful PutObject, CopyObject and
 * CompleteMultipartUpload responses into S3 `ObjectCreated:*` events for `onObjectCreated` subscribers,
 * delivered asynchronously and retried twice on failure, like a Lambda's asynchronous invocation.
 *
 * Coupling to fauxqs internals (written against fauxqs 2.4.x): `startFauxqs()` binds 0.0.0.0, so this module
 * uses `buildApp()` and does what `startFauxqs()` does to enable persistence, which needs classes the package
 * does not export (its `exports` only has `.`): `dist/sqs/sqsStore.js` (SqsStore), `dist/sns/snsStore.js`
 * (SnsStore), `dist/s3/s3Store.js` (S3Store), `dist/persistence.js` (PersistenceManager: `loadSqsAndSns`,
 * `close`) and `dist/s3/fileS3Persistence.js` (FileS3Persistence: `loadS3`, `close`), plus the stores'
 * `persistence` fields, `SqsStore.allQueues()` and `S3Store.headObject()`. They are imported by URL relative
 * to the package's entry point and checked on load: a fauxqs release that moves them fails here, loudly.
 */

import { mkdirSync, readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3'
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns'
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs'
import type { S3Event, S3EventRecord } from 'aws-lambda'
import { type BuildAppOptions, buildApp } from 'fauxqs'
import { S3_CHECKSUMS } from '../adapters/aws-clients.ts'
import {
  createTableInput,
  pinsTable,
  requestsTable,
  type TableDefinition,
  tableName,
  tokensTable,
  workersTable,
} from '../adapters/dynamodb/tables.ts'
import { bucketName, destinationBucket, tempBucket } from '../adapters/s3/buckets.ts'
import { carStoredTopic, topicName } from '../adapters/sns/events.ts'
import { groupOfBody, pickFairly } from '../adapters/sqs/fair-order.ts'
import { failedJobsQueue, pinQueueDefinition, queueAttributes, queueName } from '../adapters/sqs/queues.ts'
import type { Logger } from '../core/ports.ts'
import { OutdatedDataError } from './errors.ts'

export interface StartServicesOptions {
  /** Persist everything under this directory; in memory when absent. */
  dataDir?: string
  /** Default us-east-1. */
  region?: string
  /** Prefix of every resource name. Default `pickup-local`. */
  prefix?: string
  /** Fixed ports, so a restarted local mode keeps its endpoints. 0 (the default): any free port. */
  ports?: { dynamodb?: number; fauxqs?: number }
  /** The pin queue's visibility timeout. Default 300 s, as deployed. */
  pinQueueVisibilityTimeoutSeconds?: number
  /** Receives before a pin job goes to the dead-letter queue. Default 3, as deployed. */
  pinQueueMaxReceiveCount?: number
  /** Waits before the retries of a failed S3 event delivery (one retry per entry). Default [200, 1000] ms. */
  eventRetryDelaysMs?: readonly number[]
  /** Where deliveries that failed every retry are reported. Default: stderr. */
  log?: Logger
}

export type ObjectCreatedHandler = (event: S3Event) => Promise<void>

export interface Services {
  endpoints: { dynamodb: string; sqs: string; s3: string; sns: string; region: string }
  credentials: { accessKeyId: string; secretAccessKey: string }
  clients: { dynamodb: DynamoDBClient; sqs: SQSClient; s3: S3Client; sns: SNSClient }
  names: {
    pinsTable: string
    workersTable: string
    requestsTable: string
    tokensTable: string
    pinQueueUrl: string
    pinQueueArn: string
    deadLetterQueueUrl: string
    deadLetterQueueArn: string
    /** Where the dead-letter consumer forwards the jobs it gave up on, for operators (`pickup dlq`). */
    failedJobsQueueUrl: string
    failedJobsQueueArn: string
    tempBucket: string
    destinationBucket: string
    carStoredTopicArn: string
  }
  /** Subscribes to the bucket's ObjectCreated events; returns the unsubscribe function. */
  onObjectCreated(bucket: string, handler: ObjectCreatedHandler): () => void
  /** Waits for event deliveries in progress, then stops everything. */
  stop(): Promise<void>
}

export const LOCAL_CREDENTIALS = { accessKeyId: 'pickup-local', secretAccessKey: 'pickup-local' } as const

const HOST = '127.0.0.1'
const DEFAULT_RETRY_DELAYS_MS = [200, 1000]

// ---------------------------------------------------------------- fauxqs internals

type FauxqsStores = NonNullable<BuildAppOptions['stores']>

interface FauxqsS3Object {
  contentLength: number
  etag: string
}

/** What this module uses of the stores (a subset of fauxqs's own classes). */
interface SqsStoreInternals {
  persistence?: unknown
  allQueues(): Iterable<{ persistence?: unknown }>
  createQueue(...args: unknown[]): unknown
}

/** A fauxqs standard queue, as `makeFair` uses it (fauxqs's SqsQueue). */
interface FauxqsQueueInternals {
  messages: Array<{ body: string }>
  inflightMessages: Map<string, { message: { body: string } }>
  processTimers(): void
  isFifo(): boolean
  dequeue(maxCount: number, ...rest: unknown[]): unknown
}
interface SnsStoreInternals {
  persistence?: unknown
}
interface S3StoreInternals {
  persistence?: unknown
  headObject(bucket: string, key: string): FauxqsS3Object
}
interface PersistenceManagerInternals {
  loadSqsAndSns(sqsStore: unknown, snsStore: unknown): void
  updateMessageReady(messageId: string): void
  close(): void
}
interface FileS3PersistenceInternals {
  loadS3(s3Store: unknown): void
  close(): void
}

interface FauxqsInternals {
  version: string
  createStores(): {
    stores: FauxqsStores
    sqs: SqsStoreInternals
    sns: SnsStoreInternals
    s3: S3StoreInternals
  }
  createPersistenceManager(dir: string): PersistenceManagerInternals
  createFileS3Persistence(dir: string): FileS3PersistenceInternals
}

function hasMethods<K extends string>(
  value: unknown,
  names: readonly K[],
): value is Record<K, (...args: unknown[]) => unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    names.every((n) => typeof Reflect.get(value, n) === 'function')
  )
}

async function loadFauxqsInternals(): Promise<FauxqsInternals> {
  const entry = import.meta.resolve('fauxqs')
  const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', entry), 'utf8'))
  const version = String(typeof pkg === 'object' && pkg !== null ? Reflect.get(pkg, 'version') : undefined)
  const load = async (path: string, exportName: string): Promise<new (...args: unknown[]) => unknown> => {
    const mod: unknown = await import(new URL(path, entry).href)
    const ctor: unknown = typeof mod === 'object' && mod !== null ? Reflect.get(mod, exportName) : undefined
    if (typeof ctor !== 'function') {
      throw new Error(
        `fauxqs ${version}: ${path} no longer exports ${exportName}; local/services.ts is written against fauxqs 2.4.x`,
      )
    }
    return ctor as new (
      ...args: unknown[]
    ) => unknown
  }
  const [SqsStore, SnsStore, S3Store, PersistenceManager, FileS3Persistence] = await Promise.all([
    load('./sqs/sqsStore.js', 'SqsStore'),
    load('./sns/snsStore.js', 'SnsStore'),
    load('./s3/s3Store.js', 'S3Store'),
    load('./persistence.js', 'PersistenceManager'),
    load('./s3/fileS3Persistence.js', 'FileS3Persistence'),
  ])
  const check = <T>(value: unknown, what: string, methods: readonly string[]): T => {
    if (!hasMethods(value, methods)) {
      throw new Error(`fauxqs ${version}: ${what} lacks ${methods.join(', ')}; written against fauxqs 2.4.x`)
    }
    return value as T
  }
  return {
    version,
    createStores() {
      const sqs = new SqsStore()
      const sns = new SnsStore()
      const s3 = new S3Store()
      return {
        // The constructors are fauxqs's own classes, which buildApp's `stores` option is typed with.
        stores: { sqsStore: sqs, snsStore: sns, s3Store: s3 } as FauxqsStores,
        sqs: check<SqsStoreInternals>(sqs, 'SqsStore', ['allQueues', 'createQueue']),
        sns: check<SnsStoreInternals>(sns, 'SnsStore', ['createTopic']),
        s3: check<S3StoreInternals>(s3, 'S3Store', ['headObject']),
      }
    },
    createPersistenceManager(dir) {
      const manager = check<PersistenceManagerInternals>(new PersistenceManager(dir), 'PersistenceManager', [
        'loadSqsAndSns',
        'updateMessageReady',
        'close',
      ])
      fixUpdateMessageReady(manager, version)
      return manager
    },
    createFileS3Persistence(dir) {
      return check(new FileS3Persistence(dir), 'FileS3Persistence', ['loadS3', 'close'])
    },
  }
}

/**
 * fauxqs 2.4.1 bug: `PersistenceManager.updateMessageReady` (run by ChangeMessageVisibility with a timeout of
 * 0, i.e. every `release(receipt, 0)`) writes NULL into the NOT NULL column `approximate_receive_count`, so
 * with persistence on the request fails with a 500, and the SDK's retry then gets MessageNotInflight.
 * Replaced by a statement that only clears the delivery (receipt and visibility deadline), which is what the
 * loader reads to restore the message as ready. Uses the manager's private `db` (node:sqlite DatabaseSync).
 */
function fixUpdateMessageReady(manager: PersistenceManagerInternals, version: string): void {
  const db: unknown = Reflect.get(manager, 'db')
  if (!hasMethods(db, ['prepare'])) {
    throw new Error(`fauxqs ${version}: PersistenceManager has no SQLite db; written against fauxqs 2.4.x`)
  }
  const statement = db.prepare(
    'UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?',
  )
  if (!hasMethods(statement, ['run'])) throw new Error('node:sqlite prepare() returned no statement')
  manager.updateMessageReady = (messageId) => {
    statement.run(messageId)
  }
}

/**
 * SQS fair queues on fauxqs, which ignores the MessageGroupId of a standard queue: before each receive, the
 * visible messages the receive will take are moved to the front in fair order (adapters/sqs/fair-order.ts;
 * a message's group is its job's requester, read from the body, where the adapter takes MessageGroupId
 * from). Only the order of deliveries changes: visibility, receive counts, the dead-letter queue and
 * persistence are fauxqs's own. Uses the queue's `messages` (visible, oldest first), `inflightMessages` and
 * `processTimers` (which makes due messages visible).
 */
function makeFair(queue: unknown, version: string): void {
  const q = queue as Partial<FauxqsQueueInternals> & { [FAIR]?: true }
  if (q[FAIR]) return
  if (
    !hasMethods(queue, ['dequeue', 'processTimers', 'isFifo']) ||
    !Array.isArray(q.messages) ||
    !(q.inflightMessages instanceof Map)
  ) {
    throw new Error(
      `fauxqs ${version}: SqsQueue lacks dequeue, processTimers, isFifo, messages or inflightMessages`,
    )
  }
  const fq = queue as unknown as FauxqsQueueInternals
  if (fq.isFifo()) return
  const dequeue = fq.dequeue.bind(fq)
  const groups = new WeakMap<object, string>()
  const groupOf = (m: { body: string }) => {
    let g = groups.get(m)
    if (g === undefined) {
      g = groupOfBody(m.body)
      groups.set(m, g)
    }
    return g
  }
  fq.dequeue = (maxCount, ...rest) => {
    fq.processTimers()
    const visible = fq.messages
    if (visible.length > 1) {
      const inFlight = new Map<string, number>()
      for (const { message } of fq.inflightMessages.values()) {
        const g = groupOf(message)
        inFlight.set(g, (inFlight.get(g) ?? 0) + 1)
      }
      const picked = pickFairly(visible.map(groupOf), inFlight, Math.min(10, maxCount))
      const first = new Set(picked)
      fq.messages = [...picked.map((i) => visible[i]!), ...visible.filter((_, i) => !first.has(i))]
    }
    return dequeue(maxCount, ...rest)
  }
  q[FAIR] = true
}
const FAIR = Symbol('pickup fair queue')

// ---------------------------------------------------------------- dynalite

type DynaliteFactory = (options: {
  path?: string
  createTableMs?: number
  deleteTableMs?: number
  updateTableMs?: number
}) => Server

/** dynalite is CommonJS without types. */
function loadDynalite(): DynaliteFactory {
  const factory: unknown = createRequire(import.meta.url)('dynalite')
  if (typeof factory !== 'function') throw new Error('dynalite does not export a function')
  return factory as DynaliteFactory
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, HOST, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return (server.address() as AddressInfo).port
}

// ---------------------------------------------------------------- S3 events

function stringField(value: unknown, name: string): string | undefined {
  const v = typeof value === 'object' && value !== null ? Reflect.get(value, name) : undefined
  return typeof v === 'string' ? v : undefined
}

/** S3 event keys are URL-encoded, spaces as `+`. */
function eventKey(key: string): string {
  return key
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/%20/g, '+'))
    .join('/')
}

// ---------------------------------------------------------------- resources
// Idempotent creation, exported for tests that make resources of their own with random names.

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined
}

export async function ensureTable(client: DynamoDBClient, def: TableDefinition, name: string): Promise<void> {
  try {
    await client.send(new CreateTableCommand(createTableInput(def, name)))
  } catch (err) {
    if (errorName(err) !== 'ResourceInUseException') throw err
  }
  for (let i = 0; i < 500; i++) {
    const { Table: t } = await client.send(new DescribeTableCommand({ TableName: name }))
    const indexes = t?.GlobalSecondaryIndexes ?? []
    // dynalite cannot add an index to an existing table: data kept by an older pickup must be recreated.
    const missing = def.globalSecondaryIndexes.filter(
      (g) => !indexes.some((i) => i.IndexName === g.indexName),
    )
    if (missing.length > 0) {
      throw new OutdatedDataError(
        name,
        missing.map((g) => g.indexName),
      )
    }
    const indexesActive = indexes.every((g) => g.IndexStatus === 'ACTIVE')
    if (t?.TableStatus === 'ACTIVE' && indexesActive) return
    await sleep(10)
  }
  throw new Error(`table ${name} did not become ACTIVE`)
}

export async function ensureQueue(
  client: SQSClient,
  endpoint: string,
  name: string,
  attributes: Record<string, string>,
): Promise<{ url: string; arn: string }> {
  let url: string | undefined
  try {
    url = (await client.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }))).QueueUrl
  } catch (err) {
    // Exists with other attributes (a restart with other options): bring it in line.
    // The SDK's name for it; fauxqs answers with the legacy code `AWS.SimpleQueueService.QueueNameExists`.
    if (!errorName(err)?.endsWith('QueueNameExists')) throw err
    url = (await client.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl
    await client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: attributes }))
  }
  if (!url) throw new Error(`no URL for queue ${name}`)
  // fauxqs names queues `http://sqs.<region>.localhost:<port>/...`, with the port of the run that created
  // them; it finds queues by name only, so point the URL at this run's endpoint.
  const normalized = `${endpoint}${new URL(url).pathname}`
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: normalized, AttributeNames: ['QueueArn'] }),
  )
  const arn = Attributes?.QueueArn
  if (!arn) throw new Error(`no ARN for queue ${name}`)
  return { url: normalized, arn }
}

export async function ensureBucket(client: S3Client, name: string): Promise<void> {
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }))
  } catch (err) {
    const name_ = errorName(err)
    if (name_ !== 'BucketAlreadyOwnedByYou' && name_ !== 'BucketAlreadyExists') throw err
  }
}

// ---------------------------------------------------------------- start

export async function startServices(options: StartServicesOptions = {}): Promise<Services> {
  const region = options.region ?? 'us-east-1'
  const prefix = options.prefix ?? 'pickup-local'
  const retryDelaysMs = options.eventRetryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS
  const { dataDir } = options
  const cleanups: (() => Promise<void>)[] = []

  try {
    // DynamoDB
    if (dataDir) mkdirSync(dataDir, { recursive: true })
    const dynalite = loadDynalite()({
      ...(dataDir ? { path: join(dataDir, 'dynamodb') } : {}),
      createTableMs: 0,
      deleteTableMs: 0,
      updateTableMs: 0,
    })
    const dynamodbPort = await listen(dynalite, options.ports?.dynamodb ?? 0)
    cleanups.push(
      () =>
        new Promise<void>((resolve, reject) => {
          dynalite.close((err) => (err ? reject(err) : resolve()))
          dynalite.closeAllConnections()
        }),
    )

    // SQS, SNS, S3
    const fauxqs = await loadFauxqsInternals()
    const { stores, sqs, sns, s3 } = fauxqs.createStores()
    if (dataDir) {
      // As startFauxqs({ dataDir, s3StorageDir }) does: load persisted state first, then attach persistence
      // (attaching first would make the load write everything back).
      const sqlite = fauxqs.createPersistenceManager(join(dataDir, 'sqs'))
      const files = fauxqs.createFileS3Persistence(join(dataDir, 's3'))
      sqlite.loadSqsAndSns(stores.sqsStore, stores.snsStore)
      files.loadS3(stores.s3Store)
      sqs.persistence = sqlite
      sns.persistence = sqlite
      for (const queue of sqs.allQueues()) queue.persistence = sqlite
      s3.persistence = files
      cleanups.push(async () => {
        sqlite.close()
        files.close()
      })
    }
    // Every standard queue delivers like an SQS fair queue (the pin queue's groups are its requesters).
    for (const queue of sqs.allQueues()) makeFair(queue, fauxqs.version)
    const createQueue = sqs.createQueue.bind(sqs)
    sqs.createQueue = (...args: unknown[]) => {
      const queue = createQueue(...args)
      makeFair(queue, fauxqs.version)
      return queue
    }
    const app = buildApp({
      logger: false,
      defaultRegion: region,
      stores,
      // Lets tests exercise multipart copies on objects under 5 MiB.
      relaxedRules: { disableMinCopySourceSize: true },
    })

    const subscribers = new Map<string, Set<ObjectCreatedHandler>>()
    const deliveries = new Set<Promise<void>>()
    let sequence = 0
    const log = options.log

    async function deliver(handler: ObjectCreatedHandler, event: S3Event): Promise<void> {
      for (let attempt = 0; ; attempt++) {
        try {
          await handler(event)
          return
        } catch (err) {
          const delay = retryDelaysMs[attempt]
          if (delay === undefined) {
            const record = event.Records[0]
            const where = {
              bucket: record?.s3.bucket.name,
              key: record?.s3.object.key,
              attempts: attempt + 1,
            }
            if (log) log.error({ err, ...where }, 'S3 event delivery failed')
            else console.error('S3 event delivery failed', where, err)
            return
          }
          await sleep(delay)
        }
      }
    }

    app.addHook('preHandler', async (request, reply) => {
      const ifMatch = request.headers['x-amz-copy-source-if-match']
      const source = request.headers['x-amz-copy-source']
      if (request.method !== 'PUT' || typeof ifMatch !== 'string' || typeof source !== 'string') return
      const decoded = decodeURIComponent(source).replace(/^\//, '')
      const slash = decoded.indexOf('/')
      if (slash === -1) return // fauxqs answers the malformed source itself.
      let object: FauxqsS3Object
      try {
        object = s3.headObject(decoded.slice(0, slash), decoded.slice(slash + 1))
      } catch {
        return // Missing: fauxqs answers 404 itself.
      }
      const unquote = (etag: string) => etag.replace(/"/g, '')
      if (ifMatch.trim() === '*' || unquote(ifMatch) === unquote(object.etag)) return
      return reply
        .code(412)
        .header('content-type', 'application/xml')
        .send(
          '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>' +
            '<Message>At least one of the pre-conditions you specified did not hold</Message>' +
            '<Condition>x-amz-copy-source-If-Match</Condition></Error>',
        )
    })

    app.addHook('onResponse', async (request, reply) => {
      if (reply.statusCode !== 200) return
      const bucket = stringField(request.params, 'bucket')
      const key = stringField(request.params, '*')
      if (!bucket || !key) return
      const handlers = subscribers.get(bucket)
      if (!handlers || handlers.size === 0) return
      const query = request.query
      let eventName: string
      if (request.method === 'PUT') {
        if (stringField(query, 'uploadId') !== undefined || Reflect.has(Object(query), 'renameObject')) return
        eventName = request.headers['x-amz-copy-source'] ? 'ObjectCreated:Copy' : 'ObjectCreated:Put'
      } else if (request.method === 'POST' && stringField(query, 'uploadId') !== undefined) {
        eventName = 'ObjectCreated:CompleteMultipartUpload'
      } else {
        return
      }
      let object: FauxqsS3Object
      try {
        object = s3.headObject(bucket, key)
      } catch {
        return // Already gone.
      }
      const record: S3EventRecord = {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: region,
        eventTime: new Date().toISOString(),
        eventName,
        userIdentity: { principalId: 'pickup-local' },
        requestParameters: { sourceIPAddress: request.ip },
        responseElements: {
          'x-amz-request-id': String(reply.getHeader('x-amz-request-id') ?? ''),
          'x-amz-id-2': String(reply.getHeader('x-amz-id-2') ?? ''),
        },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'pickup-local',
          bucket: {
            name: bucket,
            ownerIdentity: { principalId: 'pickup-local' },
            arn: `arn:aws:s3:::${bucket}`,
          },
          object: {
            key: eventKey(key),
            size: object.contentLength,
            eTag: object.etag.replace(/"/g, ''),
            sequencer: (++sequence).toString(16).toUpperCase().padStart(16, '0'),
          },
        },
      }
      for (const handler of handlers) {
        // A fresh copy per handler, after the response (asynchronous, as S3 notifications are).
        const event: S3Event = { Records: [structuredClone(record)] }
        const delivery = sleep(0).then(() => deliver(handler, event))
        deliveries.add(delivery)
        void delivery.finally(() => deliveries.delete(delivery))
      }
    })

    const address = await app.listen({ host: HOST, port: options.ports?.fauxqs ?? 0 })
    const fauxqsEndpoint = new URL(address).origin
    cleanups.push(async () => {
      await app.close()
    })

    const dynamodbEndpoint = `http://${HOST}:${dynamodbPort}`
    const credentials = { ...LOCAL_CREDENTIALS }
    const clients = {
      dynamodb: new DynamoDBClient({ endpoint: dynamodbEndpoint, region, credentials }),
      sqs: new SQSClient({ endpoint: fauxqsEndpoint, region, credentials }),
      s3: new S3Client({
        endpoint: fauxqsEndpoint,
        region,
        credentials,
        forcePathStyle: true,
        ...S3_CHECKSUMS,
      }),
      sns: new SNSClient({ endpoint: fauxqsEndpoint, region, credentials }),
    }
    cleanups.push(async () => {
      for (const c of Object.values(clients)) c.destroy()
    })

    // Resources
    const pinQueue = pinQueueDefinition({
      visibilityTimeoutSeconds: options.pinQueueVisibilityTimeoutSeconds,
      maxReceiveCount: options.pinQueueMaxReceiveCount,
    })
    const names = {
      pinsTable: tableName(prefix, pinsTable),
      workersTable: tableName(prefix, workersTable),
      requestsTable: tableName(prefix, requestsTable),
      tokensTable: tableName(prefix, tokensTable),
      tempBucket: bucketName(prefix, tempBucket),
      destinationBucket: bucketName(prefix, destinationBucket),
    }
    await Promise.all([
      ensureTable(clients.dynamodb, pinsTable, names.pinsTable),
      ensureTable(clients.dynamodb, workersTable, names.workersTable),
      ensureTable(clients.dynamodb, requestsTable, names.requestsTable),
      ensureTable(clients.dynamodb, tokensTable, names.tokensTable),
      ensureBucket(clients.s3, names.tempBucket),
      ensureBucket(clients.s3, names.destinationBucket),
    ])
    const [dlq, failedJobs] = await Promise.all([
      ensureQueue(
        clients.sqs,
        fauxqsEndpoint,
        queueName(prefix, pinQueue.deadLetter.queue),
        queueAttributes(pinQueue.deadLetter.queue),
      ),
      ensureQueue(
        clients.sqs,
        fauxqsEndpoint,
        queueName(prefix, failedJobsQueue),
        queueAttributes(failedJobsQueue),
      ),
    ])
    const queue = await ensureQueue(
      clients.sqs,
      fauxqsEndpoint,
      queueName(prefix, pinQueue),
      queueAttributes(pinQueue, {
        deadLetterTargetArn: dlq.arn,
        maxReceiveCount: pinQueue.deadLetter.maxReceiveCount,
      }),
    )
    const topic = await clients.sns.send(new CreateTopicCommand({ Name: topicName(prefix, carStoredTopic) }))
    if (!topic.TopicArn) throw new Error('CreateTopic returned no TopicArn')

    let stopped: Promise<void> | undefined
    return {
      endpoints: {
        dynamodb: dynamodbEndpoint,
        sqs: fauxqsEndpoint,
        s3: fauxqsEndpoint,
        sns: fauxqsEndpoint,
        region,
      },
      credentials,
      clients,
      names: {
        ...names,
        pinQueueUrl: queue.url,
        pinQueueArn: queue.arn,
        deadLetterQueueUrl: dlq.url,
        deadLetterQueueArn: dlq.arn,
        failedJobsQueueUrl: failedJobs.url,
        failedJobsQueueArn: failedJobs.arn,
        carStoredTopicArn: topic.TopicArn,
      },
      onObjectCreated(bucket, handler) {
        const set = subscribers.get(bucket) ?? new Set<ObjectCreatedHandler>()
        subscribers.set(bucket, set)
        set.add(handler)
        return () => {
          set.delete(handler)
        }
      },
      stop() {
        stopped ??= (async () => {
          subscribers.clear()
          while (deliveries.size > 0) await Promise.allSettled([...deliveries])
          await runCleanups(cleanups)
        })()
        return stopped
      },
    }
  } catch (err) {
    await runCleanups(cleanups).catch(() => {})
    throw err
  }
}

/** Runs the cleanups last-registered first; throws the first error after running them all. */
async function runCleanups(cleanups: (() => Promise<void>)[]): Promise<void> {
  const errors: unknown[] = []
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup()
    } catch (err) {
      errors.push(err)
    }
  }
  if (errors.length > 0) throw errors[0]
}
