/**
 * Where the `pickup` command finds pickup's resources:
 * - local mode: `<data dir>/endpoints.json`, written by `npm start` (data dir: `--data-dir`, else
 *   PICKUP_DATA_DIR, else `.pickup`), naming the embedded services' endpoints, credentials and resources;
 * - AWS: the environment, and the stage's outputs for what the environment does not set (`--outputs
 *   .sst/outputs.json`, written by `sst deploy`). Credentials come from the AWS SDK's usual chain
 *   (AWS_PROFILE, AWS_ACCESS_KEY_ID..., SSO). `--aws` (or `--outputs`) forces AWS; without a flag it is chosen
 *   when one of the resource variables below is set and no data dir is given.
 *
 * | Resource | Variable | Stage output |
 * | pins table | PIN_TABLE | PinsTable |
 * | requests table | REQUEST_TABLE | RequestsTable |
 * | workers table | WORKER_TABLE | WorkersTable |
 * | tokens table | TOKEN_TABLE | TokensTable |
 * | pin queue | PIN_QUEUE_URL | PinQueueUrl |
 * | dead-letter queue | DEAD_LETTER_QUEUE_URL | DeadLetterQueueUrl |
 * | failed-jobs queue | FAILED_JOBS_QUEUE_URL | FailedJobsQueueUrl |
 * | destination bucket | DESTINATION_BUCKET | DestinationBucket |
 * | collections table | COLLECTION_TABLE | CollectionsTable |
 * | collection jobs queue | COLLECTION_JOBS_QUEUE_URL | CollectionJobsQueueUrl |
 * | collection jobs' dead-letter queue | COLLECTION_DEAD_LETTER_QUEUE_URL | CollectionDeadLetterQueueUrl |
 * | region | AWS_REGION (or AWS_DEFAULT_REGION; else the queue URLs' region) | |
 *
 * Each command names the resources it uses: all that are missing are reported together, and only those.
 * Commands run their work through `run`, which turns failures to reach a service, or a resource that does not
 * exist, into a message naming the endpoint or resource and the setting to check.
 */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { S3Client } from '@aws-sdk/client-s3'
import { SQSClient } from '@aws-sdk/client-sqs'
import type { InitializeMiddleware, MetadataBearer } from '@smithy/types'
import { S3_CHECKSUMS } from '../adapters/aws-clients.ts'
import { createStores, type Stores } from '../adapters/compose.ts'
import { ChainConfigError, parseChainRpc } from '../core/collections/chains.ts'

export interface BackendOptions {
  dataDir?: string
  aws?: boolean
  outputs?: string
}

type Service = 'dynamodb' | 'sqs' | 's3'

const SERVICE_LABEL: Record<Service, string> = { dynamodb: 'DynamoDB', sqs: 'SQS', s3: 'S3' }

interface ResourceSpec {
  service: Service
  /** For messages: "the pins table". */
  what: string
  env: string
  output: string
  example: string
}

