/**
 * Archiving a collection, in three re-entrant steps, each safe to run again after a crash:
 *
 * 1. `addCollection`: one record per (user, chain, contract), status `enumerating`, and a job for step 2.
 * 2. `enumerateCollection`: pages of tokens from the enumerator; each token's URI resolved; every distinct
 *    root CID (a directory holding many tokens' files is one) requested once, as an ordinary pin request
 *    owned by `collection:<id>`; tokens stored; the checkpoint saved after each page. Then `archiving`.
 * 3. `advanceCollection`: for tokens still pending, reads each stored (verified) metadata file out of its
 *    root's CAR, resolves the media it names and requests their roots; marks what was archived or failed
 *    (with the pin's error). When nothing is pending, `done`.
 *
 * The pins are the pipeline's own: fetched by the workers, verified by the validator, shared with any other
 * request for the same content. Deleting a collection deletes its requests; content nobody else wants is
 * swept as usual.
 */
import { randomUUID } from 'node:crypto'
import { psaOwner } from '../access-tokens.ts'
import { CollectionNotFoundError, InvalidInputError, PickupError } from '../errors.ts'
import type { Pin } from '../pin.ts'
import type { Clock, PinQueue, PinStore, RequestStore } from '../ports.ts'
import { requestPin } from '../request-pin.ts'
import { deleteRequest } from '../unreferenced-content.ts'
import type { CollectionEnumerator, EnumeratedToken } from './enumeration.ts'
import {
  type CollectionRecord,
  type CollectionRoot,
  type CollectionSummary,
  type CollectionToken,
  type ContentRef,
  collectionId,
  collectionOwner,
  emptySummary,
  type MediaEntry,
  rootRequest,
  rootRequestId,
  type StoredSummary,
  tokenStatus,
} from './model.ts'
import type { CollectionPatch, CollectionStore } from './ports.ts'
import { mediaRefs, parseMetadata, type ResolvedUri, resolveUri } from './resolve.ts'
import { archiveWebContent, type WebArchived, type WebArchivePorts } from './web.ts'

/**
 * A step of a collection's chain of jobs. The collection names the one job that may run (`jobId`), so a chain
 * is never doubled: core/collections/jobs.ts, `claimCollectionJob`.
 */
export interface CollectionJob {
  collectionId: string
  step: 'enumerate' | 'advance'
  /** Absent only on jobs sent before jobs had ids (the first such job to run gives itself one). */
  id?: string
  /** The job that sent this one: while the collection still names it, this one takes its place. */
  prev?: string
  /** Sent by the follow tick: taking its place also moves the collection from `done` to `enumerating`. */
  follow?: true
}

/** A new job's id. */
export function newJobId(): string {
  return randomUUID()
}

/** A job as a message body: `{ collectionId, step, id?, prev?, follow? }` as JSON. */
export function encodeCollectionJob(job: CollectionJob): string {
  return JSON.stringify({
    collectionId: job.collectionId,
    step: job.step,
    ...(job.id !== undefined ? { id: job.id } : {}),
    ...(job.prev !== undefined ? { prev: job.prev } : {}),
    ...(job.follow ? { follow: true } : {}),
  })
}

/** The job in a message body (`encodeCollectionJob`'s); undefined when the body is not one. */
export function parseCollectionJob(body: string): CollectionJob | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(body)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const { collectionId, step, id, prev, follow } = parsed as Record<string, unknown>
  if (typeof collectionId !== 'string' || collectionId.length === 0) return undefined
  if (step !== 'enumerate' && step !== 'advance') return undefined
  if (id !== undefined && (typeof id !== 'string' || id.length === 0)) return undefined
  if (prev !== undefined && (typeof prev !== 'string' || prev.length === 0)) return undefined
  if (follow !== undefined && follow !== true) return undefined
  // A follow job, or one taking another's place, has an id of its own.
  if ((follow || prev !== undefined) && id === undefined) return undefined
  return {
    collectionId,
    step,
    ...(id !== undefined ? { id } : {}),
    ...(prev !== undefined ? { prev } : {}),
    ...(follow ? { follow: true as const } : {}),
  }
}

/** Where enumeration jobs go (SQS in AWS and in local mode: adapters/sqs/collection-jobs.ts). */
export interface CollectionJobs {
  send(job: CollectionJob, opts?: { delaySeconds?: number }): Promise<void>
}

