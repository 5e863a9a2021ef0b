/**
 * Starts local mode for a test: embedded services in memory, the real handlers and worker, and an origin
 * Helia node on loopback that serves the test's DAGs over real libp2p and bitswap.
 */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CarBlockIterator } from '@ipld/car/iterator'
import { equals } from 'multiformats/bytes'
import type { CID } from 'multiformats/cid'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createDynamoRequestStore } from '../../adapters/dynamodb/requests.ts'
import { createDynamoTokenStore } from '../../adapters/dynamodb/tokens.ts'
import { createHeliaNode, type HeliaNode } from '../../adapters/helia/node.ts'
import { createLogger } from '../../adapters/log.ts'
import { createS3ObjectStore } from '../../adapters/s3/objects.ts'
import { createAccessToken } from '../../core/access-tokens.ts'
import { normalizeCid } from '../../core/cid.ts'
import { parseConfig } from '../../core/config.ts'
import type { Metrics } from '../../core/metrics.ts'
import type { Pin, PinStatus } from '../../core/pin.ts'
import type { ObjectStore, PinStore, RequestStore, TokenStore } from '../../core/ports.ts'
import { localWorkerEnv } from '../../local/aws-env.ts'
import { localSchema } from '../../local/config.ts'
import { type LocalSystem, startLocalSystem } from '../../local/system.ts'
import type { Block } from '../fixtures/dags.ts'

export const TEST_TOKEN = Buffer.from('test:secret').toString('base64')

export interface TestSystem {
  system: LocalSystem
  origin: HeliaNode
  temp: ObjectStore
  destination: ObjectStore
  pins: PinStore
  originAddrs(): string[]
  api(path: string, init?: RequestInit): Promise<Response>
  addToOrigin(blocks: Iterable<Block> | AsyncIterable<Block>): Promise<void>
  /** Polls the cluster API's status of a CID (so the CID must have been pinned through it). */
  waitForStatus(cid: string, status: string | string[], timeoutMs?: number): Promise<Record<string, unknown>>
  /** Polls the pin record itself, whoever asked for the content. */
  waitForPin(cid: string, status: PinStatus, timeoutMs?: number): Promise<Pin>
  /** The Pinning Service API's base URL (`<api>/psa`). */
  psaUrl: string
  requests: RequestStore
  tokens: TokenStore
  /** A new Pinning Service API access token for the user. */
  createPsaToken(user: string): Promise<string>
  stop(): Promise<void>
}

/** Settings that make failures show within seconds; a test may override any of them. */
export const FAST: Record<string, string> = {
  PORT: '0',
  IPFS_PUBLIC_NETWORK: 'false',
  FETCH_CHUNK_TIMEOUT_MS: '3000',
  RETRY_BASE_DELAY_SECONDS: '0',
  VISIBILITY_TIMEOUT_SECONDS: '10',
  PROGRESS_INTERVAL_MS: '200',
  UPLOAD_PART_BYTES: String(5 * 1024 * 1024),
  SHUTDOWN_GRACE_MS: '0',
}