export const RESOURCES = {
  pinsTable: {
    service: 'dynamodb',
    what: 'the pins table',
    env: 'PIN_TABLE',
    output: 'PinsTable',
    example: '<stage>-pickup-pins',
  },
  requestsTable: {
    service: 'dynamodb',
    what: 'the requests table',
    env: 'REQUEST_TABLE',
    output: 'RequestsTable',
    example: '<stage>-pickup-requests',
  },
  workersTable: {
    service: 'dynamodb',
    what: 'the workers table',
    env: 'WORKER_TABLE',
    output: 'WorkersTable',
    example: '<stage>-pickup-workers',
  },
  tokensTable: {
    service: 'dynamodb',
    what: 'the tokens table',
    env: 'TOKEN_TABLE',
    output: 'TokensTable',
    example: '<stage>-pickup-tokens',
  },
  pinQueueUrl: {
    service: 'sqs',
    what: 'the pin queue',
    env: 'PIN_QUEUE_URL',
    output: 'PinQueueUrl',
    example: 'https://sqs.<region>.amazonaws.com/<account>/<stage>-pickup-pin',
  },
  deadLetterQueueUrl: {
    service: 'sqs',
    what: 'the dead-letter queue',
    env: 'DEAD_LETTER_QUEUE_URL',
    output: 'DeadLetterQueueUrl',
    example: 'https://sqs.<region>.amazonaws.com/<account>/<stage>-pickup-pin-dlq',
  },
  failedJobsQueueUrl: {
    service: 'sqs',
    what: 'the failed-jobs queue',
    env: 'FAILED_JOBS_QUEUE_URL',
    output: 'FailedJobsQueueUrl',
    example: 'https://sqs.<region>.amazonaws.com/<account>/<stage>-pickup-pin-failed',
  },
  destinationBucket: {
    service: 's3',
    what: 'the destination bucket',
    env: 'DESTINATION_BUCKET',
    output: 'DestinationBucket',
    example: '<stage>-pickup-<account>-<region>-cars',
  },
  collectionsTable: {
    service: 'dynamodb',
    what: 'the collections table',
    env: 'COLLECTION_TABLE',
    output: 'CollectionsTable',
    example: '<stage>-pickup-collections',
  },
  collectionJobsQueueUrl: {
    service: 'sqs',
    what: 'the collection jobs queue',
    env: 'COLLECTION_JOBS_QUEUE_URL',
    output: 'CollectionJobsQueueUrl',
    example: 'https://sqs.<region>.amazonaws.com/<account>/<stage>-pickup-collection-jobs',
  },
  collectionDeadLetterQueueUrl: {
    service: 'sqs',
    what: "the collection jobs' dead-letter queue",
    env: 'COLLECTION_DEAD_LETTER_QUEUE_URL',
    output: 'CollectionDeadLetterQueueUrl',
    example: 'https://sqs.<region>.amazonaws.com/<account>/<stage>-pickup-collection-dlq',
  },
} as const satisfies Record<string, ResourceSpec>

export type ResourceName = keyof typeof RESOURCES

export interface Backend {
  kind: 'local' | 'aws'
  /** For messages: where the resources are. */
  where: string
  /** Clients, made on first use. */
  readonly dynamodb: DynamoDBClient
  readonly sqs: SQSClient
  readonly s3: S3Client
  /** The name (or URL) of one of the resources the command declared. */
  resource(name: ResourceName): string
  /** Whether a resource the command declared is configured: always for a need, maybe for an optional one. */
  has(name: ResourceName): boolean
  /** Local mode's HTTP API, for hints. */
  api?: string
  /** The metric lines local mode keeps (`pickup stats` reads the last hour from them). */
  metricsFile?: string
  /**
   * Chains collections can be archived from: local mode's (endpoints.json), or in AWS those CHAIN_RPC_<id> /
   * CHAIN_RPC name in the environment (core/collections/chains.ts).
   */
  chains: ReadonlySet<number>
  /** Runs a command's work, explaining failures to reach the services or find the resources. */
  run<T>(work: () => Promise<T>): Promise<T>
  close(): void
}

const storesByBackend = new WeakMap<Backend, Stores>()

/** The stores over the backend's clients, for the resources the command declared (adapters/compose.ts). */
export function storesOf(backend: Backend): Stores {
  let stores = storesByBackend.get(backend)
  if (!stores) {
    stores = createStores(backend, (name) => {
      if (!Object.hasOwn(RESOURCES, name)) throw new CliError(`the pickup command does not use ${name}`)
      return backend.resource(name as ResourceName)
    })
    storesByBackend.set(backend, stores)
  }
  return stores
}

/** A failure the user can act on: printed as is, without a stack. */
export class CliError extends Error {
  override readonly name = 'CliError'
}

const DEFAULT_DATA_DIR = '.pickup'

export async function resolveBackend(
  opts: BackendOptions,
  env: Record<string, string | undefined>,
  needs: readonly ResourceName[],
  optional: readonly ResourceName[] = [],
): Promise<Backend> {
  const dataDirGiven = opts.dataDir ?? env.PICKUP_DATA_DIR
  const awsConfigured = Object.values(RESOURCES).some((r) => env[r.env])
  if (opts.aws || opts.outputs || (dataDirGiven === undefined && awsConfigured)) {
    return awsBackend(env, opts.outputs, needs, optional)
  }
  return localBackend(resolve(dataDirGiven ?? DEFAULT_DATA_DIR), needs, optional)
}

// ---------------------------------------------------------------- errors by service

interface ErrorTag {
  service: Service
  /** The table, queue URL or bucket the failed request was about. */
  target?: string
}

/** Which client a failure came from, and about which resource (set by a middleware on every client). */
const tags = new WeakMap<object, ErrorTag>()

