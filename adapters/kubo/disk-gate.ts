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
 * jobs (at most what it asked for). The blocks running jobs have already written are in the repo size and in
 * their reservation both, so the count errs on the safe side. The worker keeps several receives in flight
 * (RECEIVE_CONCURRENCY): what each may bring back counts as running jobs from the moment its room is computed
 * (with no await between, so two receives never share the same room): while the receive is in flight, its
 * whole reservation; once it returns, the messages it brought, until the worker has counted their jobs
 * (`received`, told after `jobs`; gates outside this one, such as pickup/ipfs-gate.ts, may hold them a while
 * first). In between they count twice, on the safe side again. With no room the receive answers nothing after
 * its long-poll wait and the worker asks again; room comes back as jobs finish and GC runs (the stack sets
 * GC's high-water mark at or below `jobDiskBytes - maxCarBytes`, so an idle worker that cannot admit a job
 * collects at once). When the repo's size cannot be read, nothing is admitted (kubo is down, or the answer
 * cannot be trusted), and the failure is logged.
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
  /** Messages a receive brought whose jobs the worker now counts; wire it to the worker's `onReceived`. */
  received(messages: number): void
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
  /** Jobs receives in flight may bring: the room each took. */
  let pending = 0
  /** Messages receives brought that the worker has not counted yet. */
  let handed = 0
  let full = false

  /** The room now, `max` of it at most taken for a receive (given back when it returns). */
  async function reserve(max: number): Promise<number> {
    const repo = await repoBytes()
    const fits = Math.min(max, fitsBeside(repo))
    pending += fits
    return fits
  }

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

  /** The jobs that fit beside a repo of `repo` bytes; synchronous, so a reservation can follow with no gap. */
  function fitsBeside(repo: number): number {
    const jobs = held + pending + handed
    const free = opts.jobDiskBytes - repo - jobs * opts.maxCarBytes
    const fits = Math.max(0, Math.floor(free / opts.maxCarBytes))
    if ((fits === 0) !== full) {
      full = fits === 0
      log.info(
        { repoBytes: repo, jobs, jobDiskBytes: opts.jobDiskBytes, maxCarBytes: opts.maxCarBytes },
        full ? 'no disk for another job: taking none until jobs finish or gc runs' : 'disk for jobs again',
      )
    }
    return fits
  }

  return {
    jobs(count) {
      held = count
    },

    received(messages) {
      handed = Math.max(0, handed - messages)
    },

    gate(queue) {
      return {
        ...queue,
        async receive(receiveOpts) {
          let fits = 0
          try {
            fits = await reserve(receiveOpts.max)
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
          let brought = 0
          try {
            const messages = await queue.receive({ ...receiveOpts, max: fits })
            brought = messages.length
            return messages
          } finally {
            // What it brought counts until the worker says it counts the jobs; the rest of the room is free.
            handed += brought
            pending -= fits
          }
        },
      }
    },

    async room() {
      return fitsBeside(await repoBytes())
    },

    stop() {
      stopped.abort()
    },
  }
}
