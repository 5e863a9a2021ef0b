/**
 * What pickup keeps: the DynamoDB tables, the destination bucket of validated CARs (created, or an existing
 * bucket named by DESTINATION_BUCKET_NAME), the bucket of its access logs, and the "CAR stored" topic that
 * downstream indexers subscribe to. Tables and buckets are built from the definitions beside their adapters
 * (adapters/dynamodb/tables.ts, adapters/s3/buckets.ts), as local mode builds them.
 */
import { Duration, Stack } from 'aws-cdk-lib'
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as s3 from 'aws-cdk-lib/aws-s3'
import * as sns from 'aws-cdk-lib/aws-sns'
import type { StackContext } from 'sst/constructs'
import { type TableDefinition, tableName, tables } from '../adapters/dynamodb/tables.ts'
import { bucketName, destinationBucket } from '../adapters/s3/buckets.ts'
import { carStoredTopic, topicName } from '../adapters/sns/events.ts'
import { bucketPrefix, resourcePrefix, useDeployConfig } from './deploy-config.ts'
import { suppress, suppressFrameworkResources } from './nag.ts'
import { applyStagePolicy, type StagePolicy, stagePolicy } from './stage.ts'

export type TableKey = keyof typeof tables

export interface DataResources {
  tables: Record<TableKey, dynamodb.Table>
  /** Created here, or imported (DESTINATION_BUCKET_NAME): then its settings are its owner's business. */
  destination: s3.IBucket
  destinationImported: boolean
  carStored: sns.Topic
}

function createTable(
  stack: StackContext['stack'],
  id: string,
  def: TableDefinition,
  name: string,
  policy: StagePolicy,
): dynamodb.Table {
  const attr = (a: { name: string; type: 'S' | 'N' | 'B' }) => ({
    name: a.name,
    type: a.type as dynamodb.AttributeType,
  })
  const table = new dynamodb.Table(stack, id, {
    tableName: name,
    partitionKey: attr(def.partitionKey),
    ...(def.sortKey ? { sortKey: attr(def.sortKey) } : {}),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection: policy.tableDeletionProtection,
    removalPolicy: policy.dataRemovalPolicy,
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    ...(def.timeToLiveAttribute ? { timeToLiveAttribute: def.timeToLiveAttribute } : {}),
  })
  for (const gsi of def.globalSecondaryIndexes) {
    table.addGlobalSecondaryIndex({
      indexName: gsi.indexName,
      partitionKey: attr(gsi.partitionKey),
      ...(gsi.sortKey ? { sortKey: attr(gsi.sortKey) } : {}),
      projectionType:
        gsi.projection === 'ALL' ? dynamodb.ProjectionType.ALL : dynamodb.ProjectionType.KEYS_ONLY,
    })
  }
  return table
}

/**
 * Server access logs delivered under a bucket policy (not ACLs, which the buckets disable): what CDK does
 * with the `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy` flag, which SST's app does not set.
 */
function logAccess(source: s3.Bucket, target: s3.Bucket, prefix: string): void {
  const cfn = source.node.defaultChild as s3.CfnBucket
  cfn.loggingConfiguration = { destinationBucketName: target.bucketName, logFilePrefix: prefix }
  target.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'S3ServerAccessLogsPolicy',
      principals: [new iam.ServicePrincipal('logging.s3.amazonaws.com')],
      actions: ['s3:PutObject'],
      resources: [target.arnForObjects(`${prefix}*`)],
      conditions: {
        ArnLike: { 'aws:SourceArn': source.bucketArn },
        StringEquals: { 'aws:SourceAccount': Stack.of(source).account },
      },
    }),
  )
}

export function DataStack({ app, stack }: StackContext): DataResources {
  const cfg = useDeployConfig(app)
  const policy = stagePolicy(app.stage)
  applyStagePolicy(stack, policy)
  const prefix = resourcePrefix(app)

  const tableIds: Record<TableKey, string> = {
    pins: 'PinsTable',
    workers: 'WorkersTable',
    requests: 'RequestsTable',
    tokens: 'TokensTable',
    collections: 'CollectionsTable',
  }
  const created = Object.fromEntries(
    (Object.keys(tables) as TableKey[]).map((key) => {
      const def: TableDefinition = tables[key]
      return [key, createTable(stack, tableIds[key], def, tableName(prefix, def), policy)]
    }),
  ) as Record<TableKey, dynamodb.Table>

  let destination: s3.IBucket
  if (cfg.DESTINATION_BUCKET_NAME) {
    destination = s3.Bucket.fromBucketName(stack, 'DestinationBucket', cfg.DESTINATION_BUCKET_NAME)
  } else {
    const accessLogs = new s3.Bucket(stack, 'AccessLogsBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(policy.persistent ? 365 : 7) }],
      removalPolicy: policy.dataRemovalPolicy,
      autoDeleteObjects: policy.autoDeleteObjects,
    })
    suppress(accessLogs, [
      { id: 'AwsSolutions-S1', reason: 'This is the access log bucket: logging it into itself would loop.' },
    ])
    const bucket = new s3.Bucket(stack, 'DestinationBucket', {
      bucketName: bucketName(bucketPrefix(app), destinationBucket),
      versioned: true,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      enforceSSL: true,
      lifecycleRules: [
        {
          // CAR keys are content addresses: an overwrite stores the same bytes. Old versions (and deleted
          // CARs) are kept long enough to undo a mistake.
          id: 'expire-noncurrent-versions',
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy: policy.dataRemovalPolicy,
      autoDeleteObjects: policy.autoDeleteObjects,
    })
    logAccess(bucket, accessLogs, 'destination/')
    destination = bucket
  }

  const carStored = new sns.Topic(stack, 'CarStoredTopic', {
    topicName: topicName(prefix, carStoredTopic),
    displayName: 'pickup: CAR stored',
    enforceSSL: true,
  })
  // Indexers subscribe their own queues or functions from their own accounts (CAR_STORED_SUBSCRIBER_ACCOUNTS).
  if (cfg.CAR_STORED_SUBSCRIBER_ACCOUNTS.length > 0) {
    carStored.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'IndexersSubscribe',
        principals: cfg.CAR_STORED_SUBSCRIBER_ACCOUNTS.map((account) => new iam.AccountPrincipal(account)),
        actions: ['sns:Subscribe'],
        resources: [carStored.topicArn],
        conditions: { StringEquals: { 'sns:Protocol': ['sqs', 'lambda', 'https'] } },
      }),
    )
  }
  suppress(carStored, [
    {
      id: 'AwsSolutions-SNS2',
      reason:
        'Events carry only public content addresses, sizes and object keys; without a KMS key, subscribers in ' +
        'other accounts (indexers) need no key grants.',
    },
  ])

  suppressFrameworkResources(stack)
  // What the `pickup` command reads with `--outputs` (cli/backend.ts).
  stack.addOutputs({
    PinsTable: created.pins.tableName,
    RequestsTable: created.requests.tableName,
    TokensTable: created.tokens.tableName,
    CollectionsTable: created.collections.tableName,
    DestinationBucket: destination.bucketName,
    CarStoredTopicArn: carStored.topicArn,
  })

  return {
    tables: created,
    destination,
    destinationImported: Boolean(cfg.DESTINATION_BUCKET_NAME),
    carStored,
  }
}
