/**
 * Local mode's worker as a process of its own (LOCAL_WORKER=process, what `npm start` runs): `pickup/main.ts`,
 * the entry the ECS task runs, pointed at local mode's embedded services through the AWS SDK's own variables,
 * as a task is at AWS's. Local mode's thread then serves the API, the emulators and the validator while the
 * worker's serves its searches and transfers: with one thread for both, a backlog of 2,000 unreachable pins
 * held 50 reachable ones up about 2.5-3x longer than alone (README, "Content nobody serves").
 *
 * - Settings: local mode's own worker settings (core/config.ts), and where the IPFS node is: an embedded Helia
 *   node with its blocks and peer key under the data directory, local mode's kubo, or the user's.
 * - Output: the worker writes its log lines to the stdout and stderr it shares with local mode. Its metric
 *   lines (EMF, on stdout in ECS) and its readiness come over an IPC channel (pickup/parent-channel.ts): the
 *   lines go to local mode's metrics file, which has one writer (for `pickup stats`). The channel closing
 *   makes it exit, so a killed local mode leaves no worker behind.
 * - A worker that exits unasked is started again after a pause (1 s, doubling up to 30 s), as ECS replaces a
 *   task; the jobs it held come back to the queue when their visibility ends. Until its successor reports,
 *   local mode's health says why it is not ready.
 * - Stop: SIGTERM, which gives its jobs SHUTDOWN_GRACE_MS and releases the rest (pickup/main.ts); killed if
 *   it has not exited 15 s after that.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { type WorkerConfig, workerSchema } from '../core/config.ts'
import type { Logger } from '../core/ports.ts'
import { type WorkerReport, workerMessage } from '../pickup/parent-channel.ts'
import type { WorkerStatus } from '../pickup/worker.ts'

const ENTRY = join(import.meta.dirname, '../pickup/main.ts')
const FIRST_RESTART_DELAY_MS = 1_000
const MAX_RESTART_DELAY_MS = 30_000
/** A worker that ran this long before it exited was healthy: its successor starts after the first delay. */
const HEALTHY_RUN_MS = 60_000
const KILL_AFTER_GRACE_MS = 15_000
/** How long the first worker may take to start its IPFS node and report. */
const START_TIMEOUT_MS = 60_000

export interface WorkerProcessOptions {
  cfg: WorkerConfig
  /** The worker's resources, the AWS SDK's variables and its IPFS node's (pickup/config.ts). */
  env: Record<string, string>
  log: Logger
  /** Where the worker's metric lines go (EMF, one a call). Absent: dropped. */
  metricLine?: (line: string) => void
  /** Told when the worker becomes ready or stops being ready, or its process exits. */
  onStatusChange?: (status: WorkerStatus) => void
}

export interface WorkerProcess {
  /** The last status the worker reported, or why there is none. */
  status(): WorkerStatus
  /** The worker's last report: its status and its IPFS node's addresses and peer id. */
  report(): WorkerReport | undefined
  stop(): Promise<void>
}

/** The first worker's process did not start; its own error, if any, is on local mode's stderr. */
export class WorkerProcessError extends Error {
  override readonly name = 'WorkerProcessError'
}

/** Local mode's worker settings, as the variables `pickup/main.ts` reads them from. */
function workerSettingsEnv(cfg: WorkerConfig): Record<string, string> {
  const env: Record<string, string> = {}
  for (const key of Object.keys(workerSchema.shape) as Array<keyof WorkerConfig>) {
    const value = cfg[key]
    if (value !== undefined) env[key] = String(value)
  }
  return env
}

