/**
 * The ipfs-cluster-compatible API: pickup presents itself as a one-peer cluster, so clients written for
 * ipfs-cluster (`@nftstorage/ipfs-cluster`, `ipfs-cluster-ctl`) work unchanged.
 */
import { Hono } from 'hono'
import { normalizeCid } from '../../core/cid.ts'
import type { Pin, PinStatus } from '../../core/pin.ts'
import type { Clock, Logger, PinQueue, PinStore } from '../../core/ports.ts'
import { requestPin } from '../../core/request-pin.ts'
import { createSecretMatcher } from './auth.ts'
import { clusterErrorResponse } from './errors.ts'

export interface ClusterApiContext {
  pins: PinStore
  queue: PinQueue
  clock: Clock
  log: Logger
  /** Multiaddrs of live workers, handed to clients so their node can connect at once. */
  delegates: () => Promise<string[]>
}

export interface ClusterApiOptions {
  /** Accepted `Authorization: Basic <token>` values. */
  basicAuthTokens: readonly string[]
  peerId: string
  peerName: string
}

const TRACKER_STATUS: Record<PinStatus, string> = {
  queued: 'pin_queued',
  pinning: 'pinning',
  pinned: 'pinned',
  failed: 'pin_error',
}

const ZERO_TIME = '0001-01-01T00:00:00Z'

export function createClusterApi(opts: ClusterApiOptions, ctx: ClusterApiContext): Hono {
  const app = new Hono()
  const authorized = createSecretMatcher(opts.basicAuthTokens)

  app.onError((err, c) => clusterErrorResponse(c, err, ctx.log))
  app.use('/pins/*', async (c, next) => {
    const header = c.req.header('authorization') ?? ''
    const token = /^Basic\s+(\S+)$/i.exec(header)?.[1]
    if (!authorized(token)) {
      c.header('WWW-Authenticate', 'Basic realm="pickup"')
      return c.json({ code: 401, message: 'Unauthorized' }, 401)
    }
    await next()
  })

  app.post('/pins/:cid', async (c) => {
    const raw = c.req.param('cid')
    normalizeCid(raw)
    const origins = splitList(c.req.query('origins'))
    const pin = await requestPin({ cid: raw, origins }, ctx)
    const name = c.req.query('name') ?? ''
    const metadata = { ...metadataOf(c.req.queries()), delegates: (await ctx.delegates()).join(',') }
    return c.json(pinObject(raw, pin, { name, metadata, origins }))
  })

  app.get('/pins/:cid', async (c) => {
    const raw = c.req.param('cid')
    const { key } = normalizeCid(raw)
    const pin = await ctx.pins.get(key)
    return c.json(globalPinInfo(raw, pin, opts, ctx.clock.now()))
  })

  return app
}

function pinObject(
  cid: string,
  pin: Pin,
  given: { name: string; metadata: Record<string, string>; origins: string[] },
): Record<string, unknown> {
  return {
    replication_factor_min: -1,
    replication_factor_max: -1,
    name: given.name,
    mode: 'recursive',
    shard_size: 0,
    user_allocations: null,
    expire_at: ZERO_TIME,
    metadata: given.metadata,
    pin_update: null,
    origins: given.origins,
    cid,
    type: 'pin',
    allocations: [],
    max_depth: -1,
    reference: null,
    timestamp: new Date(pin.created).toISOString(),
  }
}

function globalPinInfo(
  cid: string,
  pin: Pin | undefined,
  opts: ClusterApiOptions,
  now: number,
): Record<string, unknown> {
  return {
    cid,
    name: '',
    allocations: [],
    origins: pin?.origins ?? [],
    created: new Date(pin?.created ?? now).toISOString(),
    metadata: null,
    peer_map: {
      [opts.peerId]: {
        peername: opts.peerName,
        ipfs_peer_id: opts.peerId,
        ipfs_peer_addresses: [],
        status: pin ? TRACKER_STATUS[pin.status] : 'unpinned',
        timestamp: new Date(pin?.updated ?? now).toISOString(),
        error: pin?.status === 'failed' ? (pin.error ?? '') : '',
        attempt_count: pin?.attempts ?? 0,
        priority_pin: false,
      },
    },
  }
}

function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
}

function metadataOf(queries: Record<string, string[]>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(queries)) {
    if (k.startsWith('meta-') && v[0] !== undefined) out[k.slice(5)] = v[0]
  }
  return out
}
