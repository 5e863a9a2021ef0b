/**
 * NFT collections in AWS, in one place: the collection jobs queue and its dead-letter queue, the consumer
 * Lambda that enumerates collections from their chains and archives their tokens (api/lambda/collection-jobs.ts),
 * the follow tick on a schedule (api/lambda/collection-follow.ts), and the SST secret CHAIN_RPC holding the
 * chains' JSON-RPC endpoints. The collections table is created with
 * the other tables (stacks/data.ts); the Collections API is served by the HTTP API's function
 * (stacks/api.ts), which is given the table, this queue and the secret.
 *
 * Two numbers tie the queue to the consumer: the consumer's timeout is COLLECTION_JOB_TIMEOUT_SECONDS, and the
 * queue's visibility timeout six times that (adapters/sqs/queues.ts), as AWS requires it to be at least the
 * timeout of a function the queue triggers. One enumerate job reads COLLECTION_PAGES_PER_JOB pages and
 * checkpoints after each; the consumer aborts a job shortly before its timeout (api/collection-jobs.ts).
 *
 * The chains' endpoints are a secret (their URLs usually hold a provider's key): `npx sst secrets set CHAIN_RPC
 * '{"1":"https://…"}' --stage <stage>`. The template holds only its SSM parameter name; the functions bound to
 * it may read that one parameter (and SST's fallback), and fetch it at cold start.
 */
import { Duration } from 'aws-cdk-lib'
import * as events from 'aws-cdk-lib/aws-events'
import * as targets from 'aws-cdk-lib/aws-events-targets'
import * as iam from 'aws-cdk-lib/aws-iam'
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources'
import * as sqs from 'aws-cdk-lib/aws-sqs'
import { Config, type Function as SstFunction, type StackContext, use } from 'sst/constructs'
import { collectionsTable, indexNamed, requestsTable } from '../adapters/dynamodb/tables.ts'
import { COLLECTION_JOB_TIMEOUT_SECONDS, collectionJobsQueue, queueName } from '../adapters/sqs/queues.ts'
import { DataStack } from './data.ts'
import {
  collectionJobsDiskMb,
  collectionJobsMemoryMb,
  resourcePrefix,
  useDeployConfig,
} from './deploy-config.ts'
import { pickupFunction } from './lambda.ts'
import { arnWildcard, suppress, suppressFrameworkResources } from './nag.ts'
import { destinationObjectFindings, PipelineStack } from './pipeline.ts'
import { applyStagePolicy, stagePolicy } from './stage.ts'

/**
 * Collection jobs run at once, at most: each talks to a chain's JSON-RPC provider (whose rate limits are
 * shared by every collection of that chain) and requests pins; more would only meet more rate limits.
 */
export const COLLECTION_JOBS_MAX_CONCURRENCY = 10

export interface CollectionsResources {
  jobs: sqs.Queue
  deadLetterQueue: sqs.Queue
  consumer: SstFunction
  /** The follow tick, on a schedule every COLLECTION_FOLLOW_INTERVAL_MINUTES. */
  follow: SstFunction
  /** The chains' JSON-RPC endpoints, `{"<chainId>": "<url>"}` (api/lambda/chain-rpc.ts). */
  chainRpc: Config.Secret
}

