/**
 * The synthesized CloudFormation of every stack, offline (see ./synth.ts for how SST's app is synthesized
 * without AWS): the properties that decide whether pickup works and what it may touch.
 */
import { Match } from 'aws-cdk-lib/assertions'
import { beforeAll, describe, expect, it } from 'vitest'
import { attributeDefinitions, createTableInput, tableName, tables } from '../../adapters/dynamodb/tables.ts'
import { bucketName, destinationBucket, tempBucket } from '../../adapters/s3/buckets.ts'
import {
  COLLECTION_JOB_TIMEOUT_SECONDS,
  collectionJobsQueue,
  failedJobsQueue,
  pinQueueDefinition,
} from '../../adapters/sqs/queues.ts'
import {
  collectionFollowEnvSchema,
  collectionJobsEnvSchema,
  deadLetterEnvSchema,
  httpEnvSchema,
  reconcileEnvSchema,
  sweepUnreferencedEnvSchema,
  validateCarEnvSchema,
} from '../../api/lambda/env.ts'
import { METRICS } from '../../core/metrics.ts'
import { workerEnvSchema } from '../../pickup/config.ts'
import { COLLECTION_JOBS_MAX_CONCURRENCY } from '../../stacks/collections.ts'
import {
  collectionJobsDiskMb,
  collectionJobsMemoryMb,
  workerEphemeralStorageGiB,
} from '../../stacks/deploy-config.ts'
import { VALIDATOR_MEMORY_MB, VALIDATOR_TIMEOUT_SECONDS } from '../../stacks/validator-sizing.ts'
import { HEALTH_PORT, SWARM_PORT } from '../../stacks/worker.ts'
import {
  ACCOUNT,
  actionsOf,
  concreteEnv,
  containerEnv,
  REGION,
  type Resource,
  resourceOf,
  resourcesOf,
  roleStatements,
  type Synthesized,
  synthesize,
  synthesizeFromConfig,
} from './synth.ts'

let production: Synthesized
let preview: Synthesized
let custom: Synthesized

const CUSTOM_ENV = {
  DESTINATION_BUCKET_NAME: 'existing-car-bucket',
  API_DOMAIN: 'pickup.example.org',
  API_HOSTED_ZONE_ID: 'Z0123456789ABCDEFGHIJ',
  API_HOSTED_ZONE_NAME: 'example.org',
  API_CORS_ORIGINS: 'https://app.example.org, https://example.org',
  WORKER_MIN_TASKS: '2',
  WORKER_MAX_TASKS: '25',
  WORKER_CPU: '4096',
  WORKER_MEMORY_MIB: '16384',
  WORKER_CPU_ARCHITECTURE: 'arm64',
  BATCH_SIZE: '4',
  WORKER_TYPICAL_CAR_GIB: '20',
  VISIBILITY_TIMEOUT_SECONDS: '600',
  MAX_ATTEMPTS: '5',
  ALARM_EMAIL: 'ops@example.org',
  RECONCILE_INTERVAL_MINUTES: '15',
  RECONCILE_AFTER_MS: '7200000',
  RECONCILE_LIMIT: '200',
  ALARM_TIME_TO_PIN_SMALL_P90_SECONDS: '120',
  ALARM_FAILURE_RATE_PERCENT: '25',
  ALARM_FAILURE_MIN_JOBS: '50',
  ALARM_NOTHING_STORED_MINUTES: '30',
  COLLECTION_PAGES_PER_JOB: '4',
  COLLECTION_ADVANCE_DELAY_SECONDS: '60',
  COLLECTION_READ_CAR_BYTES: String(1024 * 1024 * 1024),
  COLLECTION_FOLLOW_INTERVAL_MINUTES: '30',
  COLLECTION_FOLLOW_LIMIT: '500',
}

beforeAll(async () => {
  production = await synthesize('production')
  preview = await synthesize('pr-42')
  custom = await synthesize('staging', CUSTOM_ENV)
})

type ContainerDef = {
  Name: string
  Environment?: Array<{ Name: string; Value: unknown }>
  HealthCheck?: { Command: string[] }
  PortMappings?: Array<{ ContainerPort: number; Protocol: string }>
  DependsOn?: Array<{ ContainerName: string; Condition: string }>
  StopTimeout?: number
}

function containers(s: Synthesized): Record<string, ContainerDef> {
  const task = resourceOf(s.templates.worker, 'AWS::ECS::TaskDefinition', 'WorkerTask')
  const defs = task.Properties?.ContainerDefinitions as ContainerDef[]
  return Object.fromEntries(defs.map((c) => [c.Name, c]))
}

function functionEnv(
  s: Synthesized,
  stack: 'pipeline' | 'collections' | 'api',
  idPrefix: string,
): Record<string, unknown> {
  const fn = resourceOf(s.templates[stack], 'AWS::Lambda::Function', idPrefix)
  return (fn.Properties!.Environment as { Variables: Record<string, unknown> }).Variables
}

describe('tables', () => {
  it('are built from the definitions local mode uses, with on-demand billing and point-in-time recovery', () => {
    for (const def of Object.values(tables)) {
      const name = tableName('production-pickup', def)
      const local = createTableInput(def, name)
      production.templates.data.hasResourceProperties('AWS::DynamoDB::Table', {
        TableName: name,
        BillingMode: 'PAY_PER_REQUEST',
        KeySchema: local.KeySchema,
        AttributeDefinitions: Match.arrayEquals(
          attributeDefinitions(def).map((a) => ({ AttributeName: a.name, AttributeType: a.type })),
        ),
        GlobalSecondaryIndexes:
          local.GlobalSecondaryIndexes === undefined
            ? Match.absent()
            : local.GlobalSecondaryIndexes.map((g) => ({
                IndexName: g.IndexName,
                KeySchema: g.KeySchema,
                Projection: g.Projection,
              })),
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      })
    }
    expect(resourcesOf(production.templates.data, 'AWS::DynamoDB::Table')).toHaveLength(
      Object.keys(tables).length,
    )
  })

  it('has the pins status-updated index and the workers TTL on `ttl`', () => {
    production.templates.data.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'production-pickup-pins',
      GlobalSecondaryIndexes: Match.arrayWith([Match.objectLike({ IndexName: 'status-updated' })]),
    })
    production.templates.data.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'production-pickup-workers',
      TimeToLiveSpecification: { AttributeName: 'ttl', Enabled: true },
    })
  })

  it('are protected and retained on persistent stages, disposable on preview stages', () => {
    for (const [, table] of resourcesOf(production.templates.data, 'AWS::DynamoDB::Table')) {
      expect(table.DeletionPolicy).toBe('RetainExceptOnCreate')
      expect(table.Properties?.DeletionProtectionEnabled).toBe(true)
    }
    for (const [, table] of resourcesOf(preview.templates.data, 'AWS::DynamoDB::Table')) {
      expect(table.DeletionPolicy).toBe('Delete')
      expect(table.Properties?.DeletionProtectionEnabled).toBe(false)
    }
  })
})

