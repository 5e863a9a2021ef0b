/**
 * The ports the core talks through. Each has an AWS adapter (DynamoDB, SQS, S3, SNS), an IPFS adapter where
 * relevant (Helia, kubo) and an in-memory one; one shared test suite runs against all of them.
 */
import type { CID } from 'multiformats/cid'
import type { CarInfo, Pin, PinJob, PinStatus, Progress } from './pin.ts'
import type { RequestFilter } from './request-filter.ts'

export interface Clock {
  now(): number
}

/** What waits on time, so that a test can drive it with a clock of its own instead of sleeping. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  setInterval(fn: () => void, ms: number): unknown
  clearInterval(handle: unknown): void
}

/** The process's own clock and timers. */
export const systemClock: Clock = { now: () => Date.now() }
export const systemTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (handle) => clearInterval(handle as ReturnType<typeof setInterval>),
}

export interface Logger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
  debug(obj: object, msg?: string): void
  child(bindings: object): Logger
}

// ---------------------------------------------------------------- pins

export type ClaimResult =
  /** The attempt now holds the pin. */
  | { kind: 'claimed'; pin: Pin }
  /** The content is already stored: nothing to fetch. */
  | { kind: 'pinned'; pin: Pin }
  /** Another attempt holds a live lease on it. */
  | { kind: 'busy'; pin: Pin }
  /** No record: no request wants the content (every request writes the record before its job is sent). */
  | { kind: 'missing'; pin?: undefined }
  /**
   * No request wants the content any longer (it is marked unreferenced): instead of being claimed, the pin
   * was set `failed` with CANCELLED_ERROR, so its job is dropped without fetching and a new request queues it
   * again.
   */
  | { kind: 'cancelled'; pin: Pin }

export interface PinPage {
  pins: Pin[]
  /** Opaque; pass back to get the next page. Absent on the last page. */
  cursor?: string
}

export interface ListByStatusOptions {
  limit: number
  /** From the previous page of the same listing (same status and order). */
  cursor?: string
  /** By `updated`: newest first (the default) or oldest first. */
  order?: 'newest' | 'oldest'
  /** Only pins last updated strictly before this (epoch ms). */
  updatedBefore?: number
}

