/**
 * Composes a pickup worker from its parts: the pin queue, the pin table, the temporary bucket and an IPFS
 * block source (kubo in the ECS sidecar, an embedded Helia node elsewhere). Used by the sidecar's entry point
 * and by local mode alike.
 */
import { randomUUID } from 'node:crypto'
import { createClaimLane, DEFAULT_CLAIM_CONCURRENCY } from '../core/claim-lane.ts'
import type { WorkerConfig } from '../core/config.ts'
import { type FetchLimits, fetchPin } from '../core/fetch-pin.ts'
import { METRICS, METRICS_GAUGE_INTERVAL_MS, type Metrics, noMetrics } from '../core/metrics.ts'
import { createPinWatcher } from '../core/pin-watch.ts'
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
import { retryPolicyFromConfig } from '../core/retry-policy.ts'
import { createIpfsGate } from './ipfs-gate.ts'

export interface WorkerParts {
  queue: JobQueue
  pins: PinStore
  temp: ObjectStore
  ipfs: BlockSource
  workers: WorkerRegistry
  clock: Clock
  log: Logger
  onBusyChange?: (jobs: number) => void
  /** Messages a receive brought, once their jobs are counted (core/pin-worker.ts). */
  onReceived?: (messages: number) => void
  /**
   * Called when the worker becomes ready or stops being ready (its IPFS node answers, or stops answering), and
   * after its first check, with the node's addresses as that check found them (none when it did not answer).
   */
  onReadyChange?: (status: WorkerStatus, multiaddrs: string[]) => void
  /** Per-job figures, and the gauges of jobs searching, waiting and transferring (what autoscaling reads). */
  metrics?: Metrics
  /** How often the gauges are reported (default METRICS_GAUGE_INTERVAL_MS). */
  gaugeIntervalMs?: number
}

/** Whether the worker's IPFS node answers; `problem` says what went wrong when it does not. */
export interface WorkerStatus {
  ready: boolean
  problem?: string
  /** The IPFS node's failure alone (the problem is `the IPFS node does not answer: <ipfsError>`). */
  ipfsError?: string
}

export interface RunningWorker {
  id: string
  worker: PinWorker
  status(): WorkerStatus
  stop(): Promise<void>
}

const ANNOUNCE_EVERY_MS = 30_000