/** Reads a file out of a pin's stored CAR, every block verified against its CID. */
export interface StoredContentReader {
  /** The UnixFS file (or raw block) at `path` under the pin's root; throws a PickupError when it is not there. */
  readFile(pin: Pin, path: string, opts: { maxBytes: number; signal?: AbortSignal }): Promise<Uint8Array>
}

export interface CollectionContext {
  collections: CollectionStore
  requests: RequestStore
  pins: PinStore
  queue: PinQueue
  clock: Clock
}

/** A client's mistake in a collection request: a 400 with its code wherever InvalidInputError is one. */
export class InvalidCollectionError extends InvalidInputError {}

/** Passes that fetch a web URL before a transient failure counts as final. */
export const WEB_FETCH_ATTEMPTS = 3

/**
 * Most web URLs one archiving pass remembers the outcome of (so that tokens sharing a URL fetch it once):
 * the most recent ones. A URL forgotten and met again is fetched again: the same bytes give the same CID and
 * the same request, so it costs a fetch, never a second pin.
 */
const WEB_PASS_MEMORY = 10_000

/** Remembers `value` under `key`, forgetting the oldest entries past `max` (a Map keeps insertion order). */
export function rememberBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  for (const oldest of map.keys()) {
    if (map.size <= max) break
    map.delete(oldest)
  }
}

/** Largest metadata file read (JSON; anything bigger is not metadata). */
export const MAX_METADATA_BYTES = 1024 * 1024
/** Largest token URI kept in a token's record (an on-chain data: URI, say); longer is reported, not kept. */
export const MAX_TOKEN_URI_BYTES = 256 * 1024

const ADDRESS = /^0x[0-9a-fA-F]{40}$/

export interface AddCollectionInput {
  user: string
  chainId: unknown
  address: unknown
  name?: unknown
  follow?: unknown
}

/**
 * Validates and records the collection (or finds the one the user already has: enumerating again when it
 * had finished, to pick up new tokens) and sends the enumeration job. `chains` are the chain ids an RPC
 * endpoint is configured for.
 */
export async function addCollection(
  input: AddCollectionInput,
  ctx: Pick<CollectionContext, 'collections' | 'clock'> & {
    jobs: CollectionJobs
    chains: ReadonlySet<number>
  },
): Promise<{ record: CollectionRecord; created: boolean }> {
  const { chainId, address } = input
  if (typeof chainId !== 'number' || !Number.isSafeInteger(chainId) || chainId < 1)
    throw new InvalidCollectionError('INVALID_CHAIN_ID', 'chainId must be a positive integer')
  if (!ctx.chains.has(chainId))
    throw new InvalidCollectionError(
      'UNKNOWN_CHAIN',
      `no JSON-RPC endpoint is configured for chain ${chainId}`,
    )
  if (typeof address !== 'string' || !ADDRESS.test(address))
    throw new InvalidCollectionError(
      'INVALID_ADDRESS',
      'address must be a contract address: 0x and 40 hex digits',
    )
  if (input.name !== undefined && (typeof input.name !== 'string' || input.name.length > 255))
    throw new InvalidCollectionError('INVALID_NAME', 'name must be a string of at most 255 characters')
  if (input.follow !== undefined && typeof input.follow !== 'boolean')
    throw new InvalidCollectionError('INVALID_FOLLOW', 'follow must be a boolean')
  const owner = psaOwner(input.user)
  const now = ctx.clock.now()
  const lower = address.toLowerCase()
  const record: CollectionRecord = {
    id: collectionId(owner, chainId, lower),
    owner,
    chainId,
    address: lower,
    ...(typeof input.name === 'string' ? { name: input.name } : {}),
    follow: input.follow === true,
    status: 'enumerating',
    jobId: newJobId(),
    created: now,
    updated: now,
  }
  const stored = await ctx.collections.create(record)
  let result = stored.record
  // Posted again with `follow`: following starts or stops (from now: checked by the next tick).
  const follow: CollectionPatch =
    !stored.created && typeof input.follow === 'boolean' && input.follow !== result.follow
      ? { follow: input.follow, ...(input.follow ? { followChecked: 0 } : {}) }
      : {}
  if (
    !stored.created &&
    result.deleting === undefined &&
    (result.status === 'done' || result.status === 'failed')
  ) {
    // Again: enumerate from where it stopped (a log scan continues past its last block) for new tokens.
    const restarted = await ctx.collections.update(
      result.id,
      {
        status: 'enumerating',
        jobId: newJobId(),
        ...follow,
        remove: ['error', ...restartCheckpoint(result)],
      },
      now,
      { ifStatus: ['done', 'failed'] },
    )
    if (restarted) result = restarted
  } else if (follow.follow !== undefined)
    result = (await ctx.collections.update(result.id, follow, now)) ?? result
  // The job the collection names: new, or a copy when it was enumerating already (of a job that runs, a copy
  // is dropped once either has handed over; it restarts one that never arrived).
  if (result.deleting === undefined && (stored.created || result.status === 'enumerating'))
    await ctx.jobs.send({
      collectionId: result.id,
      step: 'enumerate',
      ...(result.jobId !== undefined ? { id: result.jobId } : {}),
    })
  return { record: result, created: stored.created }
}