export interface PinStore {
  get(cid: string): Promise<Pin | undefined>
  getMany(cids: readonly string[]): Promise<Map<string, Pin>>
  /**
   * Creates the pin as queued, or re-queues it if it failed. Content that is queued, pinning or pinned is
   * returned unchanged except that new origins are merged and an `unreferencedSince` mark is cleared (someone
   * wants the content again). `enqueue` says whether a job must be sent; `requeued`, that the content had
   * failed (new content is not requeued), so requests listings saw failed are pending again.
   */
  request(
    cid: string,
    origins: readonly string[],
    now: number,
  ): Promise<{ pin: Pin; enqueue: boolean; requeued?: true }>
  /**
   * Takes the pin for one fetch attempt: allowed when it is queued or failed, or pinning under an expired
   * lease (its worker died). Counts the attempt. Never creates a record: a job for content with none (swept
   * as unwanted, say, before an old job was redriven) is `missing`. Content marked unreferenced is not
   * claimed but `cancelled` (see ClaimResult). `progress`, when given, is the attempt's first progress,
   * written by the claim itself (a searching attempt then writes nothing more until its lease needs renewing:
   * one write per job started, where thousands start at once); without it the claim clears any progress.
   */
  claim(
    cid: string,
    attemptId: string,
    leaseExpires: number,
    now: number,
    progress?: Progress,
  ): Promise<ClaimResult>
  /** Renews the attempt's lease and records progress. False when the attempt no longer holds the pin. */
  heartbeat(
    cid: string,
    attemptId: string,
    leaseExpires: number,
    progress: Progress,
    now: number,
  ): Promise<boolean>
  /**
   * Ends an attempt that did not produce a CAR: back to `queued` (another attempt will follow) or `failed`.
   * Only if `attemptId` still holds the pin (or, with `attemptId` undefined, unless the pin is pinned).
   */
  settle(
    cid: string,
    attemptId: string | undefined,
    outcome: { status: 'queued' | 'failed'; error: string },
    now: number,
  ): Promise<boolean>
  /**
   * Ends a running attempt because no request wants the content: `failed` with CANCELLED_ERROR, only if the
   * attempt still holds the pin and the pin is still marked unreferenced (a new request clears the mark,
   * and then the pin must be fetched after all). False otherwise.
   */
  cancel(cid: string, attemptId: string, now: number): Promise<boolean>
  /**
   * Records the stored CAR; false when the pin was already pinned (by another attempt) or has no record (no
   * request wants the content: it was swept). Never creates a record.
   */
  markPinned(cid: string, attemptId: string, car: CarInfo, now: number): Promise<boolean>
  listByStatus(status: PinStatus, opts: ListByStatusOptions): Promise<PinPage>
  /** How many pins have the status, counting at most `max` (an answer of `max` means "at least"). */
  countByStatus(status: PinStatus, opts: { max: number }): Promise<number>
  /**
   * Sets the pin `queued` or `failed` with `error`, if it is still as `seen` (same status, `updated` and
   * `attempts`; never pinned), ending any attempt's hold on it (lease and progress removed). For the
   * reconciler and operators, who act on what they read: a pin that changed meanwhile (a worker claimed or
   * renewed it) is left alone. False when it changed or is gone.
   */
  settleIfUnchanged(
    cid: string,
    seen: { status: PinStatus; updated: number; attempts: number },
    outcome: { status: 'queued' | 'failed'; error: string },
    now: number,
  ): Promise<boolean>
  /**
   * Marks the pin as wanted by no request since `now`; an existing mark is kept (its time is the older one).
   * False when there is no such pin.
   */
  markUnreferenced(cid: string, now: number): Promise<boolean>
  /**
   * Pins marked unreferenced at or before `markedBefore` (and at or after `markedSince`, if given), oldest
   * mark first, at most `limit` per page.
   */
  listUnreferenced(opts: {
    markedBefore: number
    markedSince?: number
    limit: number
    cursor?: string
  }): Promise<PinPage>
  /** Clears the mark if it is still the one set at `since`. False otherwise. */
  clearUnreferenced(cid: string, since: number): Promise<boolean>
  /**
   * Deletes the pin record if it is still marked unreferenced since `since` and is `pinned` or `failed`
   * (never under a worker); returns the deleted pin, or undefined when any of that no longer holds.
   */
  deleteUnreferenced(cid: string, since: number): Promise<Pin | undefined>
  /**
   * The pin's CAR at `carKey` is gone (the sweep deleted that key while the content was stored there again):
   * if the pin is still `pinned` with that CAR, sets it `queued` with `error` and attempts reset, without the
   * CAR, so the reconciler enqueues it and it is fetched again. False when it is not.
   */
  requeueLostCar(cid: string, carKey: string, error: string, now: number): Promise<boolean>
}

// ---------------------------------------------------------------- queue

export interface SendOptions {
  delaySeconds?: number
}

/** The producer side of the pin queue (the APIs, the validator, the reconciler). */
export interface PinQueue {
  send(job: PinJob, opts?: SendOptions): Promise<void>
}

export interface ReceivedJob {
  /** The queue's message id (stable across deliveries). */
  id: string
  /** Identifies this delivery: extend, release and delete take it. */
  receipt: string
  job: PinJob
  /** How many times the message was received, this time included. */
  receiveCount: number
}

/** The consumer side of the pin queue (the worker). */
export interface JobQueue extends PinQueue {
  receive(opts: { max: number; waitSeconds: number; signal?: AbortSignal }): Promise<ReceivedJob[]>
  /** Keeps the message invisible for `seconds` more from now. */
  extend(receipt: string, seconds: number): Promise<void>
  /**
   * `extend` for many messages in few calls (SQS: ChangeMessageVisibilityBatch, ten a call); resolves with the
   * receipts that were not extended. A worker holding thousands of searching jobs extends them all each
   * interval with this.
   */
  extendMany(receipts: readonly string[], seconds: number): Promise<string[]>
  /** Makes the message visible again after `delaySeconds` (0: at once). */
  release(receipt: string, delaySeconds: number): Promise<void>
  delete(receipt: string): Promise<void>
}

