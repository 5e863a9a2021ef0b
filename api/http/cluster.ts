/**
 * The ipfs-cluster-compatible API: pickup presents itself as a one-peer cluster, so clients written for
 * ipfs-cluster (`@nftstorage/ipfs-cluster`, `ipfs-cluster-ctl`) work unchanged. Routes decode the request,
 * call one core function and encode the cluster's JSON shapes; errors become `{ code, message }` bodies.
 */
import { Hono, type MiddlewareHandler } from 'hono'
import { normalizeCid, parseCid } from '../../core/cid.ts'
import { CLUSTER_OWNER, clusterRequestId, pinForCluster, unpinForCluster } from '../../core/cluster.ts'
import { InvalidInputError } from '../../core/errors.ts'
import { METRICS, type Metrics } from '../../core/metrics.ts'
import { parseOrigins } from '../../core/origins.ts'
import { PIN_STATUSES, type Pin, type PinStatus } from '../../core/pin.ts'
import type { Clock, Logger, PinQueue, PinRequest, PinStore, RequestStore } from '../../core/ports.ts'
import { getRequestsWithPins, getRequestWithPin } from '../../core/requests-with-pins.ts'
import { createSecretMatcher } from './auth.ts'
import { limitBody } from './body-limit.ts'
import { clusterErrorResponse, countClientError, HttpError } from './errors.ts'

export interface ClusterApiContext {
  pins: PinStore
  requests: RequestStore
  queue: PinQueue
  clock: Clock
  log: Logger
  /** Multiaddrs of live workers, handed to clients so their node can connect at once. */
  delegates: () => Promise<string[]>
  /** Pin requests accepted and 4xx answers by reason. */
  metrics?: Metrics
}

export interface ClusterApiOptions {
  /** Accepted `Authorization: Basic <token>` values. */
  basicAuthTokens: readonly string[]
  peerId: string
  peerName: string
  /** Local mode only: accept origins on loopback and private networks. */
  allowPrivateOrigins: boolean
  version: string
}

/** Most CIDs one `GET /pins?cids=` may ask about (100 CIDv1 take about 6 KB of the query string). */
export const MAX_STATUS_CIDS = 100
/**
 * Longest query string accepted (options and metadata included): below Node's 16 KiB header limit and API
 * Gateway's request line limit, so an oversize query gets this API's 400 rather than a proxy's error.
 */
export const MAX_QUERY_BYTES = 8 * 1024
const MAX_NAME_LENGTH = 255
const MAX_META_ENTRIES = 64
const MAX_META_KEY_LENGTH = 128
const MAX_META_VALUE_LENGTH = 2048
/**
 * Most pins one `GET /pins` without `cids` examines (all statuses asked for together). A listing that would
 * need more is refused, never cut short: ~500 bytes a line keeps the answer far below Lambda's 6 MB.
 */
export const MAX_LISTED_PINS = 1000
/** Requests per DynamoDB batch read: each pair is two keys of BatchGetItem's 100. */
const STATUS_BATCH = 50
export const CLUSTER_API_VERSION = '1.0.0'
const ZERO_TIME = '0001-01-01T00:00:00Z'

/** The cluster tracker statuses pickup's pins take. */
type TrackerStatus = 'pin_queued' | 'pinning' | 'pinned' | 'pin_error' | 'unpinned'

/**
 * A pin's tracker status. An attempt still searching for the content (no block yet), or holding its first
 * block until a transfer slot frees, is `pin_queued`: nothing is being pinned yet. `pinning` is moving bytes.
 */
export function trackerStatus(pin: Pin): TrackerStatus {
  switch (pin.status) {
    case 'queued':
      return 'pin_queued'
    case 'pinning':
      return pin.progress?.phase === 'searching' || pin.progress?.phase === 'waiting'
        ? 'pin_queued'
        : 'pinning'
    case 'pinned':
      return 'pinned'
    case 'failed':
      return 'pin_error'
  }
}

/** The tracker statuses a pin of each pickup status can have: which status index pages to read. */
const TRACKER_STATUSES_OF: Record<PinStatus, readonly TrackerStatus[]> = {
  queued: ['pin_queued'],
  pinning: ['pin_queued', 'pinning'],
  pinned: ['pinned'],
  failed: ['pin_error'],
}

