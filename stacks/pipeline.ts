/**
 * The pin pipeline between the API and the destination bucket: the pin queue and its dead-letter queue (with
 * the consumer that marks dead jobs' pins failed and forwards the jobs to the failed-jobs queue, which
 * operators read with `pickup dlq`), the temporary bucket the workers upload CARs to, and the validator that
 * checks each CAR on ObjectCreated and promotes it.
 *
 * Two numbers tie the queue to the worker. VISIBILITY_TIMEOUT_SECONDS is both the queue's visibility timeout
 * and the worker's lease, which it renews every third of it (core/pin-worker.ts), so a live worker's
 * message never reappears and a dead worker's does within one timeout. MAX_ATTEMPTS is both the queue's
 * maxReceiveCount and the validator's bound on retries, so both agree on which attempt is the last.
 *
 * Also here, on EventBridge schedules: the sweep that deletes the CARs and pin records of content no request
 * has wanted for UNREFERENCED_RETENTION_MS (api/sweep-unreferenced.ts), and the reconciler that re-enqueues
 * pins no job will move any more, or fails them after MAX_ATTEMPTS attempts (api/reconcile.ts).
 */
import { Duration } from 'aws-cdk-lib'
import * as events from 'aws-cdk-lib/aws-events'
import * as targets from 'aws-cdk-lib/aws-events-targets'
import * as iam from 'aws-cdk-lib/aws-iam'
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations'
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources'
import * as s3 from 'aws-cdk-lib/aws-s3'
import * as s3n from 'aws-cdk-lib/aws-s3-notifications'
import * as sqs from 'aws-cdk-lib/aws-sqs'
import { type Function as SstFunction, type StackContext, use } from 'sst/constructs'
import { tempBucket } from '../adapters/s3/buckets.ts'
import {
  failedJobsQueue,
  pinQueueDefinition,
  type QueueDefinition,
  queueName,
} from '../adapters/sqs/queues.ts'
import { type DataResources, DataStack } from './data.ts'
import { resourcePrefix, useDeployConfig } from './deploy-config.ts'
import { pickupFunction } from './lambda.ts'
import { type AppliesTo, arnWildcard, suppress, suppressFrameworkResources } from './nag.ts'
import { applyStagePolicy, stagePolicy } from './stage.ts'
import { VALIDATOR_TIMEOUT_SECONDS } from './validator-sizing.ts'

/** The dead-letter consumer's timeout: a sixth of the DLQ's visibility timeout, as AWS advises for SQS sources. */
export function deadLetterTimeoutSeconds(dlq: QueueDefinition): number {
  return Math.max(1, Math.floor(dlq.visibilityTimeoutSeconds / 6))
}

/** Where S3 event deliveries that failed every retry land, to be replayed (14 days). */
const VALIDATOR_FAILURE_RETENTION = Duration.days(14)

/** The cdk-nag finding for object-level actions on the destination bucket (created or imported). */
export function destinationObjectFindings(data: DataResources): AppliesTo {
  return data.destinationImported
    ? [`Resource::arn:<AWS::Partition>:s3:::${data.destination.bucketName}/*`]
    : [arnWildcard('DestinationBucket', '/*')]
}

export interface PipelineResources {
  queue: sqs.Queue
  deadLetterQueue: sqs.Queue
  deadLetterConsumer: SstFunction
  /** Dead jobs the consumer gave up on, kept for operators (`pickup dlq`). */
  failedJobs: sqs.Queue
  temp: s3.Bucket
  validator: SstFunction
  validatorFailures: sqs.Queue
  sweeper: SstFunction
  reconciler: SstFunction
}

