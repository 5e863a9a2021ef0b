/**
 * The worker sidecar's entry point (one per ECS task, beside kubo; or on its own with an embedded Helia node
 * when IPFS_API_URL is unset). SIGTERM stops polling and gives in-flight jobs SHUTDOWN_GRACE_MS to finish
 * before releasing them for another worker.
 *
 * In ECS (ECS_AGENT_URI set) the task is protected from scale-in while the worker holds jobs; beside kubo,
 * kubo's repo is garbage-collected while the worker holds none; HEALTH_PORT serves the container health check.
 * An unhandled rejection is logged and the worker keeps running; an uncaught exception is logged and exits.
 *
 * Local mode (`npm start`) runs this same entry as a process of its own beside its embedded services, over an
 * IPC channel (pickup/parent-channel.ts): the worker reports its status to local mode, and exits when local mode
 * goes away.
 */
import { ECSClient } from '@aws-sdk/client-ecs'
import { createAwsClients } from '../adapters/aws-clients.ts'
import { createStores, resourcesFromEnv, storeOptionsFromConfig } from '../adapters/compose.ts'
import { createDeploymentGate, describePrimaryTaskDefinition } from '../adapters/ecs/deployment-gate.ts'
import { createTaskProtection } from '../adapters/ecs/task-protection.ts'
import { createHeliaBlockSource } from '../adapters/helia/block-source.ts'
import { createHeliaNode } from '../adapters/helia/node.ts'
import { createKuboBlockSource } from '../adapters/kubo/block-source.ts'
import { createDiskGate } from '../adapters/kubo/disk-gate.ts'
import { createKuboGc, type KuboGc } from '../adapters/kubo/gc.ts'
import { createLogger } from '../adapters/log.ts'
import { createEmfMetrics } from '../adapters/metrics/emf.ts'
import { parseConfig } from '../core/config.ts'
import type { BlockSource } from '../core/ports.ts'
import { workerEnvSchema } from './config.ts'
import { createLoopWatch, startHealthServer } from './health.ts'
import { reportToParent, runByParent } from './parent-channel.ts'
import { handleProcessFaults } from './process-faults.ts'
import { startWorker } from './worker.ts'

const cfg = parseConfig(workerEnvSchema, process.env)
const log = createLogger('pickup-worker')
// A stray rejection is logged and the worker goes on; an uncaught exception exits (see process-faults.ts).
handleProcessFaults(process, log)
// Run by local mode over an IPC channel: its going away (even killed, even while this worker starts) closes
// the channel. Its embedded services went with it, so there is nothing to finish or release jobs to (their
// messages come back when their visibility ends): exit.
if (process.send) {
  if (!process.connected) process.exit(1)
  process.once('disconnect', () => {
    log.warn({}, 'local mode went away: exiting')
    process.exit(1)
  })
}
const stores = createStores(createAwsClients(cfg), resourcesFromEnv(cfg), storeOptionsFromConfig(cfg))
const stops: Array<() => Promise<void>> = []

let ipfs: BlockSource
let gc: KuboGc | undefined
/** The embedded Helia node's peer id; beside kubo, kubo's own. */
let peerId: string | undefined
if (cfg.IPFS_API_URL) {
  ipfs = createKuboBlockSource({
    url: cfg.IPFS_API_URL,
    log,
    connectTimeoutMs: cfg.DIAL_TIMEOUT_MS,
    reask: { afterMs: cfg.FETCH_REASK_MS },
  })
  if (cfg.KUBO_GC) {
    gc = createKuboGc({
      apiUrl: cfg.IPFS_API_URL,
      log,
      minIntervalMs: cfg.KUBO_GC_MIN_INTERVAL_MS,
      highWaterBytes: cfg.KUBO_GC_HIGH_WATER_BYTES,
    })
  }
} else {
  const helia = await createHeliaNode({
    dataDir: cfg.IPFS_DATA_DIR,
    ...(cfg.IPFS_LISTEN ? { listen: cfg.IPFS_LISTEN.split(',') } : {}),
    publicNetwork: cfg.IPFS_PUBLIC_NETWORK,
    allowPrivateDials: cfg.IPFS_ALLOW_PRIVATE_DIALS,
    log,
  })
  stops.push(async () => {
    await helia.stop()
  })
  peerId = helia.libp2p.peerId.toString()
  ipfs = createHeliaBlockSource(helia, {
    log,
    dialTimeoutMs: cfg.DIAL_TIMEOUT_MS,
    reask: { afterMs: cfg.FETCH_REASK_MS },
    // On disk, a failed attempt's blocks stay for its retry, until the pin is uploaded or failed for good.
    keepUntilReleased: cfg.IPFS_DATA_DIR !== undefined,
  })
}