describe('queues', () => {
  it('send a job to the dead-letter queue after MAX_ATTEMPTS receives', () => {
    const t = production.templates.pipeline
    const def = pinQueueDefinition()
    t.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'production-pickup-pin',
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PinDeadLetterQueue'), 'Arn'] },
        maxReceiveCount: 3,
      },
      MessageRetentionPeriod: def.messageRetentionSeconds,
      SqsManagedSseEnabled: true,
    })
    t.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'production-pickup-pin-dlq',
      MessageRetentionPeriod: def.deadLetter.queue.messageRetentionSeconds,
    })
    custom.templates.pipeline.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'staging-pickup-pin',
      RedrivePolicy: Match.objectLike({ maxReceiveCount: 5 }),
    })
  })

  it("share one visibility timeout with the worker's lease, renewed every third of it", () => {
    for (const s of [production, custom]) {
      const queue = resourceOf(s.templates.pipeline, 'AWS::SQS::Queue', 'PinQueue')
      const worker = containerEnv(containers(s).worker!)
      expect(queue.Properties?.VisibilityTimeout).toBe(s.cfg.VISIBILITY_TIMEOUT_SECONDS)
      expect(worker.VISIBILITY_TIMEOUT_SECONDS).toBe(String(s.cfg.VISIBILITY_TIMEOUT_SECONDS))
      // core/pin-worker.ts extends every third of the timeout: two renewals can fail before the job reappears.
      const renewEverySeconds = s.cfg.VISIBILITY_TIMEOUT_SECONDS / 3
      expect(2 * renewEverySeconds).toBeLessThan(s.cfg.VISIBILITY_TIMEOUT_SECONDS)
      expect(renewEverySeconds).toBeGreaterThanOrEqual(10)
    }
    expect(
      resourceOf(custom.templates.pipeline, 'AWS::SQS::Queue', 'PinQueue').Properties?.VisibilityTimeout,
    ).toBe(600)
  })

  it("agree on the last attempt: the worker and the validator get the queue's maxReceiveCount", () => {
    for (const s of [production, custom]) {
      const queue = resourceOf(s.templates.pipeline, 'AWS::SQS::Queue', 'PinQueue')
      const attempts = String(
        (queue.Properties!.RedrivePolicy as { maxReceiveCount: number }).maxReceiveCount,
      )
      expect(attempts).toBe(String(s.cfg.MAX_ATTEMPTS))
      expect(containerEnv(containers(s).worker!).MAX_ATTEMPTS).toBe(attempts)
      expect(functionEnv(s, 'pipeline', 'ValidateCar').MAX_ATTEMPTS).toBe(attempts)
    }
  })

  it('keep failed jobs 14 days for operators, in a queue nothing consumes and that redrives nowhere', () => {
    const t = production.templates.pipeline
    const failed = resourceOf(t, 'AWS::SQS::Queue', 'FailedJobsQueue')
    expect(failed.Properties).toMatchObject({
      QueueName: 'production-pickup-pin-failed',
      MessageRetentionPeriod: 14 * 24 * 3600,
      VisibilityTimeout: failedJobsQueue.visibilityTimeoutSeconds,
      SqsManagedSseEnabled: true,
    })
    expect(failed.Properties?.RedrivePolicy).toBeUndefined()
    const consumed = resourcesOf(t, 'AWS::Lambda::EventSourceMapping').map(([, m]) =>
      JSON.stringify(m.Properties?.EventSourceArn),
    )
    expect(consumed).toHaveLength(1)
    expect(consumed[0]).toContain('PinDeadLetterQueue')
  })

  it('are all encrypted and refuse requests without TLS', () => {
    const queues = resourcesOf(production.templates.pipeline, 'AWS::SQS::Queue')
    expect(queues.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'FailedJobsQueue',
      'PinDeadLetterQueue',
      'PinQueue',
      'ValidatorFailureQueue',
    ])
    for (const [id, q] of queues) expect(q.Properties?.SqsManagedSseEnabled, id).toBe(true)
    const policies = resourcesOf(production.templates.pipeline, 'AWS::SQS::QueuePolicy')
    for (const [id] of queues) {
      const policy = policies.find(([, p]) => JSON.stringify(p.Properties?.Queues).includes(id))
      expect(JSON.stringify(policy?.[1].Properties), id).toContain('"aws:SecureTransport":"false"')
    }
  })

  it('are named in the stage outputs the pickup command reads', () => {
    const outputs = (s: Synthesized, stack: 'data' | 'pipeline') =>
      Object.keys((s.templates[stack].toJSON().Outputs ?? {}) as Record<string, unknown>)
    expect(outputs(production, 'pipeline')).toEqual(
      expect.arrayContaining(['PinQueueUrl', 'DeadLetterQueueUrl', 'FailedJobsQueueUrl']),
    )
    expect(outputs(production, 'data')).toEqual(
      expect.arrayContaining(['PinsTable', 'RequestsTable', 'TokensTable', 'DestinationBucket']),
    )
    production.templates.pipeline.hasOutput('FailedJobsQueueUrl', {
      Value: { Ref: Match.stringLikeRegexp('^FailedJobsQueue') },
    })
  })
})

describe('NFT collections', () => {
  it('keep their table with the others: its owner index, retained and protected on persistent stages', () => {
    production.templates.data.hasResourceProperties('AWS::DynamoDB::Table', {
      TableName: 'production-pickup-collections',
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      GlobalSecondaryIndexes: [
        Match.objectLike({ IndexName: 'owner-created' }),
        // Sparse: the follow tick's, longest unchecked first.
        Match.objectLike({
          IndexName: 'following-due',
          KeySchema: [
            { AttributeName: 'following', KeyType: 'HASH' },
            { AttributeName: 'followDue', KeyType: 'RANGE' },
          ],
        }),
      ],
      DeletionProtectionEnabled: true,
    })
    expect(
      resourceOf(production.templates.data, 'AWS::DynamoDB::Table', 'CollectionsTable').DeletionPolicy,
    ).toBe('RetainExceptOnCreate')
    production.templates.data.hasOutput('CollectionsTable', {
      Value: { Ref: Match.stringLikeRegexp('^CollectionsTable') },
    })
  })

  it('send a job to their dead-letter queue after its receives; the dead letters are kept 14 days', () => {
    const t = production.templates.collections
    t.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'production-pickup-collection-jobs',
      RedrivePolicy: {
        deadLetterTargetArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^CollectionDeadLetterQueue'), 'Arn'] },
        maxReceiveCount: collectionJobsQueue.deadLetter.maxReceiveCount,
      },
      MessageRetentionPeriod: collectionJobsQueue.messageRetentionSeconds,
      SqsManagedSseEnabled: true,
    })
    t.hasResourceProperties('AWS::SQS::Queue', {
      QueueName: 'production-pickup-collection-dlq',
      MessageRetentionPeriod: 14 * 24 * 3600,
      SqsManagedSseEnabled: true,
    })
    const queues = resourcesOf(t, 'AWS::SQS::Queue')
    expect(queues.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'CollectionDeadLetterQueue',
      'CollectionJobsQueue',
    ])
    const policies = resourcesOf(t, 'AWS::SQS::QueuePolicy')
    for (const [id] of queues) {
      const policy = policies.find(([, p]) => JSON.stringify(p.Properties?.Queues).includes(id))
      expect(JSON.stringify(policy?.[1].Properties), id).toContain('"aws:SecureTransport":"false"')
    }
    // The pickup command finds the jobs queue by this output (cli/backend.ts), operators the dead letters.
    t.hasOutput('CollectionJobsQueueUrl', { Value: { Ref: Match.stringLikeRegexp('^CollectionJobsQueue') } })
    t.hasOutput('CollectionDeadLetterQueueUrl', {
      Value: { Ref: Match.stringLikeRegexp('^CollectionDeadLetterQueue') },
    })
  })

  it("are consumed one job at a time, failures reported per job, within the queue's visibility timeout", () => {
    const t = production.templates.collections
    const mappings = resourcesOf(t, 'AWS::Lambda::EventSourceMapping')
    expect(mappings).toHaveLength(1)
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^CollectionJobsQueue'), 'Arn'] },
      FunctionName: { Ref: Match.stringLikeRegexp('^CollectionJobs') },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: COLLECTION_JOBS_MAX_CONCURRENCY },
    })
    const fn = resourceOf(t, 'AWS::Lambda::Function', 'CollectionJobs')
    const queue = resourceOf(t, 'AWS::SQS::Queue', 'CollectionJobsQueue')
    expect(fn.Properties?.Timeout).toBe(COLLECTION_JOB_TIMEOUT_SECONDS)
    // AWS refuses an SQS event source whose visibility timeout is below the function's timeout; six times
    // leaves room for the retries of throttled invocations, as AWS advises.
    expect(queue.Properties?.VisibilityTimeout).toBe(6 * COLLECTION_JOB_TIMEOUT_SECONDS)
    // Nothing consumes the dead-letter queue: a dead collection job waits there for an operator.
    expect(JSON.stringify(mappings)).not.toContain('CollectionDeadLetterQueue')
  })

  it('run with the configured pages per job, advance delay and CAR size, with memory for that CAR', () => {
    for (const s of [production, custom]) {
      const env = functionEnv(s, 'collections', 'CollectionJobs')
      expect(env).toMatchObject({
        COLLECTION_PAGES_PER_JOB: String(s.cfg.COLLECTION_PAGES_PER_JOB),
        COLLECTION_ADVANCE_DELAY_SECONDS: String(s.cfg.COLLECTION_ADVANCE_DELAY_SECONDS),
        COLLECTION_READ_CAR_BYTES: String(s.cfg.COLLECTION_READ_CAR_BYTES),
      })
      const fn = resourceOf(s.templates.collections, 'AWS::Lambda::Function', 'CollectionJobs')
      expect(fn.Properties?.MemorySize).toBe(collectionJobsMemoryMb(s.cfg.COLLECTION_READ_CAR_BYTES))
    }
    expect(functionEnv(custom, 'collections', 'CollectionJobs').COLLECTION_PAGES_PER_JOB).toBe('4')
    // Web-hosted content: its limits, and the pin settings and temporary bucket a worker's attempt has.
    for (const s of [production, custom]) {
      const env = functionEnv(s, 'collections', 'CollectionJobs')
      const worker = containerEnv(containers(s).worker!)
      for (const name of ['MAX_CAR_BYTES', 'VISIBILITY_TIMEOUT_SECONDS', 'UPLOAD_PART_BYTES']) {
        expect(env[name], name).toBe(worker[name])
      }
      expect(JSON.stringify(env.TEMP_BUCKET)).toMatch(/TempBucket/)
      expect(env.COLLECTION_WEB_ALLOW_PRIVATE).toBe('false')
      expect(env.COLLECTION_WEB_MAX_BYTES).toBe(String(s.cfg.COLLECTION_WEB_MAX_BYTES))
      // /tmp holds the largest web-hosted file's UnixFS import.
      const fn = resourceOf(s.templates.collections, 'AWS::Lambda::Function', 'CollectionJobs')
      const diskMb = (fn.Properties!.EphemeralStorage as { Size: number }).Size
      expect(diskMb * 1024 * 1024).toBeGreaterThan(s.cfg.COLLECTION_WEB_MAX_BYTES)
      expect(diskMb).toBe(collectionJobsDiskMb(s.cfg.COLLECTION_WEB_MAX_BYTES))
    }
    expect(
      resourceOf(production.templates.collections, 'AWS::Lambda::Function', 'CollectionJobs').Properties
        ?.MemorySize,
    ).toBe(1024)
    expect(
      resourceOf(custom.templates.collections, 'AWS::Lambda::Function', 'CollectionJobs').Properties
        ?.MemorySize,
    ).toBe(2 * 1024 + 512)
  })

  it('are followed by a tick every 5 minutes (or COLLECTION_FOLLOW_INTERVAL_MINUTES), without retries, which sends jobs to the consumer', () => {
    production.templates.collections.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^CollectionFollow'), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 0 },
        }),
      ],
    })
    custom.templates.collections.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(30 minutes)',
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^CollectionFollow'), 'Arn'] } }),
      ],
    })
    for (const s of [production, custom]) {
      const env = functionEnv(s, 'collections', 'CollectionFollow')
      expect(env.COLLECTION_FOLLOW_LIMIT).toBe(String(s.cfg.COLLECTION_FOLLOW_LIMIT))
      expect(env.COLLECTION_JOBS_QUEUE_URL).toEqual({ Ref: expect.stringMatching(/^CollectionJobsQueue/) })
      expect(JSON.stringify(env.COLLECTION_TABLE)).toMatch(/CollectionsTable/)
      const fn = resourceOf(s.templates.collections, 'AWS::Lambda::Function', 'CollectionFollow')
      // A run ends well within the interval.
      expect(fn.Properties?.Timeout as number).toBeLessThan(60 * s.cfg.COLLECTION_FOLLOW_INTERVAL_MINUTES)
    }
    expect(functionEnv(custom, 'collections', 'CollectionFollow').COLLECTION_FOLLOW_LIMIT).toBe('500')
  })

  it('are served by the HTTP API, which sends jobs to the queue the consumer reads', () => {
    const api = functionEnv(production, 'api', 'HttpApi')
    const consumer = functionEnv(production, 'collections', 'CollectionJobs')
    expect(JSON.stringify(api.COLLECTION_JOBS_QUEUE_URL)).toMatch(/CollectionJobsQueue/)
    expect(JSON.stringify(api.COLLECTION_TABLE)).toMatch(/CollectionsTable/)
    expect(consumer.COLLECTION_JOBS_QUEUE_URL).toEqual({ Ref: expect.stringMatching(/^CollectionJobsQueue/) })
    expect(JSON.stringify(consumer.COLLECTION_TABLE)).toMatch(/CollectionsTable/)
  })
})