/** Starts the worker's process; resolves once it has reported, rejects if it exits before. */
export async function startWorkerProcess(opts: WorkerProcessOptions): Promise<WorkerProcess> {
  const { log } = opts
  let child: ChildProcess | undefined
  let last: WorkerReport | undefined
  let status: WorkerStatus = { ready: false, problem: 'the worker process is starting' }
  let stopping = false
  let restartTimer: NodeJS.Timeout | undefined
  let restartDelayMs = FIRST_RESTART_DELAY_MS
  const setStatus = (next: WorkerStatus) => {
    const changed = next.ready !== status.ready || next.problem !== status.problem
    status = next
    if (changed) opts.onStatusChange?.(next)
  }

  const env: Record<string, string> = {
    ...pick(process.env, ['PATH', 'HOME', 'TMPDIR', 'NODE_OPTIONS', 'DEBUG']),
    ...workerSettingsEnv(opts.cfg),
    ...opts.env,
  }
  // Local mode profiled (`node --cpu-prof`, bench/lib/local-mode.ts): its worker is too.
  const profiling = process.execArgv.filter((arg) => arg.startsWith('--cpu-prof'))
  const spawnWorker = (
    onFirstReport?: (report: WorkerReport) => void,
    onEarlyExit?: (err: Error) => void,
  ) => {
    const started = Date.now()
    const proc = spawn(process.execPath, [...profiling, '--disable-warning=ExperimentalWarning', ENTRY], {
      env,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // A session of its own: Ctrl-C in local mode's terminal reaches local mode alone, which stops the
      // worker itself (above all, without taking the worker's exit for a crash).
      detached: true,
    })
    child = proc
    let reported = false
    proc.on('message', (raw) => {
      const message = workerMessage(raw)
      if (message?.type === 'metric-line') opts.metricLine?.(message.line)
      if (message?.type !== 'worker-status') return
      last = message
      setStatus(message.status)
      if (!reported) {
        reported = true
        onFirstReport?.(message)
      }
    })
    proc.on('error', (err) => log.error({ err }, 'worker process failed'))
    proc.on('exit', (code, signal) => {
      if (child === proc) child = undefined
      if (!reported)
        onEarlyExit?.(
          new WorkerProcessError(`the worker's process exited (${code ?? signal}) before it started`),
        )
      if (stopping) return
      if (Date.now() - started >= HEALTHY_RUN_MS) restartDelayMs = FIRST_RESTART_DELAY_MS
      const delay = restartDelayMs
      restartDelayMs = Math.min(restartDelayMs * 2, MAX_RESTART_DELAY_MS)
      const problem = `the worker process exited (${code ?? signal}); another starts in ${delay / 1000} s`
      log.error({ code, signal, pid: proc.pid, restartInMs: delay }, 'worker process exited')
      setStatus({ ready: false, problem })
      restartTimer = setTimeout(() => {
        restartTimer = undefined
        if (!stopping) spawnWorker()
      }, delay)
    })
    log.info({ pid: proc.pid }, 'worker process started')
  }

  const stop = async () => {
    stopping = true
    clearTimeout(restartTimer)
    const proc = child
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGTERM')
    const kill = setTimeout(() => proc.kill('SIGKILL'), opts.cfg.SHUTDOWN_GRACE_MS + KILL_AFTER_GRACE_MS)
    await exited
    clearTimeout(kill)
  }

  await new Promise<void>((resolve, reject) => {
    // The first worker must start (bad settings or a port in use stop it): local mode fails to start with it.
    const fail = (err: Error) => {
      clearTimeout(timeout)
      stopping = true
      reject(err)
    }
    const timeout = setTimeout(() => {
      child?.kill('SIGKILL')
      fail(new WorkerProcessError(`the worker's process did not start within ${START_TIMEOUT_MS / 1000} s`))
    }, START_TIMEOUT_MS)
    spawnWorker(() => {
      clearTimeout(timeout)
      resolve()
    }, fail)
  })
  return {
    status: () => ({ ...status }),
    report: () => last,
    stop,
  }
}

function pick(env: NodeJS.ProcessEnv, keys: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const key of keys) {
    const value = env[key]
    if (value !== undefined) out[key] = value
  }
  return out
}