/** Index enumeration starts over (totalSupply may have grown); a log scan resumes after its last block. */
function restartCheckpoint(r: CollectionRecord): Array<'checkpoint'> {
  return r.checkpoint?.method === 'logs' ? [] : ['checkpoint']
}

export async function getCollection(
  input: { user: string; id: string },
  ctx: Pick<CollectionContext, 'collections'>,
): Promise<CollectionRecord> {
  const record = await ctx.collections.get(input.id)
  if (!record || record.owner !== psaOwner(input.user)) throw new CollectionNotFoundError()
  return record
}

/** Step 2. `maxPages` bounds one run (a Lambda's time): it answers whether enumeration finished. */
export async function enumerateCollection(
  input: { collectionId: string; maxPages?: number; signal?: AbortSignal },
  ctx: CollectionContext & { enumerator: CollectionEnumerator },
): Promise<{ finished: boolean; tokens: number }> {
  const c = await ctx.collections.get(input.collectionId)
  if (c?.status !== 'enumerating') return { finished: true, tokens: 0 }
  let pages = 0
  let tokens = 0
  try {
    for await (const page of ctx.enumerator.enumerate(
      { chainId: c.chainId, address: c.address, ...(c.checkpoint ? { checkpoint: c.checkpoint } : {}) },
      input.signal ? { signal: input.signal } : {},
    )) {
      const now = ctx.clock.now()
      const fresh: CollectionToken[] = []
      const known = await ctx.collections.getTokens(
        c.id,
        page.tokens.map((t) => t.tokenId),
      )
      for (const t of page.tokens) {
        const existing = known.get(t.tokenId)
        // A token seen before with the same URI keeps what archiving found out about it.
        if (existing && existing.tokenURI === t.uri) continue
        fresh.push(buildToken(c.id, t, now))
      }
      // Requests before tokens: a page redone after a crash finds its tokens new again and requests again.
      if (!(await pinRoots(c, fresh.flatMap(refsToPin), ctx))) return { finished: true, tokens } // deleted
      await ctx.collections.putTokens(fresh)
      tokens += page.tokens.length
      const kept = await ctx.collections.update(
        c.id,
        { checkpoint: page.checkpoint, standard: page.standard },
        ctx.clock.now(),
        { ifStatus: ['enumerating'] },
      )
      if (!kept) return { finished: true, tokens } // deleted meanwhile
      if (++pages === input.maxPages) return { finished: false, tokens }
    }
  } catch (err) {
    if (input.signal?.aborted || !(err instanceof Error) || !isPermanent(err)) throw err
    await ctx.collections.update(
      c.id,
      { status: 'failed', error: `${codeOf(err)}: ${err.message}` },
      ctx.clock.now(),
      { ifStatus: ['enumerating'] },
    )
    return { finished: true, tokens }
  }
  const archiving = await ctx.collections.update(c.id, { status: 'archiving' }, ctx.clock.now(), {
    ifStatus: ['enumerating'],
  })
  // The tokens found are counted once enumeration ends (then by every archiving pass).
  if (archiving) await recountCollection(c.id, ctx)
  return { finished: true, tokens }
}

/** Not worth retrying: the contract is not an NFT, say. Provider failures are thrown for a retry. */
function isPermanent(err: Error): boolean {
  return (err instanceof PickupError && !err.retryable) || err.name === 'NotAnNftContractError'
}

function codeOf(err: Error): string {
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' ? code : err.name
}

