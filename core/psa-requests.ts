/**
 * The Pinning Service API's requests. Each request belongs to one user (owner `psa:<user>`), has its own
 * requestid, name, meta and `created`, and points at the pin of its content, shared with every other request
 * for the same CID from any user or API: its status is the pin's status.
 *
 * `created` is unique per user (`RequestStore.reserveCreated`), so clients page by `before = created of the
 * last result`. The requestid embeds the content key (`<random>-<cid>`), so a status lookup reads the request
 * and its pin in one round trip.
 *
 * Status filters: `pinned` is final while a request refers to the content, so a request seen pinned once
 * (`knownPinned`) is pinned for good; the others sit in a sparse index, joined with their pins by every status
 * listing that does not ask for `pinned`. In it, requests whose content was seen failed (`knownFailed`) are
 * apart from the pending ones, so listings of queued and pinning requests do not read a user's failures;
 * failed is not final, so whatever queues failed content again (a new request, an operator's retry or
 * redrive) moves its requests back. Listings record what they find (see recordSeen), and read a bounded
 * number of requests (see scanListing).
 */
import { randomBytes } from 'node:crypto'
import { base32 } from 'multiformats/bases/base32'
import { psaOwner } from './access-tokens.ts'
import { MAX_CONTENT_KEY_LENGTH, normalizeCid } from './cid.ts'
import { ListingTooSparseError, RequestNotFoundError } from './errors.ts'
import { parseOrigins } from './origins.ts'
import { PIN_STATUSES, type Pin, type PinStatus } from './pin.ts'
import type { Clock, PinQueue, PinRequest, PinStore, RequestStore } from './ports.ts'
import { indexAnswers, type RequestFilter } from './request-filter.ts'
import { requestPin } from './request-pin.ts'
import { getRequestWithPin } from './requests-with-pins.ts'
import { deleteRequest } from './unreferenced-content.ts'

export interface PsaContext {
  requests: RequestStore
  pins: PinStore
  queue: PinQueue
  clock: Clock
  /** Local mode only: let workers dial origins on loopback and private networks. */
  allowPrivateOrigins?: boolean
}

export interface PsaPinInput {
  /** As the client sent it (any CID form). */
  cid: string
  name?: string
  /** Multiaddrs, echoed back as given; workers dial only public ones (outside local mode). */
  origins: string[]
  meta: Record<string, string>
}

/** A request with the state of its content. `pin` is absent only in the moment between the two writes. */
export interface PsaRequestView {
  request: PinRequest
  status: PinStatus
  pin?: Pin
}

/**
 * The conditions of the filter (content keys in `cids`: CIDv1, as normalizeCid gives them; `before` and
 * `after` may carry fractions of a millisecond, from a query in nanoseconds), the statuses and the page size.
 */
export interface PsaListQuery extends Omit<RequestFilter, 'notKnownPinned' | 'notKnownFailed'> {
  statuses?: PinStatus[]
  limit: number
}

export interface PsaListResult {
  count: number
  results: PsaRequestView[]
}

/** `<26 random base32 characters>-<content key>`: any key normalizeCid accepts. */
const REQUEST_ID = new RegExp(`^([a-z2-7]{26})-(b[a-z2-7]{10,${MAX_CONTENT_KEY_LENGTH - 1}})$`)

export function newRequestId(contentKey: string): string {
  // 16 random bytes, base32 without the multibase prefix: 26 characters.
  return `${base32.baseEncode(randomBytes(16))}-${contentKey}`
}

/** The content key a requestid names, or undefined when it cannot be one of ours. */
export function contentKeyOfRequestId(requestid: string): string | undefined {
  return REQUEST_ID.exec(requestid)?.[2]
}

function view(request: PinRequest, pin: Pin | undefined): PsaRequestView {
  return { request, status: pin?.status ?? 'queued', ...(pin ? { pin } : {}) }
}

export async function createPsaRequest(
  input: { user: string; pin: PsaPinInput },
  ctx: PsaContext,
): Promise<PsaRequestView> {
  const { key } = normalizeCid(input.pin.cid)
  const owner = psaOwner(input.user)
  const created = await ctx.requests.reserveCreated(owner, ctx.clock.now())
  // The content first: a failure to queue it leaves no request behind. A concurrent release of the same
  // content between these two writes can mark it unreferenced; the sweep finds this request and unmarks it.
  const { origins } = parseOrigins(input.pin.origins, { allowPrivate: ctx.allowPrivateOrigins ?? false })
  const pin = await requestPin({ cid: key, origins, requester: owner }, ctx)
  const request: PinRequest = {
    requestid: newRequestId(key),
    owner,
    cid: key,
    sourceCid: input.pin.cid,
    ...(input.pin.name === undefined ? {} : { name: input.pin.name }),
    meta: input.pin.meta,
    origins: input.pin.origins,
    created,
    knownPinned: pin.status === 'pinned',
  }
  await ctx.requests.put(request)
  return view(request, pin)
}

