/**
 * `npm start` (through local/start.js, which checks Node and the dependencies first): pickup on one machine,
 * no AWS account needed. Prints its endpoints and credentials and writes them to `<data dir>/endpoints.json`
 * (the `pickup` command reads it). A failure a person can put right (port or data directory in use, a data
 * directory that cannot be written or is from an older pickup, bad configuration) is one line on stderr and
 * exit 1 (local/errors.ts).
 */
import { join, resolve } from 'node:path'
import { createLogger } from '../adapters/log.ts'
import { ChainConfigError, parseChainRpc } from '../core/collections/chains.ts'
import { ConfigError, parseConfig } from '../core/config.ts'
import type { WorkerStatus } from '../pickup/worker.ts'
import { type LocalConfig, localSchema } from './config.ts'
import {
  type DataDirLock,
  localToken,
  lockDataDir,
  prepareDataDir,
  previousPorts,
  writePrivateFile,
} from './data-dir.ts'
import { explainStartFailure } from './errors.ts'
import { type LocalSystem, type LocalSystemOptions, startLocalSystem } from './system.ts'

const log = createLogger('pickup-local')
const say = (line: string) => process.stdout.write(`${line}\n`)
let running: { system: LocalSystem; lock: DataDirLock } | undefined
try {
  running = await start()
} catch (err) {
  const line = explainStartFailure(err, {
    port: Number(process.env.PORT || 3000),
    dataDir: resolve(process.env.PICKUP_DATA_DIR || '.pickup'),
  })
  if (!line) throw err
  process.stderr.write(`${line}\n`)
  process.exit(1)
}

let stopping = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    if (stopping || !running) return
    stopping = true
    log.info({ signal }, 'stopping')
    await running.system.stop()
    await running.lock.release()
    process.exit(0)
  })
}

async function start(): Promise<{ system: LocalSystem; lock: DataDirLock }> {
  const { cfg, chains } = parseLocalConfig(process.env)
  const dataDir = await prepareDataDir(resolve(cfg.PICKUP_DATA_DIR))
  // Before any embedded service binds a port: the previous run's ports are in endpoints.json.
  const lock = await lockDataDir(dataDir)
  if (lock.tookOverFrom) {
    log.warn(
      { pid: lock.tookOverFrom.pid, lockFile: lock.file },
      'took over the lock of a process that is gone',
    )
  }
  try {
    let printed = false
    const previous = await previousPorts(dataDir)
    if (previous.taken.length > 0) {
      log.warn({ ports: previous.taken }, 'another program holds ports of the previous run; taking new ones')
    }
    const clusterTokens = cfg.CLUSTER_BASIC_AUTH_TOKEN?.split(',') ?? [await localToken(dataDir)]
    const opts: LocalSystemOptions = {
      dataDir,
      clusterTokens,
      log,
      // The metric lines (EMF, as the deployed components write them), kept for `pickup stats`.
      metricsFile: join(dataDir, 'metrics.ndjson'),
      worker: cfg.LOCAL_WORKER,
      servicePorts: previous.ports,
      chains,
      onWorkerReadyChange: (status) => {
        if (!printed) return
        say(readinessLine(cfg, status))
        // A worker process started again listens on new addresses.
        if (status.ready) writeEndpoints().catch((err) => log.warn({ err }, 'endpoints.json not rewritten'))
      },
    }
    const system = await startLocalSystem(cfg, opts)
    await lock.setApi(system.url)
    const endpointsFile = join(dataDir, 'endpoints.json')
    const info = endpointsInfo(system, clusterTokens[0] ?? '')
    const writeEndpoints = () =>
      writePrivateFile(
        endpointsFile,
        `${JSON.stringify(endpointsInfo(system, clusterTokens[0] ?? ''), null, 2)}\n`,
      )
    await writeEndpoints()
    const status = system.workerStatus()
    const waiting = status && !status.ready
    say(
      [
        '',
        ...(waiting ? [readinessLine(cfg, status)] : []),
        `pickup is running (data in ${dataDir})`,
        `  API:           ${system.url}   (health: ${system.url}/healthz)`,
        `  Authorization: ${info.clusterAuthorization}`,
        `  DynamoDB:      ${info.aws.dynamodb}`,
        `  SQS/S3/SNS:    ${info.aws.sqs}`,
        `  IPFS node:     ${info.ipfs}${waiting ? '   (not answering yet)' : ''}`,
        `  endpoints and credentials: ${endpointsFile}`,
        '',
      ].join('\n'),
    )
    printed = true
    return { system, lock }
  } catch (err) {
    await lock.release()
    throw err
  }
}

/** Local mode's settings and the chains' endpoints, every problem of either reported together. */
function parseLocalConfig(env: NodeJS.ProcessEnv) {
  const problems: string[] = []
  let cfg: LocalConfig | undefined
  let chains: Map<number, string> | undefined
  try {
    cfg = parseConfig(localSchema, env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    problems.push(...err.problems)
  }
  try {
    chains = parseChainRpc(env)
  } catch (err) {
    if (!(err instanceof ChainConfigError)) throw err
    problems.push(...err.problems)
  }
  if (!cfg || !chains) throw new ConfigError(problems)
  return { cfg, chains }
}

function endpointsInfo(system: LocalSystem, token: string) {
  const { endpoints, names, credentials } = system.services
  return {
    api: system.url,
    clusterAuthorization: `Basic ${token}`,
    aws: {
      ...endpoints,
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
    },
    resources: names,
    ...(system.metricsFile ? { metricsFile: system.metricsFile } : {}),
    chains: system.chains,
    ipfs: system.ipfsNode(),
  }
}

/** What the worker's readiness means for the person who started pickup. */
function readinessLine(cfg: LocalConfig, status: WorkerStatus): string {
  const node = cfg.IPFS_API_URL
    ? `The IPFS node at ${cfg.IPFS_API_URL}`
    : cfg.IPFS_NODE === 'kubo'
      ? "Local mode's kubo daemon"
      : 'The embedded IPFS node'
  if (status.ready) return `${node} answers now: the worker takes jobs.`
  // Not the node: the worker's process exited, and local mode starts another.
  if (status.ipfsError === undefined)
    return `The worker takes no jobs (${status.problem}): pins wait in the queue.`
  const seconds = Math.max(1, Math.round(cfg.IPFS_RETRY_INTERVAL_MS / 1000))
  return (
    `${node} does not answer (${status.ipfsError}): pins wait in the queue until it does. ` +
    `pickup asks again every ${seconds} s; until then /healthz and \`npx pickup stats\` show the worker not ready.` +
    (cfg.IPFS_API_URL ? ' Start it (`ipfs daemon`), or unset IPFS_API_URL to use the embedded node.' : '')
  )
}
