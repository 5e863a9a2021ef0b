/**
 * Every AWS call a deployed component makes is granted by its IAM role in the stacks.
 *
 * The embedded services (dynalite, fauxqs, local mode's S3) check no IAM, so a call a role does not grant
 * passes every local test and fails only in AWS. Here each component's real entry point runs against the
 * embedded services: the Lambda entry modules (api/lambda/*.ts, api/http.ts) are imported as deployed, with
 * their environment pointing at the emulators, and the worker is composed as pickup/main.ts composes it. Every
 * AWS SDK client they make (adapters/aws-clients.ts's `createAwsClients`, wrapped below) carries a middleware
 * that records each command and its target (table and index, queue, bucket and key, topic) under the
 * component that made it. Each recorded call is mapped to the IAM action AWS documents for it and to the ARN
 * of the stack's resource with that name; the production stacks are synthesized offline (./synth.ts) and each
 * (action, resource) must be allowed by a statement of that component's role.
 *
 * The worker's IPFS node is the in-memory block source (IAM concerns only its AWS calls); everything else is
 * the real code over the real emulators. The queue consumers run behind local mode's stand-in for Lambda's SQS
 * event source (local/sqs-event-source.ts), whose receives and deletes AWS makes with the function's role, so
 * they count as the function's. Not driven: the collection jobs consumer's archiving of tokens (it needs a
 * chain's JSON-RPC endpoint; here its enumeration fails at once), and the follow tick's sending of a due
 * collection's job (none is due: its look for them is driven).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { MiddlewareStack } from '@smithy/types'
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import type * as AwsClientsModule from '../../adapters/aws-clients.ts'
import { createStores, resourcesFromEnv } from '../../adapters/compose.ts'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createDynamoTokenStore } from '../../adapters/dynamodb/tokens.ts'
import { createLogger } from '../../adapters/log.ts'
import { createSqsPinQueue } from '../../adapters/sqs/queue.ts'
import { createAccessToken } from '../../core/access-tokens.ts'
import { contentKey } from '../../core/cid.ts'
import { parseConfig } from '../../core/config.ts'
import { localAwsEnv } from '../../local/aws-env.ts'
import { type Services, startServices } from '../../local/services.ts'
import { pollQueueToHandler } from '../../local/sqs-event-source.ts'
import { workerEnvSchema } from '../../pickup/config.ts'
import { type RunningWorker, startWorker } from '../../pickup/worker.ts'
import { rawBlock, unixfsFile } from '../fixtures/dags.ts'
import { createMemoryBlockSource } from '../helpers/memory-block-source.ts'
import { resourcesOf, roleStatements, type Statement, type Synthesized, synthesize } from './synth.ts'

// ---------------------------------------------------------------- recording

interface Recorded {
  component: string
  command: string
  input: Record<string, unknown>
}

const recording = vi.hoisted(() => ({
  /** The component whose clients are being made: set before each entry point is built. */
  component: 'none',
  calls: [] as Array<{ component: string; command: string; input: Record<string, unknown> }>,
}))

vi.mock('../../adapters/aws-clients.ts', async (importOriginal) => {
  const original = await importOriginal<typeof AwsClientsModule>()
  return {
    ...original,
    createAwsClients: (cfg: Parameters<typeof original.createAwsClients>[0]) => {
      const clients = original.createAwsClients(cfg)
      const component = recording.component
      for (const client of Object.values(clients)) {
        ;(client.middlewareStack as MiddlewareStack<object, object>).add(
          (next, context) => async (args) => {
            recording.calls.push({
              component,
              command: String((context as { commandName?: string }).commandName),
              input: (args as { input: Record<string, unknown> }).input,
            })
            return next(args)
          },
          { step: 'initialize', name: 'iamConformanceRecorder' },
        )
      }
      return clients
    },
  }
})

// ---------------------------------------------------------------- calls -> (action, resource)

/** A stack resource by the construct id its logical id starts with; ARNs below are `arn::<id>[/...]`. */
type Logical = string
const arnOf = (logical: Logical, rest = '') => `arn::${logical}${rest}`

interface Grant {
  action: string
  resource: string
  /** What was sent, for the failure message. */
  call: string
}