describe('dead-letter consumer', () => {
  it('reports batch item failures, and times out well within the DLQ visibility timeout', () => {
    const t = production.templates.pipeline
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^PinDeadLetterQueue'), 'Arn'] },
      FunctionName: { Ref: Match.stringLikeRegexp('^DeadLetterConsumer') },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BatchSize: 10,
    })
    const fn = resourceOf(t, 'AWS::Lambda::Function', 'DeadLetterConsumer')
    expect(6 * (fn.Properties?.Timeout as number)).toBeLessThanOrEqual(
      pinQueueDefinition().deadLetter.queue.visibilityTimeoutSeconds,
    )
  })

  it('forwards to the failed-jobs queue', () => {
    expect(functionEnv(production, 'pipeline', 'DeadLetterConsumer').FAILED_JOBS_QUEUE_URL).toEqual({
      Ref: expect.stringMatching(/^FailedJobsQueue/),
    })
  })
})

describe('reconciler', () => {
  it('runs every 5 minutes (or RECONCILE_INTERVAL_MINUTES), without retries, within its interval', async () => {
    production.templates.pipeline.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Reconcile'), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 0 },
        }),
      ],
    })
    const fn = resourceOf(production.templates.pipeline, 'AWS::Lambda::Function', 'Reconcile')
    expect((fn.Properties?.Timeout as number) / 60).toBeLessThan(5)
    custom.templates.pipeline.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(15 minutes)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^Reconcile'), 'Arn'] } })],
    })
  })

  it('gets the attempts, lease and retry settings the worker and the queue have, and its own', () => {
    for (const s of [production, custom]) {
      const env = functionEnv(s, 'pipeline', 'Reconcile')
      const worker = containerEnv(containers(s).worker!)
      for (const name of ['MAX_ATTEMPTS', 'VISIBILITY_TIMEOUT_SECONDS', 'RETRY_MAX_DELAY_SECONDS']) {
        expect(env[name], name).toBe(worker[name] ?? String(s.cfg[name as keyof typeof s.cfg]))
      }
      expect(env.MAX_ATTEMPTS).toBe(String(s.cfg.MAX_ATTEMPTS))
      expect(env.RECONCILE_LIMIT).toBe(String(s.cfg.RECONCILE_LIMIT))
    }
    expect(functionEnv(production, 'pipeline', 'Reconcile').RECONCILE_AFTER_MS).toBeUndefined()
    expect(functionEnv(custom, 'pipeline', 'Reconcile')).toMatchObject({
      MAX_ATTEMPTS: '5',
      VISIBILITY_TIMEOUT_SECONDS: '600',
      RECONCILE_AFTER_MS: '7200000',
      RECONCILE_LIMIT: '200',
    })
  })
})

describe('buckets', () => {
  it('temporary: a validator notification on ObjectCreated for .car keys only', () => {
    production.templates.pipeline.hasResourceProperties('Custom::S3BucketNotifications', {
      BucketName: { Ref: Match.stringLikeRegexp('^TempBucket') },
      NotificationConfiguration: {
        LambdaFunctionConfigurations: [
          {
            Events: ['s3:ObjectCreated:*'],
            Filter: { Key: { FilterRules: [{ Name: 'suffix', Value: '.car' }] } },
            LambdaFunctionArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ValidateCar'), 'Arn'] },
          },
        ],
      },
    })
  })

  it('temporary: objects expire as the bucket definition says, incomplete uploads after a day', () => {
    production.templates.pipeline.hasResourceProperties('AWS::S3::Bucket', {
      // Not named: only pickup's roles use it, given its generated name.
      BucketName: Match.absent(),
      LifecycleConfiguration: {
        Rules: [
          {
            Id: 'expire-temporary-cars',
            Status: 'Enabled',
            ExpirationInDays: tempBucket.expireAfterDays,
            AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
          },
        ],
      },
    })
  })

  it('destination: versioned, encrypted, private, TLS only, access-logged', () => {
    const t = production.templates.data
    t.hasResourceProperties('AWS::S3::Bucket', {
      BucketName: bucketName(`production-pickup-${ACCOUNT}-${REGION}`, destinationBucket),
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LoggingConfiguration: { DestinationBucketName: { Ref: Match.stringLikeRegexp('^AccessLogsBucket') } },
    })
    t.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: Match.stringLikeRegexp('^DestinationBucket') },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    })
  })

  it('every created bucket is encrypted, private and TLS only', () => {
    for (const s of [production, preview]) {
      for (const stack of ['data', 'pipeline'] as const) {
        for (const [id, bucket] of resourcesOf(s.templates[stack], 'AWS::S3::Bucket')) {
          expect(bucket.Properties?.BucketEncryption, id).toBeDefined()
          expect(bucket.Properties?.PublicAccessBlockConfiguration, id).toEqual({
            BlockPublicAcls: true,
            BlockPublicPolicy: true,
            IgnorePublicAcls: true,
            RestrictPublicBuckets: true,
          })
          const policy = resourcesOf(s.templates[stack], 'AWS::S3::BucketPolicy').find(
            ([, p]) => (p.Properties!.Bucket as { Ref?: string }).Ref === id,
          )
          expect(JSON.stringify(policy?.[1].Properties), id).toContain('"aws:SecureTransport":"false"')
        }
      }
    }
  })

  it('destination: an existing bucket is imported, not created, and used by name', () => {
    expect(
      resourcesOf(custom.templates.data, 'AWS::S3::Bucket').filter(([id]) =>
        id.startsWith('DestinationBucket'),
      ),
    ).toEqual([])
    expect(functionEnv(custom, 'pipeline', 'ValidateCar').DESTINATION_BUCKET).toBe('existing-car-bucket')
    const write = roleStatements(custom.templates.pipeline, 'ValidateCarServiceRole').find(
      (s) => s.Sid === 'DestinationWrite',
    )
    expect(JSON.stringify(write?.Resource)).toContain(':s3:::existing-car-bucket/*')
  })
})

describe('validator', () => {
  it('has 15 minutes, the most memory every account accepts and the default ephemeral storage (it streams)', () => {
    const fn = resourceOf(production.templates.pipeline, 'AWS::Lambda::Function', 'ValidateCar')
    expect(fn.Properties?.Timeout).toBe(VALIDATOR_TIMEOUT_SECONDS)
    expect(fn.Properties?.MemorySize).toBe(VALIDATOR_MEMORY_MB)
    expect(fn.Properties?.MemorySize).toBeLessThanOrEqual(3008)
    expect(fn.Properties?.EphemeralStorage).toEqual({ Size: 512 })
    expect(fn.Properties?.Architectures).toEqual(['arm64'])
  })

  it('has reserved concurrency, so API bursts cannot take it, and reads with ranged GETs as configured', () => {
    const fn = resourceOf(production.templates.pipeline, 'AWS::Lambda::Function', 'ValidateCar')
    expect(fn.Properties?.ReservedConcurrentExecutions).toBe(20)
    expect(functionEnv(production, 'pipeline', 'ValidateCar')).toMatchObject({
      VALIDATOR_READ_PART_BYTES: String(8 * 1024 * 1024),
      VALIDATOR_READ_CONCURRENCY: '8',
    })
    for (const id of ['HttpApi']) {
      const other = resourceOf(production.templates.api, 'AWS::Lambda::Function', id)
      expect(other.Properties?.ReservedConcurrentExecutions, id).toBeUndefined()
    }
  })

  it('retries failed events twice, then keeps them in a queue', () => {
    production.templates.pipeline.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: Match.stringLikeRegexp('^ValidateCar') },
      MaximumRetryAttempts: 2,
      DestinationConfig: {
        OnFailure: {
          Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ValidatorFailureQueue'), 'Arn'] },
        },
      },
    })
  })
})