function buildToken(collectionId: string, t: EnumeratedToken, now: number): CollectionToken {
  const base = { collectionId, tokenId: t.tokenId, media: [] as MediaEntry[], updated: now }
  if (t.uri === undefined)
    return { ...base, metadata: failedRef('', 'unsupported', `TOKEN_URI_UNREADABLE: ${t.error ?? 'no URI'}`) }
  if (Buffer.byteLength(t.uri) > MAX_TOKEN_URI_BYTES)
    return {
      ...base,
      metadata: failedRef(
        t.uri.slice(0, 256),
        'unsupported',
        `TOKEN_URI_TOO_LONG: over ${MAX_TOKEN_URI_BYTES} bytes`,
      ),
    }
  const resolved = resolveUri(t.uri)
  const token: CollectionToken = { ...base, tokenURI: t.uri, metadata: toRef(resolved) }
  if (resolved.kind === 'data') {
    const json = parseMetadata(resolved.bytes)
    if (json === undefined)
      token.metadata = failedRef(resolved.uri, 'data', 'INVALID_METADATA: not a JSON object')
    else token.media = mediaOf(json)
  }
  return token
}

function mediaOf(json: Record<string, unknown>): MediaEntry[] {
  return mediaRefs(json).map((m) => ({ field: m.field, ...toRef(resolveUri(m.uri)) }))
}

function toRef(r: ResolvedUri): ContentRef {
  switch (r.kind) {
    case 'ipfs':
      return { uri: r.uri, kind: 'ipfs', cid: r.cid, path: r.path, cidSource: 'chain', status: 'pending' }
    case 'data':
      return { uri: r.uri, kind: 'data', status: 'archived' }
    case 'web':
      // Fetched and imported by pickup when archiving advances (core/collections/web.ts).
      return { uri: r.uri, kind: 'web', url: r.url, status: 'pending' }
    case 'unsupported':
      return failedRef(r.uri, 'unsupported', `UNSUPPORTED_URI: ${r.reason}`)
  }
}

function failedRef(uri: string, kind: ContentRef['kind'], error: string): ContentRef {
  return { uri, kind, status: 'failed', error }
}

/** Roots of references waiting for their pin: IPFS content, and web content once imported. */
function storedRefs(t: CollectionToken): string[] {
  return [t.metadata, ...t.media].flatMap((r) => (r.status === 'pending' && r.cid ? [r.cid] : []))
}

/**
 * One pass's web imports: what became of each URL (archived, or the error it failed with: many tokens can
 * share one), and until when imports may start.
 */
interface WebPass {
  collection: CollectionRecord
  /** At most WEB_PASS_MEMORY URLs, the most recent. */
  archived: Map<string, WebArchived | { error: string; retryable: boolean }>
  /** Roots the imports requested since the page began (whether the import then succeeded or not). */
  roots: CollectionRoot[]
  until?: number
}

/** Fetches and imports the token's web references not imported yet (core/collections/web.ts). */
async function importWeb(
  token: CollectionToken,
  pass: WebPass,
  ctx: CollectionContext & { web?: WebArchivePorts },
  signal: AbortSignal | undefined,
): Promise<CollectionToken> {
  const one = async <T extends ContentRef>(ref: T): Promise<T> => {
    if (ref.kind !== 'web' || ref.status !== 'pending' || ref.cid) return ref
    const url = ref.url ?? ref.uri
    if (!ctx.web)
      return {
        ...ref,
        status: 'failed',
        error: `WEB_CONTENT_NOT_ARCHIVED: web import is not configured here`,
      }
    let archived = pass.archived.get(url)
    if (!archived) {
      if (pass.until !== undefined && ctx.clock.now() >= pass.until) return ref // the next pass
      try {
        archived = await archiveWebContent(
          {
            collection: pass.collection,
            url,
            onRequest: (root) => pass.roots.push(root),
            ...(signal ? { signal } : {}),
          },
          { ...ctx, ...ctx.web },
        )
      } catch (err) {
        if (!(err instanceof PickupError) || signal?.aborted) throw err
        archived = { error: `${err.code}: ${err.message}`, retryable: err.retryable }
      }
      rememberBounded(pass.archived, url, archived, WEB_PASS_MEMORY)
    }
    if ('error' in archived) {
      // A transient failure (5xx, 429, a timeout, a refused connection) is tried again on later passes.
      const attempts = (ref.attempts ?? 0) + 1
      if (archived.retryable && attempts < WEB_FETCH_ATTEMPTS)
        return { ...ref, attempts, error: archived.error }
      return { ...ref, attempts, status: 'failed', error: archived.error }
    }
    const { error: _error, ...rest } = ref
    return {
      ...(rest as T),
      cid: archived.cid,
      path: '',
      cidSource: 'pickup',
      url: archived.url,
      fetched: archived.fetched,
    }
  }
  const metadata = await one(token.metadata)
  const media: MediaEntry[] = []
  for (const m of token.media) media.push(await one(m))
  if (metadata === token.metadata && media.every((m, i) => m === token.media[i])) return token
  return { ...token, metadata, media, updated: ctx.clock.now() }
}

