/**
 * Composes a pickup worker from its parts: the pin queue, the pin table, the temporary bucket and an IPFS
 * block source (kubo in the ECS sidecar, an embedded Helia node elsewhere). Used by the sidecar's entry point
 * and by local mode alike.
 */
import { randomUUID } from 'node:crypto'
import { retryDelaySeconds, type WorkerConfig } from '../core/config.ts'
import { type FetchLimits, fetchPin } from '../core/fetch-pin.ts'
import { createPinWorker, type PinWorker } from '../core/pin-worker.ts'
import type {
  BlockSource,
  Clock,
  JobQueue,
  Logger,
  ObjectStore,
  PinStore,
  WorkerRegistry,
} from '../core/ports.ts'

export interface WorkerParts {
  queue: JobQueue
  pins: PinStore
  temp: ObjectStore
  ipfs: BlockSource
  workers: WorkerRegistry
  clock: Clock
  log: Logger
  onBusyChange?: (jobs: number) => void
}

export interface RunningWorker {
  id: string
  worker: PinWorker
  stop(): Promise<void>
}

const ANNOUNCE_EVERY_MS = 30_000

export function fetchLimits(cfg: WorkerConfig): FetchLimits {
  return {
    maxCarBytes: cfg.MAX_CAR_BYTES,
    fetchTimeoutMs: cfg.FETCH_TIMEOUT_MS,
    fetchChunkTimeoutMs: cfg.FETCH_CHUNK_TIMEOUT_MS,
    concurrency: cfg.FETCH_CONCURRENCY,
    dialTimeoutMs: cfg.DIAL_TIMEOUT_MS,
    leaseMs: cfg.VISIBILITY_TIMEOUT_SECONDS * 1000,
    progressIntervalMs: cfg.PROGRESS_INTERVAL_MS,
    partBytes: cfg.UPLOAD_PART_BYTES,
    // The validator Lambda runs for at most 15 minutes; leave it that and a margin.
    validationLeaseMs: 20 * 60 * 1000,
    maxAttempts: cfg.MAX_ATTEMPTS,
  }
}

export async function startWorker(cfg: WorkerConfig, parts: WorkerParts): Promise<RunningWorker> {
  const id = randomUUID()
  const log = parts.log.child({ worker: id })
  const limits = fetchLimits(cfg)
  const worker = createPinWorker(
    {
      slots: cfg.BATCH_SIZE,
      visibilityTimeoutSeconds: cfg.VISIBILITY_TIMEOUT_SECONDS,
      fetchTimeoutMs: cfg.FETCH_TIMEOUT_MS,
      retryDelaySeconds: (n) => retryDelaySeconds(n, cfg),
    },
    {
      queue: parts.queue,
      log,
      onBusyChange: parts.onBusyChange,
      run: (job, signal) => fetchPin(job, limits, { ...parts, log, newId: newAttemptId }, signal),
    },
  )

  const announce = async () => {
    try {
      const multiaddrs = await parts.ipfs.multiaddrs()
      await parts.workers.announce({ id, multiaddrs, expires: parts.clock.now() + 3 * ANNOUNCE_EVERY_MS })
    } catch (err) {
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'announce failed')
    }
  }
  await announce()
  const announcer = setInterval(announce, ANNOUNCE_EVERY_MS)
  worker.start()
  log.info({ slots: cfg.BATCH_SIZE }, 'worker started')

  return {
    id,
    worker,
    async stop() {
      clearInterval(announcer)
      await worker.stop(cfg.SHUTDOWN_GRACE_MS)
      await parts.workers.remove(id).catch(() => {})
      log.info({}, 'worker stopped')
    },
  }
}

/** Attempt ids appear in S3 keys: URL-safe and short. */
function newAttemptId(): string {
  return randomUUID().replaceAll('-', '')
}
