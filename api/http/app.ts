/**
 * pickup's HTTP API: one Hono app served by API Gateway + Lambda in AWS and by Node in local mode.
 */
import { Hono } from 'hono'
import { createDelegates, type DelegatesOptions } from '../../core/delegates.ts'
import type { RequestStore, TokenStore, WorkerRegistry } from '../../core/ports.ts'
import { type ClusterApiContext, type ClusterApiOptions, createClusterApi, notFound } from './cluster.ts'
import type { CollectionsApi } from './collections.ts'
import { clusterErrorResponse } from './errors.ts'
import { createPinningServiceApi, type PinningServiceApiOptions } from './psa/api.ts'

export interface HttpAppOptions {
  cluster: ClusterApiOptions
  /** Which peers both APIs hand to clients as delegates (see core/delegates.ts). */
  delegates: DelegatesOptions
  /** The Pinning Service API under `/psa`; served when given together with `tokens`. */
  psa?: PinningServiceApiOptions
}

export interface HttpAppContext extends Omit<ClusterApiContext, 'delegates'> {
  requests: RequestStore
  /** Live workers announce their multiaddrs here. */
  workers: WorkerRegistry
  /** Pinning Service API access tokens. */
  tokens?: TokenStore
  /**
   * Whether every component is up; `GET /healthz` answers 200 only then, and shows the report as its body
   * (local mode adds the worker's readiness: `{ ok: false, worker: { ready: false, problem } }`).
   */
  health: () => HealthReport
  /** The Collections API (api/http/collections.ts), served at `/collections` when given. */
  collectionsApi?: CollectionsApi
}

export interface HealthReport {
  ok: boolean
  [component: string]: unknown
}

export function createHttpApp(opts: HttpAppOptions, context: HttpAppContext): Hono {
  const app = new Hono()
  // One cached list for both APIs.
  const ctx = { ...context, delegates: createDelegates(opts.delegates, context) }
  app.get('/healthz', (c) => {
    const report = ctx.health()
    return c.json(report, report.ok ? 200 : 503)
  })
  if (opts.psa && ctx.tokens)
    app.route('/psa', createPinningServiceApi(opts.psa, { ...ctx, tokens: ctx.tokens }))
  if (context.collectionsApi) app.route('/collections', context.collectionsApi)
  app.route('/', createClusterApi(opts.cluster, ctx))
  // Paths of neither API: answered as the cluster API (served at the root) answers.
  app.notFound((c) => clusterErrorResponse(c, notFound(c.req.method, c.req.path), ctx.log, ctx.metrics))
  app.onError((err, c) => clusterErrorResponse(c, err, ctx.log, ctx.metrics))
  return app
}