function refsToPin(t: CollectionToken): string[] {
  return [t.metadata, ...t.media].flatMap((r) =>
    r.kind === 'ipfs' && r.status === 'pending' && r.cid ? [r.cid] : [],
  )
}

/**
 * One request per distinct root, owned by the collection; idempotent (requestids derive from the root).
 * Answers false when the collection is being deleted or is gone: the requests are released (`releaseIfDeleted`).
 *
 * A delete racing this: `removeCollection` sets the tombstone, then lists the roots and deletes their
 * requests, then the record. Here the roots are recorded first, then the requests made, then the record read
 * again (a consistent read). If that read finds no tombstone, the delete set it later, so its listing of the
 * roots (later still) finds these roots and deletes their requests. If it finds one (or no record), the delete
 * may have listed the roots before they were recorded: this call deletes the requests of every root. Either way no
 * request outlives its collection; both may delete one, which is harmless.
 */
async function pinRoots(
  c: CollectionRecord,
  cids: readonly string[],
  ctx: CollectionContext,
): Promise<boolean> {
  const distinct = [...new Set(cids)]
  if (distinct.length === 0) return true
  const owner = collectionOwner(c.id)
  const roots: CollectionRoot[] = distinct.map((cid) => ({ cid, requestid: rootRequestId(c.id, cid) }))
  // The roots first: a collection deleted meanwhile finds every request it made through them.
  await ctx.collections.putRoots(c.id, roots)
  const made: CollectionRoot[] = []
  for (const root of roots) {
    const { cid, requestid } = root
    if (await ctx.requests.get(requestid)) continue
    const pin = await requestPin({ cid, origins: [], requester: owner }, ctx)
    const created = await ctx.requests.reserveCreated(owner, ctx.clock.now())
    await ctx.requests.put(rootRequest(c, root, { created, pinned: pin.status === 'pinned' }))
    made.push(root)
  }
  return made.length === 0 || releaseIfDeleted(c, made, ctx)
}

/**
 * After a step made requests for `roots` (recorded as the collection's roots first): true while the
 * collection is wanted. When it is being deleted or is gone, the delete may have listed the roots before this
 * step recorded these, or deleted them with the record: their requests are deleted here (releasing content
 * nobody else wants), with those of every root still listed, and, if the record is gone, what the step wrote
 * under it since (roots, tokens); false.
 */
async function releaseIfDeleted(
  c: CollectionRecord,
  roots: readonly CollectionRoot[],
  ctx: CollectionContext,
): Promise<boolean> {
  const now = await ctx.collections.get(c.id)
  if (now !== undefined && now.deleting === undefined) return true
  for (const root of roots) await deleteRequest(root, ctx)
  await releaseListedRoots(c.id, ctx)
  if (now === undefined) await ctx.collections.delete(c.id)
  return false
}

/** Deletes the request of every root the collection lists (content nobody else wants is released). */
async function releaseListedRoots(
  id: string,
  ctx: Pick<CollectionContext, 'collections' | 'requests' | 'pins' | 'clock'>,
): Promise<void> {
  let cursor: string | undefined
  do {
    const page = await ctx.collections.listRoots(id, { limit: 100, ...(cursor ? { cursor } : {}) })
    for (const root of page.roots) await deleteRequest(root, ctx)
    cursor = page.cursor
  } while (cursor)
}