describe('sweep of unreferenced content', () => {
  it('runs on a schedule, without retries', () => {
    production.templates.pipeline.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^SweepUnreferenced'), 'Arn'] },
          RetryPolicy: { MaximumRetryAttempts: 0 },
        }),
      ],
    })
    const fn = resourceOf(production.templates.pipeline, 'AWS::Lambda::Function', 'SweepUnreferenced')
    expect((fn.Properties?.Timeout as number) / 60).toBeLessThan(5)
  })
})

describe('function environments', () => {
  it('parse with the schema each entry point reads', () => {
    for (const s of [production, custom]) {
      expect(() =>
        validateCarEnvSchema.parse(concreteEnv(functionEnv(s, 'pipeline', 'ValidateCar'))),
      ).not.toThrow()
      expect(() =>
        deadLetterEnvSchema.parse(concreteEnv(functionEnv(s, 'pipeline', 'DeadLetterConsumer'))),
      ).not.toThrow()
      expect(() => httpEnvSchema.parse(concreteEnv(functionEnv(s, 'api', 'HttpApi')))).not.toThrow()
      expect(() =>
        sweepUnreferencedEnvSchema.parse(concreteEnv(functionEnv(s, 'pipeline', 'SweepUnreferenced'))),
      ).not.toThrow()
      expect(() =>
        reconcileEnvSchema.parse(concreteEnv(functionEnv(s, 'pipeline', 'Reconcile'))),
      ).not.toThrow()
      expect(() => workerEnvSchema.parse(concreteEnv(containerEnv(containers(s).worker!)))).not.toThrow()
      expect(() =>
        collectionJobsEnvSchema.parse(concreteEnv(functionEnv(s, 'collections', 'CollectionJobs'))),
      ).not.toThrow()
      expect(() =>
        collectionFollowEnvSchema.parse(concreteEnv(functionEnv(s, 'collections', 'CollectionFollow'))),
      ).not.toThrow()
    }
  })

  it('hold no secret: the cluster token and the chain endpoints are fetched from SSM at cold start', () => {
    const env = functionEnv(production, 'api', 'HttpApi')
    expect(env.SST_Secret_value_CLUSTER_BASIC_AUTH_TOKEN).toBe('__FETCH_FROM_SSM__')
    expect(env.SST_Secret_value_CHAIN_RPC).toBe('__FETCH_FROM_SSM__')
    expect(
      Object.keys(env)
        .filter((k) => /TOKEN(?!_TABLE)|SECRET|PASSWORD|RPC/i.test(k))
        .sort(),
    ).toEqual(['SST_Secret_value_CHAIN_RPC', 'SST_Secret_value_CLUSTER_BASIC_AUTH_TOKEN'])
    const consumer = functionEnv(production, 'collections', 'CollectionJobs')
    expect(Object.keys(consumer).filter((k) => /TOKEN|SECRET|PASSWORD|RPC/i.test(k))).toEqual([
      'SST_Secret_value_CHAIN_RPC',
    ])
    expect(consumer.SST_Secret_value_CHAIN_RPC).toBe('__FETCH_FROM_SSM__')
  })
})