export async function getPsaRequest(
  input: { user: string; requestid: string },
  ctx: Pick<PsaContext, 'requests' | 'pins'>,
): Promise<PsaRequestView> {
  const cid = contentKeyOfRequestId(input.requestid)
  if (cid === undefined) throw new RequestNotFoundError()
  const { request, pin } = await getRequestWithPin(input.requestid, cid, ctx)
  if (!request || request.owner !== psaOwner(input.user)) throw new RequestNotFoundError()
  if (pin?.status === 'pinned' && request.knownPinned === false) {
    await ctx.requests.markKnownPinned([request.requestid])
    request.knownPinned = true
    delete request.knownFailed
  } else if (request.knownFailed === true && (pin?.status === 'queued' || pin?.status === 'pinning')) {
    // Queued again, and missed by whatever queued it (it stopped part-way): pending again.
    await ctx.requests.markPending([request])
    delete request.knownFailed
  }
  return view(request, pin)
}

/**
 * Replaces a request: a new request (new requestid) for the new pin, then the old one is deleted, so content
 * both share is never unreferenced in between. Of concurrent replaces (or a replace and a delete) of one
 * request exactly one succeeds; the others undo their new request and answer not found.
 */
export async function replacePsaRequest(
  input: { user: string; requestid: string; pin: PsaPinInput },
  ctx: PsaContext,
): Promise<PsaRequestView> {
  const old = await ownedRequest(input, ctx)
  const created = await createPsaRequest({ user: input.user, pin: input.pin }, ctx)
  if (!(await deleteRequest(old, ctx, { release: old.cid !== created.request.cid }))) {
    await deleteRequest(created.request, ctx)
    throw new RequestNotFoundError()
  }
  return created
}

export async function deletePsaRequest(
  input: { user: string; requestid: string },
  ctx: Pick<PsaContext, 'requests' | 'pins' | 'clock'>,
): Promise<void> {
  const old = await ownedRequest(input, ctx)
  if (!(await deleteRequest(old, ctx))) throw new RequestNotFoundError()
}

async function ownedRequest(
  input: { user: string; requestid: string },
  ctx: Pick<PsaContext, 'requests'>,
): Promise<PinRequest> {
  if (contentKeyOfRequestId(input.requestid) === undefined) throw new RequestNotFoundError()
  const request = await ctx.requests.get(input.requestid)
  if (!request || request.owner !== psaOwner(input.user)) throw new RequestNotFoundError()
  return request
}

/**
 * `GET /pins`: the user's requests matching every filter, newest first, and how many match in all. Without a
 * status, all statuses when any other filter is given, else `pinned` only (the specification's default).
 */
export async function listPsaRequests(
  input: { user: string; query: PsaListQuery },
  ctx: Pick<PsaContext, 'requests' | 'pins'>,
): Promise<PsaListResult> {
  const { statuses, limit, ...conditions } = input.query
  const owner = psaOwner(input.user)
  // Every condition of the query, whichever they are: a filter added to RequestFilter passes through.
  const filter: RequestFilter = Object.fromEntries(
    Object.entries(conditions).filter(([, v]) => v !== undefined),
  )
  const otherFilter = Object.keys(filter).length > 0
  const wanted = new Set<PinStatus>(statuses ?? (otherFilter ? PIN_STATUSES : ['pinned']))
  const all = PIN_STATUSES.every((s) => wanted.has(s))

  // Conditions an index answers (CIDs or a case-insensitive name, a time range) read only matching entries:
  // the page is `limit` reads, and the count is the store's (cached).
  if (all && indexAnswers(filter)) {
    const [count, requests] = await Promise.all([
      ctx.requests.count(owner, filter),
      ctx.requests.find(owner, filter, limit),
    ])
    return { count, results: await withPins(requests, ctx) }
  }
  return scanListing(owner, filter, wanted, limit, ctx)
}

/**
 * A listing whose conditions no index answers: a status (the live state of each request's content, known
 * only by reading its pin), meta, a partial or exact name, CIDs and a name. It reads the owner's requests newest first (with `pinned`
 * unwanted, only those not yet seen pinned) a bounded scan at a time, with their pins when a status is asked
 * for, until it has read them all or spent its budget: never the user's whole history, however few match.
 * Matches past the page are counted on the way, so `count` is exact whenever the budget reaches the end.
 */