/** Step 3: one pass over the tokens still incomplete. Answers whether the collection is done. */
export async function advanceCollection(
  input: {
    collectionId: string
    signal?: AbortSignal
    /** No web import starts after this (epoch ms): a Lambda's pass must end within its time. */
    webUntil?: number
  },
  ctx: CollectionContext & { reader: StoredContentReader; web?: WebArchivePorts },
): Promise<{ done: boolean; changed: number }> {
  const c = await ctx.collections.get(input.collectionId)
  if (c?.status !== 'archiving') return { done: c?.status === 'done', changed: 0 }
  const started = ctx.clock.now()
  const summary = emptySummary()
  const count = (t: CollectionToken) => {
    summary.tokens.total++
    summary.tokens[tokenStatus(t)]++
  }
  let pending = 0
  let changed = 0
  let cursor: string | undefined
  const web: WebPass = {
    collection: c,
    archived: new Map(),
    roots: [],
    ...(input.webUntil ? { until: input.webUntil } : {}),
  }
  do {
    // Every token, not only the incomplete: the pass counts them (see recountCollection).
    const page = await ctx.collections.listTokens(c.id, { limit: 100, ...(cursor ? { cursor } : {}) })
    cursor = page.cursor
    const cids = page.tokens.flatMap(storedRefs)
    const pins = await ctx.pins.getMany([...new Set(cids)])
    const updated: CollectionToken[] = []
    for (const token of page.tokens) {
      if (tokenStatus(token) !== 'incomplete') {
        count(token)
        continue
      }
      let next = await advanceToken(token, pins, ctx, input.signal)
      next = await importWeb(next, web, ctx, input.signal)
      if (next !== token) updated.push(next)
      if ([next.metadata, ...next.media].some((r) => r.status === 'pending')) pending++
      count(next)
    }
    // Requests before tokens, as in enumeration: a pending media file always has its request. Web content
    // imported on this page was requested by its import (core/collections/web.ts), its root recorded first.
    if (!(await pinRoots(c, updated.flatMap(refsToPin), ctx))) return { done: false, changed } // deleted
    const imported = web.roots.splice(0)
    if (imported.length > 0 && !(await releaseIfDeleted(c, imported, ctx))) return { done: false, changed }
    await ctx.collections.putTokens(updated)
    changed += updated.length
  } while (cursor)
  summary.cids = await countRoots(c.id, ctx)
  await ctx.collections.putSummary(c.id, { asOf: started, ...summary })
  if (pending > 0) return { done: false, changed }
  const done = await ctx.collections.update(c.id, { status: 'done' }, ctx.clock.now(), {
    ifStatus: ['archiving'],
  })
  return { done: done !== undefined, changed }
}

async function advanceToken(
  token: CollectionToken,
  pins: Map<string, Pin>,
  ctx: CollectionContext & { reader: StoredContentReader },
  signal: AbortSignal | undefined,
): Promise<CollectionToken> {
  let next = token
  const now = ctx.clock.now()
  const m = token.metadata
  if (m.status === 'pending' && m.cid) {
    const pin = pins.get(m.cid)
    const settled = settleRef(m, pin)
    if (settled.status === 'archived' && pin) {
      try {
        const bytes = await ctx.reader.readFile(pin, m.path ?? '', {
          maxBytes: MAX_METADATA_BYTES,
          ...(signal ? { signal } : {}),
        })
        const json = parseMetadata(bytes)
        next =
          json === undefined
            ? {
                ...token,
                metadata: { ...m, status: 'failed', error: 'INVALID_METADATA: not a JSON object' },
                updated: now,
              }
            : { ...token, metadata: { ...m, status: 'archived' }, media: mediaOf(json), updated: now }
      } catch (err) {
        if (!(err instanceof PickupError) || err.retryable) throw err
        next = {
          ...token,
          metadata: { ...m, status: 'failed', error: `${err.code}: ${err.message}` },
          updated: now,
        }
      }
    } else if (settled !== m) next = { ...token, metadata: settled, updated: now }
  }
  const media = next.media.map((r) => (r.status === 'pending' && r.cid ? settleRef(r, pins.get(r.cid)) : r))
  if (media.some((r, i) => r !== next.media[i])) next = { ...next, media, updated: now }
  return next
}