describe('IAM', () => {
  const byId = (statements: ReturnType<typeof roleStatements>) =>
    Object.fromEntries(
      statements
        .filter((s) => s.Sid)
        .map((s) => [s.Sid, { actions: actionsOf(s).sort(), resource: JSON.stringify(s.Resource) }]),
    )

  it('never grants a wildcard action, except to the frameworks own deploy-time handlers', () => {
    // CDK's S3 auto-delete provider (preview stages) is the only exception: a CloudFormation-time handler.
    for (const s of [production, preview, custom]) {
      for (const [name, template] of Object.entries(s.templates)) {
        for (const [id, policy] of resourcesOf(template, 'AWS::IAM::Policy')) {
          const statements = (
            policy.Properties!.PolicyDocument as { Statement: Parameters<typeof actionsOf>[0][] }
          ).Statement
          for (const st of statements) {
            for (const action of actionsOf(st)) expect(action, `${name}/${id}`).not.toContain('*')
          }
        }
      }
    }
  })

  it('validator: exactly what promoting a CAR takes', () => {
    const st = byId(roleStatements(production.templates.pipeline, 'ValidateCarServiceRole'))
    expect(st.PinsReadSettle?.actions).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem'])
    expect(st.PinsReadSettle?.resource).toContain('PinsTable')
    expect(st.TempReadDelete?.actions).toEqual(['s3:DeleteObject', 's3:GetObject'])
    expect(st.TempReadDelete?.resource).toMatch(/TempBucket.*\/\*/)
    expect(st.TempList?.actions).toEqual(['s3:ListBucket'])
    expect(st.DestinationWrite?.actions).toEqual([
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:PutObject',
    ])
    expect(st.DestinationWrite?.resource).toMatch(/DestinationBucket.*\/\*/)
    expect(st.DestinationCheck?.actions).toEqual(['s3:GetObject'])
    expect(st.DestinationCheck?.resource).toMatch(/DestinationBucket.*\/\*/)
    expect(st.DestinationList?.actions).toEqual(['s3:ListBucket'])
    expect(st.DestinationList?.resource).toMatch(/DestinationBucket/)
    expect(st.RetryJob).toEqual({
      actions: ['sqs:SendMessage'],
      resource: expect.stringContaining('PinQueue'),
    })
    expect(st.PublishCarStored).toEqual({
      actions: ['sns:Publish'],
      resource: expect.stringContaining('CarStoredTopic'),
    })
  })

  it('dead-letter consumer: read and settle pins, consume its queue, forward to the failed-jobs queue', () => {
    const statements = roleStatements(production.templates.pipeline, 'DeadLetterConsumerServiceRole')
    const st = byId(statements)
    expect(st.PinsReadSettle?.actions).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem'])
    expect(st.ForwardFailedJobs).toEqual({
      actions: ['sqs:SendMessage'],
      resource: expect.stringMatching(/^\{"Fn::GetAtt":\["FailedJobsQueue[0-9A-F]{8}","Arn"\]\}$/),
    })
    expect(Object.keys(st).sort()).toEqual(['ForwardFailedJobs', 'PinsReadSettle'])
    const consume = statements.find((s) => !s.Sid)
    expect(actionsOf(consume!).sort()).toEqual([
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ])
    expect(JSON.stringify(consume!.Resource)).toContain('PinDeadLetterQueue')
  })

  it('HTTP API: pins, requests, token lookups, live workers, collections, enqueue, and only its own secrets', () => {
    const statements = roleStatements(production.templates.api, 'HttpApiServiceRole')
    const st = byId(statements)
    expect(st.Pins?.actions).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ])
    expect(st.Requests?.actions).toContain('dynamodb:DeleteItem')
    expect(st.AccessTokens).toEqual({
      actions: ['dynamodb:GetItem'],
      resource: expect.stringContaining('TokensTable'),
    })
    expect(st.LiveWorkers?.actions).toEqual(['dynamodb:Scan'])
    expect(st.EnqueuePins?.actions).toEqual(['sqs:SendMessage'])
    expect(st.Collections?.actions).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:BatchWriteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ])
    expect(st.Collections?.resource).toMatch(/CollectionsTable.*\/index\/\*/)
    expect(st.EnqueueCollectionJobs).toEqual({
      actions: ['sqs:SendMessage'],
      resource: expect.stringContaining('CollectionJobsQueue'),
    })
    const ssm = statements.filter((s) => actionsOf(s).includes('ssm:GetParameters'))
    for (const s of ssm) expect(actionsOf(s)).toEqual(['ssm:GetParameters'])
    const parameters = JSON.stringify(ssm.map((s) => s.Resource))
    for (const secret of ['CLUSTER_BASIC_AUTH_TOKEN', 'CHAIN_RPC']) {
      expect(parameters).toContain(
        `:ssm:${REGION}:${ACCOUNT}:parameter/sst/pickup/production/Secret/${secret}/value`,
      )
    }
    expect(parameters.match(/parameter\/sst\/pickup\/production\/Secret\/\w+/g)?.sort()).toEqual([
      'parameter/sst/pickup/production/Secret/CHAIN_RPC',
      'parameter/sst/pickup/production/Secret/CLUSTER_BASIC_AUTH_TOKEN',
    ])
  })

  it('collection jobs consumer: its collections, root requests and pins, the two queues, stored CARs, its secret', () => {
    const statements = roleStatements(production.templates.collections, 'CollectionJobsServiceRole')
    const st = byId(statements)
    expect(Object.keys(st).sort()).toEqual([
      'Collections',
      'EnqueuePins',
      'ListStoredCars',
      'NextJob',
      'OtherRequestsForContent',
      'Pins',
      'ReadStoredCars',
      'RootRequests',
      'UploadWebCars',
    ])
    expect(st.Collections).toEqual({
      actions: [
        'dynamodb:BatchGetItem',
        'dynamodb:BatchWriteItem',
        'dynamodb:GetItem',
        'dynamodb:Query',
        'dynamodb:UpdateItem',
      ],
      // The table only: the consumer never lists collections by owner.
      resource: expect.stringMatching(
        /^\{"Fn::ImportValue":"[\w-]+:ExportsOutputFnGetAttCollectionsTable[0-9A-F]{8}Arn[0-9A-F]{8}"\}$/,
      ),
    })
    // Made, and deleted again (their content released) by a job that finds its collection being deleted.
    expect(st.RootRequests?.actions).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ])
    expect(st.RootRequests?.resource).toMatch(/RequestsTable[0-9A-F]{8}Arn[0-9A-F]{8}"\}$/)
    expect(st.OtherRequestsForContent?.actions).toEqual(['dynamodb:Query'])
    expect(st.OtherRequestsForContent?.resource).toMatch(/RequestsTable.*\/index\/cid"/)
    expect(st.Pins?.actions).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:UpdateItem',
    ])
    expect(st.Pins?.resource).toMatch(/PinsTable[0-9A-F]{8}Arn[0-9A-F]{8}"\}$/)
    expect(st.EnqueuePins).toEqual({
      actions: ['sqs:SendMessage'],
      resource: expect.stringContaining('PinQueue'),
    })
    expect(st.NextJob).toEqual({
      actions: ['sqs:SendMessage'],
      resource: expect.stringMatching(/^\{"Fn::GetAtt":\["CollectionJobsQueue[0-9A-F]{8}","Arn"\]\}$/),
    })
    expect(st.ReadStoredCars?.actions).toEqual(['s3:GetObject'])
    expect(st.ReadStoredCars?.resource).toMatch(/DestinationBucket.*\/\*/)
    expect(st.ListStoredCars?.actions).toEqual(['s3:ListBucket'])
    // Web-hosted content's CARs go where a worker's do, for the validator: upload only, no read or delete.
    expect(st.UploadWebCars?.actions).toEqual(['s3:AbortMultipartUpload', 's3:PutObject'])
    expect(st.UploadWebCars?.resource).toMatch(/TempBucket.*\/\*/)
    // The event source's grant: consuming its own queue, nothing else.
    const unnamed = statements.filter((s) => !s.Sid)
    const consume = unnamed.find((s) => actionsOf(s).includes('sqs:ReceiveMessage'))
    expect(actionsOf(consume!).sort()).toEqual([
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:GetQueueAttributes',
      'sqs:GetQueueUrl',
      'sqs:ReceiveMessage',
    ])
    expect(JSON.stringify(consume!.Resource)).toMatch(/CollectionJobsQueue/)
    const ssm = unnamed.filter((s) => actionsOf(s).includes('ssm:GetParameters'))
    expect(ssm).toHaveLength(1)
    expect(actionsOf(ssm[0]!)).toEqual(['ssm:GetParameters'])
    expect(JSON.stringify(ssm[0]!.Resource)).toContain('/sst/pickup/production/Secret/CHAIN_RPC/value')
    expect(JSON.stringify(ssm[0]!.Resource)).not.toContain('CLUSTER_BASIC_AUTH_TOKEN')
    expect(unnamed).toHaveLength(2)
  })

  it('collection follow tick: the following index, marking collections checked, sending enumerate jobs', () => {
    const statements = roleStatements(production.templates.collections, 'CollectionFollowServiceRole')
    const st = byId(statements)
    expect(st).toEqual({
      FindFollowed: {
        actions: ['dynamodb:Query'],
        resource: expect.stringMatching(/CollectionsTable.*\/index\/following-due"/),
      },
      MarkChecked: {
        actions: ['dynamodb:UpdateItem'],
        resource: expect.stringMatching(
          /^\{"Fn::ImportValue":"[\w-]+:ExportsOutputFnGetAttCollectionsTable[0-9A-F]{8}Arn[0-9A-F]{8}"\}$/,
        ),
      },
      SendEnumerate: {
        actions: ['sqs:SendMessage'],
        resource: expect.stringMatching(/^\{"Fn::GetAtt":\["CollectionJobsQueue[0-9A-F]{8}","Arn"\]\}$/),
      },
    })
    expect(statements.filter((s) => !s.Sid)).toEqual([])
  })

  it('sweep: unreferenced pins and their requests, and deleting CARs', () => {
    const st = byId(roleStatements(production.templates.pipeline, 'SweepUnreferencedServiceRole'))
    expect(st.SweepPins?.actions).toEqual([
      'dynamodb:DeleteItem',
      'dynamodb:GetItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ])
    expect(st.SweepPins?.resource).toContain('/index/unreferenced-since')
    expect(st.FindRequests?.actions).toEqual(['dynamodb:BatchGetItem', 'dynamodb:Query'])
    expect(st.FindRequests?.resource).toContain('/index/cid')
    expect(st.DeleteCars?.actions).toEqual(['s3:DeleteObject'])
    expect(st.DeleteCars?.resource).toMatch(/DestinationBucket.*\/\*/)
    expect(st.CheckCars?.actions).toEqual(['s3:GetObject'])
    expect(st.CheckCars?.resource).toMatch(/DestinationBucket.*\/\*/)
    expect(st.ListCars?.actions).toEqual(['s3:ListBucket'])
    expect(st.ListCars?.resource).toMatch(/DestinationBucket/)
  })

  it('reconciler: find stuck pins by status, settle them, send their jobs again', () => {
    const st = byId(roleStatements(production.templates.pipeline, 'ReconcileServiceRole'))
    expect(st.FindStuckPins?.actions).toEqual(['dynamodb:Query'])
    expect(st.FindStuckPins?.resource).toMatch(/PinsTable.*\/index\/status-updated/)
    expect(st.SettlePins?.actions).toEqual(['dynamodb:UpdateItem'])
    expect(st.SettlePins?.resource).toContain('PinsTable')
    expect(st.SettlePins?.resource).not.toContain('/index/')
    expect(st.RequeuePins).toEqual({
      actions: ['sqs:SendMessage'],
      resource: expect.stringMatching(/^\{"Fn::GetAtt":\["PinQueue[0-9A-F]{8}","Arn"\]\}$/),
    })
    expect(Object.keys(st).sort()).toEqual(['FindStuckPins', 'RequeuePins', 'SettlePins'])
  })

  it('worker task: its queue, claim and settle pins, announce itself, upload CARs, protect its task', () => {
    const st = byId(roleStatements(production.templates.worker, 'WorkerTaskTaskRole'))
    expect(st.PinJobs?.actions).toEqual([
      'sqs:ChangeMessageVisibility',
      'sqs:DeleteMessage',
      'sqs:ReceiveMessage',
      'sqs:SendMessage',
    ])
    expect(st.PinsClaimSettle?.actions).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:UpdateItem',
    ])
    expect(st.WatchUnreferencedPins?.actions).toEqual(['dynamodb:Query'])
    expect(st.WatchUnreferencedPins?.resource).toMatch(/PinsTable.*\/index\/unreferenced-since/)
    expect(st.AnnounceWorker?.actions).toEqual(['dynamodb:DeleteItem', 'dynamodb:PutItem'])
    expect(st.UploadCars?.actions).toEqual(['s3:AbortMultipartUpload', 's3:PutObject'])
    expect(st.UploadCars?.resource).toMatch(/TempBucket.*\/\*/)
    expect(st.TaskScaleInProtection?.actions).toEqual(['ecs:GetTaskProtection', 'ecs:UpdateTaskProtection'])
    expect(st.TaskScaleInProtection?.resource).toMatch(
      new RegExp(`:ecs:${REGION}:${ACCOUNT}:task/.*Cluster[0-9A-F]{8}.*/\\*`),
    )
    expect(st.OwnServiceDeployments?.actions).toEqual(['ecs:DescribeServices'])
    expect(st.OwnServiceDeployments?.resource).toMatch(
      /:service\/.*Cluster[0-9A-F]{8}.*\/production-pickup-workers/,
    )
    expect(Object.keys(st).sort()).toEqual([
      'AnnounceWorker',
      'OwnServiceDeployments',
      'PinJobs',
      'PinsClaimSettle',
      'TaskScaleInProtection',
      'UploadCars',
      'WatchUnreferencedPins',
    ])
  })
})

