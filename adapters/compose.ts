/**
 * The composition root: which adapter serves each port, built from the resource names and the clients. Every
 * entry point (the Lambda handlers, the worker, local mode, the CLI, the benchmarks) takes its stores, queues
 * and buckets from here, so swapping an adapter (the pin store for another database, say) is a change to this
 * file and the new adapter, and the validator's settings are read from the configuration in one place.
 */
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import type { S3Client } from '@aws-sdk/client-s3'
import type { SNSClient } from '@aws-sdk/client-sns'
import type { SQSClient } from '@aws-sdk/client-sqs'
import type { CollectionJobs } from '../core/collections/archive.ts'
import type { CollectionStore } from '../core/collections/ports.ts'
import type { WorkerConfig } from '../core/config.ts'
import type {
  DeadLetterQueue,
  EventSink,
  FailedJobs,
  JobQueue,
  Logger,
  ObjectStore,
  PinQueue,
  PinStore,
  QueueCounter,
  RequestStore,
  TokenStore,
  WorkerRegistry,
} from '../core/ports.ts'
import type { PromoteContext, PromoteOptions } from '../core/promote-car.ts'
import { retryPolicyFromConfig } from '../core/retry-policy.ts'
import { createDynamoCollectionStore } from './dynamodb/collections.ts'
import { createDynamoPinStore } from './dynamodb/pins.ts'
import { type CountCacheOptions, createDynamoRequestStore } from './dynamodb/requests.ts'
import { createDynamoTokenStore } from './dynamodb/tokens.ts'
import { createDynamoWorkerRegistry } from './dynamodb/workers.ts'
import { createS3ObjectStore } from './s3/objects.ts'
import { createSnsEventSink } from './sns/events.ts'
import { createSqsCollectionJobs } from './sqs/collection-jobs.ts'
import { createSqsDeadLetterQueue, createSqsFailedJobs, createSqsQueueCounter } from './sqs/dead-letters.ts'
import { createSqsJobQueue, createSqsPinQueue } from './sqs/queue.ts'

/** The deployed resources, by the names local mode, the CLI and the stage outputs use. */
export const RESOURCE_ENV = {
  pinsTable: 'PIN_TABLE',
  requestsTable: 'REQUEST_TABLE',
  tokensTable: 'TOKEN_TABLE',
  workersTable: 'WORKER_TABLE',
  collectionsTable: 'COLLECTION_TABLE',
  collectionJobsQueueUrl: 'COLLECTION_JOBS_QUEUE_URL',
  collectionDeadLetterQueueUrl: 'COLLECTION_DEAD_LETTER_QUEUE_URL',
  pinQueueUrl: 'PIN_QUEUE_URL',
  deadLetterQueueUrl: 'DEAD_LETTER_QUEUE_URL',
  failedJobsQueueUrl: 'FAILED_JOBS_QUEUE_URL',
  tempBucket: 'TEMP_BUCKET',
  destinationBucket: 'DESTINATION_BUCKET',
  carStoredTopicArn: 'CAR_STORED_TOPIC_ARN',
} as const

export type ResourceName = keyof typeof RESOURCE_ENV

/** The clients the stores are made over; a store over a client that is not given throws, naming it. */
export interface Clients {
  dynamodb?: DynamoDBClient
  sqs?: SQSClient
  s3?: S3Client
  /** Only for the "CAR stored" events. */
  sns?: SNSClient
}

export interface StoreOptions {
  /** The request store's count cache (adapters/dynamodb/requests.ts); `false` turns it off. */
  requestCountCache?: false | CountCacheOptions
  /** The worker's multipart upload part size, in bytes. */
  uploadPartBytes?: number
  /** How the validator reads CARs from the temporary bucket (ranged GETs). */
  validatorRead?: { partBytes: number; concurrency: number }
}

/** Each port's adapter, made on first use (an entry point builds only what it uses) and shared after. */
export interface Stores {
  pins(): PinStore
  requests(): RequestStore
  tokens(): TokenStore
  workers(): WorkerRegistry
  /** NFT collections, their tokens and roots (core/collections/). */
  collections(): CollectionStore
  /** Where collection jobs are sent (core/collections/jobs.ts). */
  collectionJobs(): CollectionJobs
  /** The pin queue, as the APIs, the validator and the reconciler send to it. */
  pinQueue(): PinQueue
  /** The pin queue, as the worker consumes it. */
  jobQueue(log: Logger): JobQueue
  failedJobs(): FailedJobs
  /** The failed-jobs queue as operators read it (`pickup dlq`). */
  deadLetterQueue(): DeadLetterQueue
  /** The collection jobs' dead-letter queue as operators read it (`pickup dlq --collections`). */
  collectionDeadLetterQueue(): DeadLetterQueue
  /** Message counts of one queue. */
  queueCounter(
    queue:
      | 'pinQueueUrl'
      | 'deadLetterQueueUrl'
      | 'failedJobsQueueUrl'
      | 'collectionJobsQueueUrl'
      | 'collectionDeadLetterQueueUrl',
  ): QueueCounter
  temp(): ObjectStore
  destination(): ObjectStore
  events(): EventSink
}

/**
 * The stores over these clients; `resource` names each resource a store is asked for (and says what is
 * missing when one is not configured).
 */