/** Cluster filter words and the tracker statuses each selects ('unpinned': content pickup does not have). */
const FILTERS: Record<string, readonly TrackerStatus[]> = {
  all: ['pin_queued', 'pinning', 'pinned', 'pin_error', 'unpinned'],
  pinned: ['pinned'],
  pinning: ['pinning'],
  pin_queued: ['pin_queued'],
  queued: ['pin_queued'],
  pin_error: ['pin_error'],
  error: ['pin_error'],
  cluster_error: ['pin_error'],
  unpinned: ['unpinned'],
  // Known to cluster, never true of pickup's pins.
  undefined: [],
  unpin_queued: [],
  unpinning: [],
  unpin_error: [],
  remote: [],
  sharded: [],
  unexpectedly_unpinned: [],
}

export function createClusterApi(opts: ClusterApiOptions, ctx: ClusterApiContext): Hono {
  const app = new Hono()
  const authorized = createSecretMatcher(opts.basicAuthTokens)
  const peer = { id: opts.peerId, name: opts.peerName }

  app.onError((err, c) => clusterErrorResponse(c, err, ctx.log, ctx.metrics))
  app.notFound((c) => clusterErrorResponse(c, notFound(c.req.method, c.req.path), ctx.log, ctx.metrics))
  const guard: MiddlewareHandler = async (c, next) => {
    const token = /^Basic\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1]
    if (!authorized(token)) {
      countClientError(ctx.metrics, 'cluster', 401, 'UNAUTHORIZED')
      c.header('WWW-Authenticate', 'Basic realm="pickup", charset="UTF-8"')
      return c.json({ code: 401, message: 'Unauthorized' }, 401)
    }
    const query = new URL(c.req.url).search
    if (query.length > MAX_QUERY_BYTES) {
      throw new InvalidInputError(
        'QUERY_TOO_LARGE',
        `the query string is longer than ${MAX_QUERY_BYTES} bytes`,
      )
    }
    await next()
  }
  // Only the cluster's own paths: the app also serves other APIs with other credentials. No route takes a
  // body: one is refused past the limit before anything else (api/http/body-limit.ts).
  for (const path of ['/pins', '/pins/*', '/id', '/version']) app.use(path, limitBody(), guard)

  // The cluster API version pickup speaks, with pickup's own as build metadata.
  const version = `${CLUSTER_API_VERSION}+pickup.${opts.version}`
  app.get('/version', (c) => c.json({ version }))

  app.get('/id', async (c) => {
    const addresses = await ctx.delegates()
    return c.json({
      id: peer.id,
      addresses,
      cluster_peers: [peer.id],
      cluster_peers_addresses: [],
      version,
      commit: '',
      rpc_protocol_version: '/ipfscluster/1.0/rpc',
      error: '',
      ipfs: { id: peer.id, addresses, error: '' },
      peername: peer.name,
    })
  })

  app.post('/pins/:cid', async (c) => {
    const cid = c.req.param('cid')
    const options = parsePinOptions(c.req.queries(), opts)
    // Before the write: a failure to read them must not answer an error for a pin that was made.
    const delegates = await ctx.delegates()
    const { request } = await pinForCluster(
      { cid, name: options.name, meta: options.meta, origins: options.origins },
      ctx,
    )
    ctx.metrics?.emit({ metric: METRICS.pinRequestsAccepted, value: 1, dimensions: { Api: 'cluster' } })
    return c.json(
      pinObject(
        cid,
        request,
        { ...options, metadata: { ...options.meta, delegates: delegates.join(',') } },
        peer,
      ),
    )
  })

  app.delete('/pins/:cid', async (c) => {
    const cid = c.req.param('cid')
    const removed = await unpinForCluster(cid, ctx)
    if (!removed) throw new HttpError(404, 'NOT_FOUND', `${cid} is not pinned`)
    return c.json(
      pinObject(cid, removed, { ...DEFAULT_OPTIONS, metadata: removed.meta, origins: removed.origins }, peer),
    )
  })

  app.get('/pins/:cid', async (c) => {
    const cid = c.req.param('cid')
    const { key } = normalizeCid(cid)
    const [{ request, pin }, addresses] = await Promise.all([
      getRequestWithPin(clusterRequestId(key), key, ctx),
      ctx.delegates(),
    ])
    return c.json(globalPinInfo(cid, request, pin, { ...peer, addresses }, ctx.clock.now()))
  })

  // Every line is read before the status line is sent, so a failure part-way is an error status rather than
  // a 200 missing lines (the client parses line by line and would return what it got), and the work is
  // bounded: at most MAX_STATUS_CIDS CIDs, or MAX_LISTED_PINS pins examined by a listing.
  app.get('/pins', async (c) => {
    const wanted = parseFilter(c.req.query('filter'))
    const cidsParam = c.req.query('cids')
    const cids = cidsParam === undefined ? undefined : parseCidList(cidsParam)
    const addresses = await ctx.delegates()
    const now = ctx.clock.now()
    const lines: string[] = []
    const emit = (cid: string, request?: PinRequest, pin?: Pin) => {
      if (wanted.has(request?.owner === CLUSTER_OWNER && pin ? trackerStatus(pin) : 'unpinned'))
        lines.push(`${JSON.stringify(globalPinInfo(cid, request, pin, { ...peer, addresses }, now))}\n`)
    }
    if (cids) {
      for (let i = 0; i < cids.length; i += STATUS_BATCH) {
        const batch = cids.slice(i, i + STATUS_BATCH)
        const found = await getRequestsWithPins(
          batch.map((b) => ({ requestid: clusterRequestId(b.key), cid: b.key })),
          ctx,
        )
        for (const [j, b] of batch.entries()) emit(b.given, found[j]?.request, found[j]?.pin)
      }
    } else {
      // Every pin in the wanted statuses, from the status index, page by page.
      let examined = 0
      for (const status of PIN_STATUSES) {
        if (!TRACKER_STATUSES_OF[status].some((t) => wanted.has(t))) continue
        let cursor: string | undefined
        do {
          if (examined >= MAX_LISTED_PINS) {
            bad(
              'TOO_MANY_PINS',
              `more than ${MAX_LISTED_PINS} pins to examine for this filter: ask for their status by cids ` +
                `(GET /pins?cids=, at most ${MAX_STATUS_CIDS} a request) or filter by fewer statuses`,
            )
          }
          const page = await ctx.pins.listByStatus(status, {
            limit: Math.min(STATUS_BATCH, MAX_LISTED_PINS - examined),
            cursor,
          })
          examined += page.pins.length
          const found = await getRequestsWithPins(
            page.pins.map((p) => ({ requestid: clusterRequestId(p.cid), cid: p.cid })),
            ctx,
          )
          for (const [j, p] of page.pins.entries()) {
            // Content no cluster client asked for is not in the cluster's pinset.
            if (found[j]?.request) emit(p.cid, found[j]?.request, found[j]?.pin ?? p)
          }
          cursor = page.cursor
        } while (cursor)
      }
    }
    return c.body(lines.join(''), 200, { 'Content-Type': 'application/x-ndjson' })
  })

  return app
}