describe('"CAR stored" topic', () => {
  it("lets the indexers' accounts named at deploy time subscribe, and no one else", async () => {
    const s = await synthesize('pr-43', { CAR_STORED_SUBSCRIBER_ACCOUNTS: '111111111111,222222222222' })
    const statements = resourcesOf(s.templates.data, 'AWS::SNS::TopicPolicy').flatMap(
      ([, p]) => (p.Properties!.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement,
    )
    const subscribe = statements.find((st) => st.Sid === 'IndexersSubscribe')
    expect(subscribe).toMatchObject({ Effect: 'Allow', Action: 'sns:Subscribe' })
    const principals = JSON.stringify(subscribe?.Principal)
    expect(principals).toContain(':iam::111111111111:root')
    expect(principals).toContain(':iam::222222222222:root')
    expect(JSON.stringify(subscribe?.Resource)).toContain('CarStoredTopic')
    const none = resourcesOf(production.templates.data, 'AWS::SNS::TopicPolicy').flatMap(
      ([, p]) => (p.Properties!.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement,
    )
    expect(none.some((st) => st.Sid === 'IndexersSubscribe')).toBe(false)
  })
})

describe('worker service', () => {
  it("creates ECS's and its autoscaling's service-linked roles before the cluster and the scalable target", () => {
    const t = production.templates.worker
    const json = t.toJSON() as {
      Resources: Record<string, { Type: string; DependsOn?: string[]; Properties?: Record<string, unknown> }>
    }
    const roles = Object.entries(json.Resources).filter(([id]) => /ServiceLinkedRole[0-9A-F]{8}$/.test(id))
    const services = roles.map(([, r]) => JSON.stringify(r.Properties?.Create))
    expect(services.some((c) => c.includes('\\"AWSServiceName\\":\\"ecs.amazonaws.com\\"'))).toBe(true)
    expect(services.some((c) => c.includes('ecs.application-autoscaling.amazonaws.com'))).toBe(true)
    // An existing role ("has been taken in this account") is not a failure.
    for (const c of services) expect(c).toContain('InvalidInput')
    const dependsOn = (type: string) =>
      Object.values(json.Resources).find((r) => r.Type === type)?.DependsOn ?? []
    expect(dependsOn('AWS::ECS::Cluster').some((d) => d.startsWith('EcsServiceLinkedRole'))).toBe(true)
    expect(
      dependsOn('AWS::ApplicationAutoScaling::ScalableTarget').some((d) =>
        d.startsWith('EcsScalingServiceLinkedRole'),
      ),
    ).toBe(true)
  })

  it('runs kubo and the sidecar: swarm port 4001 tcp/udp, sidecar after kubo is healthy, real health checks', () => {
    const c = containers(production)
    expect(c.kubo?.PortMappings).toEqual([
      { ContainerPort: SWARM_PORT, Protocol: 'tcp' },
      { ContainerPort: SWARM_PORT, Protocol: 'udp' },
    ])
    expect(containerEnv(c.kubo!).IPFS_PROFILE).toBe('server')
    expect(c.kubo?.HealthCheck?.Command.join(' ')).toContain('ipfs --api=/ip4/127.0.0.1/tcp/5001 id')
    expect(c.worker?.DependsOn).toEqual([{ ContainerName: 'kubo', Condition: 'HEALTHY' }])
    expect(c.worker?.HealthCheck?.Command.join(' ')).toContain('/health')
    const env = containerEnv(c.worker!)
    expect(env.HEALTH_PORT).toBe(String(HEALTH_PORT))
    expect(env.IPFS_API_URL).toBe('http://127.0.0.1:5001')
    // SIGTERM, SHUTDOWN_GRACE_MS for running jobs, then their release: all before Fargate's SIGKILL.
    expect(c.worker?.StopTimeout).toBeGreaterThanOrEqual(production.cfg.SHUTDOWN_GRACE_MS / 1000 + 30)
  })

  it('opens only the swarm port', () => {
    const sg = resourceOf(production.templates.worker, 'AWS::EC2::SecurityGroup', 'WorkerSecurityGroup')
    expect(sg.Properties?.SecurityGroupIngress).toEqual([
      expect.objectContaining({
        CidrIp: '0.0.0.0/0',
        IpProtocol: 'tcp',
        FromPort: SWARM_PORT,
        ToPort: SWARM_PORT,
      }),
      expect.objectContaining({
        CidrIp: '0.0.0.0/0',
        IpProtocol: 'udp',
        FromPort: SWARM_PORT,
        ToPort: SWARM_PORT,
      }),
    ])
  })

  it('sizes the task from the configuration, disk from BATCH_SIZE x typical CAR', () => {
    for (const s of [production, custom]) {
      s.templates.worker.hasResourceProperties('AWS::ECS::TaskDefinition', {
        Cpu: String(s.cfg.WORKER_CPU),
        Memory: String(s.cfg.WORKER_MEMORY_MIB),
        EphemeralStorage: { SizeInGiB: workerEphemeralStorageGiB(s.cfg) },
        RuntimePlatform: { CpuArchitecture: s.cfg.WORKER_CPU_ARCHITECTURE === 'arm64' ? 'ARM64' : 'X86_64' },
      })
    }
    expect(workerEphemeralStorageGiB(production.cfg)).toBe(10 * 8 + 10)
    // Admission by disk: the worker gets the disk its jobs may fill, and collects before it is too full to
    // admit one largest CAR.
    const env = containerEnv(containers(production).worker!)
    expect(env.KUBO_JOB_DISK_BYTES).toBe(String(80 * 1024 ** 3))
    expect(Number(env.KUBO_GC_HIGH_WATER_BYTES)).toBeLessThanOrEqual(
      80 * 1024 ** 3 - production.cfg.MAX_CAR_BYTES,
    )
    expect(workerEphemeralStorageGiB(custom.cfg)).toBe(4 * 20 + 10)
  })

  it('protects busy tasks from scale-in through the ECS agent, tags tasks, uses public subnets', () => {
    production.templates.worker.hasResourceProperties('AWS::ECS::Service', {
      LaunchType: 'FARGATE',
      PropagateTags: 'SERVICE',
      EnableECSManagedTags: true,
      NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'ENABLED' } },
      DesiredCount: Match.absent(),
    })
    production.templates.worker.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    })
  })

  it('scales on the transfer demand the workers report, not on jobs still searching, within the configured bounds', () => {
    for (const s of [production, custom]) {
      const t = s.templates.worker
      t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
        MinCapacity: s.cfg.WORKER_MIN_TASKS,
        MaxCapacity: s.cfg.WORKER_MAX_TASKS,
        ScalableDimension: 'ecs:service:DesiredCount',
        RoleARN: Match.objectLike({}),
      })
      const policy = resourceOf(t, 'AWS::ApplicationAutoScaling::ScalingPolicy', 'TransferDemandScaling')
      const cfg = policy.Properties?.TargetTrackingScalingPolicyConfiguration as {
        TargetValue: number
        CustomizedMetricSpecification: {
          Metrics: Array<{
            Id: string
            Expression?: string
            ReturnData: boolean
            MetricStat?: { Metric: { Namespace: string; MetricName: string }; Stat: string }
          }>
        }
      }
      expect(policy.Properties?.PolicyType).toBe('TargetTrackingScaling')
      expect(cfg.TargetValue).toBe(s.cfg.BATCH_SIZE)
      const metrics = Object.fromEntries(cfg.CustomizedMetricSpecification.Metrics.map((m) => [m.Id, m]))
      // The gauges every worker reports (EMF, core/metrics.ts), averaged over the tasks: per task.
      expect(metrics.transferring?.MetricStat).toMatchObject({
        Metric: { Namespace: `pickup/${s.app.stage}`, MetricName: METRICS.jobsTransferring.name },
        Stat: 'Average',
      })
      expect(metrics.waiting?.MetricStat).toMatchObject({
        Metric: { Namespace: `pickup/${s.app.stage}`, MetricName: METRICS.jobsWaiting.name },
        Stat: 'Average',
      })
      expect(metrics.visible?.MetricStat?.Metric).toMatchObject({
        Namespace: 'AWS/SQS',
        MetricName: 'ApproximateNumberOfMessagesVisible',
      })
      expect(metrics.running?.MetricStat?.Metric).toMatchObject({
        Namespace: 'ECS/ContainerInsights',
        MetricName: 'RunningTaskCount',
      })
      expect(metrics.transferDemand?.Expression).toBe(
        `IF(running > 0, FILL(transferring, 0) + FILL(waiting, 0), IF(visible > 0, ${2 * s.cfg.BATCH_SIZE}, 0))`,
      )
      // Neither jobs searching nor the queue's depth drive it while tasks run: a backlog of content nobody
      // serves adds no task.
      const used = cfg.CustomizedMetricSpecification.Metrics.flatMap((m) =>
        m.MetricStat ? [m.MetricStat.Metric.MetricName] : [],
      )
      expect(used).not.toContain(METRICS.jobsSearching.name)
      expect(used).not.toContain('ApproximateNumberOfMessagesNotVisible')
      expect(cfg.CustomizedMetricSpecification.Metrics.filter((m) => m.ReturnData).map((m) => m.Id)).toEqual([
        'transferDemand',
      ])
    }
  })
})