function tagOf(err: unknown): ErrorTag | undefined {
  return typeof err === 'object' && err !== null ? tags.get(err) : undefined
}

function targetOf(input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined
  for (const key of ['TableName', 'QueueUrl', 'Bucket']) {
    const v = Reflect.get(input, key)
    if (typeof v === 'string') return v
  }
  const items = Reflect.get(input, 'RequestItems')
  if (typeof items === 'object' && items !== null) return Object.keys(items)[0]
  return undefined
}

function tag(err: unknown, service: Service, input: unknown): void {
  if (typeof err !== 'object' || err === null || tags.has(err)) return
  const target = targetOf(input)
  tags.set(err, { service, ...(target === undefined ? {} : { target }) })
}

const TAG_MIDDLEWARE = { step: 'initialize', name: 'pickupCliErrorTag' } as const

interface Clients {
  dynamodb: DynamoDBClient
  sqs: SQSClient
  s3: S3Client
}

/** A middleware that tags a failed call's error with the service and its input, for the messages above. */
function tagging(service: Service): InitializeMiddleware<object, MetadataBearer> {
  return (next) => async (args) => {
    try {
      return await next(args)
    } catch (err) {
      tag(err, service, args.input)
      throw err
    }
  }
}

interface Taggable {
  middlewareStack: {
    add(middleware: InitializeMiddleware<object, MetadataBearer>, options: typeof TAG_MIDDLEWARE): void
  }
}

function withTagging<C extends Taggable>(client: C, service: Service): C {
  client.middlewareStack.add(tagging(service), TAG_MIDDLEWARE)
  return client
}

/** Clients made on first use, each tagging its errors; `close` destroys those that were made. */
function lazyClients(make: { [S in Service]: () => Clients[S] }) {
  const made: Partial<Clients> = {}
  return {
    get dynamodb() {
      made.dynamodb ??= withTagging(make.dynamodb(), 'dynamodb')
      return made.dynamodb
    },
    get sqs() {
      made.sqs ??= withTagging(make.sqs(), 'sqs')
      return made.sqs
    },
    get s3() {
      made.s3 ??= withTagging(make.s3(), 's3')
      return made.s3
    },
    close() {
      for (const c of Object.values(made)) c.destroy()
    },
  }
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err) ?? ''
  return (
    name === 'ResourceNotFoundException' ||
    name === 'NoSuchBucket' ||
    name.endsWith('NonExistentQueue') ||
    name === 'QueueDoesNotExist'
  )
}

/** The resource a failed request was about, and its setting, for messages. */
function describeTarget(
  target: string | undefined,
  names: Partial<Record<ResourceName, string>>,
): { label: string; spec?: ResourceSpec } {
  const entry = Object.entries(names).find(([, v]) => v === target)
  if (!entry) return { label: target ?? 'a resource' }
  const spec: ResourceSpec = RESOURCES[entry[0] as ResourceName]
  return { label: `${spec.what} ${target}`, spec }
}

// ---------------------------------------------------------------- local mode

interface EndpointsFile {
  api?: unknown
  aws?: {
    dynamodb?: unknown
    sqs?: unknown
    s3?: unknown
    region?: unknown
    credentials?: { accessKeyId?: unknown; secretAccessKey?: unknown }
  }
  resources?: Record<string, unknown>
  metricsFile?: unknown
  chains?: unknown
}

