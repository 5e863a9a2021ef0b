/**
 * The IPFS Pinning Service API (v1.0.0, `/work/shared/reference/ipfs-pinning-service.yaml`), mounted under
 * `/psa`: clients are configured with `<api>/psa` and append `/pins`. Bearer tokens, one user each; a user
 * sees only its own requests. Routes decode (./decode.ts), call one core function (core/psa-requests.ts) and
 * encode (./encode.ts); every error goes through ./errors.ts.
 */
import { Hono } from 'hono'
import { cors } from 'hono/cors'
import { METRICS, type Metrics } from '../../../core/metrics.ts'
import type { Clock, Logger, PinQueue, PinStore, RequestStore, TokenStore } from '../../../core/ports.ts'
import {
  createPsaRequest,
  deletePsaRequest,
  getPsaRequest,
  listPsaRequests,
  replacePsaRequest,
} from '../../../core/psa-requests.ts'
import { type BearerEnv, bearerAuth } from '../bearer-auth.ts'
import { limitBody } from '../body-limit.ts'
import { HttpError } from '../errors.ts'
import { decodeListQuery, decodePinBody, MAX_BODY_BYTES } from './decode.ts'
import { pinResultsJson, pinStatusJson } from './encode.ts'
import { psaErrorResponse } from './errors.ts'

export interface PinningServiceApiContext {
  requests: RequestStore
  pins: PinStore
  queue: PinQueue
  tokens: TokenStore
  clock: Clock
  log: Logger
  /** Delegates (core/delegates.ts), shared with the cluster API; possibly none. */
  delegates: () => Promise<string[]>
  /** Pin requests accepted and 4xx answers by reason. */
  metrics?: Metrics
}

export interface PinningServiceApiOptions {
  /** Local mode only: dial origins on loopback and private networks. */
  allowPrivateOrigins: boolean
}

type Env = BearerEnv

const PSA = { Api: 'psa' }

export function createPinningServiceApi(
  opts: PinningServiceApiOptions,
  ctx: PinningServiceApiContext,
): Hono<Env> {
  const app = new Hono<Env>()
  // A PinStatus needs 1 to 20 delegates: with none at all (no worker live and no fallback configured) no
  // valid answer can be written. Routes that write resolve them first, so a 503 means nothing changed: a
  // client's retry neither duplicates a create nor loses the new requestid of a replace.
  const delegates = async () => {
    const list = await ctx.delegates()
    if (list.length === 0) {
      throw new HttpError(
        503,
        'SERVICE_UNAVAILABLE',
        'no IPFS peer is available to act as a delegate; try again soon',
      )
    }
    return list
  }
  const core = { ...ctx, allowPrivateOrigins: opts.allowPrivateOrigins }

  app.onError((err, c) => psaErrorResponse(c, err, ctx.log, ctx.metrics))
  const accepted = () => ctx.metrics?.emit({ metric: METRICS.pinRequestsAccepted, value: 1, dimensions: PSA })
  // Browsers (Helia's remote pinning in a web page) call from other origins. Tokens travel in a header,
  // never in cookies, so any origin may ask; preflights are answered before authentication.
  app.use(
    '*',
    cors({
      origin: '*',
      allowMethods: ['GET', 'POST', 'DELETE'],
      allowHeaders: ['Authorization', 'Content-Type'],
      maxAge: 86_400,
    }),
  )

  // Before authentication: an oversize body costs no token lookup.
  app.use('*', limitBody(MAX_BODY_BYTES))
  app.use('*', bearerAuth(ctx))
  app.get('/pins', async (c) => {
    const query = decodeListQuery(new URL(c.req.url).searchParams)
    const result = await listPsaRequests({ user: c.get('user'), query }, core)
    return c.json(
      pinResultsJson(result, result.results.length > 0 ? await delegates() : [], ctx.clock.now()),
      200,
    )
  })

  app.post('/pins', async (c) => {
    const pin = decodePinBody(await c.req.text())
    const addrs = await delegates()
    const created = await createPsaRequest({ user: c.get('user'), pin }, core)
    accepted()
    return c.json(pinStatusJson(created, addrs, ctx.clock.now()), 202)
  })

  app.get('/pins/:requestid', async (c) => {
    const [found, addrs] = await Promise.all([
      getPsaRequest({ user: c.get('user'), requestid: c.req.param('requestid') }, core),
      delegates(),
    ])
    return c.json(pinStatusJson(found, addrs, ctx.clock.now()), 200)
  })

  app.post('/pins/:requestid', async (c) => {
    const pin = decodePinBody(await c.req.text())
    const addrs = await delegates()
    const replaced = await replacePsaRequest(
      { user: c.get('user'), requestid: c.req.param('requestid'), pin },
      core,
    )
    accepted()
    return c.json(pinStatusJson(replaced, addrs, ctx.clock.now()), 202)
  })

  app.delete('/pins/:requestid', async (c) => {
    await deletePsaRequest({ user: c.get('user'), requestid: c.req.param('requestid') }, core)
    return c.body(null, 202)
  })

  app.all('/pins', () => {
    throw new HttpError(405, 'METHOD_NOT_ALLOWED', '/pins accepts GET and POST')
  })
  app.all('/pins/:requestid', () => {
    throw new HttpError(405, 'METHOD_NOT_ALLOWED', '/pins/{requestid} accepts GET, POST and DELETE')
  })
  app.all('*', () => {
    throw new HttpError(404, 'NOT_FOUND', 'the Pinning Service API has /pins and /pins/{requestid}')
  })
  return app
}