/** A queue's approximate message counts (exact in local mode). */
export interface QueueCounts {
  /** Waiting to be received. */
  visible: number
  /** Received and neither deleted nor visible again yet: in a worker's hands, or being read. */
  inFlight: number
  /** Sent with a delay that has not passed yet (retries waiting out their backoff). */
  delayed: number
}

export interface QueueCounter {
  counts(): Promise<QueueCounts>
}

/** What became of a dead job, recorded with it in the failed-jobs queue by the dead-letter consumer. */
export interface FailedJobInfo {
  /** The pin's failure reason when the job was given up (`CODE: message`). */
  reason?: string
  /** Receives of the job before it was given up: on the pin queue, and on the dead-letter queue. */
  receiveCount: number
  /** When the job was first sent to the pin queue, epoch ms, when known. */
  sentAt?: number
  /** When the dead-letter consumer gave the job up, epoch ms. */
  failedAt: number
}

/**
 * The failed-jobs queue as the dead-letter consumer writes it: dead jobs whose pins it marked `failed`, kept
 * there for operators (the dead-letter queue itself is emptied by its consumer within seconds).
 */
export interface FailedJobs {
  /** Adds a dead job: its message body, unchanged, and what became of it. */
  add(body: string, info: FailedJobInfo): Promise<void>
}

/**
 * A dead job as operators read it, from the failed-jobs queue (or any queue of pin jobs: one filled by hand
 * has no `failure`).
 */
export interface DeadLetter {
  /** The message id, stable for the message's life in this queue. */
  id: string
  /** Identifies this receive: `release` and `delete` take it. */
  receipt: string
  body: string
  /** Undefined when the body is not a pin job (nothing can process it). */
  job?: PinJob
  /** Receives of this message so far: reading it counts too (the job's attempts are in `failure`). */
  receiveCount: number
  /** When the job was first sent to the pin queue, epoch ms (`failure.sentAt`, else when this message was sent). */
  sentAt: number
  /** What the dead-letter consumer recorded when it gave the job up; absent on a message put in otherwise. */
  failure?: FailedJobInfo
}

/**
 * The failed-jobs queue as operators use it (`pickup dlq`). Reading is receiving: a received message is
 * hidden from other readers until released, deleted, or `hideSeconds` pass.
 */
export interface DeadLetterQueue extends QueueCounter {
  /** Up to `max` (at most 10) messages; an empty answer after `waitSeconds` means none is visible. */
  receive(opts: { max: number; hideSeconds: number; waitSeconds: number }): Promise<DeadLetter[]>
  /** Makes received messages visible again at once. Stale receipts are ignored. */
  release(receipts: readonly string[]): Promise<void>
  /** Deletes received messages; answers the receipts it could not delete (they stay in the queue). */
  delete(receipts: readonly string[]): Promise<{ failed: string[] }>
  /** Deletes every message, those being read included. */
  purge(): Promise<void>
}

// ---------------------------------------------------------------- objects

export interface ObjectInfo {
  size: number
  metadata: Record<string, string>
}

export interface PutOptions {
  metadata?: Record<string, string>
  signal?: AbortSignal
  /** Multipart part size in bytes. */
  partSize?: number
}

/** One bucket. */
export interface ObjectStore {
  readonly bucket: string
  /** Streams the body in; an aborted or failed upload leaves no object behind. */
  put(key: string, body: AsyncIterable<Uint8Array>, opts?: PutOptions): Promise<{ bytes: number }>
  /** The object and its ETag, which names exactly these bytes (a copy can be made conditional on it). */
  get(
    key: string,
    opts?: { signal?: AbortSignal },
  ): Promise<(ObjectInfo & { etag: string; body: AsyncIterable<Uint8Array> }) | undefined>
  head(key: string): Promise<ObjectInfo | undefined>
  delete(key: string): Promise<void>
  /**
   * Server-side copy of `key` into `dest` (another bucket of the same backend). With `ifMatch` (an ETag from
   * `get`), copies only if the object is still that one (every part of a multipart copy too), else rejects
   * with CopySourceChangedError and leaves nothing at `destKey`.
   */
  copyTo(
    key: string,
    dest: ObjectStore,
    destKey: string,
    opts?: { size?: number; ifMatch?: string },
  ): Promise<void>
  list(prefix?: string): AsyncIterable<{ key: string; size: number }>
}

