/**
 * The sidecar's health endpoint, for the container health check (Docker HEALTHCHECK and the ECS task
 * definition run the same command against it). `GET /health` answers 200 only when `check` says the worker
 * is healthy, 503 otherwise (or when the check takes longer than `timeoutMs`). It listens on 127.0.0.1: the
 * health check runs inside the task, and nothing outside it needs to reach the port.
 *
 * `createLoopWatch` tells whether the worker's receive loop is alive, from the outside: the loop calls
 * `receive` whenever it has a free slot, so a loop that has neither received recently nor has every slot
 * busy has stopped.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Clock, JobQueue } from '../core/ports.ts'

export interface HealthReport {
  ok: boolean
  /** Shown in the response body, for whoever looks. */
  [detail: string]: unknown
}

export interface HealthServerOptions {
  /** 0: any free port (tests). */
  port: number
  host?: string
  check: (signal: AbortSignal) => Promise<HealthReport>
  /** A check that takes longer counts as failed. Default 5 s. */
  timeoutMs?: number
}

export interface HealthServer {
  readonly port: number
  close(): Promise<void>
}

export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const timeoutMs = opts.timeoutMs ?? 5_000
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/health') {
      res.writeHead(404).end()
      return
    }
    const signal = AbortSignal.timeout(timeoutMs)
    const timedOut = new Promise<HealthReport>((resolve) => {
      signal.addEventListener('abort', () => resolve({ ok: false, error: `check took over ${timeoutMs} ms` }))
    })
    Promise.race([opts.check(signal), timedOut])
      .catch(
        (err: unknown): HealthReport => ({
          ok: false,
          error: err instanceof Error ? err.message : String(err),
        }),
      )
      .then((report) => {
        res
          .writeHead(report.ok ? 200 : 503, { 'content-type': 'application/json' })
          .end(JSON.stringify(report))
      })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  server.unref()
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

export interface LoopWatch {
  /** The queue to hand the worker: the same queue, its receives observed. */
  queue: JobQueue
  /**
   * Whether the loop is alive: a receive started or ended within `staleMs`, or the loop is legitimately not
   * receiving (the worker is full: PinWorker.full, or intake deliberately paused).
   */
  alive(state: { full: boolean; paused?: boolean }): boolean
}

export function createLoopWatch(queue: JobQueue, opts: { staleMs: number; clock?: Clock }): LoopWatch {
  const clock = opts.clock ?? { now: () => Date.now() }
  let lastActivity = clock.now()
  return {
    queue: {
      ...queue,
      async receive(receiveOpts) {
        lastActivity = clock.now()
        try {
          return await queue.receive(receiveOpts)
        } finally {
          lastActivity = clock.now()
        }
      },
    },
    alive({ full, paused }) {
      if (paused || full) return true
      return clock.now() - lastActivity <= opts.staleMs
    },
  }
}