export function PipelineStack({ app, stack }: StackContext): PipelineResources {
  const cfg = useDeployConfig(app)
  const policy = stagePolicy(app.stage)
  applyStagePolicy(stack, policy)
  const data = use(DataStack)
  const prefix = resourcePrefix(app)
  const pins = data.tables.pins

  // ------------------------------------------------------------ queues
  // The worker's lease and attempts, and the queue's visibility timeout and receives: the same two values.
  const def = pinQueueDefinition({
    visibilityTimeoutSeconds: cfg.VISIBILITY_TIMEOUT_SECONDS,
    maxReceiveCount: cfg.MAX_ATTEMPTS,
  })
  const dlqDef = def.deadLetter.queue
  const deadLetterQueue = new sqs.Queue(stack, 'PinDeadLetterQueue', {
    queueName: queueName(prefix, dlqDef),
    visibilityTimeout: Duration.seconds(dlqDef.visibilityTimeoutSeconds),
    retentionPeriod: Duration.seconds(dlqDef.messageRetentionSeconds),
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  })
  const queue = new sqs.Queue(stack, 'PinQueue', {
    queueName: queueName(prefix, def),
    visibilityTimeout: Duration.seconds(def.visibilityTimeoutSeconds),
    retentionPeriod: Duration.seconds(def.messageRetentionSeconds),
    deadLetterQueue: { queue: deadLetterQueue, maxReceiveCount: def.deadLetter.maxReceiveCount },
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  })

  // The dead-letter queue's consumer forwards each job it gave up on here. Only operators read it.
  const failedJobs = new sqs.Queue(stack, 'FailedJobsQueue', {
    queueName: queueName(prefix, failedJobsQueue),
    visibilityTimeout: Duration.seconds(failedJobsQueue.visibilityTimeoutSeconds),
    retentionPeriod: Duration.seconds(failedJobsQueue.messageRetentionSeconds),
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  })
  suppress(failedJobs, [
    {
      id: 'AwsSolutions-SQS3',
      reason:
        'The end of the line for dead jobs: the dead-letter consumer forwards them here for operators, and ' +
        'nothing consumes this queue (operators read it with `pickup dlq`), so nothing fails to process it.',
    },
  ])

  const deadLetterConsumer = pickupFunction(
    stack,
    'DeadLetterConsumer',
    {
      handler: 'api/lambda/dead-letter.handler',
      description:
        'Marks the pins of dead-lettered jobs failed and forwards the jobs to the failed-jobs queue',
      memorySize: 512,
      timeout: Duration.seconds(deadLetterTimeoutSeconds(dlqDef)),
      environment: { PIN_TABLE: pins.tableName, FAILED_JOBS_QUEUE_URL: failedJobs.queueUrl },
      permissions: [
        new iam.PolicyStatement({
          sid: 'PinsReadSettle',
          actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
          resources: [pins.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'ForwardFailedJobs',
          actions: ['sqs:SendMessage'],
          resources: [failedJobs.queueArn],
        }),
      ],
    },
    cfg,
    policy,
  )
  // Grants exactly ReceiveMessage, ChangeMessageVisibility, GetQueueUrl, DeleteMessage, GetQueueAttributes.
  deadLetterConsumer.addEventSource(
    new SqsEventSource(deadLetterQueue, { batchSize: 10, reportBatchItemFailures: true }),
  )

  // ------------------------------------------------------------ temporary bucket and validator
  // Not named: only pickup's own roles use it, and they are given its generated name.
  const temp = new s3.Bucket(stack, 'TempBucket', {
    encryption: s3.BucketEncryption.S3_MANAGED,
    blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
    objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
    enforceSSL: true,
    lifecycleRules: [
      {
        // Left-overs only: the validator deletes every CAR it has handled.
        id: 'expire-temporary-cars',
        expiration: Duration.days(tempBucket.expireAfterDays),
        abortIncompleteMultipartUploadAfter: Duration.days(1),
      },
    ],
    autoDeleteObjects: policy.autoDeleteObjects,
    removalPolicy: policy.dataRemovalPolicy,
  })
  suppress(temp, [
    {
      id: 'AwsSolutions-S1',
      reason:
        'Temporary uploads, read once by the validator and deleted; only pickup roles can reach the bucket. ' +
        'The destination bucket has access logs.',
    },
  ])

  const validatorFailures = new sqs.Queue(stack, 'ValidatorFailureQueue', {
    retentionPeriod: VALIDATOR_FAILURE_RETENTION,
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
  })
  suppress(validatorFailures, [
    {
      id: 'AwsSolutions-SQS3',
      reason: "This queue is itself a dead-letter destination: the validator's failed S3 event deliveries.",
    },
  ])

  const destinationObjects = data.destination.arnForObjects('*')
  const validator = pickupFunction(
    stack,
    'ValidateCar',
    {
      handler: 'api/lambda/validate-car.handler',
      description: 'Validates CARs uploaded to the temporary bucket and promotes them',
      memorySize: cfg.VALIDATOR_MEMORY_MB,
      timeout: Duration.seconds(VALIDATOR_TIMEOUT_SECONDS),
      environment: {
        PIN_TABLE: pins.tableName,
        PIN_QUEUE_URL: queue.queueUrl,
        TEMP_BUCKET: temp.bucketName,
        DESTINATION_BUCKET: data.destination.bucketName,
        CAR_STORED_TOPIC_ARN: data.carStored.topicArn,
        MAX_CAR_BYTES: String(cfg.MAX_CAR_BYTES),
        MAX_DAG_BLOCKS: String(cfg.MAX_DAG_BLOCKS),
        MAX_ATTEMPTS: String(cfg.MAX_ATTEMPTS),
        RETRY_BASE_DELAY_SECONDS: String(cfg.RETRY_BASE_DELAY_SECONDS),
        RETRY_MAX_DELAY_SECONDS: String(cfg.RETRY_MAX_DELAY_SECONDS),
        VALIDATOR_READ_PART_BYTES: String(cfg.VALIDATOR_READ_PART_BYTES),
        VALIDATOR_READ_CONCURRENCY: String(cfg.VALIDATOR_READ_CONCURRENCY),
      },
      ...(cfg.VALIDATOR_RESERVED_CONCURRENCY > 0
        ? { reservedConcurrentExecutions: cfg.VALIDATOR_RESERVED_CONCURRENCY }
        : {}),
      permissions: [
        new iam.PolicyStatement({
          sid: 'PinsReadSettle',
          actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
          resources: [pins.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'TempReadDelete',
          actions: ['s3:GetObject', 's3:DeleteObject'],
          resources: [temp.arnForObjects('*')],
        }),
        // Without ListBucket, S3 answers 403 instead of 404 for a missing key, and an already handled
        // (redelivered) event would fail instead of being recognised.
        new iam.PolicyStatement({ sid: 'TempList', actions: ['s3:ListBucket'], resources: [temp.bucketArn] }),
        new iam.PolicyStatement({
          sid: 'DestinationWrite',
          actions: ['s3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'],
          resources: [destinationObjects],
        }),
        // After marking a pin, the validator checks (HeadObject) that its CAR is still there: the sweep may have
        // deleted that key meanwhile. ListBucket makes a missing key a 404, not a 403.
        new iam.PolicyStatement({
          sid: 'DestinationCheck',
          actions: ['s3:GetObject'],
          resources: [destinationObjects],
        }),
        new iam.PolicyStatement({
          sid: 'DestinationList',
          actions: ['s3:ListBucket'],
          resources: [data.destination.bucketArn],
        }),
        new iam.PolicyStatement({
          sid: 'RetryJob',
          actions: ['sqs:SendMessage'],
          resources: [queue.queueArn],
        }),
        new iam.PolicyStatement({
          sid: 'PublishCarStored',
          actions: ['sns:Publish'],
          resources: [data.carStored.topicArn],
        }),
      ],
    },
    cfg,
    policy,
  )
  suppress(validator, [
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'Object-level S3 actions on the CARs of the two buckets: object keys are per CID, not known ahead.',
      appliesTo: [arnWildcard('TempBucket', '/*'), ...destinationObjectFindings(data)],
    },
  ])
  validator.configureAsyncInvoke({
    retryAttempts: 2,
    maxEventAge: Duration.hours(6),
    onFailure: new SqsDestination(validatorFailures),
  })
  temp.addEventNotification(s3.EventType.OBJECT_CREATED, new s3n.LambdaDestination(validator), {
    suffix: '.car',
  })

  // ------------------------------------------------------------ sweep of unreferenced content
  const requests = data.tables.requests
  const sweeper = pickupFunction(
    stack,
    'SweepUnreferenced',
    {
      handler: 'api/lambda/sweep-unreferenced.handler',
      description: 'Deletes the CARs and pins of content no request has wanted for the retention period',
      memorySize: 512,
      // Shorter than the shortest schedule interval (5 minutes), so runs never overlap.
      timeout: Duration.minutes(4),
      environment: {
        PIN_TABLE: pins.tableName,
        REQUEST_TABLE: requests.tableName,
        DESTINATION_BUCKET: data.destination.bucketName,
        UNREFERENCED_RETENTION_MS: String(cfg.UNREFERENCED_RETENTION_MS),
        UNREFERENCED_SWEEP_LIMIT: String(cfg.UNREFERENCED_SWEEP_LIMIT),
      },
      permissions: [
        new iam.PolicyStatement({
          sid: 'SweepPins',
          actions: ['dynamodb:Query', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
          resources: [pins.tableArn, `${pins.tableArn}/index/unreferenced-since`],
        }),
        new iam.PolicyStatement({
          sid: 'FindRequests',
          actions: ['dynamodb:Query', 'dynamodb:BatchGetItem'],
          resources: [requests.tableArn, `${requests.tableArn}/index/cid`],
        }),
        new iam.PolicyStatement({
          sid: 'DeleteCars',
          actions: ['s3:DeleteObject'],
          resources: [data.destination.arnForObjects('*')],
        }),
        // After deleting a CAR, the sweep checks (HeadObject) whether the content was stored again at that key
        // meanwhile. ListBucket makes a missing key a 404, not a 403.
        new iam.PolicyStatement({
          sid: 'CheckCars',
          actions: ['s3:GetObject'],
          resources: [data.destination.arnForObjects('*')],
        }),
        new iam.PolicyStatement({
          sid: 'ListCars',
          actions: ['s3:ListBucket'],
          resources: [data.destination.bucketArn],
        }),
      ],
    },
    cfg,
    policy,
  )
  suppress(sweeper, [
    {
      id: 'AwsSolutions-IAM5',
      reason: 'Deletes CARs of the destination bucket, whose keys are per CID and not known ahead.',
      appliesTo: destinationObjectFindings(data),
    },
  ])
  new events.Rule(stack, 'SweepSchedule', {
    description: 'Runs the sweep of unreferenced content',
    schedule: events.Schedule.rate(Duration.minutes(cfg.UNREFERENCED_SWEEP_INTERVAL_MINUTES)),
    // A failed run is not retried: the next one continues where it stopped.
    targets: [new targets.LambdaFunction(sweeper, { retryAttempts: 0 })],
  })

  // ------------------------------------------------------------ reconciler of stuck pins
  const reconciler = pickupFunction(
    stack,
    'Reconcile',
    {
      handler: 'api/lambda/reconcile.handler',
      description:
        'Re-enqueues pins no job will move any more; fails those stuck after MAX_ATTEMPTS attempts',
      memorySize: 512,
      // A run examines at most RECONCILE_LIMIT pins; runs that overlap are harmless (conditional writes).
      timeout: Duration.minutes(4),
      environment: {
        PIN_TABLE: pins.tableName,
        PIN_QUEUE_URL: queue.queueUrl,
        // As the worker and the queue have them: they decide the default threshold and the last attempt.
        MAX_ATTEMPTS: String(cfg.MAX_ATTEMPTS),
        VISIBILITY_TIMEOUT_SECONDS: String(cfg.VISIBILITY_TIMEOUT_SECONDS),
        RETRY_MAX_DELAY_SECONDS: String(cfg.RETRY_MAX_DELAY_SECONDS),
        RECONCILE_LIMIT: String(cfg.RECONCILE_LIMIT),
        ...(cfg.RECONCILE_AFTER_MS === undefined
          ? {}
          : { RECONCILE_AFTER_MS: String(cfg.RECONCILE_AFTER_MS) }),
      },
      permissions: [
        new iam.PolicyStatement({
          sid: 'FindStuckPins',
          actions: ['dynamodb:Query'],
          resources: [`${pins.tableArn}/index/status-updated`],
        }),
        new iam.PolicyStatement({
          sid: 'SettlePins',
          actions: ['dynamodb:UpdateItem'],
          resources: [pins.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'RequeuePins',
          actions: ['sqs:SendMessage'],
          resources: [queue.queueArn],
        }),
      ],
    },
    cfg,
    policy,
  )
  new events.Rule(stack, 'ReconcileSchedule', {
    description: 'Runs the reconciler of stuck pins',
    schedule: events.Schedule.rate(Duration.minutes(cfg.RECONCILE_INTERVAL_MINUTES)),
    // A failed run is not retried: the next one looks again.
    targets: [new targets.LambdaFunction(reconciler, { retryAttempts: 0 })],
  })

  suppressFrameworkResources(stack)
  // What the `pickup` command reads with `--outputs` (cli/backend.ts), and the temporary bucket.
  stack.addOutputs({
    PinQueueUrl: queue.queueUrl,
    DeadLetterQueueUrl: deadLetterQueue.queueUrl,
    FailedJobsQueueUrl: failedJobs.queueUrl,
    TempBucket: temp.bucketName,
  })
  return {
    queue,
    deadLetterQueue,
    deadLetterConsumer,
    failedJobs,
    temp,
    validator,
    validatorFailures,
    sweeper,
    reconciler,
  }
}