export function CollectionsStack({ app, stack }: StackContext): CollectionsResources {
  const cfg = useDeployConfig(app)
  const policy = stagePolicy(app.stage)
  applyStagePolicy(stack, policy)
  const data = use(DataStack)
  const { queue: pinQueue, temp } = use(PipelineStack)
  const prefix = resourcePrefix(app)
  const { collections, requests, pins } = data.tables

  const chainRpc = new Config.Secret(stack, 'CHAIN_RPC')

  // ------------------------------------------------------------ queues
  const dlqDef = collectionJobsQueue.deadLetter.queue
  const deadLetterQueue = new sqs.Queue(stack, 'CollectionDeadLetterQueue', {
    queueName: queueName(prefix, dlqDef),
    visibilityTimeout: Duration.seconds(dlqDef.visibilityTimeoutSeconds),
    retentionPeriod: Duration.seconds(dlqDef.messageRetentionSeconds),
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  })
  const jobs = new sqs.Queue(stack, 'CollectionJobsQueue', {
    queueName: queueName(prefix, collectionJobsQueue),
    visibilityTimeout: Duration.seconds(collectionJobsQueue.visibilityTimeoutSeconds),
    retentionPeriod: Duration.seconds(collectionJobsQueue.messageRetentionSeconds),
    deadLetterQueue: {
      queue: deadLetterQueue,
      maxReceiveCount: collectionJobsQueue.deadLetter.maxReceiveCount,
    },
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  })

  // ------------------------------------------------------------ consumer
  const consumer = pickupFunction(
    stack,
    'CollectionJobs',
    {
      handler: 'api/lambda/collection-jobs.handler',
      description: 'Enumerates NFT collections from their chains and archives their tokens (collection jobs)',
      memorySize: collectionJobsMemoryMb(cfg.COLLECTION_READ_CAR_BYTES),
      timeout: Duration.seconds(COLLECTION_JOB_TIMEOUT_SECONDS),
      // A web-hosted file is imported into /tmp (its UnixFS blocks) before its CAR is uploaded.
      diskSizeMb: collectionJobsDiskMb(cfg.COLLECTION_WEB_MAX_BYTES),
      environment: {
        COLLECTION_TABLE: collections.tableName,
        COLLECTION_JOBS_QUEUE_URL: jobs.queueUrl,
        REQUEST_TABLE: requests.tableName,
        PIN_TABLE: pins.tableName,
        PIN_QUEUE_URL: pinQueue.queueUrl,
        DESTINATION_BUCKET: data.destination.bucketName,
        COLLECTION_PAGES_PER_JOB: String(cfg.COLLECTION_PAGES_PER_JOB),
        COLLECTION_ADVANCE_DELAY_SECONDS: String(cfg.COLLECTION_ADVANCE_DELAY_SECONDS),
        COLLECTION_READ_CAR_BYTES: String(cfg.COLLECTION_READ_CAR_BYTES),
        // Web-hosted content (core/collections/web-config.ts): its limits, and the temporary bucket and pin
        // settings its attempt shares with a worker's, so the validator treats its CAR as a worker's.
        TEMP_BUCKET: temp.bucketName,
        MAX_CAR_BYTES: String(cfg.MAX_CAR_BYTES),
        VISIBILITY_TIMEOUT_SECONDS: String(cfg.VISIBILITY_TIMEOUT_SECONDS),
        UPLOAD_PART_BYTES: String(cfg.UPLOAD_PART_BYTES),
        COLLECTION_WEB_MAX_BYTES: String(cfg.COLLECTION_WEB_MAX_BYTES),
        COLLECTION_WEB_TIMEOUT_MS: String(cfg.COLLECTION_WEB_TIMEOUT_MS),
        COLLECTION_WEB_MAX_REDIRECTS: String(cfg.COLLECTION_WEB_MAX_REDIRECTS),
        COLLECTION_WEB_ALLOW_PRIVATE: String(cfg.COLLECTION_WEB_ALLOW_PRIVATE),
        COLLECTION_WEB_WINDOW_MS: String(cfg.COLLECTION_WEB_WINDOW_MS),
      },
      permissions: [
        // The collection, its tokens and roots: read, checkpoint, write tokens and roots in batches.
        new iam.PolicyStatement({
          sid: 'Collections',
          actions: [
            'dynamodb:GetItem',
            'dynamodb:UpdateItem',
            'dynamodb:Query',
            'dynamodb:BatchGetItem',
            'dynamodb:BatchWriteItem',
          ],
          resources: [collections.tableArn],
        }),
        // One request per root, owned by the collection (its creation time reserved on the owner's counter).
        // A job that made requests for a collection being deleted deletes them, and releases their content
        // when no other request wants it (the `cid` index, checked against the table).
        new iam.PolicyStatement({
          sid: 'RootRequests',
          actions: [
            'dynamodb:GetItem',
            'dynamodb:PutItem',
            'dynamodb:UpdateItem',
            'dynamodb:DeleteItem',
            'dynamodb:BatchGetItem',
          ],
          resources: [requests.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'OtherRequestsForContent',
          actions: ['dynamodb:Query'],
          resources: [`${requests.tableArn}/index/${indexNamed(requestsTable, 'cid')}`],
        }),
        // Request the roots' pins and read their states.
        new iam.PolicyStatement({
          sid: 'Pins',
          actions: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem'],
          resources: [pins.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'EnqueuePins',
          actions: ['sqs:SendMessage'],
          resources: [pinQueue.queueArn],
        }),
        // Each job sends the next (the event source grants receiving, deleting and changing visibility, which
        // brings a failed job back after its backoff).
        new iam.PolicyStatement({
          sid: 'NextJob',
          actions: ['sqs:SendMessage'],
          resources: [jobs.queueArn],
        }),
        // Tokens' metadata files, read out of the stored CARs. ListBucket makes a missing key a 404, not a 403.
        new iam.PolicyStatement({
          sid: 'ReadStoredCars',
          actions: ['s3:GetObject'],
          resources: [data.destination.arnForObjects('*')],
        }),
        // Web-hosted content's CARs, uploaded like a worker's for the validator to check and promote.
        new iam.PolicyStatement({
          sid: 'UploadWebCars',
          actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
          resources: [temp.arnForObjects('*')],
        }),
        new iam.PolicyStatement({
          sid: 'ListStoredCars',
          actions: ['s3:ListBucket'],
          resources: [data.destination.bucketArn],
        }),
      ],
      // Grants ssm:GetParameters on this secret's parameter (and its SST fallback) only.
      bind: [chainRpc],
    },
    cfg,
    policy,
  )
  suppress(consumer, [
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'Reads stored CARs of the destination bucket and uploads web content CARs to the temporary bucket, ' +
        'whose keys are per CID and not known ahead.',
      appliesTo: [...destinationObjectFindings(data), arnWildcard('TempBucket', '/*')],
    },
  ])
  // One job per invocation: a job is a bounded run (pages of one collection, or one pass) with its own deadline.
  consumer.addEventSource(
    new SqsEventSource(jobs, {
      batchSize: 1,
      reportBatchItemFailures: true,
      maxConcurrency: COLLECTION_JOBS_MAX_CONCURRENCY,
    }),
  )

  // ------------------------------------------------------------ follow tick
  // Followed collections that are done enumerate again from their checkpoint (api/collection-follow.ts).
  const follow = pickupFunction(
    stack,
    'CollectionFollow',
    {
      handler: 'api/lambda/collection-follow.handler',
      description: 'Sends followed NFT collections that are done to enumerate the tokens minted since',
      memorySize: 512,
      // A run looks at COLLECTION_FOLLOW_LIMIT collections (an index query, two writes and a send each).
      timeout: Duration.minutes(1),
      environment: {
        COLLECTION_TABLE: collections.tableName,
        COLLECTION_JOBS_QUEUE_URL: jobs.queueUrl,
        COLLECTION_FOLLOW_LIMIT: String(cfg.COLLECTION_FOLLOW_LIMIT),
      },
      permissions: [
        new iam.PolicyStatement({
          sid: 'FindFollowed',
          actions: ['dynamodb:Query'],
          resources: [`${collections.tableArn}/index/${indexNamed(collectionsTable, 'following-due')}`],
        }),
        new iam.PolicyStatement({
          sid: 'MarkChecked',
          actions: ['dynamodb:UpdateItem'],
          resources: [collections.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'SendEnumerate',
          actions: ['sqs:SendMessage'],
          resources: [jobs.queueArn],
        }),
      ],
    },
    cfg,
    policy,
  )
  new events.Rule(stack, 'CollectionFollowSchedule', {
    description: 'Runs the follow tick of NFT collections',
    schedule: events.Schedule.rate(Duration.minutes(cfg.COLLECTION_FOLLOW_INTERVAL_MINUTES)),
    // A failed run is not retried: the next one looks again.
    targets: [new targets.LambdaFunction(follow, { retryAttempts: 0 })],
  })

  suppressFrameworkResources(stack)
  // What the `pickup` command reads with `--outputs` (cli/backend.ts): the jobs queue (`pickup collection`) and
  // the dead-letter queue (`pickup dlq --collections`).
  stack.addOutputs({
    CollectionJobsQueueUrl: jobs.queueUrl,
    CollectionDeadLetterQueueUrl: deadLetterQueue.queueUrl,
  })
  return { jobs, deadLetterQueue, consumer, follow, chainRpc }
}