/** The ref as its pin says: archived once pinned, failed with the pin's error once failed. */
function settleRef<T extends ContentRef>(ref: T, pin: Pin | undefined): T {
  if (pin === undefined && ref.kind === 'web') {
    // Its pin went away (swept): imported again on this pass.
    const { cid: _cid, path: _path, cidSource: _source, fetched: _fetched, ...rest } = ref
    return rest as T
  }
  if (pin === undefined) return ref // requested again by pinRoots on this pass
  if (pin.status === 'pinned') return { ...ref, status: 'archived' }
  if (pin.status === 'failed')
    return { ...ref, status: 'failed', error: pin.error ?? 'FAILED: the pin failed' }
  return ref
}

/**
 * The counts a `GET /collections/{id}` answers are stored on the record (`summary`), so that a GET reads one
 * item however many tokens there are. They are recounted, not maintained by increments: a count kept by
 * adding each write's difference is wrong as soon as a step runs twice (a redelivered job, a retry after a
 * crash between the token writes and the increment, two deliveries at once) unless every token write and its
 * increment are one transaction conditioned on the token's previous state (DynamoDB: 100 items a transaction,
 * twice the write cost, and a cancelled page whenever another step wrote one of its tokens). A recount from
 * the stored items is right however often it runs; of two racing, the one that began last is kept
 * (`putSummary`). Its cost: each archiving pass reads every token (on DynamoDB the pass's status filter read
 * them all already: a filter applies after the read) and every root's pin (one batched read per 100 roots).
 * Enumeration counts once, when it ends. So the counts are those of the last pass: while archiving, at most
 * one advance delay old; while enumerating, those of before (none for a new collection) until it ends.
 */
export async function recountCollection(
  id: string,
  ctx: Pick<CollectionContext, 'collections' | 'pins' | 'clock'>,
): Promise<StoredSummary> {
  const asOf = ctx.clock.now()
  const summary: StoredSummary = { asOf, ...(await summarizeCollection(id, ctx)) }
  await ctx.collections.putSummary(id, summary)
  return summary
}

/** The collection's stored counts; recounted once for a finished collection that has none yet. */
export async function collectionSummary(
  record: CollectionRecord,
  ctx: Pick<CollectionContext, 'collections' | 'pins' | 'clock'>,
): Promise<StoredSummary | undefined> {
  if (record.summary) return record.summary
  if (record.status === 'enumerating' || record.status === 'archiving') return undefined // counted soon
  return recountCollection(record.id, ctx)
}

/** Counts over every token and root (reads them all: one pass per call). */
export async function summarizeCollection(
  id: string,
  ctx: Pick<CollectionContext, 'collections' | 'pins'>,
): Promise<CollectionSummary> {
  const { tokens } = emptySummary()
  let cursor: string | undefined
  do {
    const page = await ctx.collections.listTokens(id, { limit: 500, ...(cursor ? { cursor } : {}) })
    for (const t of page.tokens) {
      tokens.total++
      tokens[tokenStatus(t)]++
    }
    cursor = page.cursor
  } while (cursor)
  return { tokens, cids: await countRoots(id, ctx) }
}

/** The collection's roots by their pins' status (a root whose pin is not recorded yet is queued). */
async function countRoots(
  id: string,
  ctx: Pick<CollectionContext, 'collections' | 'pins'>,
): Promise<CollectionSummary['cids']> {
  const { cids } = emptySummary()
  let cursor: string | undefined
  do {
    const page = await ctx.collections.listRoots(id, { limit: 100, ...(cursor ? { cursor } : {}) })
    const pins = await ctx.pins.getMany(page.roots.map((r) => r.cid))
    for (const r of page.roots) {
      cids.total++
      cids[pins.get(r.cid)?.status ?? 'queued']++
    }
    cursor = page.cursor
  } while (cursor)
  return cids
}

/** Deletes the collection's requests (releasing content nobody else wants), then the collection. */
export async function removeCollection(
  input: { user: string; id: string },
  ctx: Pick<CollectionContext, 'collections' | 'requests' | 'pins' | 'clock'>,
): Promise<void> {
  const c = await getCollection(input, ctx)
  // Stop enumeration and archiving first (their steps go on only while the status is theirs), and leave a
  // tombstone until the record goes: a step already past that check that makes a request after the roots
  // were listed finds the tombstone and releases what it made (`pinRoots`).
  const now = ctx.clock.now()
  await ctx.collections.update(
    c.id,
    { status: 'failed', error: 'DELETED: the collection is being deleted', deleting: c.deleting ?? now },
    now,
  )
  await releaseListedRoots(c.id, ctx)
  await ctx.collections.delete(c.id)
}