/**
 * The IAM action and resource of each recorded call, by AWS's Service Authorization Reference: batch and
 * multipart calls need the action of their single form (ChangeMessageVisibilityBatch ->
 * sqs:ChangeMessageVisibility, CreateMultipartUpload/UploadPart/CompleteMultipartUpload -> s3:PutObject,
 * HeadObject -> s3:GetObject, ListObjectsV2 -> s3:ListBucket on the bucket). A command not listed here
 * fails the test: its grant must be added to this mapping before it can be checked.
 */
function grantsOf(call: Recorded, logicalOf: (name: string) => Logical): Grant[] {
  const i = call.input
  const s = (key: string) => String(i[key])
  const table = (name: string, index?: string) => arnOf(logicalOf(name), index ? `/index/${index}` : '')
  const queue = () => arnOf(logicalOf(s('QueueUrl')))
  const object = (bucket: string, key: string) => arnOf(logicalOf(bucket), `/${key}`)
  const one = (action: string, resource: string): Grant[] => [{ action, resource, call: call.command }]
  const itemActions: Record<string, string> = {
    Put: 'dynamodb:PutItem',
    Update: 'dynamodb:UpdateItem',
    Delete: 'dynamodb:DeleteItem',
    ConditionCheck: 'dynamodb:ConditionCheckItem',
    Get: 'dynamodb:GetItem',
  }
  switch (call.command) {
    case 'GetItemCommand':
    case 'PutItemCommand':
    case 'UpdateItemCommand':
    case 'DeleteItemCommand':
      return one(`dynamodb:${call.command.replace(/Command$/, '')}`, table(s('TableName')))
    case 'QueryCommand':
    case 'ScanCommand':
      return one(
        `dynamodb:${call.command.replace(/Command$/, '')}`,
        table(s('TableName'), i.IndexName as string | undefined),
      )
    case 'BatchGetItemCommand':
    case 'BatchWriteItemCommand':
      return Object.keys(i.RequestItems as object).flatMap((name) =>
        one(`dynamodb:${call.command.replace(/Command$/, '')}`, table(name)),
      )
    case 'TransactWriteItemsCommand':
    case 'TransactGetItemsCommand':
      return (i.TransactItems as Array<Record<string, { TableName: string }>>).flatMap((item) =>
        Object.entries(item).flatMap(([kind, op]) =>
          one(itemActions[kind] ?? `dynamodb:?${kind}`, table(op.TableName)),
        ),
      )
    case 'ReceiveMessageCommand':
    case 'SendMessageCommand':
    case 'DeleteMessageCommand':
    case 'ChangeMessageVisibilityCommand':
    case 'GetQueueAttributesCommand':
      return one(`sqs:${call.command.replace(/Command$/, '')}`, queue())
    case 'SendMessageBatchCommand':
    case 'DeleteMessageBatchCommand':
    case 'ChangeMessageVisibilityBatchCommand':
      return one(`sqs:${call.command.replace(/BatchCommand$/, '')}`, queue())
    case 'PutObjectCommand':
    case 'CreateMultipartUploadCommand':
    case 'UploadPartCommand':
    case 'CompleteMultipartUploadCommand':
      return one('s3:PutObject', object(s('Bucket'), s('Key')))
    case 'AbortMultipartUploadCommand':
      return one('s3:AbortMultipartUpload', object(s('Bucket'), s('Key')))
    case 'GetObjectCommand':
    case 'HeadObjectCommand':
      return one('s3:GetObject', object(s('Bucket'), s('Key')))
    case 'DeleteObjectCommand':
      return one('s3:DeleteObject', object(s('Bucket'), s('Key')))
    case 'DeleteObjectsCommand':
      return ((i.Delete as { Objects?: Array<{ Key: string }> }).Objects ?? []).flatMap((o) =>
        one('s3:DeleteObject', object(s('Bucket'), o.Key)),
      )
    case 'CopyObjectCommand': {
      const source = decodeURIComponent(s('CopySource')).replace(/^\//, '')
      const slash = source.indexOf('/')
      return [
        ...one('s3:PutObject', object(s('Bucket'), s('Key'))),
        ...one('s3:GetObject', object(source.slice(0, slash), source.slice(slash + 1))),
      ]
    }
    case 'ListObjectsV2Command':
    case 'HeadBucketCommand':
      return one('s3:ListBucket', arnOf(logicalOf(s('Bucket'))))
    case 'ListPartsCommand':
      return one('s3:ListMultipartUploadParts', object(s('Bucket'), s('Key')))
    case 'PublishCommand':
      return one('sns:Publish', arnOf(logicalOf(s('TopicArn'))))
    default:
      return one(`<no IAM mapping for ${call.command}: add it to grantsOf>`, '')
  }
}

/**
 * A statement's resources as `arn::<construct id>...` patterns: `Fn::GetAtt [id, Arn]`, a cross-stack import
 * of one (`ExportsOutputFnGetAtt<id>Arn…`, `ExportsOutputRef<id>…` for a topic, whose Ref is its ARN), and
 * `Fn::Join`s of those; anything else cannot match a recorded call.
 */
function resourcePatterns(resource: unknown): string[] {
  const stripHash = (id: string) => id.replace(/[0-9A-F]{8}$/, '')
  const resolve = (value: unknown): string => {
    if (typeof value === 'string') return value
    const v = value as Record<string, unknown>
    if (Array.isArray(v['Fn::GetAtt']) && v['Fn::GetAtt'][1] === 'Arn') {
      return arnOf(stripHash(String(v['Fn::GetAtt'][0])))
    }
    if (typeof v['Fn::ImportValue'] === 'string') {
      const name = v['Fn::ImportValue']
      const att = /ExportsOutputFnGetAtt(\w+?[0-9A-F]{8})Arn[0-9A-F]{8}$/.exec(name)
      if (att) return arnOf(stripHash(att[1]!))
      const ref = /ExportsOutputRef(\w+?Topic[0-9A-F]{8})[0-9A-F]{8}$/.exec(name)
      if (ref) return arnOf(stripHash(ref[1]!))
    }
    if (Array.isArray(v['Fn::Join'])) {
      const [sep, parts] = v['Fn::Join'] as [string, unknown[]]
      return parts.map(resolve).join(sep)
    }
    return `<unresolved ${JSON.stringify(value)}>`
  }
  return (Array.isArray(resource) ? resource : [resource]).map(resolve)
}

const globMatches = (pattern: string, arn: string) =>
  new RegExp(
    `^${pattern
      .split('*')
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  ).test(arn)

const allows = (statements: Statement[], g: Grant) =>
  statements.some(
    (s) =>
      s.Effect === 'Allow' &&
      !s.Condition &&
      (Array.isArray(s.Action) ? s.Action : [s.Action]).includes(g.action) &&
      resourcePatterns(s.Resource).some((p) => globMatches(p, g.resource)),
  )

/** The grants of a component's calls its role lacks, one line each (empty: all granted). */
function missingGrants(
  calls: Recorded[],
  statements: Statement[],
  logicalOf: (name: string) => Logical,
): string[] {
  const missing = new Set<string>()
  for (const call of calls) {
    for (const g of grantsOf(call, logicalOf)) {
      if (!allows(statements, g)) missing.add(`${g.call} needs ${g.action} on ${g.resource}`)
    }
  }
  return [...missing].sort()
}

// ---------------------------------------------------------------- the components and their roles

const COMPONENTS = {
  worker: { stack: 'worker', role: 'WorkerTaskTaskRole' },
  validator: { stack: 'pipeline', role: 'ValidateCarServiceRole' },
  http: { stack: 'api', role: 'HttpApiServiceRole' },
  'dead-letter': { stack: 'pipeline', role: 'DeadLetterConsumerServiceRole' },
  reconciler: { stack: 'pipeline', role: 'ReconcileServiceRole' },
  sweep: { stack: 'pipeline', role: 'SweepUnreferencedServiceRole' },
  'collection-jobs': { stack: 'collections', role: 'CollectionJobsServiceRole' },
  'collection-follow': { stack: 'collections', role: 'CollectionFollowServiceRole' },
} as const
type Component = keyof typeof COMPONENTS

const TOKEN = Buffer.from('iam:secret').toString('base64')
const LOCAL_PREFIX = 'pickup-local'
const STAGE_PREFIX = 'production-pickup'

let services: Services
let production: Synthesized
/** Local resource name (table, queue URL, bucket, topic ARN) -> the construct id of its stack resource. */
let logical: Map<string, Logical>
const logicalOf = (name: string): Logical => logical.get(name) ?? `<no stack resource for ${name}>`
const stops: Array<() => Promise<void>> = []
/** The environment as it was before the entry points' was set, restored after. */
const savedEnv: Record<string, string | undefined> = {}

function callsOf(component: Component): Recorded[] {
  return recording.calls.filter((c) => c.component === component)
}

async function until(what: string, done: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (await done()) return
    await sleep(10)
  }
  const seen = recording.calls.map((c) => `${c.component} ${c.command}`)
  throw new Error(`never happened: ${what} (calls: ${[...new Set(seen)].join(', ')})`)
}

const has = (component: Component, command: string, where: (input: Record<string, unknown>) => boolean) =>
  callsOf(component).some((c) => c.command === command && where(c.input))

beforeAll(async () => {
  ;[services, production] = await Promise.all([
    startServices({ prefix: LOCAL_PREFIX, pinQueueVisibilityTimeoutSeconds: 10 }),
    synthesize('production'),
  ])
  const n = services.names
  logical = new Map([
    [n.pinsTable, 'PinsTable'],
    [n.workersTable, 'WorkersTable'],
    [n.requestsTable, 'RequestsTable'],
    [n.tokensTable, 'TokensTable'],
    [n.collectionsTable, 'CollectionsTable'],
    [n.pinQueueUrl, 'PinQueue'],
    [n.deadLetterQueueUrl, 'PinDeadLetterQueue'],
    [n.failedJobsQueueUrl, 'FailedJobsQueue'],
    [n.collectionJobsQueueUrl, 'CollectionJobsQueue'],
    [n.tempBucket, 'TempBucket'],
    [n.destinationBucket, 'DestinationBucket'],
    [n.carStoredTopicArn, 'CarStoredTopic'],
  ])

  const e = services.endpoints
  const deployedEnv = {
    ...localAwsEnv(services),
    PIN_TABLE: n.pinsTable,
    WORKER_TABLE: n.workersTable,
    REQUEST_TABLE: n.requestsTable,
    TOKEN_TABLE: n.tokensTable,
    COLLECTION_TABLE: n.collectionsTable,
    PIN_QUEUE_URL: n.pinQueueUrl,
    FAILED_JOBS_QUEUE_URL: n.failedJobsQueueUrl,
    COLLECTION_JOBS_QUEUE_URL: n.collectionJobsQueueUrl,
    TEMP_BUCKET: n.tempBucket,
    DESTINATION_BUCKET: n.destinationBucket,
    CAR_STORED_TOPIC_ARN: n.carStoredTopicArn,
    METRICS_NAMESPACE: 'pickup-iam-test',
    LOG_LEVEL: 'silent',
    SST_APP: 'pickup',
    SST_STAGE: 'test',
    SST_Secret_value_CLUSTER_BASIC_AUTH_TOKEN: TOKEN,
    SST_Secret_value_CHAIN_RPC: '{}',
    RECONCILE_AFTER_MS: '1',
    UNREFERENCED_RETENTION_MS: String(60 * 60 * 1000),
    VISIBILITY_TIMEOUT_SECONDS: '10',
    PROGRESS_INTERVAL_MS: '100',
    SHUTDOWN_GRACE_MS: '0',
    // The served CAR (6 MiB) is uploaded in parts, as a large one is.
    UPLOAD_PART_BYTES: String(5 * 1024 * 1024),
    RETRY_BASE_DELAY_SECONDS: '0',
  }
  for (const key of Object.keys(deployedEnv)) savedEnv[key] = process.env[key]
  Object.assign(process.env, deployedEnv)
  // Test-side reads and writes (unrecorded): the setup a scenario needs that no component makes.
  const pins = createDynamoPinStore({ client: services.clients.dynamodb, tableName: n.pinsTable })
  const psaToken = (
    await createAccessToken(
      { user: 'iam' },
      {
        tokens: createDynamoTokenStore({ client: services.clients.dynamodb, tableName: n.tokensTable }),
        clock: { now: () => Date.now() },
      },
    )
  ).token
  const log = createLogger('iam-test', process.env.TEST_LOG_LEVEL ?? 'silent')

  // The validator, on the temporary bucket's ObjectCreated events.
  recording.component = 'validator'
  const validator = await import('../../api/lambda/validate-car.ts')
  const unsubscribe = services.onObjectCreated(n.tempBucket, validator.handler)
  stops.push(async () => unsubscribe())

  // The dead-letter consumer, behind Lambda's SQS event source (which polls with the function's role).
  recording.component = 'dead-letter'
  const deadLetter = await import('../../api/lambda/dead-letter.ts')
  const { createAwsClients } = await import('../../adapters/aws-clients.ts')
  const eventSource = pollQueueToHandler(
    {
      client: createAwsClients({ AWS_REGION: e.region, S3_FORCE_PATH_STYLE: true }).sqs,
      queueUrl: n.deadLetterQueueUrl,
      queueArn: n.deadLetterQueueArn,
      waitSeconds: 1,
    },
    deadLetter.handler as (event: SQSEvent) => Promise<SQSBatchResponse>,
    log,
  )
  stops.push(() => eventSource.stop())

  // The HTTP API: the cluster API and the Pinning Service API.
  recording.component = 'http'
  const { createHttpAppFromEnv } = await import('../../api/http.ts')
  const app = createHttpAppFromEnv(process.env, [TOKEN], new Set([1]))
  const cluster = (path: string, method = 'GET') =>
    app.request(path, { method, headers: { authorization: `Basic ${TOKEN}` } })
  /** A request with the Pinning Service API's token (also the Collections API's). */
  const bearer = (path: string, method = 'GET', body?: object) =>
    app.request(path, {
      method,
      headers: { authorization: `Bearer ${psaToken}`, 'content-type': 'application/json' },
      ...(body ? { body: JSON.stringify(body) } : {}),
    })
  const psa = (path: string, method = 'GET', body?: object) => bearer(`/psa${path}`, method, body)

  // The worker, composed as pickup/main.ts composes it, over a block source holding `served`.
  const served = await unixfsFile(6 * 1024 * 1024, { seed: 'iam-served' })
  const servedCid = contentKey(served.root)
  const unserved = contentKey(rawBlock(64, 'iam-unserved').root)
  recording.component = 'worker'
  const cfg = parseConfig(workerEnvSchema, process.env)
  const stores = createStores(createAwsClients(cfg), resourcesFromEnv(cfg))
  const ipfs = createMemoryBlockSource()
  for await (const b of served.blocks) ipfs.add([b])
  const worker: RunningWorker = await startWorker(cfg, {
    queue: stores.jobQueue(log),
    pins: stores.pins(),
    temp: stores.temp(),
    workers: stores.workers(),
    ipfs,
    clock: { now: () => Date.now() },
    log,
  })
  let workerStopped = false
  stops.push(async () => {
    if (!workerStopped) await worker.stop()
  })

  // Pins through both APIs: one the worker finds and the validator promotes, one nobody serves.
  expect((await cluster(`/pins/${servedCid}`, 'POST')).status).toBe(200)
  const unservedRequest = await psa('/pins', 'POST', { cid: unserved, name: 'iam' })
  expect(unservedRequest.status).toBe(202)
  const { requestid } = (await unservedRequest.json()) as { requestid: string }
  await until('the served pin is stored', async () => (await pins.get(servedCid))?.status === 'pinned')
  expect((await cluster(`/pins/${servedCid}`)).status).toBe(200)
  expect((await cluster(`/pins?cids=${servedCid},${unserved}`)).status).toBe(200)
  expect((await psa(`/pins/${requestid}`)).status).toBe(200)
  expect((await psa('/pins?status=queued,pinning,pinned')).status).toBe(200)
  expect((await cluster('/id')).status).toBe(200)
  expect((await psa('/pins')).status).toBe(200)

  // The searching job's message is kept invisible in batches; then its request is deleted, and the
  // watcher (a Query of the marks every interval, a read of every watched pin every 12th) cancels it.
  await until('the held message is extended', () =>
    has('worker', 'ChangeMessageVisibilityBatchCommand', () => true),
  )
  expect((await psa(`/pins/${requestid}`, 'DELETE')).status).toBe(202)
  await until('the watcher has read every watched pin and cancelled the deleted one', async () => {
    return (
      has('worker', 'BatchGetItemCommand', () => true) &&
      has('worker', 'QueryCommand', (i) => i.IndexName === 'unreferenced-since') &&
      worker.worker.inFlight === 0
    )
  })
  workerStopped = true
  await worker.stop()

  // The dead-letter consumer: a job that failed every delivery.
  const deadCid = contentKey(rawBlock(64, 'iam-dead').root)
  expect((await cluster(`/pins/${deadCid}`, 'POST')).status).toBe(200)
  await createSqsPinQueue({ client: services.clients.sqs, queueUrl: n.deadLetterQueueUrl }).send({
    cid: deadCid,
    origins: [],
  })
  await until('the dead job fails its pin', async () => (await pins.get(deadCid))?.status === 'failed')

  // The reconciler: a pin queued with no job (RECONCILE_AFTER_MS=1).
  const lostCid = contentKey(rawBlock(64, 'iam-lost').root)
  expect((await cluster(`/pins/${lostCid}`, 'POST')).status).toBe(200)
  await sleep(5)
  recording.component = 'reconciler'
  const reconciler = await import('../../api/lambda/reconcile.ts')
  expect((await reconciler.handler()).enqueued).toBeGreaterThanOrEqual(1)

  // The Collections API and the collection jobs consumer, behind its event source. No chain's endpoint is
  // configured (CHAIN_RPC is {}), so the consumer's enumeration fails and the job is set to come back later:
  // its reads and writes of the collection and its own queue, not the archiving of tokens.
  const created = await bearer('/collections', 'POST', {
    chainId: 1,
    address: `0x${'11'.repeat(20)}`,
    follow: true,
  })
  expect(created.status).toBe(202)
  const collection = (await created.json()) as { id: string }
  expect((await bearer(`/collections/${collection.id}`)).status).toBe(200)
  expect((await bearer('/collections')).status).toBe(200)
  recording.component = 'collection-jobs'
  const collectionJobs = await import('../../api/lambda/collection-jobs.ts')
  const jobSource = pollQueueToHandler(
    {
      client: createAwsClients({ AWS_REGION: e.region, S3_FORCE_PATH_STYLE: true }).sqs,
      queueUrl: n.collectionJobsQueueUrl,
      queueArn: n.collectionJobsQueueArn,
      waitSeconds: 1,
    },
    (event) => collectionJobs.handler(event, { getRemainingTimeInMillis: () => 60_000 } as Context),
    log,
  )
  stops.push(() => jobSource.stop())
  await until(
    'the collection job is handled',
    () =>
      has('collection-jobs', 'ChangeMessageVisibilityCommand', () => true) ||
      has('collection-jobs', 'DeleteMessageBatchCommand', () => true),
  )
  await jobSource.stop()
  // The follow tick: its look for followed collections due (none is yet: one was just enumerated).
  recording.component = 'collection-follow'
  const follow = await import('../../api/lambda/collection-follow.ts')
  await follow.handler()
  expect((await bearer(`/collections/${collection.id}`, 'DELETE')).status).toBeLessThan(300)

  // The sweep: the stored content, unwanted (its request deleted) for longer than the retention.
  expect((await cluster(`/pins/${servedCid}`, 'DELETE')).status).toBe(200)
  const marked = (await pins.get(servedCid))?.unreferencedSince
  expect(marked).toBeDefined()
  await pins.clearUnreferenced(servedCid, marked!)
  await pins.markUnreferenced(servedCid, Date.now() - 2 * 60 * 60 * 1000)
  recording.component = 'sweep'
  const sweep = await import('../../api/lambda/sweep-unreferenced.ts')
  const swept = await sweep.handler()
  expect(swept, JSON.stringify(swept)).toMatchObject({ deleted: 1 })
}, 60_000)

afterAll(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {})
  await services?.stop()
  for (const [key, value] of Object.entries(savedEnv)) {
    if (value === undefined) delete process.env[key]
    else process.env[key] = value
  }
})

describe('each component is granted every AWS call it makes', () => {
  it('the local resources are the stack resources they are mapped to', () => {
    const named = new Map<string, string>()
    for (const [, template] of Object.entries(production.templates)) {
      for (const [id, r] of resourcesOf(template)) {
        const p = r.Properties ?? {}
        const name = p.TableName ?? p.QueueName ?? p.TopicName
        if (typeof name === 'string') named.set(id.replace(/[0-9A-F]{8}$/, ''), name)
      }
    }
    for (const [local, id] of logical) {
      if (/Bucket$/.test(id)) continue // bucket names carry the account; the construct ids are checked below
      const localName =
        local.startsWith('arn:') || local.startsWith('http') ? local.split(/[/:]/).pop()! : local
      expect(named.get(id), id).toBe(localName.replace(LOCAL_PREFIX, STAGE_PREFIX))
    }
    const ids = Object.values(production.templates).flatMap((t) => resourcesOf(t).map(([id]) => id))
    for (const id of ['TempBucket', 'DestinationBucket']) {
      expect(ids.filter((i) => i.replace(/[0-9A-F]{8}$/, '') === id)).toHaveLength(1)
    }
  })

  it('the scenario drove every path whose grant matters', () => {
    const n = services.names
    const commands = (c: Component) => new Set(callsOf(c).map((r) => r.command))
    expect([...commands('worker')]).toEqual(
      expect.arrayContaining([
        'ReceiveMessageCommand',
        'ChangeMessageVisibilityBatchCommand',
        'DeleteMessageBatchCommand',
        'CreateMultipartUploadCommand',
        'UploadPartCommand',
        'CompleteMultipartUploadCommand',
        'UpdateItemCommand',
        'BatchGetItemCommand',
        'QueryCommand',
        'PutItemCommand',
        'DeleteItemCommand',
      ]),
    )
    expect(callsOf('worker').some((c) => c.input.Bucket === n.tempBucket)).toBe(true)
    expect(callsOf('validator').some((c) => c.command === 'PublishCommand')).toBe(true)
    expect(callsOf('validator').some((c) => c.input.Bucket === n.destinationBucket)).toBe(true)
    expect([...commands('dead-letter')]).toEqual(
      expect.arrayContaining(['ReceiveMessageCommand', 'SendMessageCommand', 'UpdateItemCommand']),
    )
    expect([...commands('reconciler')]).toEqual(
      expect.arrayContaining(['QueryCommand', 'UpdateItemCommand', 'SendMessageCommand']),
    )
    expect(callsOf('sweep').some((c) => c.command === 'DeleteObjectCommand')).toBe(true)
    expect(callsOf('collection-jobs').some((c) => c.input.TableName === n.collectionsTable)).toBe(true)
    expect(callsOf('collection-follow').some((c) => c.input.IndexName === 'following-due')).toBe(true)
    expect(callsOf('http').some((c) => c.command === 'SendMessageCommand')).toBe(true)
    expect(callsOf('http').some((c) => c.command === 'DeleteItemCommand')).toBe(true)
  })

  it.each(Object.keys(COMPONENTS) as Component[])('%s', (component) => {
    const { stack, role } = COMPONENTS[component]
    const statements = roleStatements(production.templates[stack], role)
    expect(statements.length, `${component}: no statements for role ${role}*`).toBeGreaterThan(0)
    const calls = callsOf(component)
    expect(calls.length, `${component} made no AWS call`).toBeGreaterThan(0)
    expect(
      missingGrants(calls, statements, logicalOf),
      `${component} (role ${role}) makes calls its role does not grant`,
    ).toEqual([])
  })
})

describe('the check itself', () => {
  it('names the component, the call and the missing grant when a role lacks one', () => {
    const n = services.names
    // The worker's role as it was before it was granted BatchGetItem: only GetItem/UpdateItem on the pins table.
    const statements = roleStatements(production.templates.worker, 'WorkerTaskTaskRole').map((s) =>
      s.Sid === 'PinsClaimSettle' ? { ...s, Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'] } : s,
    )
    const read: Recorded = {
      component: 'worker',
      command: 'BatchGetItemCommand',
      input: { RequestItems: { [n.pinsTable]: { Keys: [] } } },
    }
    expect(missingGrants([read], statements, logicalOf)).toEqual([
      'BatchGetItemCommand needs dynamodb:BatchGetItem on arn::PinsTable',
    ])
    // An index is its own resource: the table's grant does not cover it.
    const query: Recorded = {
      component: 'worker',
      command: 'QueryCommand',
      input: { TableName: n.pinsTable, IndexName: 'status-updated' },
    }
    expect(missingGrants([query], statements, logicalOf)).toEqual([
      'QueryCommand needs dynamodb:Query on arn::PinsTable/index/status-updated',
    ])
    // A bucket's objects are not the bucket; another queue is not the pin queue.
    const list: Recorded = {
      component: 'worker',
      command: 'ListObjectsV2Command',
      input: { Bucket: n.tempBucket },
    }
    const send: Recorded = {
      component: 'worker',
      command: 'SendMessageCommand',
      input: { QueueUrl: n.failedJobsQueueUrl },
    }
    expect(missingGrants([list, send], statements, logicalOf)).toEqual([
      'ListObjectsV2Command needs s3:ListBucket on arn::TempBucket',
      'SendMessageCommand needs sqs:SendMessage on arn::FailedJobsQueue',
    ])
  })
})