async function localBackend(
  dataDir: string,
  needs: readonly ResourceName[],
  optional: readonly ResourceName[],
): Promise<Backend> {
  const file = join(dataDir, 'endpoints.json')
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    throw new CliError(
      `no local pickup found: ${file} does not exist.\n` +
        `Start local mode with \`npm start\` (it writes that file), point at its data directory with --data-dir or ` +
        'PICKUP_DATA_DIR, or, for AWS, set the resource variables (see `pickup --help`) or pass --aws.',
    )
  }
  let info: EndpointsFile
  try {
    info = JSON.parse(text) as EndpointsFile
  } catch {
    throw new CliError(`${file} is not JSON; restart local mode (\`npm start\`) to rewrite it`)
  }
  const aws = info.aws
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined)
  const endpoints: Partial<Record<Service, string>> = {
    dynamodb: str(aws?.dynamodb),
    sqs: str(aws?.sqs),
    s3: str(aws?.s3),
  }
  const region = str(aws?.region)
  const accessKeyId = str(aws?.credentials?.accessKeyId)
  const secretAccessKey = str(aws?.credentials?.secretAccessKey)
  const names: Partial<Record<ResourceName, string>> = {}
  const lacking: string[] = []
  if (!region) lacking.push('aws.region')
  if (!accessKeyId || !secretAccessKey) lacking.push('aws.credentials')
  for (const name of needs) {
    const value = str(info.resources?.[name])
    if (value) names[name] = value
    else lacking.push(`resources.${name}`)
    const service = RESOURCES[name].service
    if (!endpoints[service] && !lacking.includes(`aws.${service}`)) lacking.push(`aws.${service}`)
  }
  for (const name of optional) {
    const value = str(info.resources?.[name])
    if (value && endpoints[RESOURCES[name].service]) names[name] = value
  }
  if (lacking.length > 0) {
    throw new CliError(
      `${file} lacks ${lacking.join(', ')} (written by an older pickup?); restart local mode (\`npm start\`) to rewrite it`,
    )
  }
  const common = {
    region: region!,
    credentials: { accessKeyId: accessKeyId!, secretAccessKey: secretAccessKey! },
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 30_000 },
  }
  const clients = lazyClients({
    dynamodb: () => new DynamoDBClient({ ...common, endpoint: endpoints.dynamodb! }),
    sqs: () => new SQSClient({ ...common, endpoint: endpoints.sqs! }),
    s3: () => new S3Client({ ...common, endpoint: endpoints.s3!, forcePathStyle: true, ...S3_CHECKSUMS }),
  })
  const serviceAt = (s: Service) => `local mode's ${SERVICE_LABEL[s]} at ${endpoints[s]}`
  return {
    kind: 'local',
    where: `local mode (from ${file})`,
    get dynamodb() {
      return clients.dynamodb
    },
    get sqs() {
      return clients.sqs
    },
    get s3() {
      return clients.s3
    },
    resource: (name) => declared(names, name),
    has: (name) => names[name] !== undefined,
    ...(typeof info.api === 'string' ? { api: info.api } : {}),
    ...(typeof info.metricsFile === 'string' ? { metricsFile: resolve(dataDir, info.metricsFile) } : {}),
    chains: new Set(
      Array.isArray(info.chains) ? info.chains.filter((c): c is number => Number.isSafeInteger(c)) : [],
    ),
    run: (work) =>
      explain(work, (err) => {
        const t = tagOf(err)
        if (!t) return undefined
        if (isUnreachable(err)) {
          return (
            `cannot reach ${serviceAt(t.service)} (from ${file}): is local mode running? ` +
            `Start it with \`npm start\` (with PICKUP_DATA_DIR=${dataDir} if that is not the default).`
          )
        }
        if (isNotFound(err)) {
          const { label } = describeTarget(t.target, names)
          return `${label} does not exist in ${serviceAt(t.service)}; restart local mode (\`npm start\`) to create it`
        }
        return undefined
      }),
    close: () => clients.close(),
  }
}

// ---------------------------------------------------------------- AWS

/** The outputs of every stack in an `sst deploy` outputs file, merged: `{ <stack>: { <Output>: value } }`. */
async function readOutputs(file: string): Promise<Record<string, string>> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(file, 'utf8'))
  } catch (err) {
    throw new CliError(
      `cannot read the stage outputs ${file}: ${errorMessage(err)} (\`npx sst deploy --stage <stage>\` writes .sst/outputs.json)`,
    )
  }
  const merged: Record<string, string> = {}
  if (typeof parsed === 'object' && parsed !== null) {
    for (const stack of Object.values(parsed)) {
      if (typeof stack !== 'object' || stack === null) continue
      for (const [k, v] of Object.entries(stack)) if (typeof v === 'string') merged[k] = v
    }
  }
  return merged
}

function regionOfQueueUrl(url: string | undefined): string | undefined {
  return url ? /^https:\/\/sqs\.([a-z0-9-]+)\.amazonaws\.com\//.exec(url)?.[1] : undefined
}