interface PinOptions {
  name: string
  mode: string
  replicationMin: number
  replicationMax: number
  shardSize: number
  userAllocations: string[] | null
  expireAt: string
  pinUpdate: string | null
  origins: string[]
  meta: Record<string, string>
}

const DEFAULT_OPTIONS: PinOptions = {
  name: '',
  mode: 'recursive',
  replicationMin: -1,
  replicationMax: -1,
  shardSize: 0,
  userAllocations: null,
  expireAt: ZERO_TIME,
  pinUpdate: null,
  origins: [],
  meta: {},
}

/**
 * Every option a cluster client sends. pickup honours name, metadata and origins and echoes the rest;
 * it always stores the whole DAG, so `direct` is accepted and met by more than it asks.
 */
function parsePinOptions(queries: Record<string, string[]>, opts: ClusterApiOptions): PinOptions {
  const one = (k: string) => queries[k]?.[0]
  const options: PinOptions = { ...DEFAULT_OPTIONS, meta: {} }

  const name = one('name')
  if (name !== undefined) {
    if (name.length > MAX_NAME_LENGTH)
      bad('INVALID_NAME', `name is longer than ${MAX_NAME_LENGTH} characters`)
    options.name = name
  }
  const mode = one('mode')
  if (mode !== undefined && mode !== '') {
    if (mode !== 'recursive' && mode !== 'direct')
      bad('INVALID_MODE', `unknown mode ${JSON.stringify(mode)}: use recursive or direct`)
    options.mode = mode
  }
  options.replicationMin = integer(one('replication-min'), 'replication-min', -1) ?? -1
  options.replicationMax = integer(one('replication-max'), 'replication-max', -1) ?? -1
  options.shardSize = integer(one('shard-size'), 'shard-size', 0) ?? 0
  const allocations = one('user-allocations')
  if (allocations !== undefined) options.userAllocations = allocations.split(',').filter((a) => a.length > 0)
  const expireAt = one('expire-at')
  if (expireAt !== undefined && expireAt !== '') {
    const date = new Date(expireAt)
    if (Number.isNaN(date.getTime()))
      bad('INVALID_EXPIRE_AT', `expire-at is not a date: ${JSON.stringify(expireAt)}`)
    options.expireAt = date.toISOString()
  }
  const pinUpdate = one('pin-update')
  if (pinUpdate !== undefined && pinUpdate !== '') options.pinUpdate = parseCid(pinUpdate).toString()
  const origins = one('origins')
  if (origins !== undefined) {
    options.origins = parseOrigins(
      origins
        .split(',')
        .map((o) => o.trim())
        .filter(Boolean),
      {
        allowPrivate: opts.allowPrivateOrigins,
      },
    ).origins
  }
  for (const [key, values] of Object.entries(queries)) {
    if (!key.startsWith('meta-')) continue
    const k = key.slice('meta-'.length)
    const v = values[0] ?? ''
    if (k.length === 0 || k.length > MAX_META_KEY_LENGTH)
      bad('INVALID_META', `metadata key ${JSON.stringify(k)} is empty or too long`)
    if (v.length > MAX_META_VALUE_LENGTH)
      bad('INVALID_META', `metadata value of ${k} is longer than ${MAX_META_VALUE_LENGTH}`)
    options.meta[k] = v
  }
  if (Object.keys(options.meta).length > MAX_META_ENTRIES)
    bad('INVALID_META', `more than ${MAX_META_ENTRIES} metadata entries`)
  return options
}

