/**
 * `npm start`: pickup on one machine, no AWS account needed. Prints its endpoints and credentials and writes
 * them to `<data dir>/endpoints.json` (the `pickup` command reads it).
 */
import { randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { createLogger } from '../adapters/log.ts'
import { parseConfig } from '../core/config.ts'
import { localSchema } from './config.ts'
import { ensureDir, startLocalSystem } from './system.ts'

const cfg = parseConfig(localSchema, process.env)
const log = createLogger('pickup-local')
const dataDir = await ensureDir(resolve(cfg.PICKUP_DATA_DIR))
const clusterTokens = cfg.CLUSTER_BASIC_AUTH_TOKEN?.split(',') ?? [await localToken(dataDir)]

const system = await startLocalSystem(cfg, {
  dataDir,
  clusterTokens,
  log,
  worker: cfg.LOCAL_WORKER,
  servicePorts: await previousPorts(dataDir),
})
const { endpoints, names } = system.services
const info = {
  api: system.url,
  clusterAuthorization: `Basic ${clusterTokens[0]}`,
  aws: {
    ...endpoints,
    credentials: {
      accessKeyId: system.services.credentials.accessKeyId,
      secretAccessKey: system.services.credentials.secretAccessKey,
    },
  },
  resources: names,
  ipfs: system.helia
    ? system.helia.libp2p.getMultiaddrs().map((a) => a.toString())
    : (system.kubo?.url ?? cfg.IPFS_API_URL),
}
await writeFile(join(dataDir, 'endpoints.json'), `${JSON.stringify(info, null, 2)}\n`)
process.stdout.write(
  [
    '',
    `pickup is running (data in ${dataDir})`,
    `  API:           ${system.url}   (health: ${system.url}/healthz)`,
    `  Authorization: Basic ${clusterTokens[0]}`,
    `  DynamoDB:      ${endpoints.dynamodb}`,
    `  SQS/S3/SNS:    ${endpoints.sqs}`,
    `  IPFS node:     ${info.ipfs}`,
    `  endpoints and credentials: ${join(dataDir, 'endpoints.json')}`,
    '',
  ].join('\n'),
)

let stopping = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    if (stopping) return
    stopping = true
    log.info({ signal }, 'stopping')
    await system.stop()
    process.exit(0)
  })
}

/** The generated cluster credential, kept so restarts and the README's commands keep working. */
async function localToken(dir: string): Promise<string> {
  const file = join(dir, 'cluster-token')
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch {
    const token = Buffer.from(`pickup:${randomBytes(18).toString('base64url')}`).toString('base64')
    await writeFile(file, `${token}\n`, { mode: 0o600 })
    return token
  }
}

/** Reuses the service ports of the previous run, so endpoints.json stays valid for tools across restarts. */
async function previousPorts(dir: string): Promise<{ dynamodb?: number; fauxqs?: number }> {
  try {
    const prev = JSON.parse(await readFile(join(dir, 'endpoints.json'), 'utf8'))
    return { dynamodb: Number(new URL(prev.aws.dynamodb).port), fauxqs: Number(new URL(prev.aws.sqs).port) }
  } catch {
    return {}
  }
}
