/**
 * pickup's HTTP API: one Hono app served by API Gateway + Lambda in AWS and by Node in local mode.
 */
import { Hono } from 'hono'
import { type ClusterApiContext, type ClusterApiOptions, createClusterApi } from './cluster.ts'

export interface HttpAppOptions {
  cluster: ClusterApiOptions
}

export interface HttpAppContext extends ClusterApiContext {
  /** Whether every component is up; `GET /healthz` answers 200 only then. */
  ready: () => boolean
}

export function createHttpApp(opts: HttpAppOptions, ctx: HttpAppContext): Hono {
  const app = new Hono()
  app.get('/healthz', (c) => (ctx.ready() ? c.json({ ok: true }) : c.json({ ok: false }, 503)))
  app.route('/', createClusterApi(opts.cluster, ctx))
  return app
}
