/**
 * The whole of pickup on one machine: embedded DynamoDB (dynalite), SQS + S3 + SNS (fauxqs), the HTTP API,
 * the worker with an embedded Helia node (or a kubo), the validator on S3 events, the dead-letter consumer
 * (which forwards dead jobs to the failed-jobs queue, for `pickup dlq`), the sweep of unreferenced content and
 * the reconciler. The same handlers and adapters as in AWS; only the wiring differs. The worker runs in this
 * process (tests reach into it) or, as `npm start` runs it, in a process of its own (local/worker-process.ts).
 */
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import {
  createStores,
  promoteOptionsFromConfig,
  promotePorts,
  storeOptionsFromConfig,
} from '../adapters/compose.ts'
import { createEvmEnumerator } from '../adapters/evm/enumerate.ts'
import { createHeliaBlockSource } from '../adapters/helia/block-source.ts'
import { createHeliaNode, type HeliaNode } from '../adapters/helia/node.ts'
import { createKuboBlockSource } from '../adapters/kubo/block-source.ts'
import type { KuboDaemon } from '../adapters/kubo/daemon.ts'
import { createKuboGc } from '../adapters/kubo/gc.ts'
import { createEmfMetrics } from '../adapters/metrics/emf.ts'
import { createMetricsFileWriter } from '../adapters/metrics/file.ts'
import { createSqsCollectionJobRetries } from '../adapters/sqs/collection-jobs.ts'
import { createStoredContentReader } from '../adapters/stored-content.ts'
import { webArchivePorts } from '../adapters/web/archive-ports.ts'
import { createCollectionFollowHandler } from '../api/collection-follow.ts'
import { collectionJobOptionsFromConfig, createCollectionJobHandler } from '../api/collection-jobs.ts'
import { createDeadLetterHandler } from '../api/dead-letter.ts'
import { createHttpApp } from '../api/http/app.ts'
import { createCollectionsApi } from '../api/http/collections.ts'
import { serveHttpApp } from '../api/http/node-server.ts'
import { reconcileOptionsFromConfig } from '../api/reconcile.ts'
import { createValidateCarHandler } from '../api/validate-car.ts'
import type { FollowResult } from '../core/collections/follow.ts'
import { type Metrics, metricNamespace, noMetrics, teeMetrics } from '../core/metrics.ts'
import type { BlockSource, Clock, Logger } from '../core/ports.ts'
import { reconcilePins } from '../core/reconcile.ts'
import { DEFAULT_UNREFERENCED_RETENTION_MS, sweepUnreferenced } from '../core/unreferenced-content.ts'
import { PICKUP_VERSION } from '../core/version.ts'
import { type RunningWorker, startWorker, type WorkerStatus } from '../pickup/worker.ts'
import { localWorkerEnv } from './aws-env.ts'
import type { LocalConfig } from './config.ts'
import { startLocalKubo } from './kubo.ts'
import { type Services, startServices } from './services.ts'
import { pollQueueToHandler } from './sqs-event-source.ts'
import { startWorkerProcess, type WorkerProcess } from './worker-process.ts'

export interface LocalSystemOptions {
  /** Persist under this directory; in memory when absent (tests). */
  dataDir?: string
  /**
   * The worker: in this process (`inline`, the default; tests reach into it), in a process of its own
   * (`process`, what `npm start` runs: `pickup/main.ts` as in ECS), or none (tests of the validator alone, or
   * of workers they start themselves).
   */
  worker?: 'inline' | 'process' | 'none'
  /** The log level of a worker in a process of its own (default: LOG_LEVEL, else `info`). */
  workerLogLevel?: string
  /** Fixed ports for the embedded services, so endpoints survive a restart. */
  servicePorts?: { dynamodb?: number; fauxqs?: number }
  clusterTokens: string[]
  log: Logger
  /**
   * Where the API, the worker and the validator record their metrics (EMF lines, core/metrics.ts)... A worker
   * in a process of its own writes its lines to its stdout, as in ECS: they reach the file below alone.
   */
  metrics?: Metrics
  /** ...and the file local mode keeps them in, for `pickup stats` (`npm start`: `<data dir>/metrics.ndjson`). */
  metricsFile?: string
  /** How often the worker reports its gauges (default METRICS_GAUGE_INTERVAL_MS). */
  gaugeIntervalMs?: number
  /** Deleting content no request wants: how long it is kept (default 7 days) and how often to look (1 h). */
  unreferencedSweep?: { retentionMs?: number; intervalMs?: number }
  /**
   * NFT collections: the JSON-RPC endpoint of each chain collections can be archived from
   * (core/collections/chains.ts, `CHAIN_RPC_<chainId>` / `CHAIN_RPC`). None: every chain is refused.
   */
  chains?: ReadonlyMap<number, string>
  /** Told when the worker's IPFS node starts or stops answering (the worker takes jobs only once it does). */
  onWorkerReadyChange?: (status: WorkerStatus) => void
}