async function awsBackend(
  env: Record<string, string | undefined>,
  outputsFile: string | undefined,
  needs: readonly ResourceName[],
  optional: readonly ResourceName[],
): Promise<Backend> {
  const outputs = outputsFile ? await readOutputs(outputsFile) : {}
  const setting = (spec: ResourceSpec) => env[spec.env] || outputs[spec.output]
  const names: Partial<Record<ResourceName, string>> = {}
  const missing: string[] = []
  for (const name of needs) {
    const spec: ResourceSpec = RESOURCES[name]
    const value = setting(spec)
    if (value) names[name] = value
    else missing.push(`${spec.env} (${spec.what}, e.g. ${spec.example})`)
  }
  for (const name of optional) {
    const value = setting(RESOURCES[name])
    if (value) names[name] = value
  }
  const region =
    env.AWS_REGION ||
    env.AWS_DEFAULT_REGION ||
    regionOfQueueUrl(setting(RESOURCES.pinQueueUrl)) ||
    regionOfQueueUrl(setting(RESOURCES.deadLetterQueueUrl)) ||
    regionOfQueueUrl(setting(RESOURCES.failedJobsQueueUrl)) ||
    regionOfQueueUrl(setting(RESOURCES.collectionDeadLetterQueueUrl))
  if (!region) missing.push('AWS_REGION')
  if (missing.length > 0) {
    throw new CliError(
      `for AWS, set ${missing.join(' and ')}${outputsFile ? '' : ', or pass --outputs .sst/outputs.json (written by `sst deploy`)'}`,
    )
  }
  const common = { region: region!, maxAttempts: 3 }
  const clients = lazyClients({
    dynamodb: () => new DynamoDBClient(common),
    sqs: () => new SQSClient(common),
    s3: () => new S3Client({ ...common, ...S3_CHECKSUMS }),
  })
  return {
    kind: 'aws',
    where: `AWS ${region}`,
    chains: new Set(chainsFromEnv(env)),
    get dynamodb() {
      return clients.dynamodb
    },
    get sqs() {
      return clients.sqs
    },
    get s3() {
      return clients.s3
    },
    resource: (name) => declared(names, name),
    has: (name) => names[name] !== undefined,
    run: (work) =>
      explain(work, (err) => {
        const t = tagOf(err)
        const { label, spec } = describeTarget(t?.target, names)
        const where = `${label}${spec ? ` (${spec.env})` : ''} in ${region} (AWS_REGION)`
        const name = errorName(err)
        if (isNotFound(err))
          return `${where} does not exist: check ${spec?.env ?? 'the settings'} and AWS_REGION`
        if (
          name === 'CredentialsProviderError' ||
          name === 'UnrecognizedClientException' ||
          name === 'InvalidClientTokenId' ||
          name === 'ExpiredTokenException' ||
          name === 'ExpiredToken'
        ) {
          return `no valid AWS credentials for ${where}: ${errorMessage(err)} (set AWS_PROFILE or log in, e.g. \`aws sso login\`)`
        }
        if (name === 'AccessDeniedException' || name === 'AccessDenied') {
          return `not allowed to use ${where}: ${errorMessage(err)}`
        }
        if (isUnreachable(err)) {
          return `cannot reach ${t ? SERVICE_LABEL[t.service] : 'AWS'} for ${where}: ${errorMessage(err)}`
        }
        return undefined
      }),
    close: () => clients.close(),
  }
}

// ---------------------------------------------------------------- helpers

function declared(names: Partial<Record<ResourceName, string>>, name: ResourceName): string {
  const value = names[name]
  // A command used a resource it did not declare: a bug in the command, not the user's to fix.
  if (value === undefined) throw new Error(`the command did not declare that it uses ${name}`)
  return value
}

async function explain<T>(
  work: () => Promise<T>,
  describe: (err: unknown) => string | undefined,
): Promise<T> {
  try {
    return await work()
  } catch (err) {
    const message = describe(err)
    if (message) throw new CliError(message)
    throw err
  }
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function isUnreachable(err: unknown): boolean {
  const seen = new Set<unknown>()
  for (let e: unknown = err; e instanceof Error && !seen.has(e); e = (e as { cause?: unknown }).cause) {
    seen.add(e)
    const code = (e as { code?: unknown }).code
    if (
      ['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(
        String(code),
      ) ||
      e.name === 'TimeoutError'
    ) {
      return true
    }
    if (e instanceof AggregateError && e.errors.some(isUnreachable)) return true
  }
  return false
}

function chainsFromEnv(env: Record<string, string | undefined>): number[] {
  try {
    return [...parseChainRpc(env).keys()]
  } catch (err) {
    if (err instanceof ChainConfigError) throw new CliError(err.message)
    throw err
  }
}
