/**
 * Admission by disk: the worker takes a job only while kubo's repo has room for it, so a task never runs out
 * of disk, whatever the DAGs turn out to be.
 *
 * Every block a job fetches lands in kubo's repo, up to MAX_CAR_BYTES per job, and stays there until the
 * next `repo gc` (./gc.ts). A job's size is unknown when it is taken, so each running job is counted at the
 * most it can write. Before each receive the repo's size is read (`repo/stat`), and the worker may take
 *
 *     floor((jobDiskBytes - repo size - running jobs x maxCarBytes) / maxCarBytes)
 *
 * jobs (at most what it asked for). The blocks running jobs have already written are in the repo size and
 * in their reservation both, so the count errs on the safe side. With no room the receive answers nothing
 * after its long-poll wait and the worker asks again; room comes back as jobs finish and GC runs (the stack
 * sets GC's high-water mark at or below `jobDiskBytes - maxCarBytes`, so an idle worker that cannot admit a
 * job collects at once). When the repo's size cannot be read, nothing is admitted (kubo is down, or the
 * answer cannot be trusted), and the failure is logged.
 */

import { abortableSleep } from '../../core/abort.ts'
import type { JobQueue, Logger } from '../../core/ports.ts'

export interface DiskGateOptions {
  /** kubo's RPC API, e.g. `http://127.0.0.1:5001`. */
  apiUrl: string
  /** Disk kubo's repo may fill with jobs' blocks (the task's disk less what images and logs need). */
  jobDiskBytes: number
  /** The most one job can write (MAX_CAR_BYTES). */
  maxCarBytes: number
  fetch?: typeof globalThis.fetch
  log: Logger
  /** `repo/stat` gives up after this. Default 30 s. */
  requestTimeoutMs?: number
}

export interface DiskGate {
  /** The number of jobs the worker holds; wire it to the worker's `onBusyChange`. */
  jobs(count: number): void
  /** The queue the worker should receive from: it never hands out more jobs than the disk has room for. */
  gate(queue: JobQueue): JobQueue
  /** How many more jobs fit now (reads the repo's size). */
  room(): Promise<number>
  stop(): void
}

export function createDiskGate(opts: DiskGateOptions): DiskGate {
  const fetch = opts.fetch ?? globalThis.fetch
  const api = opts.apiUrl.replace(/\/+$/, '')
  const log = opts.log.child({ component: 'disk-gate' })
  const stopped = new AbortController()
  let held = 0
  let full = false

  async function repoBytes(): Promise<number> {
    const signal = AbortSignal.any([stopped.signal, AbortSignal.timeout(opts.requestTimeoutMs ?? 30_000)])
    const res = await fetch(`${api}/api/v0/repo/stat?size-only=true`, { method: 'POST', signal })
    if (!res.ok) throw new Error(`kubo repo/stat: HTTP ${res.status}`)
    const stat = (await res.json()) as { RepoSize?: unknown }
    if (typeof stat.RepoSize !== 'number' || !Number.isFinite(stat.RepoSize)) {
      throw new Error('kubo repo/stat: no RepoSize')
    }
    return stat.RepoSize
  }

  async function room(): Promise<number> {
    const repo = await repoBytes()
    const free = opts.jobDiskBytes - repo - held * opts.maxCarBytes
    const fits = Math.max(0, Math.floor(free / opts.maxCarBytes))
    if ((fits === 0) !== full) {
      full = fits === 0
      log.info(
        { repoBytes: repo, jobs: held, jobDiskBytes: opts.jobDiskBytes, maxCarBytes: opts.maxCarBytes },
        full ? 'no disk for another job: taking none until jobs finish or gc runs' : 'disk for jobs again',
      )
    }
    return fits
  }

  return {
    jobs(count) {
      held = count
    },

    gate(queue) {
      return {
        ...queue,
        async receive(receiveOpts) {
          let fits = 0
          try {
            fits = await room()
          } catch (err) {
            if (!stopped.signal.aborted) {
              log.warn(
                { err: err instanceof Error ? err.message : String(err) },
                'repo size unknown: taking no job',
              )
            }
          }
          if (fits === 0) {
            await abortableSleep(receiveOpts.waitSeconds * 1000, receiveOpts.signal)
            return []
          }
          return queue.receive({ ...receiveOpts, max: Math.min(receiveOpts.max, fits) })
        },
      }
    },

    room,

    stop() {
      stopped.abort()
    },
  }
}
