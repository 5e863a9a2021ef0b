/**
 * Garbage collection of the kubo node beside the worker. Every block a job fetches stays in kubo's repo
 * (nothing is pinned), so without GC the task's disk fills up. GC runs only while the worker holds no jobs,
 * so it can never evict a block a running job still needs:
 *
 * - When the worker's job count drops to 0 (`jobs(0)`, from the worker's `onBusyChange`) and the last GC is
 *   at least `minIntervalMs` old, intake is paused (`gate`), receives already in flight are awaited, and if
 *   the worker is still idle `repo gc` runs; intake resumes when it ends.
 * - A worker that never goes idle (a steady backlog) would never collect: when the repo grows above
 *   `highWaterBytes` (checked every `statIntervalMs`), intake pauses until the running jobs finish, then GC
 *   runs at once.
 *
 * Talks to kubo's RPC API with plain `fetch` (`POST /api/v0/repo/gc`, `POST /api/v0/repo/stat`). Failures
 * are logged and never thrown; a GC that fails simply lets intake resume.
 */
import type { Clock, JobQueue, Logger } from '../../core/ports.ts'

export interface KuboGcOptions {
  /** kubo's RPC API, e.g. `http://127.0.0.1:5001`. */
  apiUrl: string
  fetch?: typeof globalThis.fetch
  log: Logger
  clock?: Clock
  /** Shortest time between the end of one GC and the start of the next idle-triggered one. */
  minIntervalMs: number
  /** Repo size above which intake pauses for a GC. 0 or absent: never (GC only when idle). */
  highWaterBytes?: number
  /** How often the repo size is checked against `highWaterBytes`. Default 60 s. */
  statIntervalMs?: number
  /** A GC running longer than this is abandoned (kubo stops when the request is cancelled). Default 30 min. */
  gcTimeoutMs?: number
}

export interface GcResult {
  removed: number
  errors: number
  ms: number
}

export interface KuboGc {
  /** The number of jobs the worker holds; wire it to the worker's `onBusyChange`. */
  jobs(count: number): void
  /** The queue the worker should receive from: `receive` waits while intake is paused for a GC. */
  gate(queue: JobQueue): JobQueue
  /** Whether intake is paused (GC running, or waiting for running jobs to finish before one). */
  readonly pausing: boolean
  /** Resolves when the GC in progress (if any) has ended. */
  idle(): Promise<void>
  stop(): void
}