export function fetchLimits(cfg: WorkerConfig): FetchLimits {
  return {
    maxCarBytes: cfg.MAX_CAR_BYTES,
    maxDagBlocks: cfg.MAX_DAG_BLOCKS,
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
  // Intake waits while the IPFS node does not answer (a job taken then would fail and spend an attempt),
  // asking again every IPFS_RETRY_INTERVAL_MS.
  const gate = createIpfsGate(parts.queue, {
    probe: () => parts.ipfs.multiaddrs(),
    log,
    retryMs: cfg.IPFS_RETRY_INTERVAL_MS,
    maxRetryMs: cfg.IPFS_RETRY_INTERVAL_MS,
    probeTimeoutMs: cfg.DIAL_TIMEOUT_MS,
  })
  // How a deleted request stops its fetch: each PROGRESS_INTERVAL_MS a read of the marks of content deleted
  // lately, and every 12th interval a read of every running pin (core/pin-watch.ts).
  const watcher = createPinWatcher(
    { intervalMs: cfg.PROGRESS_INTERVAL_MS },
    { pins: parts.pins, log, clock: parts.clock },
  )
  // Claims in the order jobs came, a few at a time; found content is claimed at once (core/claim-lane.ts).
  const claims = createClaimLane({ concurrency: DEFAULT_CLAIM_CONCURRENCY })
  const worker = createPinWorker(
    {
      transferSlots: cfg.BATCH_SIZE,
      searchSlots: cfg.SEARCH_CONCURRENCY,
      receiveConcurrency: cfg.RECEIVE_CONCURRENCY,
      visibilityTimeoutSeconds: cfg.VISIBILITY_TIMEOUT_SECONDS,
      fetchTimeoutMs: cfg.FETCH_TIMEOUT_MS,
      retry: retryPolicyFromConfig(cfg),
    },
    {
      queue: gate.queue,
      log,
      onBusyChange: parts.onBusyChange,
      onReceived: parts.onReceived,
      clock: parts.clock,
      run: (job, signal, control) =>
        fetchPin(job, limits, { ...parts, log, newId: newAttemptId, watcher, claims }, signal, control),
    },
  )

  // What the worker announces: ready while its IPFS node answers, checked every ANNOUNCE_EVERY_MS (every
  // IPFS_RETRY_INTERVAL_MS while it does not), with the reason when it does not. Intake itself waits in the
  // gate above, so the loop starts at once.
  let status: WorkerStatus = { ready: false }
  let checked = false
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let checking: Promise<void> | undefined
  const check = async () => {
    let multiaddrs: string[] = []
    let next: WorkerStatus
    try {
      multiaddrs = await answerWithin(parts.ipfs.multiaddrs(), cfg.DIAL_TIMEOUT_MS)
      next = { ready: true }
    } catch (err) {
      const ipfsError = errorText(err)
      next = { ready: false, problem: `the IPFS node does not answer: ${ipfsError}`, ipfsError }
    }
    if (stopped) return
    const changed = !checked || next.ready !== status.ready
    checked = true
    status = next
    if (changed) {
      if (next.ready) log.info({}, 'IPFS node answers: worker ready')
      else log.warn({ problem: next.problem, retryMs: cfg.IPFS_RETRY_INTERVAL_MS }, 'worker not ready')
    }
    try {
      await parts.workers.announce({
        id,
        multiaddrs,
        expires: parts.clock.now() + 3 * ANNOUNCE_EVERY_MS,
        ready: next.ready,
        ...(next.problem === undefined ? {} : { problem: next.problem }),
      })
    } catch (err) {
      log.warn({ err }, 'announce failed')
    }
    if (changed) parts.onReadyChange?.(status, multiaddrs)
  }
  const schedule = () => {
    if (stopped) return
    timer = setTimeout(
      () => {
        checking = check()
          .catch((err) => log.error({ err }, 'readiness check failed'))
          .finally(schedule)
      },
      status.ready ? ANNOUNCE_EVERY_MS : cfg.IPFS_RETRY_INTERVAL_MS,
    )
  }
  await check()
  schedule()
  worker.start()
  // The gauges the scaling policy reads (stacks/worker.ts): reported from the start, idle included, so an idle
  // task counts in the pool's average.
  const metrics = parts.metrics ?? noMetrics
  const reportLoad = () => {
    const load = worker.load
    metrics.emit(
      { metric: METRICS.jobsSearching, value: load.searching },
      { metric: METRICS.jobsWaiting, value: load.waiting },
      { metric: METRICS.jobsTransferring, value: load.transferring },
    )
  }
  reportLoad()
  const gauges = setInterval(reportLoad, parts.gaugeIntervalMs ?? METRICS_GAUGE_INTERVAL_MS)
  gauges.unref()
  log.info(
    {
      transferSlots: cfg.BATCH_SIZE,
      searchSlots: cfg.SEARCH_CONCURRENCY,
      receiveConcurrency: cfg.RECEIVE_CONCURRENCY,
    },
    'worker started',
  )

  return {
    id,
    worker,
    status: () => ({ ...status }),
    async stop() {
      stopped = true
      clearTimeout(timer)
      clearInterval(gauges)
      await checking
      await worker.stop(cfg.SHUTDOWN_GRACE_MS)
      watcher.stop()
      await parts.workers.remove(id).catch(() => {})
      log.info({}, 'worker stopped')
    },
  }
}

/** Rejects when `answer` takes longer than `ms`: an IPFS node that accepts connections but never answers. */
async function answerWithin<T>(answer: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([answer, late])
  } finally {
    clearTimeout(timer)
  }
}

/** The error's message and, for a failed fetch, its cause's code (`fetch failed` alone says nothing). */
function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const cause: unknown = err.cause
  const code = cause instanceof Error ? (Reflect.get(cause, 'code') ?? cause.message) : undefined
  return code && !err.message.includes(String(code)) ? `${err.message} (${String(code)})` : err.message
}

/** Attempt ids appear in S3 keys: URL-safe and short. */
function newAttemptId(): string {
  return randomUUID().replaceAll('-', '')
}
