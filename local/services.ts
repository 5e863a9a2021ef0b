/**
 * The AWS services pickup uses, embedded in this process for local mode and tests, on 127.0.0.1 only:
 * DynamoDB is dynalite (in memory, or LevelDB under `<dataDir>/dynamodb`); SQS and SNS are fauxqs (in memory,
 * or SQLite under `<dataDir>/sqs`); S3 is pickup's own S3 server (./s3-server.ts), which streams objects to
 * files under `<dataDir>/s3` (or a temporary directory removed at stop), so local mode's memory does not
 * grow with the CARs it stores; it answers on fauxqs's port. The glue to fauxqs and dynalite is in
 * ./emulators.ts. The tables, queues, topic and buckets are created (idempotently) from the same definitions
 * the stack uses.
 *
 * S3 bucket notifications: the S3 server reports successful PutObject, CopyObject and CompleteMultipartUpload
 * responses, which become S3 `ObjectCreated:*` events for `onObjectCreated` subscribers, delivered
 * asynchronously and retried twice on failure, like a Lambda's asynchronous invocation.
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
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
import { S3_CHECKSUMS, withoutSdkLogger } from '../adapters/aws-clients.ts'
import {
  collectionsTable,
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
import {
  collectionJobsQueue,
  failedJobsQueue,
  pinQueueDefinition,
  queueAttributes,
  queueName,
} from '../adapters/sqs/queues.ts'
import type { Logger } from '../core/ports.ts'
import { startDynalite, startFauxqs } from './emulators.ts'
import { OutdatedDataError } from './errors.ts'
import { createS3Server, type ObjectCreated } from './s3-server.ts'

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
  /**
   * Another set of clients to the same services, with connection pools of their own: local mode gives one to
   * its worker, so that a burst of the worker's calls (thousands of searches ending together) does not queue
   * the API's calls behind it, as separate processes do not in AWS. Destroyed at stop.
   */
  newClients(): Services['clients']
  names: {
    pinsTable: string
    workersTable: string
    requestsTable: string
    tokensTable: string
    collectionsTable: string
    pinQueueUrl: string
    pinQueueArn: string
    deadLetterQueueUrl: string
    deadLetterQueueArn: string
    /** Where the dead-letter consumer forwards the jobs it gave up on, for operators (`pickup dlq`). */
    failedJobsQueueUrl: string
    failedJobsQueueArn: string
    /** Collection jobs (core/collections/jobs.ts). */
    collectionJobsQueueUrl: string
    collectionJobsQueueArn: string
    /** Collection jobs that failed every delivery (the jobs queue's redrive target); nothing consumes it. */
    collectionDeadLetterQueueUrl: string
    collectionDeadLetterQueueArn: string
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

const DEFAULT_RETRY_DELAYS_MS = [200, 1000]

// ---------------------------------------------------------------- S3 events

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

/**
 * Like Promise.all, but waits for every setup call to end before throwing the first failure: a refusal (a
 * table written by an older pickup, say) then stops the services with nothing in flight, where a call still
 * running would meet a closed database and throw outside any handler.
 */
async function allSettledOrThrow<T extends readonly unknown[]>(
  calls: readonly [...{ [K in keyof T]: Promise<T[K]> }],
): Promise<T> {
  const settled = await Promise.allSettled(calls)
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T
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
    if (dataDir) mkdirSync(dataDir, { recursive: true })
    const dynamodb = await startDynalite({
      ...(dataDir ? { path: join(dataDir, 'dynamodb') } : {}),
      port: options.ports?.dynamodb ?? 0,
    })
    cleanups.push(() => dynamodb.close())

    // S3's files: under the data directory, or a temporary directory removed at stop.
    const s3Dir = dataDir ? join(dataDir, 's3') : mkdtempSync(join(tmpdir(), 'pickup-s3-'))
    if (!dataDir) cleanups.push(async () => rmSync(s3Dir, { recursive: true, force: true }))

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

    function objectCreated(created: ObjectCreated): void {
      const handlers = subscribers.get(created.bucket)
      if (!handlers || handlers.size === 0) return
      const { bucket } = created
      const record: S3EventRecord = {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: region,
        eventTime: new Date().toISOString(),
        eventName: created.eventName,
        userIdentity: { principalId: 'pickup-local' },
        requestParameters: { sourceIPAddress: created.sourceIp },
        responseElements: { 'x-amz-request-id': created.requestId, 'x-amz-id-2': created.requestId },
        s3: {
          s3SchemaVersion: '1.0',
          configurationId: 'pickup-local',
          bucket: {
            name: bucket,
            ownerIdentity: { principalId: 'pickup-local' },
            arn: `arn:aws:s3:::${bucket}`,
          },
          object: {
            key: eventKey(created.key),
            size: created.size,
            eTag: created.etag,
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
    }

    // SQS, SNS (fauxqs) and S3 (streamed to files) on one port.
    const fauxqs = await startFauxqs({
      ...(dataDir ? { dataDir } : {}),
      region,
      port: options.ports?.fauxqs ?? 0,
      s3: createS3Server({ dir: s3Dir, region, onObjectCreated: objectCreated }),
    })
    cleanups.push(() => fauxqs.close())
    const fauxqsEndpoint = fauxqs.endpoint

    const dynamodbEndpoint = dynamodb.endpoint
    const credentials = { ...LOCAL_CREDENTIALS }
    const made: Services['clients'][] = []
    const newClients = (): Services['clients'] => {
      const set = {
        dynamodb: withoutSdkLogger(new DynamoDBClient({ endpoint: dynamodbEndpoint, region, credentials })),
        sqs: withoutSdkLogger(new SQSClient({ endpoint: fauxqsEndpoint, region, credentials })),
        s3: withoutSdkLogger(
          new S3Client({
            endpoint: fauxqsEndpoint,
            region,
            credentials,
            forcePathStyle: true,
            ...S3_CHECKSUMS,
          }),
        ),
        sns: withoutSdkLogger(new SNSClient({ endpoint: fauxqsEndpoint, region, credentials })),
      }
      made.push(set)
      return set
    }
    const clients = newClients()
    cleanups.push(async () => {
      for (const set of made) for (const c of Object.values(set)) c.destroy()
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
      collectionsTable: tableName(prefix, collectionsTable),
      tempBucket: bucketName(prefix, tempBucket),
      destinationBucket: bucketName(prefix, destinationBucket),
    }
    await allSettledOrThrow([
      ensureTable(clients.dynamodb, pinsTable, names.pinsTable),
      ensureTable(clients.dynamodb, workersTable, names.workersTable),
      ensureTable(clients.dynamodb, requestsTable, names.requestsTable),
      ensureTable(clients.dynamodb, tokensTable, names.tokensTable),
      ensureTable(clients.dynamodb, collectionsTable, names.collectionsTable),
      ensureBucket(clients.s3, names.tempBucket),
      ensureBucket(clients.s3, names.destinationBucket),
    ])
    const [dlq, failedJobs, collectionDlq] = await allSettledOrThrow([
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
      ensureQueue(
        clients.sqs,
        fauxqsEndpoint,
        queueName(prefix, collectionJobsQueue.deadLetter.queue),
        queueAttributes(collectionJobsQueue.deadLetter.queue),
      ),
    ])
    const [queue, collectionJobs] = await allSettledOrThrow([
      ensureQueue(
        clients.sqs,
        fauxqsEndpoint,
        queueName(prefix, pinQueue),
        queueAttributes(pinQueue, {
          deadLetterTargetArn: dlq.arn,
          maxReceiveCount: pinQueue.deadLetter.maxReceiveCount,
        }),
      ),
      ensureQueue(
        clients.sqs,
        fauxqsEndpoint,
        queueName(prefix, collectionJobsQueue),
        queueAttributes(collectionJobsQueue, {
          deadLetterTargetArn: collectionDlq.arn,
          maxReceiveCount: collectionJobsQueue.deadLetter.maxReceiveCount,
        }),
      ),
    ])
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
      newClients,
      names: {
        ...names,
        pinQueueUrl: queue.url,
        pinQueueArn: queue.arn,
        deadLetterQueueUrl: dlq.url,
        deadLetterQueueArn: dlq.arn,
        failedJobsQueueUrl: failedJobs.url,
        failedJobsQueueArn: failedJobs.arn,
        collectionJobsQueueUrl: collectionJobs.url,
        collectionJobsQueueArn: collectionJobs.arn,
        collectionDeadLetterQueueUrl: collectionDlq.url,
        collectionDeadLetterQueueArn: collectionDlq.arn,
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