describe('HTTP API', () => {
  it('routes everything to the Hono function, with CORS and access logs', () => {
    const t = custom.templates.api
    t.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: Match.objectLike({
        AllowOrigins: ['https://app.example.org', 'https://example.org'],
        AllowHeaders: ['authorization', 'content-type'],
      }),
    })
    t.hasResourceProperties('AWS::ApiGatewayV2::Route', { RouteKey: '$default' })
    t.hasResourceProperties('AWS::ApiGatewayV2::Stage', { AccessLogSettings: Match.objectLike({}) })
  })

  it("throttles every route (rate and burst), so a burst cannot take the account's Lambda concurrency", () => {
    production.templates.api.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    })
  })

  it('serves a custom domain from its Route 53 zone, without a lookup', () => {
    const t = custom.templates.api
    t.hasResourceProperties('AWS::ApiGatewayV2::DomainName', { DomainName: 'pickup.example.org' })
    t.hasResourceProperties('AWS::CertificateManager::Certificate', { DomainName: 'pickup.example.org' })
    t.hasResourceProperties('AWS::Route53::RecordSet', {
      Name: 'pickup.example.org.',
      Type: 'A',
      HostedZoneId: 'Z0123456789ABCDEFGHIJ',
    })
    expect(resourcesOf(production.templates.api, 'AWS::ApiGatewayV2::DomainName')).toEqual([])
  })
})

type MetricQuery = {
  Id: string
  Expression?: string
  ReturnData?: boolean
  MetricStat?: {
    Metric: { Namespace: string; MetricName: string; Dimensions?: Array<{ Name: string; Value: unknown }> }
    Stat: string
    Period: number
  }
}
const byId = (ms: MetricQuery[]) => Object.fromEntries(ms.map((m) => [m.Id, m]))

describe('alarms', () => {
  const alarm = (s: Synthesized, name: string) =>
    resourcesOf(s.templates.monitoring, 'AWS::CloudWatch::Alarm').find(
      ([, a]) => a.Properties?.AlarmName === `${s.app.stage}-pickup-${name}`,
    )?.[1].Properties as Record<string, unknown> | undefined

  it('fire on dead letters, old jobs, worker errors and validator errors, and notify the alarm topic', () => {
    expect(alarm(production, 'dead-letters-not-handled')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    })
    expect(alarm(production, 'pin-queue-oldest-job')).toMatchObject({
      MetricName: 'ApproximateAgeOfOldestMessage',
      Threshold: production.cfg.FETCH_TIMEOUT_MS / 1000 + 3600,
    })
    expect(alarm(production, 'worker-errors')).toMatchObject({
      Namespace: 'pickup/production',
      MetricName: 'WorkerErrors',
      Statistic: 'Sum',
      Threshold: production.cfg.ALARM_WORKER_ERRORS,
    })
    expect(alarm(production, 'validator-errors')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
    })
    expect(alarm(production, 'validator-near-timeout')).toMatchObject({
      MetricName: 'Duration',
      Threshold: 0.8 * VALIDATOR_TIMEOUT_SECONDS * 1000,
    })
    expect(alarm(production, 'sweep-errors')).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Errors' })
    // Each failed job is heard of: the alarm is on arrivals, not on a depth that stays up for days.
    expect(alarm(production, 'failed-jobs-arrived')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'NumberOfMessagesSent',
      Statistic: 'Sum',
      Dimensions: [{ Name: 'QueueName', Value: expect.objectContaining({}) }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    })
    expect(JSON.stringify(alarm(production, 'failed-jobs-arrived')?.Dimensions)).toContain('FailedJobsQueue')
    expect(JSON.stringify(alarm(production, 'dead-letters-not-handled')?.Dimensions)).toContain(
      'PinDeadLetterQueue',
    )
    expect(alarm(production, 'reconcile-errors')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Period: 300,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
    })
    expect(JSON.stringify(alarm(production, 'reconcile-errors')?.Dimensions)).toContain('Reconcile')
    expect(alarm(custom, 'reconcile-errors')).toMatchObject({ Period: 900 })
    expect(alarm(production, 'validator-events-failed')).toMatchObject({
      MetricName: 'NumberOfMessagesSent',
      Statistic: 'Sum',
    })
    expect(JSON.stringify(alarm(production, 'validator-events-failed')?.Dimensions)).toContain(
      'ValidatorFailureQueue',
    )
    for (const [, a] of resourcesOf(production.templates.monitoring, 'AWS::CloudWatch::Alarm')) {
      expect(JSON.stringify(a.Properties?.AlarmActions)).toContain('AlarmTopic')
      if (a.Properties?.AlarmName !== 'production-pickup-workers-below-minimum') {
        expect(a.Properties?.TreatMissingData).toBe('notBreaching')
      }
    }
    custom.templates.monitoring.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.org',
    })
  })

  it('fire on dead collection jobs and on collection jobs function errors', () => {
    const dead = alarm(production, 'collection-jobs-dead')
    expect(dead).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    })
    expect(JSON.stringify(dead?.Dimensions)).toContain('CollectionDeadLetterQueue')
    const errors = alarm(production, 'collection-jobs-errors')
    expect(errors).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Errors', Threshold: 1 })
    expect(JSON.stringify(errors?.Dimensions)).toContain('CollectionJobs')
    for (const a of [dead, errors]) expect(JSON.stringify(a?.AlarmActions)).toContain('AlarmTopic')
  })

  it('fire when the follow tick of collections failed twice in a row', () => {
    const follow = alarm(production, 'collection-follow-errors')
    expect(follow).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Period: 300,
      EvaluationPeriods: 2,
      DatapointsToAlarm: 2,
    })
    expect(JSON.stringify(follow?.Dimensions)).toContain('CollectionFollow')
    expect(alarm(custom, 'collection-follow-errors')).toMatchObject({ Period: 1800 })
  })

  it('fire on API 5xx, HTTP function errors and too few running workers', () => {
    expect(alarm(production, 'api-5xx')).toMatchObject({
      Namespace: 'AWS/ApiGateway',
      MetricName: '5xx',
      Statistic: 'Sum',
      Threshold: production.cfg.ALARM_API_5XX,
    })
    expect(JSON.stringify(alarm(production, 'api-5xx')?.Dimensions)).toContain('ApiId')
    expect(alarm(production, 'http-function-errors')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Threshold: 1,
    })
    expect(JSON.stringify(alarm(production, 'http-function-errors')?.Dimensions)).toContain('HttpApi')
    expect(alarm(production, 'workers-below-minimum')).toMatchObject({
      Namespace: 'ECS/ContainerInsights',
      MetricName: 'RunningTaskCount',
      Statistic: 'Minimum',
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
    })
    expect(alarm(custom, 'workers-below-minimum')).toMatchObject({ Threshold: 2 })
  })

  it("reach someone: CloudWatch may publish to the alarm topic, for this account's alarms only", () => {
    const policies = resourcesOf(production.templates.monitoring, 'AWS::SNS::TopicPolicy')
    const statements = policies.flatMap(
      ([, p]) => (p.Properties!.PolicyDocument as { Statement: Array<Record<string, unknown>> }).Statement,
    )
    const publish = statements.find((st) => st.Sid === 'CloudWatchAlarmsPublish')
    expect(publish).toMatchObject({
      Effect: 'Allow',
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: 'sns:Publish',
      Condition: { StringEquals: { 'aws:SourceAccount': ACCOUNT } },
    })
    expect(JSON.stringify(publish?.Condition)).toContain(`:cloudwatch:${REGION}:${ACCOUNT}:alarm:*`)
    expect(JSON.stringify(publish?.Resource)).toContain('AlarmTopic')
    // TLS stays enforced beside it.
    expect(statements.some((st) => st.Effect === 'Deny')).toBe(true)
  })

  it('count worker log lines at pino level error or above', () => {
    production.templates.worker.hasResourceProperties('AWS::Logs::MetricFilter', {
      FilterPattern: '{ $.level >= 50 }',
      LogGroupName: { Ref: Match.stringLikeRegexp('^WorkerLogs') },
      MetricTransformations: [
        {
          MetricNamespace: 'pickup/production',
          MetricName: 'WorkerErrors',
          MetricValue: '1',
          DefaultValue: 0,
        },
      ],
    })
  })

  it('fire on what users feel: slow small pins, a failure rate, nothing stored while jobs arrive', () => {
    for (const s of [production, custom]) {
      const ns = `pickup/${s.app.stage}`
      expect(alarm(s, 'slow-small-pins')).toMatchObject({
        Namespace: ns,
        MetricName: METRICS.timeToPinned.name,
        Dimensions: [{ Name: 'SizeClass', Value: 'small' }],
        ExtendedStatistic: 'p90',
        Period: 900,
        EvaluationPeriods: 2,
        Threshold: s.cfg.ALARM_TIME_TO_PIN_SMALL_P90_SECONDS * 1000,
        ComparisonOperator: 'GreaterThanThreshold',
      })

      const rate = alarm(s, 'job-failure-rate') as { Metrics: MetricQuery[]; Threshold: number }
      expect(rate).toMatchObject({ Threshold: s.cfg.ALARM_FAILURE_RATE_PERCENT, EvaluationPeriods: 2 })
      const rateBy = byId(rate.Metrics)
      expect(rateBy.failed?.MetricStat).toMatchObject({
        Metric: { Namespace: ns, MetricName: METRICS.jobsFailed.name },
        Stat: 'Sum',
        Period: 900,
      })
      // The total series: no Reason dimension.
      expect(rateBy.failed?.MetricStat?.Metric.Dimensions).toBeUndefined()
      expect(rateBy.finished?.MetricStat?.Metric.MetricName).toBe(METRICS.jobsFinished.name)
      const returned = rate.Metrics.find((m) => m.ReturnData !== false)
      expect(returned?.Expression).toBe(
        `IF(FILL(failed, 0) + FILL(finished, 0) >= ${s.cfg.ALARM_FAILURE_MIN_JOBS}, 100 * FILL(failed, 0) / (FILL(failed, 0) + FILL(finished, 0)), 0)`,
      )

      const nothing = alarm(s, 'nothing-stored') as { Metrics: MetricQuery[] }
      expect(nothing).toMatchObject({ Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' })
      const nothingBy = byId(nothing.Metrics)
      const period = s.cfg.ALARM_NOTHING_STORED_MINUTES * 60
      expect(nothingBy.sent?.MetricStat).toMatchObject({
        Metric: { Namespace: 'AWS/SQS', MetricName: 'NumberOfMessagesSent' },
        Stat: 'Sum',
        Period: period,
      })
      expect(JSON.stringify(nothingBy.sent?.MetricStat?.Metric.Dimensions)).toContain('PinQueue')
      expect(nothingBy.stored?.MetricStat).toMatchObject({
        Metric: { Namespace: ns, MetricName: METRICS.pinsStored.name },
        Stat: 'Sum',
        Period: period,
      })
      expect(nothing.Metrics.find((m) => m.ReturnData !== false)?.Expression).toBe(
        'IF(FILL(sent, 0) >= 1 AND FILL(stored, 0) == 0, 1, 0)',
      )
    }
    // The thresholds are deploy-time settings.
    expect(alarm(custom, 'slow-small-pins')?.Threshold).toBe(120_000)
    expect(alarm(custom, 'job-failure-rate')?.Threshold).toBe(25)
    expect(alarm(production, 'job-failure-rate')?.Threshold).toBe(50)
    expect(
      byId((alarm(custom, 'nothing-stored') as { Metrics: MetricQuery[] }).Metrics).stored?.MetricStat
        ?.Period,
    ).toBe(1800)
  })

  it('and one dashboard: what users feel first, infrastructure below', () => {
    const dashboards = resourcesOf(production.templates.monitoring, 'AWS::CloudWatch::Dashboard')
    expect(dashboards).toHaveLength(1)
    // The body is a Fn::Join of JSON text and references: with each reference as a placeholder, it parses.
    const properties = dashboards[0]![1].Properties as { DashboardBody: { 'Fn::Join': [string, unknown[]] } }
    const join = properties.DashboardBody['Fn::Join']
    const body = JSON.parse(join[1].map((part) => (typeof part === 'string' ? part : 'REF')).join('')) as {
      widgets: Array<{ properties: { title: string; metrics?: unknown[][] } }>
    }
    const titles = body.widgets.map((w) => w.properties.title)
    const metricsOf = (title: string) =>
      JSON.stringify(body.widgets.find((w) => w.properties.title === title)?.properties.metrics)
    const userTitles = [
      'Time to pinned (s), from the first request',
      'Pins stored per hour',
      'Failed attempts by reason (per 5 min)',
      'Bytes stored per day (GiB)',
      'Jobs looking vs transferring (all workers)',
      'Time searching vs transferring (s, p50)',
      'Fetch and validation rate (MiB/s, p50)',
      'Invalid CARs by fault',
      'API: 4xx by reason',
    ]
    // After the alarm status, the user-facing widgets, in order, before any infrastructure widget.
    expect(titles.slice(0, 1 + userTitles.length)).toEqual(['Alarms', ...userTitles])
    expect(titles.indexOf('Pin queue')).toBe(1 + userTitles.length)
    // Percentiles of time to pinned, in total and for small content.
    const ttp = metricsOf(userTitles[0]!)
    for (const stat of ['p50', 'p90', 'p99']) expect(ttp).toContain(`"stat":"${stat}"`)
    expect(ttp).toContain('"TimeToPinned","SizeClass","small"')
    expect(metricsOf('Pins stored per hour')).toContain('"PinsStored",{"label":"pins stored","period":3600')
    expect(metricsOf('Bytes stored per day (GiB)')).toContain('"CarBytes"')
    // Failures, faults and 4xx: one series per reason, found by search.
    expect(metricsOf('Failed attempts by reason (per 5 min)')).toContain(
      `SEARCH('{pickup/production,Reason} MetricName=\\"JobsFailed\\"', 'Sum', 300)`,
    )
    expect(metricsOf('Invalid CARs by fault')).toContain('{pickup/production,FaultCode} MetricName')
    expect(metricsOf('API: 4xx by reason')).toContain('{pickup/production,Api,Reason} MetricName')
    const looking = metricsOf('Jobs looking vs transferring (all workers)')
    for (const m of [METRICS.jobsSearching, METRICS.jobsWaiting, METRICS.jobsTransferring])
      expect(looking).toContain(`"pickup/production","${m.name}"`)
    // The scaling metric is graphed as it is computed.
    expect(metricsOf('Transfer demand per task (scaling metric)')).toContain(
      'IF(running > 0, FILL(transferring, 0) + FILL(waiting, 0), IF(visible > 0, 20, 0))',
    )
  })
})

