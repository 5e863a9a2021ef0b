/**
 * Where the `pickup` command finds pickup's resources:
 * - local mode: `<data dir>/endpoints.json`, written by `npm start` (data dir: `--data-dir`, else
 *   PICKUP_DATA_DIR, else `.pickup`), naming the embedded DynamoDB's endpoint, credentials and table names;
 * - AWS: the environment. TOKEN_TABLE (the tokens table's name), AWS_REGION, and credentials by the AWS SDK's
 *   usual chain (AWS_PROFILE, AWS_ACCESS_KEY_ID..., SSO). `--aws` forces this; without a flag it is chosen
 *   when TOKEN_TABLE is set and no data dir is given.
 * Commands get a DynamoDB client and table names, and run their work through `run`, which turns "cannot
 * reach it" failures into a message naming the endpoint and the setting to check.
 */
import { readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'

export interface BackendOptions {
  dataDir?: string
  aws?: boolean
}

export interface Backend {
  kind: 'local' | 'aws'
  /** For messages: where the resources are. */
  where: string
  dynamodb: DynamoDBClient
  tables: { tokens: string }
  /** Local mode's HTTP API, for hints. */
  api?: string
  /** Runs a command's work, explaining failures to reach the resources. */
  run<T>(work: () => Promise<T>): Promise<T>
  close(): void
}

/** A failure the user can act on: printed as is, without a stack. */
export class CliError extends Error {
  override readonly name = 'CliError'
}

const DEFAULT_DATA_DIR = '.pickup'

export async function resolveBackend(
  opts: BackendOptions,
  env: Record<string, string | undefined>,
): Promise<Backend> {
  const dataDirGiven = opts.dataDir ?? env.PICKUP_DATA_DIR
  if (opts.aws || (dataDirGiven === undefined && env.TOKEN_TABLE)) return awsBackend(env)
  return localBackend(resolve(dataDirGiven ?? DEFAULT_DATA_DIR))
}

interface EndpointsFile {
  api?: unknown
  aws?: {
    dynamodb?: unknown
    region?: unknown
    credentials?: { accessKeyId?: unknown; secretAccessKey?: unknown }
  }
  resources?: { tokensTable?: unknown }
}

async function localBackend(dataDir: string): Promise<Backend> {
  const file = join(dataDir, 'endpoints.json')
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    throw new CliError(
      `no local pickup found: ${file} does not exist.\n` +
        `Start local mode with \`npm start\` (it writes that file), point at its data directory with --data-dir or ` +
        'PICKUP_DATA_DIR, or, for AWS, set TOKEN_TABLE and AWS_REGION (or pass --aws).',
    )
  }
  let info: EndpointsFile
  try {
    info = JSON.parse(text) as EndpointsFile
  } catch {
    throw new CliError(`${file} is not JSON; restart local mode (\`npm start\`) to rewrite it`)
  }
  const endpoint = info.aws?.dynamodb
  const region = info.aws?.region
  const accessKeyId = info.aws?.credentials?.accessKeyId
  const secretAccessKey = info.aws?.credentials?.secretAccessKey
  const tokens = info.resources?.tokensTable
  if (
    typeof endpoint !== 'string' ||
    typeof region !== 'string' ||
    typeof accessKeyId !== 'string' ||
    typeof secretAccessKey !== 'string' ||
    typeof tokens !== 'string'
  ) {
    throw new CliError(
      `${file} lacks aws.dynamodb, aws.region, aws.credentials or resources.tokensTable (written by an older ` +
        'pickup?); restart local mode (`npm start`) to rewrite it',
    )
  }
  const dynamodb = new DynamoDBClient({
    endpoint,
    region,
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: 2,
    requestHandler: { connectionTimeout: 2_000, requestTimeout: 10_000 },
  })
  const where = `local mode's DynamoDB at ${endpoint} (from ${file})`
  return {
    kind: 'local',
    where,
    dynamodb,
    tables: { tokens },
    ...(typeof info.api === 'string' ? { api: info.api } : {}),
    run: (work) =>
      explain(work, (err) => {
        if (isUnreachable(err)) {
          return `cannot reach ${where}: is local mode running? Start it with \`npm start\` (with PICKUP_DATA_DIR=${dataDir} if that is not the default).`
        }
        if (errorName(err) === 'ResourceNotFoundException') {
          return `table ${tokens} does not exist in ${where}; restart local mode (\`npm start\`) to create it`
        }
        return undefined
      }),
    close: () => dynamodb.destroy(),
  }
}

function awsBackend(env: Record<string, string | undefined>): Backend {
  const missing = [
    env.TOKEN_TABLE ? undefined : 'TOKEN_TABLE (the tokens table, e.g. <stage>-pickup-tokens)',
    env.AWS_REGION || env.AWS_DEFAULT_REGION ? undefined : 'AWS_REGION',
  ].filter((m) => m !== undefined)
  if (missing.length > 0) throw new CliError(`for AWS, set ${missing.join(' and ')}`)
  const region = (env.AWS_REGION || env.AWS_DEFAULT_REGION)!
  const table = env.TOKEN_TABLE!
  const dynamodb = new DynamoDBClient({ region, maxAttempts: 3 })
  const where = `DynamoDB table ${table} (TOKEN_TABLE) in ${region} (AWS_REGION)`
  return {
    kind: 'aws',
    where,
    dynamodb,
    tables: { tokens: table },
    run: (work) =>
      explain(work, (err) => {
        const name = errorName(err)
        if (name === 'ResourceNotFoundException')
          return `${where} does not exist: check TOKEN_TABLE and AWS_REGION`
        if (
          name === 'CredentialsProviderError' ||
          name === 'UnrecognizedClientException' ||
          name === 'ExpiredTokenException'
        ) {
          return `no valid AWS credentials for ${where}: ${errorMessage(err)} (set AWS_PROFILE or log in, e.g. \`aws sso login\`)`
        }
        if (name === 'AccessDeniedException') return `not allowed to use ${where}: ${errorMessage(err)}`
        if (isUnreachable(err)) return `cannot reach ${where}: ${errorMessage(err)}`
        return undefined
      }),
    close: () => dynamodb.destroy(),
  }
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
