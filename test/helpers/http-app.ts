/**
 * The real HTTP app (api/http/app.ts: the cluster API and the Pinning Service API) over the ports' in-memory
 * twins, served on loopback as local mode serves it (api/http/node-server.ts). For tests
 * of the HTTP edge that need to control what the stores and the delegates do.
 */
import { createMemoryPinStore, type MemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import { createMemoryTokenStore } from '../../adapters/memory/tokens.ts'
import { createMemoryWorkerRegistry } from '../../adapters/memory/workers.ts'
import { createHttpApp } from '../../api/http/app.ts'
import { serveHttpApp } from '../../api/http/node-server.ts'
import { createAccessToken } from '../../core/access-tokens.ts'
import type { Logger, PinRequest, RequestStore, TokenStore, WorkerRegistry } from '../../core/ports.ts'
import { createTestLogger } from './log.ts'

/** The cluster API's credential (the same as test/helpers/system.ts's). */
export const TEST_TOKEN = Buffer.from('test:secret').toString('base64')

export const TEST_DELEGATE =
  '/ip4/203.0.113.9/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5'

export interface TestHttpApp {
  url: string
  pins: MemoryPinStore
  requests: RequestStore & { all(): PinRequest[] }
  queue: MemoryJobQueue
  tokens: TokenStore
  workers: WorkerRegistry
  log: Logger
  logLines: Array<{ level: string; msg?: string; obj: object }>
  /** The fallback delegates the app hands out with no worker live; tests change it. */
  fallbackDelegates: string[]
  /** A raw request to the cluster API with its credentials. */
  api(path: string, init?: RequestInit): Promise<Response>
  createPsaToken(user: string): Promise<string>
  stop(): Promise<void>
}

export async function startTestHttpApp(
  opts: {
    /** Wraps the request store (to make its calls fail, or count them). */
    requests?: (store: RequestStore & { all(): PinRequest[] }) => RequestStore & { all(): PinRequest[] }
    allowPrivateOrigins?: boolean
  } = {},
): Promise<TestHttpApp> {
  const pins = createMemoryPinStore()
  const baseRequests = createMemoryRequestStore()
  const requests = opts.requests ? opts.requests(baseRequests) : baseRequests
  const queue = createMemoryJobQueue()
  const tokens = createMemoryTokenStore()
  const workers = createMemoryWorkerRegistry()
  const logLines: TestHttpApp['logLines'] = []
  const log = createTestLogger(logLines)
  const clock = { now: () => Date.now() }
  const state = { fallbackDelegates: [TEST_DELEGATE] }
  const allowPrivateOrigins = opts.allowPrivateOrigins ?? false
  const app = createHttpApp(
    {
      cluster: {
        basicAuthTokens: [TEST_TOKEN],
        peerId: 'pickup',
        peerName: 'pickup',
        allowPrivateOrigins,
        version: 'test',
      },
      psa: { allowPrivateOrigins },
      // Not cached, so a test's change of the fallback shows at once.
      delegates: { cacheMs: 0, fallback: () => state.fallbackDelegates },
    },
    { pins, requests, tokens, queue, clock, log, health: () => ({ ok: true }), workers },
  )
  const server = await serveHttpApp(app, { port: 0, hostname: '127.0.0.1' })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    pins,
    requests,
    queue,
    tokens,
    workers,
    log,
    logLines,
    get fallbackDelegates() {
      return state.fallbackDelegates
    },
    set fallbackDelegates(v: string[]) {
      state.fallbackDelegates = v
    },
    api: (path, init = {}) =>
      fetch(`${url}${path}`, { ...init, headers: { authorization: `Basic ${TEST_TOKEN}`, ...init.headers } }),
    async createPsaToken(user) {
      return (await createAccessToken({ user }, { tokens, clock })).token
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}