describe('stage policy', () => {
  const all = (s: Synthesized): Array<[string, Resource]> =>
    Object.entries(s.templates).flatMap(([stack, t]) =>
      resourcesOf(t).map(([id, r]) => [`${stack}/${id}`, r] as [string, Resource]),
    )

  it('preview stages destroy everything on removal, and empty their buckets first', () => {
    for (const [id, r] of all(preview)) expect(r.DeletionPolicy ?? 'Delete', id).toBe('Delete')
    expect(resourcesOf(preview.templates.pipeline, 'Custom::S3AutoDeleteObjects')).toHaveLength(1)
    expect(resourcesOf(preview.templates.data, 'Custom::S3AutoDeleteObjects')).toHaveLength(2)
  })

  it('persistent stages retain their data, except when its creation rolls back', () => {
    const retained = all(production)
      .filter(([, r]) => ['AWS::DynamoDB::Table', 'AWS::S3::Bucket', 'AWS::Logs::LogGroup'].includes(r.Type))
      .map(([id, r]) => [id, r.DeletionPolicy])
    expect(retained.length).toBeGreaterThan(Object.keys(tables).length + 3)
    for (const [id, policy] of retained) expect(policy, id).toBe('RetainExceptOnCreate')
    // Nothing anywhere is plainly retained: a failed first create would leave it behind and the retry would
    // fail with "already exists".
    for (const [id, r] of all(production)) expect(r.DeletionPolicy ?? 'Delete', id).not.toBe('Retain')
    expect(resourcesOf(production.templates.data, 'Custom::S3AutoDeleteObjects')).toEqual([])
  })

  it('hard-names only what must be found by name', () => {
    const worker = production.templates.worker
    for (const [id, g] of resourcesOf(worker, 'AWS::Logs::LogGroup')) {
      expect(g.Properties?.LogGroupName, id).toBeUndefined()
    }
    expect(resourceOf(worker, 'AWS::ECS::Cluster', 'Cluster').Properties?.ClusterName).toBeUndefined()
    expect(
      resourceOf(production.templates.pipeline, 'AWS::SQS::Queue', 'ValidatorFailureQueue').Properties
        ?.QueueName,
    ).toBeUndefined()
    expect(
      resourceOf(production.templates.monitoring, 'AWS::SNS::Topic', 'AlarmTopic').Properties?.TopicName,
    ).toBeUndefined()
    // The service is named: its tasks read its deployments and a task definition cannot refer to its service.
    expect(containerEnv(containers(production).worker!).ECS_SERVICE_NAME).toBe('production-pickup-workers')
    worker.hasResourceProperties('AWS::ECS::Service', { ServiceName: 'production-pickup-workers' })
  })

  it('tags every taggable resource with project and stage', () => {
    for (const s of [production, preview]) {
      let tagged = 0
      for (const [id, r] of all(s)) {
        const tags = r.Properties?.Tags
        if (tags === undefined) continue
        tagged++
        const map = Array.isArray(tags)
          ? Object.fromEntries((tags as Array<{ Key: string; Value: string }>).map((t) => [t.Key, t.Value]))
          : (tags as Record<string, string>)
        expect(map, id).toMatchObject({ project: 'pickup', stage: s.app.stage })
      }
      expect(tagged).toBeGreaterThan(30)
      // CDK's S3 auto-delete provider (preview stages) is a raw CloudFormation resource that takes no tags.
      const types = [
        'AWS::DynamoDB::Table',
        'AWS::SQS::Queue',
        'AWS::S3::Bucket',
        'AWS::Lambda::Function',
        'AWS::ECS::Service',
      ]
      for (const [id, r] of all(s).filter(
        ([id, r]) => types.includes(r.Type) && !id.includes('AutoDeleteObjects'),
      )) {
        expect(r.Properties?.Tags, id).toBeDefined()
      }
    }
  })
})

describe('sst.config.ts', () => {
  it("loads with SST's own loader and adds every stack, as `sst deploy` does", async () => {
    const app = await synthesizeFromConfig('pr-99')
    const stacks = app.node.children.map((c) => c.node.id).filter((id) => id.startsWith('pr-99-'))
    expect(stacks.sort()).toEqual([
      'pr-99-pickup-ApiStack',
      'pr-99-pickup-CollectionsStack',
      'pr-99-pickup-DataStack',
      'pr-99-pickup-MonitoringStack',
      'pr-99-pickup-PipelineStack',
      'pr-99-pickup-WorkerStack',
    ])
  })
})