function integer(value: string | undefined, name: string, min: number): number | undefined {
  if (value === undefined || value === '') return undefined
  const n = Number(value)
  if (!Number.isSafeInteger(n) || n < min)
    bad('INVALID_OPTION', `${name} must be an integer of at least ${min}`)
  return n
}

function parseFilter(value: string | undefined): Set<TrackerStatus> {
  if (value === undefined || value === '') return new Set(FILTERS.all)
  const out = new Set<TrackerStatus>()
  for (const word of value.split(',')) {
    const statuses = FILTERS[word.trim()]
    if (!statuses) bad('INVALID_FILTER', `unknown filter ${JSON.stringify(word)}`)
    for (const s of statuses) out.add(s)
  }
  return out
}

function parseCidList(value: string): Array<{ given: string; key: string }> {
  const given = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
  if (given.length > MAX_STATUS_CIDS) bad('TOO_MANY_CIDS', `at most ${MAX_STATUS_CIDS} CIDs per request`)
  return given.map((g) => ({ given: g, key: normalizeCid(g).key }))
}

/** Not one of the cluster API's routes. */
export function notFound(method: string, path: string): HttpError {
  return new HttpError(
    404,
    'NOT_FOUND',
    `no route ${method} ${path}: the cluster API has /pins, /pins/{cid}, /id and /version`,
  )
}

function bad(code: string, message: string): never {
  throw new InvalidInputError(code, message)
}

function pinObject(
  cid: string,
  request: PinRequest,
  options: PinOptions & { metadata: Record<string, string> },
  peer: { id: string },
): Record<string, unknown> {
  return {
    replication_factor_min: options.replicationMin,
    replication_factor_max: options.replicationMax,
    name: request.name ?? '',
    mode: options.mode,
    shard_size: options.shardSize,
    user_allocations: options.userAllocations,
    expire_at: options.expireAt,
    metadata: options.metadata,
    pin_update: options.pinUpdate,
    origins: request.origins,
    cid,
    type: 'pin',
    allocations: [peer.id],
    max_depth: -1,
    reference: null,
    timestamp: new Date(request.created).toISOString(),
  }
}

function globalPinInfo(
  cid: string,
  request: PinRequest | undefined,
  pin: Pin | undefined,
  peer: { id: string; name: string; addresses: string[] },
  now: number,
): Record<string, unknown> {
  // The cluster's pinset is what it claimed: content only other APIs asked for is not tracked here.
  const claimed = request?.owner === CLUSTER_OWNER ? request : undefined
  const tracked = claimed ? pin : undefined
  return {
    cid,
    name: claimed?.name ?? '',
    allocations: tracked ? [peer.id] : [],
    origins: claimed?.origins ?? [],
    created: new Date(claimed?.created ?? now).toISOString(),
    metadata: claimed?.meta ?? null,
    peer_map: {
      [peer.id]: {
        peername: peer.name,
        ipfs_peer_id: peer.id,
        ipfs_peer_addresses: peer.addresses,
        status: tracked ? trackerStatus(tracked) : 'unpinned',
        timestamp: new Date(tracked?.updated ?? now).toISOString(),
        error: tracked?.status === 'failed' ? (tracked.error ?? '') : '',
        attempt_count: tracked?.attempts ?? 0,
        priority_pin: false,
      },
    },
  }
}