function abortable(signal: AbortSignal | undefined, wait: Promise<void>): Promise<void> {
  if (!signal) return wait
  signal.throwIfAborted()
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    wait.then(
      () => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

export function createKuboGc(opts: KuboGcOptions): KuboGc {
  const fetch = opts.fetch ?? globalThis.fetch
  const clock = opts.clock ?? { now: () => Date.now() }
  const api = opts.apiUrl.replace(/\/+$/, '')
  const log = opts.log.child({ component: 'kubo-gc' })
  const gcTimeoutMs = opts.gcTimeoutMs ?? 30 * 60 * 1000
  const stopped = new AbortController()

  let held = 0
  let lastGcEnd = Number.NEGATIVE_INFINITY
  /** Set when the repo is over the high-water mark: GC as soon as the worker is idle, whatever the interval. */
  let pressure = false
  let running: Promise<void> | undefined
  /** Intake is closed while this is set; resolved when it opens again. */
  let closed: { opened: Promise<void>; open: () => void } | undefined
  let receiving = 0
  let receivesDone: (() => void) | undefined

  function close(): void {
    if (closed) return
    let open = () => {}
    const opened = new Promise<void>((resolve) => {
      open = resolve
    })
    closed = { opened, open }
  }

  function reopen(): void {
    const c = closed
    closed = undefined
    c?.open()
  }

  async function post(path: string, signal: AbortSignal): Promise<Response> {
    const res = await fetch(`${api}/api/v0/${path}`, { method: 'POST', signal })
    if (!res.ok) throw new Error(`kubo ${path}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`)
    return res
  }

  /** Streams `repo/gc`'s newline-delimited JSON: one `{"Key":{"/":cid}}` per removed block, or `{"Error"}`. */
  async function collect(signal: AbortSignal): Promise<GcResult> {
    const started = clock.now()
    const res = await post('repo/gc?stream-errors=true', signal)
    let removed = 0
    let errors = 0
    let rest = ''
    const decoder = new TextDecoder()
    const count = (line: string) => {
      if (line.trim() === '') return
      try {
        const entry = JSON.parse(line) as { Key?: unknown; Error?: string }
        if (entry.Error) {
          errors++
          if (errors <= 5) log.warn({ error: entry.Error }, 'repo gc reported an error')
        } else if (entry.Key) removed++
      } catch {
        errors++
      }
    }
    if (res.body) {
      for await (const chunk of res.body) {
        rest += decoder.decode(chunk, { stream: true })
        const lines = rest.split('\n')
        rest = lines.pop() ?? ''
        for (const line of lines) count(line)
      }
    }
    count(rest + decoder.decode())
    return { removed, errors, ms: clock.now() - started }
  }

  /** Pauses intake, waits for receives in flight, and collects if the worker is still idle. */
  async function run(reason: 'idle' | 'pressure'): Promise<void> {
    close()
    try {
      if (receiving > 0) {
        await new Promise<void>((resolve) => {
          receivesDone = resolve
        })
      }
      // Let the worker take what those receives returned (it counts jobs as soon as a receive resolves).
      await new Promise<void>((resolve) => setImmediate(resolve))
      // Jobs came in: no GC now. Under pressure the gate stays closed until they finish.
      if (held > 0 || stopped.signal.aborted) return
      const signal = AbortSignal.any([stopped.signal, AbortSignal.timeout(gcTimeoutMs)])
      try {
        const result = await collect(signal)
        log.info({ reason, ...result }, 'repo gc done')
      } catch (err) {
        if (!stopped.signal.aborted) {
          log.warn({ reason, err: err instanceof Error ? err.message : String(err) }, 'repo gc failed')
        }
      }
      // Done or failed alike: resume intake (a repo still too large is found again by the next check).
      pressure = false
      lastGcEnd = clock.now()
    } finally {
      if (!pressure || stopped.signal.aborted) reopen()
    }
  }

  function maybeRun(): void {
    if (running || held > 0 || stopped.signal.aborted) return
    const due = pressure || clock.now() - lastGcEnd >= opts.minIntervalMs
    if (!due) return
    running = run(pressure ? 'pressure' : 'idle').finally(() => {
      running = undefined
    })
  }

  async function checkPressure(): Promise<void> {
    if (!opts.highWaterBytes || pressure || running) return
    try {
      const res = await post(
        'repo/stat?size-only=true',
        AbortSignal.any([stopped.signal, AbortSignal.timeout(30_000)]),
      )
      const stat = (await res.json()) as { RepoSize?: number }
      if (typeof stat.RepoSize === 'number' && stat.RepoSize > opts.highWaterBytes) {
        pressure = true
        close()
        log.info(
          { repoBytes: stat.RepoSize, highWaterBytes: opts.highWaterBytes, jobs: held },
          'repo above high water: pausing intake until idle for a gc',
        )
        maybeRun()
      }
    } catch (err) {
      if (!stopped.signal.aborted) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'repo stat failed')
      }
    }
  }

  const statTimer = opts.highWaterBytes
    ? setInterval(() => void checkPressure(), opts.statIntervalMs ?? 60_000)
    : undefined
  statTimer?.unref?.()

  return {
    jobs(count) {
      held = count
      if (count === 0) maybeRun()
    },

    gate(queue) {
      return {
        ...queue,
        async receive(receiveOpts) {
          while (closed) await abortable(receiveOpts.signal, closed.opened)
          receiving++
          try {
            return await queue.receive(receiveOpts)
          } finally {
            receiving--
            if (receiving === 0) {
              receivesDone?.()
              receivesDone = undefined
            }
          }
        },
      }
    },

    get pausing() {
      return closed !== undefined
    },

    async idle() {
      await running
    },

    stop() {
      if (statTimer) clearInterval(statTimer)
      stopped.abort()
      reopen()
    },
  }
}