async function scanListing(
  owner: string,
  filter: RequestFilter,
  wanted: ReadonlySet<PinStatus>,
  limit: number,
  ctx: Pick<PsaContext, 'requests' | 'pins'>,
): Promise<PsaListResult> {
  const anyStatus = PIN_STATUSES.every((s) => wanted.has(s))
  const budget = listBudget(limit)
  const page: PinRequest[] = []
  let results: PsaRequestView[] = []
  let more = 0
  let read = 0
  let before = filter.before
  let complete = false
  // Without `pinned`, only requests not yet seen pinned; without `failed` either, only those not seen failed:
  // the pending ones. With `failed` but not `pinned`, pending and known-failed requests, a scan of each.
  const unfinished = wanted.has('pinned')
    ? {}
    : { notKnownPinned: true, ...(wanted.has('failed') ? {} : { notKnownFailed: true }) }
  const parts = !wanted.has('pinned') && wanted.has('failed') ? 2 : 1
  while (read < budget) {
    const maxRead = Math.max(1, Math.floor(Math.min(SCAN_PAGE, budget - read) / parts))
    const scanned = await ctx.requests.scan(
      owner,
      { ...filter, ...(before === undefined ? {} : { before }), ...unfinished },
      maxRead,
    )
    read += Math.max(1, scanned.read)
    if (anyStatus) {
      // Every status is wanted: only the page's pins are read, once it is full.
      for (const r of scanned.requests) {
        if (page.length < limit) page.push(r)
        else more++
      }
    } else {
      const views = await withPins(scanned.requests, ctx)
      await recordSeen(views, ctx)
      for (const v of views) {
        if (!wanted.has(v.status)) continue
        if (results.length < limit) results.push(v)
        else more++
      }
    }
    if (scanned.next === undefined) {
      complete = true
      break
    }
    before = scanned.next
  }
  if (anyStatus) results = await withPins(page, ctx)
  if (complete) return { count: results.length + more, results }
  if (results.length === 0) {
    // Nothing to page from: an empty success would say there is nothing older, which is not known.
    throw new ListingTooSparseError(budget, before)
  }
  // Not read to the end: `count` is what is known to match plus one, so clients that page until they have
  // `count` results (kubo) ask for the next page, `before` the last result.
  return { count: results.length + more + 1, results }
}

/**
 * Records what a status listing saw of requests not known pinned, so later listings read fewer: requests found
 * pinned are known pinned (final); found failed, known failed (out of the listings of queued and pinning);
 * known failed but queued again, pending again.
 */
async function recordSeen(
  views: PsaRequestView[],
  ctx: Pick<PsaContext, 'requests' | 'pins'>,
): Promise<void> {
  const unpinned = views.filter((v) => v.request.knownPinned === false)
  const pinned = unpinned.filter((v) => v.status === 'pinned').map((v) => v.request.requestid)
  const failed = unpinned.filter((v) => v.status === 'failed' && v.request.knownFailed !== true)
  const requeued = unpinned.filter(
    (v) => (v.status === 'queued' || v.status === 'pinning') && v.request.knownFailed === true,
  )
  if (pinned.length > 0) await ctx.requests.markKnownPinned(pinned)
  if (requeued.length > 0) await ctx.requests.markPending(requeued.map((v) => v.request))
  if (failed.length === 0) return
  const moved = new Set(await ctx.requests.markKnownFailed(failed.map((v) => v.request)))
  if (moved.size === 0) return
  // Content queued again after its pin was read here is moved back by whatever queued it
  // (RequestStore.returnToPending), but only requests already moved: the pins are read again after the move,
  // and requests whose content is no longer failed go back now.
  const movedRequests = failed.map((v) => v.request).filter((r) => moved.has(r.requestid))
  const now = await ctx.pins.getMany(movedRequests.map((r) => r.cid))
  const back = movedRequests.filter((r) => now.get(r.cid)?.status !== 'failed')
  if (back.length > 0) await ctx.requests.markPending(back)
}

/**
 * Most requests (and pins) one listing by status, meta or partial name reads: twice the page, at least
 * 1,000. What is not read is not counted (see scanListing).
 */
export function listBudget(limit: number): number {
  return Math.max(1000, 2 * limit)
}

/** Requests read per scan of a listing (and pins per batch read). */
const SCAN_PAGE = 100

async function withPins(requests: PinRequest[], ctx: Pick<PsaContext, 'pins'>): Promise<PsaRequestView[]> {
  const pins = await ctx.pins.getMany(requests.map((r) => r.cid))
  return requests.map((r) => view(r, pins.get(r.cid)))
}