export async function startTestSystem(
  env: Record<string, string> = {},
  opts: {
    /** The worker: in this process (default), in one of its own (`process`, as `npm start` runs it), none. */
    worker?: 'inline' | 'process' | 'none'
    unreferencedSweep?: { retentionMs?: number; intervalMs?: number }
    /** Persist everything under this directory, as `npm start` does; in memory when absent. */
    dataDir?: string
    /** Where the API, worker and validator record metrics, and how often the worker reports its gauges. */
    metrics?: Metrics
    gaugeIntervalMs?: number
    /** Keep the metric lines in this file, as `npm start` does, for `pickup stats`. */
    metricsFile?: string
    /** NFT collections: each chain's JSON-RPC endpoint (`CHAIN_RPC_<chainId>` in `npm start`). */
    chains?: ReadonlyMap<number, string>
  } = {},
): Promise<TestSystem> {
  const cfg = parseConfig(localSchema, { ...FAST, ...env })
  const log = createLogger('test', process.env.TEST_LOG_LEVEL ?? 'silent')
  const origin = await createHeliaNode({ allowPrivateDials: true })
  const system = await startLocalSystem(cfg, {
    clusterTokens: [TEST_TOKEN],
    log,
    worker: opts.worker,
    workerLogLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
    ...(opts.unreferencedSweep ? { unreferencedSweep: opts.unreferencedSweep } : {}),
    ...(opts.metrics ? { metrics: opts.metrics } : {}),
    ...(opts.metricsFile ? { metricsFile: opts.metricsFile } : {}),
    ...(opts.chains ? { chains: opts.chains } : {}),
    ...(opts.gaugeIntervalMs === undefined ? {} : { gaugeIntervalMs: opts.gaugeIntervalMs }),
  })
  const { clients, names } = system.services
  const temp = createS3ObjectStore({ client: clients.s3, bucket: names.tempBucket })
  const destination = createS3ObjectStore({ client: clients.s3, bucket: names.destinationBucket })

  const pins = createDynamoPinStore({ client: clients.dynamodb, tableName: names.pinsTable })
  const requests = createDynamoRequestStore({
    client: clients.dynamodb,
    tableName: names.requestsTable,
  })
  const tokens = createDynamoTokenStore({ client: clients.dynamodb, tableName: names.tokensTable })
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${system.url}${path}`, {
      ...init,
      headers: { authorization: `Basic ${TEST_TOKEN}`, ...init.headers },
    })

  return {
    system,
    origin,
    temp,
    destination,
    pins,
    api,
    psaUrl: `${system.url}/psa`,
    requests,
    tokens,
    async createPsaToken(user) {
      return (await createAccessToken({ user }, { tokens, clock: { now: () => Date.now() } })).token
    },
    originAddrs: () => origin.libp2p.getMultiaddrs().map((a) => a.toString()),
    async addToOrigin(blocks) {
      for await (const b of blocks) await origin.blockstore.put(b.cid, b.bytes)
    },
    async waitForStatus(cid, status, timeoutMs = 60_000) {
      const wanted = Array.isArray(status) ? status : [status]
      const started = Date.now()
      for (;;) {
        const res = await api(`/pins/${cid}`)
        const body = (await res.json()) as { peer_map: Record<string, { status: string }> }
        const peer = Object.values(body.peer_map)[0]
        if (peer && wanted.includes(peer.status)) return body
        if (Date.now() - started > timeoutMs) {
          throw new Error(`pin ${cid} is ${peer?.status}, not ${wanted.join('|')}, after ${timeoutMs} ms`)
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    async waitForPin(cid, status, timeoutMs = 60_000) {
      const { key } = normalizeCid(cid)
      const started = Date.now()
      for (;;) {
        const pin = await pins.get(key)
        if (pin?.status === status) return pin
        if (Date.now() - started > timeoutMs) {
          throw new Error(
            `pin ${cid} is ${pin?.status}, not ${status} (attempts ${pin?.attempts}, error ${pin?.error ?? 'none'})`,
          )
        }
        await new Promise((r) => setTimeout(r, 100))
      }
    },
    async stop() {
      await system.stop()
      await origin.stop()
    },
  }
}

/** Writes `<dir>/endpoints.json` as `npm start` does (local/main.ts), for the `pickup` command. */
export async function writeEndpointsFile(system: LocalSystem, dir: string): Promise<void> {
  const { endpoints, credentials, names } = system.services
  await writeFile(
    join(dir, 'endpoints.json'),
    JSON.stringify({
      api: system.url,
      aws: { ...endpoints, credentials },
      resources: names,
      ...(system.metricsFile ? { metricsFile: system.metricsFile } : {}),
      chains: system.chains,
    }),
  )
}

/** Every key in a bucket. */
export async function listKeys(store: ObjectStore): Promise<string[]> {
  const out: string[] = []
  for await (const o of store.list()) out.push(o.key)
  return out
}

/**
 * Re-verifies a stored CAR independently of pickup's validator, with @ipld/car's reader: the root, each
 * block's hash, and that its blocks are exactly the expected ones. Streams the object.
 */
export async function verifyStoredCar(
  store: ObjectStore,
  key: string,
  root: CID,
  expected: Iterable<Block> | AsyncIterable<Block>,
): Promise<{ blocks: number }> {
  const object = await store.get(key)
  if (!object) throw new Error(`no object at ${key}`)
  const reader = await CarBlockIterator.fromIterable(object.body)
  const roots = await reader.getRoots()
  if (roots.length !== 1 || !roots[0]!.equals(root))
    throw new Error(`CAR root is ${roots.join(',')}, not ${root}`)
  const seen = new Set<string>()
  for await (const { cid, bytes } of reader) {
    const hasher = cid.multihash.code === sha512.code ? sha512 : sha256
    const digest = await hasher.digest(bytes)
    if (!equals(digest.bytes, cid.multihash.bytes)) throw new Error(`block ${cid} does not match its hash`)
    seen.add(blockId(cid))
  }
  const wanted = new Set<string>()
  for await (const b of expected) wanted.add(blockId(b.cid))
  const missing = [...wanted].filter((k) => !seen.has(k))
  const extra = [...seen].filter((k) => !wanted.has(k))
  if (missing.length || extra.length)
    throw new Error(`CAR blocks differ: ${missing.length} missing, ${extra.length} extra`)
  return { blocks: seen.size }
}

const blockId = (cid: CID) => `${cid.code}:${Buffer.from(cid.multihash.bytes).toString('hex')}`

/**
 * The stdio of a worker run as a process of its own: its stdout carries its logs (silenced unless
 * TEST_LOG_LEVEL is set) and its metric lines (CloudWatch EMF, written whatever the log level), so it is shown
 * only with the logs; stderr, where a crash lands, always is.
 */
export const WORKER_STDIO: ['ignore', 'inherit' | 'ignore', 'inherit'] = [
  'ignore',
  process.env.TEST_LOG_LEVEL ? 'inherit' : 'ignore',
  'inherit',
]

/**
 * The environment of a worker run as a process of its own (`node pickup/main.ts`, as in ECS) against local
 * mode's embedded services: endpoints through the AWS SDK's own variables, resource names as the stack passes
 * them, an embedded Helia node that stays off the public network and may dial the origin on loopback.
 */
export function workerProcessEnv(
  services: {
    endpoints: { region: string; dynamodb: string; sqs: string; s3: string }
    credentials: { accessKeyId: string; secretAccessKey: string }
    names: { pinsTable: string; workersTable: string; pinQueueUrl: string; tempBucket: string }
  },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    LOG_LEVEL: 'silent',
    ...localWorkerEnv(services),
    IPFS_PUBLIC_NETWORK: 'false',
    // The test's origin listens on loopback.
    IPFS_ALLOW_PRIVATE_DIALS: 'true',
    ...extra,
  }
}
