/**
 * The HTTP API: API Gateway v2 (HTTP API) in front of one Lambda serving the Hono app (api/http.ts: the
 * cluster API, the Pinning Service API and the Collections API), with CORS, access logs and an optional custom
 * domain (API_DOMAIN in a Route 53 zone given by id and name, so nothing is looked up at synthesis). The
 * cluster API's credentials are the SST secret CLUSTER_BASIC_AUTH_TOKEN (`npx sst secrets set
 * CLUSTER_BASIC_AUTH_TOKEN <token> --stage <stage>`), the chains collections can be archived from the SST
 * secret CHAIN_RPC (stacks/collections.ts): the template holds only their SSM parameter names.
 */
import { Duration } from 'aws-cdk-lib'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as route53 from 'aws-cdk-lib/aws-route53'
import { Api, Config, type Function as SstFunction, type StackContext, use } from 'sst/constructs'
import { CollectionsStack } from './collections.ts'
import { DataStack } from './data.ts'
import { useDeployConfig } from './deploy-config.ts'
import { pickupFunction } from './lambda.ts'
import { arnWildcard, suppress, suppressFrameworkResources } from './nag.ts'
import { PipelineStack } from './pipeline.ts'
import { applyStagePolicy, stagePolicy } from './stage.ts'

export interface ApiResources {
  api: Api
  handler: SstFunction
}

export function ApiStack({ app, stack }: StackContext): ApiResources {
  const cfg = useDeployConfig(app)
  const policy = stagePolicy(app.stage)
  applyStagePolicy(stack, policy)
  const { tables } = use(DataStack)
  const { queue } = use(PipelineStack)
  const { jobs: collectionJobs, chainRpc } = use(CollectionsStack)

  const clusterToken = new Config.Secret(stack, 'CLUSTER_BASIC_AUTH_TOKEN')
  const withIndexes = (arn: string) => [arn, `${arn}/index/*`]

  const handler = pickupFunction(
    stack,
    'HttpApi',
    {
      handler: 'api/http.handler',
      description: 'pickup HTTP API (ipfs-cluster compatible)',
      memorySize: 1024,
      // API Gateway gives up on an integration after 30 s.
      timeout: Duration.seconds(29),
      environment: {
        PIN_TABLE: tables.pins.tableName,
        WORKER_TABLE: tables.workers.tableName,
        REQUEST_TABLE: tables.requests.tableName,
        TOKEN_TABLE: tables.tokens.tableName,
        PIN_QUEUE_URL: queue.queueUrl,
        PSA_DELEGATES: cfg.PSA_DELEGATES,
        COLLECTION_TABLE: tables.collections.tableName,
        COLLECTION_JOBS_QUEUE_URL: collectionJobs.queueUrl,
      },
      permissions: [
        new iam.PolicyStatement({
          sid: 'Pins',
          actions: [
            'dynamodb:GetItem',
            'dynamodb:PutItem',
            'dynamodb:UpdateItem',
            'dynamodb:BatchGetItem',
            'dynamodb:Query',
          ],
          resources: withIndexes(tables.pins.tableArn),
        }),
        new iam.PolicyStatement({
          sid: 'Requests',
          actions: [
            'dynamodb:GetItem',
            'dynamodb:PutItem',
            'dynamodb:UpdateItem',
            'dynamodb:DeleteItem',
            'dynamodb:BatchGetItem',
            'dynamodb:Query',
          ],
          resources: withIndexes(tables.requests.tableArn),
        }),
        // Authentication only: tokens are created and revoked by the CLI, with its operator's credentials.
        new iam.PolicyStatement({
          sid: 'AccessTokens',
          actions: ['dynamodb:GetItem'],
          resources: [tables.tokens.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'LiveWorkers',
          actions: ['dynamodb:Scan'],
          resources: [tables.workers.tableArn],
        }),
        new iam.PolicyStatement({
          sid: 'EnqueuePins',
          actions: ['sqs:SendMessage'],
          resources: [queue.queueArn],
        }),
        // The Collections API: create, read, list (owner index) and delete collections with their tokens.
        new iam.PolicyStatement({
          sid: 'Collections',
          actions: [
            'dynamodb:GetItem',
            'dynamodb:PutItem',
            'dynamodb:UpdateItem',
            'dynamodb:Query',
            'dynamodb:BatchGetItem',
            'dynamodb:BatchWriteItem',
          ],
          resources: withIndexes(tables.collections.tableArn),
        }),
        new iam.PolicyStatement({
          sid: 'EnqueueCollectionJobs',
          actions: ['sqs:SendMessage'],
          resources: [collectionJobs.queueArn],
        }),
      ],
      // Grants ssm:GetParameters on these secrets' parameters (and their SST fallbacks) only. The API reads
      // only which chains CHAIN_RPC configures (the consumer calls their endpoints).
      bind: [clusterToken, chainRpc],
    },
    cfg,
    policy,
  )
  suppress(handler, [
    {
      id: 'AwsSolutions-IAM5',
      reason: "Queries on the tables' own secondary indexes (listing and status lookups).",
      appliesTo: [
        arnWildcard('PinsTable', '/index/*'),
        arnWildcard('RequestsTable', '/index/*'),
        arnWildcard('CollectionsTable', '/index/*'),
      ],
    },
  ])

  const domain = cfg.API_DOMAIN
  const api = new Api(stack, 'Api', {
    cors: {
      allowOrigins: cfg.API_CORS_ORIGINS.split(',').map((o) => o.trim()),
      allowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      allowHeaders: ['authorization', 'content-type'],
      maxAge: '1 day',
    },
    accessLog: { retention: policy.logRetentionName },
    ...(domain && cfg.API_HOSTED_ZONE_ID && cfg.API_HOSTED_ZONE_NAME
      ? {
          customDomain: {
            domainName: domain,
            cdk: {
              hostedZone: route53.HostedZone.fromHostedZoneAttributes(stack, 'ApiZone', {
                hostedZoneId: cfg.API_HOSTED_ZONE_ID,
                zoneName: cfg.API_HOSTED_ZONE_NAME,
              }),
            },
          },
        }
      : {}),
    // Route throttling: a burst of requests gets 429s instead of taking the account's Lambda concurrency.
    defaults: { throttle: { rate: cfg.API_THROTTLE_RATE_PER_SECOND, burst: cfg.API_THROTTLE_BURST } },
    routes: { $default: handler },
  })
  suppress(api, [
    {
      id: 'AwsSolutions-APIG4',
      reason:
        'Authorization is in the app: Basic auth on the cluster API, access tokens on the Pinning Service API; ' +
        '/healthz is public on purpose.',
    },
  ])

  suppressFrameworkResources(stack)
  stack.addOutputs({ ApiUrl: api.customDomainUrl ?? api.url })
  return { api, handler }
}