export interface LocalSystem {
  url: string
  services: Services
  helia?: HeliaNode
  /** The kubo daemon local mode started (IPFS_NODE=kubo). */
  kubo?: KuboDaemon
  /** The worker, when it runs in this process. */
  worker?: RunningWorker
  /** Whether the worker is ready and, if not, why (none when local mode runs no worker). */
  workerStatus(): WorkerStatus | undefined
  /** The worker's IPFS node: its addresses (the embedded node's) or its RPC API's URL (a kubo's). */
  ipfsNode(): string[] | string | undefined
  clusterTokens: string[]
  /** The metric lines kept for `pickup stats`, if any. */
  metricsFile?: string
  /** Chain ids collections can be archived from (a JSON-RPC endpoint is configured). */
  chains: number[]
  /** One follow tick for NFT collections now, as the timer runs it every COLLECTION_FOLLOW_INTERVAL_MS. */
  followCollections(): Promise<FollowResult>
  stop(): Promise<void>
}

const clock: Clock = { now: () => Date.now() }

export async function startLocalSystem(cfg: LocalConfig, opts: LocalSystemOptions): Promise<LocalSystem> {
  const { log } = opts
  const namespace = metricNamespace('local')
  // One writer for the file: a worker process's lines come through it too.
  const metricLine =
    opts.metricsFile &&
    createMetricsFileWriter(opts.metricsFile, {
      onError: (err) => log.warn({ err, file: opts.metricsFile }, 'metric line not kept'),
    })
  const metrics = teeMetrics(
    opts.metrics ?? noMetrics,
    metricLine ? createEmfMetrics({ namespace, write: metricLine }) : noMetrics,
  )
  const workerMode = opts.worker ?? 'inline'
  const stops: Array<() => Promise<void>> = []
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err) => log.error({ err }, 'stop failed'))
  }
  let ready = false
  try {
    const services = await startServices({
      dataDir: opts.dataDir && join(opts.dataDir, 'services'),
      ports: opts.servicePorts,
      pinQueueVisibilityTimeoutSeconds: cfg.VISIBILITY_TIMEOUT_SECONDS,
      pinQueueMaxReceiveCount: cfg.MAX_ATTEMPTS,
    })
    stops.push(() => services.stop())
    const { clients, names } = services

    const stores = createStores(clients, (name) => names[name], {
      ...storeOptionsFromConfig(cfg),
      // dynalite updates indexes with the item: a count may be cached right after a write.
      requestCountCache: { indexSettleMs: 0 },
    })
    const pins = stores.pins()
    const requests = stores.requests()
    const tokens = stores.tokens()
    const workers = stores.workers()
    const queue = stores.jobQueue(log)
    const destination = stores.destination()

    const validate = createValidateCarHandler(promoteOptionsFromConfig(cfg), {
      ...promotePorts(stores),
      clock,
      log: log.child({ fn: 'validate-car' }),
      metrics,
    })
    services.onObjectCreated(names.tempBucket, validate)

    // Lambda's SQS event source mapping in AWS: marks dead jobs' pins failed, forwards the jobs for operators.
    const deadLetters = pollQueueToHandler(
      {
        client: clients.sqs,
        queueUrl: names.deadLetterQueueUrl,
        queueArn: names.deadLetterQueueArn,
        waitSeconds: 1,
      },
      createDeadLetterHandler({
        pins,
        failedJobs: stores.failedJobs(),
        clock,
        log: log.child({ fn: 'dead-letter' }),
      }),
      log,
    )
    stops.push(() => deadLetters.stop())

    // NFT collections: the jobs queue's consumer (an SQS-triggered Lambda in AWS) enumerates and archives.
    const chains = opts.chains ?? new Map<number, string>()
    const collections = stores.collections()
    const collectionJobs = stores.collectionJobs()
    const collectionContext = {
      collections,
      requests,
      pins,
      queue,
      clock,
      jobs: collectionJobs,
      log: log.child({ fn: 'collections' }),
    }
    const collectionJobsConsumer = pollQueueToHandler(
      {
        client: clients.sqs,
        queueUrl: names.collectionJobsQueueUrl,
        queueArn: names.collectionJobsQueueArn,
        batchSize: 1,
        waitSeconds: 1,
      },
      createCollectionJobHandler(collectionJobOptionsFromConfig(cfg), {
        ...collectionContext,
        retries: createSqsCollectionJobRetries({
          client: clients.sqs,
          queueUrl: names.collectionJobsQueueUrl,
        }),
        enumerator: createEvmEnumerator({ chains }),
        reader: createStoredContentReader({ destination, maxCarBytes: cfg.COLLECTION_READ_CAR_BYTES }),
        web: webArchivePorts(stores, cfg, collectionContext.log),
      }),
      log,
    )
    stops.push(() => collectionJobsConsumer.stop())
    // The follow tick (an EventBridge schedule in AWS): followed collections that are done enumerate again.
    const followTick = createCollectionFollowHandler(cfg, {
      collections,
      jobs: collectionJobs,
      clock,
      log: log.child({ fn: 'collection-follow' }),
    })
    let following: Promise<FollowResult> | undefined
    const followCollections = () => {
      following ??= followTick().finally(() => {
        following = undefined
      })
      return following
    }
    const followTimer = setInterval(() => {
      followCollections().catch((err) => log.error({ err }, 'collection follow tick failed'))
    }, cfg.COLLECTION_FOLLOW_INTERVAL_MS)
    followTimer.unref()
    stops.push(async () => {
      clearInterval(followTimer)
      await following?.catch(() => {})
    })

    let helia: HeliaNode | undefined
    let ipfs: BlockSource | undefined
    let kubo: KuboDaemon | undefined
    if (!cfg.IPFS_API_URL && cfg.IPFS_NODE === 'kubo') {
      const daemon = await startLocalKubo(cfg, opts.dataDir)
      kubo = daemon
      stops.push(async () => {
        await daemon.kill()
        // Without a data directory (tests) the repo was a temporary one.
        if (!opts.dataDir) await rm(daemon.repo, { recursive: true, force: true })
      })
      log.info({ url: daemon.url, peerId: daemon.peerId, repo: daemon.repo }, 'kubo daemon started')
    }
    const kuboUrl = cfg.IPFS_API_URL ?? kubo?.url
    const heliaDir = opts.dataDir && join(opts.dataDir, 'ipfs')

    let worker: RunningWorker | undefined
    let workerProcess: WorkerProcess | undefined
    if (workerMode === 'process') {
      workerProcess = await startWorkerProcess({
        cfg,
        env: {
          ...localWorkerEnv(services),
          METRICS_NAMESPACE: namespace,
          LOG_LEVEL: opts.workerLogLevel ?? process.env.LOG_LEVEL ?? 'info',
          ...(kuboUrl
            ? // Local mode's own kubo is collected between jobs, as in ECS; the user's (IPFS_API_URL) is not.
              { IPFS_API_URL: kuboUrl, KUBO_GC: String(kubo !== undefined) }
            : {
                ...(heliaDir ? { IPFS_DATA_DIR: heliaDir } : {}),
                IPFS_LISTEN: cfg.IPFS_LISTEN,
                IPFS_PUBLIC_NETWORK: String(cfg.IPFS_PUBLIC_NETWORK),
                // Local mode only: origins on loopback and private networks are the point of trying pickup.
                IPFS_ALLOW_PRIVATE_DIALS: 'true',
              }),
        },
        log,
        ...(metricLine ? { metricLine } : {}),
        ...(opts.onWorkerReadyChange ? { onStatusChange: opts.onWorkerReadyChange } : {}),
      })
      const w = workerProcess
      stops.push(() => w.stop())
    } else {
      if (kuboUrl) {
        ipfs = createKuboBlockSource({
          url: kuboUrl,
          log,
          connectTimeoutMs: cfg.DIAL_TIMEOUT_MS,
          reask: { afterMs: cfg.FETCH_REASK_MS },
        })
      } else {
        helia = await createHeliaNode({
          dataDir: heliaDir,
          listen: cfg.IPFS_LISTEN.split(','),
          publicNetwork: cfg.IPFS_PUBLIC_NETWORK,
          // Local mode only: origins on loopback and private networks are the point of trying pickup locally.
          allowPrivateDials: true,
          log,
        })
        const node = helia
        stops.push(async () => {
          await node.stop()
        })
        ipfs = createHeliaBlockSource(helia, {
          log,
          dialTimeoutMs: cfg.DIAL_TIMEOUT_MS,
          reask: { afterMs: cfg.FETCH_REASK_MS },
          // On disk, a failed attempt's blocks stay for its retry, until the pin is uploaded or failed for good.
          keepUntilReleased: opts.dataDir !== undefined,
        })
      }
    }

    if (workerMode === 'inline' && ipfs) {
      // Local mode's own kubo is collected between jobs, as in ECS; an external one (IPFS_API_URL) is the
      // user's node, whose unpinned blocks are not ours to delete.
      const gc = kubo && createKuboGc({ apiUrl: kubo.url, log, minIntervalMs: 10 * 60 * 1000 })
      if (gc) stops.push(async () => gc.stop())
      // The worker's calls go through clients of its own, as its process's do in AWS: thousands of searches
      // ending together queue their writes in its connection pool, not in front of the API's.
      const own = createStores(services.newClients(), (name) => names[name], storeOptionsFromConfig(cfg))
      const workerQueue = own.jobQueue(log)
      worker = await startWorker(cfg, {
        queue: gc ? gc.gate(workerQueue) : workerQueue,
        pins: own.pins(),
        temp: own.temp(),
        ipfs,
        workers: own.workers(),
        clock,
        log,
        ...(gc ? { onBusyChange: (jobs: number) => gc.jobs(jobs) } : {}),
        onReadyChange: opts.onWorkerReadyChange,
        metrics,
        ...(opts.gaugeIntervalMs === undefined ? {} : { gaugeIntervalMs: opts.gaugeIntervalMs }),
      })
      const w = worker
      stops.push(() => w.stop())
    }
    const workerStatus = () => worker?.status() ?? workerProcess?.status()
    const delegate = ipfs ? () => ipfs.multiaddrs() : async () => workerProcess?.report()?.multiaddrs ?? []

    const app = createHttpApp(
      {
        cluster: {
          basicAuthTokens: opts.clusterTokens,
          // The embedded node's id, stable across restarts; with an external kubo, a fixed name.
          peerId:
            helia?.libp2p.peerId.toString() ?? kubo?.peerId ?? workerProcess?.report()?.peerId ?? 'pickup',
          peerName: 'pickup',
          allowPrivateOrigins: true,
          version: PICKUP_VERSION,
        },
        psa: { allowPrivateOrigins: true },
        // With no worker live, the embedded node (or the kubo) is the delegate: it is the worker's node.
        // An IPFS node that does not answer yet gives none (rather than failing the request that asked).
        delegates: { cacheMs: 5_000, fallback: () => delegate().catch(() => []) },
      },
      {
        pins,
        requests,
        tokens,
        queue,
        clock,
        log: log.child({ fn: 'http' }),
        metrics,
        // Not ready while starting, nor while the worker's IPFS node does not answer.
        health: () => {
          const status = workerStatus()
          return { ok: ready && (status?.ready ?? true), ...(status ? { worker: status } : {}) }
        },
        workers,
        collectionsApi: createCollectionsApi({
          ...collectionContext,
          tokens,
          chains: new Set(chains.keys()),
          metrics,
        }),
      },
    )
    const server = await serveHttpApp(app, { port: cfg.PORT, hostname: '127.0.0.1' })
    stops.push(() => new Promise<void>((resolve) => server.close(() => resolve())))

    const sweepLog = log.child({ fn: 'sweep-unreferenced' })
    let sweeping: Promise<unknown> | undefined
    const sweepTimer = setInterval(
      () => {
        sweeping ??= sweepUnreferenced(
          { pins, requests, destination, clock, log: sweepLog },
          {
            retentionMs: opts.unreferencedSweep?.retentionMs ?? DEFAULT_UNREFERENCED_RETENTION_MS,
            limit: 1000,
          },
        )
          .catch((err) => sweepLog.error({ err }, 'sweep failed'))
          .finally(() => {
            sweeping = undefined
          })
      },
      opts.unreferencedSweep?.intervalMs ?? 60 * 60 * 1000,
    )
    sweepTimer.unref()
    stops.push(async () => {
      clearInterval(sweepTimer)
      await sweeping
    })
    // The reconciler (an EventBridge schedule in AWS): pins no job will move are enqueued again or failed.
    const reconcileLog = log.child({ fn: 'reconcile' })
    let reconciling: Promise<unknown> | undefined
    const reconcileTimer = setInterval(() => {
      reconciling ??= reconcilePins(reconcileOptionsFromConfig(cfg), {
        pins,
        queue,
        clock,
        log: reconcileLog,
      })
        .catch((err) => reconcileLog.error({ err }, 'reconcile failed'))
        .finally(() => {
          reconciling = undefined
        })
    }, cfg.RECONCILE_INTERVAL_MS)
    reconcileTimer.unref()
    stops.push(async () => {
      clearInterval(reconcileTimer)
      await reconciling
    })
    const address = server.address()
    const port = typeof address === 'object' && address ? address.port : cfg.PORT
    ready = true
    return {
      url: `http://127.0.0.1:${port}`,
      services,
      helia,
      kubo,
      worker,
      workerStatus,
      ipfsNode: () =>
        kuboUrl ??
        helia?.libp2p.getMultiaddrs().map((a) => a.toString()) ??
        workerProcess?.report()?.multiaddrs,
      clusterTokens: opts.clusterTokens,
      ...(opts.metricsFile ? { metricsFile: opts.metricsFile } : {}),
      chains: [...chains.keys()],
      followCollections,
      stop: stopAll,
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}

export async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true })
  return dir
}