export function createStores(
  clients: Clients,
  resource: (name: ResourceName) => string,
  opts: StoreOptions = {},
): Stores {
  const made = new Map<string, unknown>()
  const once = <T>(key: string, make: () => T): T => {
    if (!made.has(key)) made.set(key, make())
    return made.get(key) as T
  }
  const need = <K extends keyof Clients>(name: K): NonNullable<Clients[K]> => {
    const client = clients[name]
    if (!client) throw new TypeError(`no ${name} client was given for this store`)
    return client
  }
  return {
    pins: () =>
      once('pins', () =>
        createDynamoPinStore({ client: need('dynamodb'), tableName: resource('pinsTable') }),
      ),
    requests: () =>
      once('requests', () =>
        createDynamoRequestStore({
          client: need('dynamodb'),
          tableName: resource('requestsTable'),
          ...(opts.requestCountCache === undefined ? {} : { countCache: opts.requestCountCache }),
        }),
      ),
    tokens: () =>
      once('tokens', () =>
        createDynamoTokenStore({ client: need('dynamodb'), tableName: resource('tokensTable') }),
      ),
    workers: () =>
      once('workers', () =>
        createDynamoWorkerRegistry({ client: need('dynamodb'), tableName: resource('workersTable') }),
      ),
    collections: () =>
      once('collections', () =>
        createDynamoCollectionStore({ client: need('dynamodb'), tableName: resource('collectionsTable') }),
      ),
    collectionJobs: () =>
      once('collectionJobs', () =>
        createSqsCollectionJobs({ client: need('sqs'), queueUrl: resource('collectionJobsQueueUrl') }),
      ),
    pinQueue: () =>
      once('pinQueue', () => createSqsPinQueue({ client: need('sqs'), queueUrl: resource('pinQueueUrl') })),
    jobQueue: (log) =>
      once('jobQueue', () =>
        createSqsJobQueue({ client: need('sqs'), queueUrl: resource('pinQueueUrl'), log }),
      ),
    failedJobs: () =>
      once('failedJobs', () =>
        createSqsFailedJobs({ client: need('sqs'), queueUrl: resource('failedJobsQueueUrl') }),
      ),
    deadLetterQueue: () =>
      once('deadLetterQueue', () =>
        createSqsDeadLetterQueue({ client: need('sqs'), queueUrl: resource('failedJobsQueueUrl') }),
      ),
    collectionDeadLetterQueue: () =>
      once('collectionDeadLetterQueue', () =>
        createSqsDeadLetterQueue({ client: need('sqs'), queueUrl: resource('collectionDeadLetterQueueUrl') }),
      ),
    queueCounter: (queue) =>
      once(`counter:${queue}`, () =>
        createSqsQueueCounter({ client: need('sqs'), queueUrl: resource(queue) }),
      ),
    temp: () =>
      once('temp', () =>
        createS3ObjectStore({
          client: need('s3'),
          bucket: resource('tempBucket'),
          ...(opts.uploadPartBytes === undefined ? {} : { partSize: opts.uploadPartBytes }),
          ...(opts.validatorRead === undefined
            ? {}
            : {
                readPartBytes: opts.validatorRead.partBytes,
                readConcurrency: opts.validatorRead.concurrency,
              }),
        }),
      ),
    destination: () =>
      once('destination', () =>
        createS3ObjectStore({ client: need('s3'), bucket: resource('destinationBucket') }),
      ),
    events: () =>
      once('events', () =>
        createSnsEventSink({ client: need('sns'), topicArn: resource('carStoredTopicArn') }),
      ),
  }
}

/** The store settings an entry point's configuration holds (each schema has the variables its stores use). */
export function storeOptionsFromConfig(cfg: {
  UPLOAD_PART_BYTES?: number
  VALIDATOR_READ_PART_BYTES?: number
  VALIDATOR_READ_CONCURRENCY?: number
}): StoreOptions {
  return {
    ...(cfg.UPLOAD_PART_BYTES === undefined ? {} : { uploadPartBytes: cfg.UPLOAD_PART_BYTES }),
    ...(cfg.VALIDATOR_READ_PART_BYTES === undefined || cfg.VALIDATOR_READ_CONCURRENCY === undefined
      ? {}
      : {
          validatorRead: {
            partBytes: cfg.VALIDATOR_READ_PART_BYTES,
            concurrency: cfg.VALIDATOR_READ_CONCURRENCY,
          },
        }),
  }
}

/** What the validator works on (core/promote-car.ts), the same in AWS and in local mode. */
export function promotePorts(stores: Stores): Omit<PromoteContext, 'clock' | 'log'> {
  return {
    pins: stores.pins(),
    temp: stores.temp(),
    destination: stores.destination(),
    queue: stores.pinQueue(),
    events: stores.events(),
  }
}

/**
 * Resource names from a parsed environment (RESOURCE_ENV's variables); one that is not set throws, naming
 * the variable (each entry point's schema requires those it uses, so this is a wiring mistake).
 */
export function resourcesFromEnv(env: object): (name: ResourceName) => string {
  return (name) => {
    const value: unknown = Reflect.get(env, RESOURCE_ENV[name])
    if (typeof value !== 'string' || value.length === 0) {
      throw new TypeError(`${RESOURCE_ENV[name]} is not set (${name})`)
    }
    return value
  }
}

/** The validator's settings (core/promote-car.ts), from the worker's configuration it shares. */
export function promoteOptionsFromConfig(
  cfg: Pick<
    WorkerConfig,
    | 'MAX_CAR_BYTES'
    | 'MAX_DAG_BLOCKS'
    | 'MAX_ATTEMPTS'
    | 'RETRY_BASE_DELAY_SECONDS'
    | 'RETRY_MAX_DELAY_SECONDS'
  >,
): PromoteOptions {
  return {
    maxCarBytes: cfg.MAX_CAR_BYTES,
    maxDagBlocks: cfg.MAX_DAG_BLOCKS,
    maxAttempts: cfg.MAX_ATTEMPTS,
    retry: retryPolicyFromConfig(cfg),
  }
}