const protection = cfg.ECS_AGENT_URI
  ? createTaskProtection({ agentUri: cfg.ECS_AGENT_URI, log, expiresInMinutes: cfg.TASK_PROTECTION_MINUTES })
  : undefined
// The loop long-polls for at most 20 s at a time, and backs off at most 30 s after a failed receive.
const loop = createLoopWatch(stores.jobQueue(log), {
  staleMs: 2 * 60 * 1000,
})

// Beside kubo, a job is admitted only with disk for it; in ECS, an outdated task takes no new job.
const disk =
  cfg.IPFS_API_URL && cfg.KUBO_JOB_DISK_BYTES > 0
    ? createDiskGate({
        apiUrl: cfg.IPFS_API_URL,
        jobDiskBytes: cfg.KUBO_JOB_DISK_BYTES,
        maxCarBytes: cfg.MAX_CAR_BYTES,
        log,
      })
    : undefined
const deployment =
  cfg.ECS_CONTAINER_METADATA_URI_V4 && cfg.ECS_SERVICE_NAME
    ? createDeploymentGate({
        metadataUri: cfg.ECS_CONTAINER_METADATA_URI_V4,
        serviceName: cfg.ECS_SERVICE_NAME,
        primaryTaskDefinition: describePrimaryTaskDefinition(new ECSClient({ region: cfg.AWS_REGION })),
        log,
        checkIntervalMs: cfg.DEPLOYMENT_CHECK_INTERVAL_MS,
      })
    : undefined
let queue = gc ? gc.gate(loop.queue) : loop.queue
if (disk) queue = disk.gate(queue)
if (deployment) queue = deployment.gate(queue)

const running = await startWorker(cfg, {
  queue,
  pins: stores.pins(),
  temp: stores.temp(),
  workers: stores.workers(),
  ipfs,
  clock: { now: () => Date.now() },
  log,
  // On stdout, as CloudWatch reads them from the task's log; run by local mode, to its metrics file.
  metrics: createEmfMetrics({
    namespace: cfg.METRICS_NAMESPACE,
    ...(runByParent() ? { write: (line: string) => reportToParent({ type: 'metric-line', line }) } : {}),
  }),
  onBusyChange: (jobs) => {
    void protection?.set(jobs > 0)
    gc?.jobs(jobs)
    disk?.jobs(jobs)
  },
  onReceived: (messages) => disk?.received(messages),
  // Run by local mode: it is told how the worker is and where its IPFS node listens.
  onReadyChange: (status, multiaddrs) =>
    reportToParent({ type: 'worker-status', status, multiaddrs, ...(peerId ? { peerId } : {}) }),
})

if (cfg.HEALTH_PORT > 0) {
  const health = await startHealthServer({
    port: cfg.HEALTH_PORT,
    check: async () => {
      const inFlight = running.worker.inFlight
      const looping = loop.alive({ full: running.worker.full, paused: gc?.pausing })
      const ipfsAnswers = await ipfs.multiaddrs().then(
        () => true,
        () => false,
      )
      return { ok: looping && ipfsAnswers, looping, ipfsAnswers, inFlight, protected: protection?.protected }
    },
  })
  stops.unshift(() => health.close())
}

let stopping = false
const shutdown = async (signal: NodeJS.Signals) => {
  if (stopping) return
  stopping = true
  log.info({ signal, inFlight: running.worker.inFlight }, 'shutting down')
  gc?.stop()
  disk?.stop()
  deployment?.stop()
  await running.stop()
  protection?.stop()
  for (const stop of stops) await stop()
  process.exit(0)
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.once(signal, () => void shutdown(signal))
