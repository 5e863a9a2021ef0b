/**
 * The Collections API (pickup's own, beside the cluster API and the Pinning Service API), mounted at
 * `/collections`: Bearer tokens of the Pinning Service API's users, errors in the Pinning Service API's
 * `Failure` shape (`{"error":{"reason","details"}}`) through its mapping point. Routes decode, call one core
 * function (core/collections/archive.ts) and encode.
 */
import { Hono } from 'hono'
import {
  addCollection,
  type CollectionContext,
  type CollectionJobs,
  collectionSummary,
  getCollection,
  removeCollection,
} from '../../core/collections/archive.ts'
import {
  type CollectionRecord,
  type CollectionToken,
  collectionRecordJson,
  emptySummary,
  TOKEN_STATUSES,
  type TokenStatus,
} from '../../core/collections/model.ts'
import { METRICS, type Metrics } from '../../core/metrics.ts'
import type { Logger, TokenStore } from '../../core/ports.ts'
import { type BearerEnv, bearerAuth } from './bearer-auth.ts'
import { limitBody } from './body-limit.ts'
import { HttpError } from './errors.ts'
import { psaErrorResponse } from './psa/errors.ts'

export interface CollectionsApiContext extends CollectionContext {
  tokens: TokenStore
  jobs: CollectionJobs
  /** Chain ids with a configured JSON-RPC endpoint. */
  chains: ReadonlySet<number>
  log: Logger
  /** A collection accepted counts as a pin request of this API; its 4xx answers by reason. */
  metrics?: Metrics
}

const MAX_BODY_BYTES = 4096
const MAX_LIMIT = 1000

type Env = BearerEnv

export type CollectionsApi = Hono<Env>

export function createCollectionsApi(ctx: CollectionsApiContext): CollectionsApi {
  const app = new Hono<Env>()
  app.onError((err, c) => psaErrorResponse(c, err, ctx.log, ctx.metrics, 'collections'))
  app.use('*', limitBody(MAX_BODY_BYTES))
  app.use('*', bearerAuth(ctx))

  app.post('/', async (c) => {
    let body: unknown
    try {
      body = JSON.parse(await c.req.text())
    } catch {
      throw new HttpError(400, 'BAD_JSON', 'the body must be a JSON object')
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new HttpError(400, 'BAD_JSON', 'the body must be a JSON object')
    const b = body as Record<string, unknown>
    const { record } = await addCollection(
      { user: c.get('user'), chainId: b.chainId, address: b.address, name: b.name, follow: b.follow },
      ctx,
    )
    ctx.metrics?.emit({ metric: METRICS.pinRequestsAccepted, value: 1, dimensions: { Api: 'collections' } })
    return c.json(await collectionJson(record, ctx), 202)
  })

  app.get('/', async (c) => {
    const limit = decodeLimit(c.req.query('limit'), 100)
    const cursor = c.req.query('cursor')
    const page = await ctx.collections.listByOwner(`psa:${c.get('user')}`, {
      limit,
      ...(cursor ? { cursor } : {}),
    })
    return c.json({
      results: page.collections.map(collectionRecordJson),
      ...(page.cursor ? { cursor: page.cursor } : {}),
    })
  })

  app.get('/:id', async (c) => {
    const record = await getCollection({ user: c.get('user'), id: c.req.param('id') }, ctx)
    return c.json(await collectionJson(record, ctx))
  })

  app.get('/:id/tokens', async (c) => {
    const record = await getCollection({ user: c.get('user'), id: c.req.param('id') }, ctx)
    const limit = decodeLimit(c.req.query('limit'), 100)
    const status = c.req.query('status')
    if (status !== undefined && !(TOKEN_STATUSES as readonly string[]).includes(status))
      throw new HttpError(400, 'INVALID_STATUS', `status must be one of ${TOKEN_STATUSES.join(', ')}`)
    const cursor = c.req.query('cursor')
    const page = await ctx.collections.listTokens(record.id, {
      limit,
      ...(cursor ? { cursor } : {}),
      ...(status ? { status: status as TokenStatus } : {}),
    })
    return c.json({ results: page.tokens.map(tokenJson), ...(page.cursor ? { cursor: page.cursor } : {}) })
  })

  app.delete('/:id', async (c) => {
    await removeCollection({ user: c.get('user'), id: c.req.param('id') }, ctx)
    return c.body(null, 202)
  })

  return app
}

function decodeLimit(text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback
  const n = Number(text)
  if (!/^[0-9]+$/.test(text) || n < 1 || n > MAX_LIMIT)
    throw new HttpError(400, 'INVALID_LIMIT', `limit must be an integer from 1 to ${MAX_LIMIT}`)
  return n
}

/** The record and its stored counts (one read; `counted`: when they were counted, absent before the first). */
async function collectionJson(
  r: CollectionRecord,
  ctx: Pick<CollectionContext, 'collections' | 'pins' | 'clock'>,
) {
  const summary = await collectionSummary(r, ctx)
  if (!summary) return { ...collectionRecordJson(r), ...emptySummary() }
  const { asOf, tokens, cids } = summary
  return { ...collectionRecordJson(r), tokens, cids, counted: new Date(asOf).toISOString() }
}

function tokenJson(t: CollectionToken) {
  return {
    tokenId: t.tokenId,
    ...(t.tokenURI !== undefined
      ? { tokenURI: t.tokenURI.length > 1024 ? `${t.tokenURI.slice(0, 1024)}…` : t.tokenURI }
      : {}),
    metadata: refJson(t.metadata),
    media: t.media.map(refJson),
  }
}

/** A token's reference with its fetch time (web content) in ISO 8601, like every time the API shows. */
function refJson<T extends CollectionToken['metadata']>(r: T) {
  return r.fetched === undefined ? r : { ...r, fetched: new Date(r.fetched).toISOString() }
}