// ---------------------------------------------------------------- events

export interface CarStoredEvent {
  /** The DAG root, CIDv1. */
  cid: string
  car: CarInfo
  bucket: string
  storedAt: string
}

/** Where "CAR stored" events go for downstream indexers (SNS in AWS). */
export interface EventSink {
  carStored(event: CarStoredEvent): Promise<void>
}

// ---------------------------------------------------------------- IPFS

/** What the worker needs of an IPFS node: dial origins, get blocks (verified against their CID). */
export interface BlockSource {
  /** Dials the addresses best effort: failures are logged by the adapter, never thrown. */
  connect(addrs: readonly string[], opts?: { signal?: AbortSignal }): Promise<void>
  get(cid: CID, opts?: { signal?: AbortSignal }): Promise<Uint8Array>
  /** The node's dialable `/p2p/` multiaddrs, to hand to clients as delegates. */
  multiaddrs(): Promise<string[]>
  /**
   * Optional: a source that keeps what an attempt fetched (so that a retry fetches only what is missing)
   * drops the DAG under `root` once no attempt will need it: uploaded, or failed for good. Best effort.
   */
  release?(root: CID): Promise<void>
}

// ---------------------------------------------------------------- workers

export interface WorkerInfo {
  id: string
  multiaddrs: string[]
  /** Epoch milliseconds after which the entry is stale. */
  expires: number
  /**
   * Whether the worker takes jobs: false while its IPFS node does not answer (then `problem` says why and
   * `multiaddrs` is empty). Absent in entries of older workers: ready.
   */
  ready?: boolean
  problem?: string
}

/**
 * Live workers announce their multiaddrs so the APIs can give them to clients as delegates, and their
 * readiness, for operators (`pickup stats`).
 */
export interface WorkerRegistry {
  announce(info: WorkerInfo): Promise<void>
  remove(id: string): Promise<void>
  live(now: number): Promise<WorkerInfo[]>
}

// ---------------------------------------------------------------- requests

/**
 * One requester's wish to keep some content: the cluster API's claim (one per content, owner `cluster`) or a
 * Pinning Service API request (owner `psa:<user>`). Many requests share one pin.
 */
export interface PinRequest {
  requestid: string
  owner: string
  /** Content key of the pin (CIDv1). */
  cid: string
  /** The CID as the client gave it, echoed back. */
  sourceCid: string
  name?: string
  meta: Record<string, string>
  origins: string[]
  /** Epoch milliseconds. */
  created: number
  /**
   * Whether the content is known to be pinned. `pinned` is final while any request refers to the content
   * (nothing unpins referenced content), so a request seen pinned once needs no pin read to know its status.
   * `false`: tracked as possibly not pinned yet (the Pinning Service API's status queries read those pins);
   * absent: not tracked (the cluster API's claim).
   */
  knownPinned?: boolean
  /**
   * With `knownPinned: false`: the content was seen failed, so listings of unfinished statuses (queued,
   * pinning) no longer read the request. Failed is not final (anyone may request the content again, an
   * operator may retry it): whatever queues failed content again moves its requests back
   * (`returnToPending`), and a listing that finds one whose content is no longer failed does the same.
   */
  knownFailed?: boolean
}

export interface RequestPage {
  requests: PinRequest[]
  cursor?: string
}

/** What one bounded read of an owner's requests found (RequestStore.scan). */
export interface RequestScan {
  /** The requests read that match the filter, newest first; possibly none. */
  requests: PinRequest[]
  /** Index entries read, matching or not (at most `maxRead` per partition read). */
  read: number
  /**
   * Absent: nothing older matches. Present: more may; the scan goes on with the same filter and `before` =
   * this, since every request matching the filter at or after it was read.
   */
  next?: number
}

export interface RequestStore {
  /** Creates or replaces the request with this requestid. */
  put(request: PinRequest): Promise<void>
  /**
   * Creates the request, or replaces the one with this requestid keeping its `created`; answers the
   * `created` stored. For requests whose requestid is derived from their content (the cluster API's claims):
   * a new one costs a single write.
   */
  putKeepingCreated(request: PinRequest): Promise<number>
  get(requestid: string): Promise<PinRequest | undefined>
  /** False when there was no such request. */
  delete(requestid: string): Promise<boolean>
  /** Up to `limit` requests for the content, any owner: whether anyone still wants it. */
  forContent(cid: string, limit: number): Promise<PinRequest[]>
  /** The owner's requests, newest first. */
  listByOwner(owner: string, opts: { limit: number; cursor?: string }): Promise<RequestPage>
  /** The requests with these requestids that exist, by requestid, in as few reads as the backend allows. */
  getMany(requestids: readonly string[]): Promise<Map<string, PinRequest>>
  /**
   * A `created` value for a new request of the owner: at least `at` and greater than every value reserved for
   * the owner before, so no two of the owner's requests share one (paging by `created` relies on it).
   */
  reserveCreated(owner: string, at: number): Promise<number>
  /**
   * Up to `limit` of the owner's requests matching the filter, newest first. The next page is the same filter
   * with `before` = the last one's `created` (unique per owner when created by `reserveCreated`). Reads until
   * it has them: bounded by `limit` only for filters an index answers (core/request-filter.ts indexAnswers);
   * `scan` reads a bounded number whatever the filter.
   */
  find(owner: string, filter: RequestFilter, limit: number): Promise<PinRequest[]>
  /**
   * How many of the owner's requests match the filter, exactly. Reads every match (and, for filters no index
   * answers, every entry of the index read).
   */
  count(owner: string, filter: RequestFilter): Promise<number>
  /**
   * Reads, newest first, at most `maxRead` of the owner's index entries that the filter's index narrows to (at
   * most `maxRead` per CID with `cids`, and per state, pending and known failed, with `notKnownPinned` but not
   * `notKnownFailed`) and answers those matching every condition. Unlike `find`, whose
   * filters can read a whole partition looking for matches, one call's work is bounded whatever matches.
   */
  scan(owner: string, filter: RequestFilter, maxRead: number): Promise<RequestScan>
  /** Sets `knownPinned` on these requests (those that still exist), and clears `knownFailed`. */
  markKnownPinned(requestids: readonly string[]): Promise<void>
  /**
   * Sets `knownFailed` on those of these requests that are still pending (`knownPinned: false`, not known
   * failed), each with one conditional write; answers the requestids it changed.
   */
  markKnownFailed(requests: ReadonlyArray<Pick<PinRequest, 'requestid' | 'owner'>>): Promise<string[]>
  /** Clears `knownFailed` on those of these requests that have it (their content is no longer failed). */
  markPending(requests: ReadonlyArray<Pick<PinRequest, 'requestid' | 'owner'>>): Promise<void>
  /**
   * Clears `knownFailed` on every request for the content that has it, of any owner (the content is queued
   * again); answers how many. Reads the content's requests once.
   */
  returnToPending(cid: string): Promise<number>
}

// ---------------------------------------------------------------- access tokens

/** A Pinning Service API access token, as stored: only its hash, never the token. */
export interface AccessTokenRecord {
  /** sha256 of the token, hex. */
  hash: string
  user: string
  /** Epoch milliseconds. */
  created: number
  label?: string
}

export interface TokenStore {
  /** Stores a new token; throws if one with this hash exists. */
  put(record: AccessTokenRecord): Promise<void>
  get(hash: string): Promise<AccessTokenRecord | undefined>
  /** The user's tokens (every token without `user`), oldest first. */
  list(opts?: { user?: string }): Promise<AccessTokenRecord[]>
  /** False when there was no such token. */
  delete(hash: string): Promise<boolean>
}
