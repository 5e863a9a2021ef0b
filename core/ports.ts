/**
 * The ports the core talks through. Each has an AWS adapter (DynamoDB, SQS, S3, SNS), an IPFS adapter where
 * relevant (Helia, kubo) and an in-memory one; one shared test suite runs against all of them.
 */
import type { CID } from 'multiformats/cid'
import type { CarInfo, Pin, PinJob, PinStatus, Progress } from './pin.ts'

export interface Clock {
  now(): number
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

export interface PinPage {
  pins: Pin[]
  /** Opaque; pass back to get the next page. Absent on the last page. */
  cursor?: string
}

export interface PinStore {
  get(cid: string): Promise<Pin | undefined>
  getMany(cids: readonly string[]): Promise<Map<string, Pin>>
  /**
   * Creates the pin as queued, or re-queues it if it failed. Content that is queued, pinning or pinned is
   * returned unchanged except that new origins are merged. `enqueue` says whether a job must be sent.
   */
  request(cid: string, origins: readonly string[], now: number): Promise<{ pin: Pin; enqueue: boolean }>
  /**
   * Takes the pin for one fetch attempt: allowed when it is queued or failed, or pinning under an expired
   * lease (its worker died). Counts the attempt.
   */
  claim(cid: string, attemptId: string, leaseExpires: number, now: number): Promise<ClaimResult>
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
  /** Records the stored CAR; false when the pin was already pinned (by another attempt). */
  markPinned(cid: string, attemptId: string, car: CarInfo, now: number): Promise<boolean>
  listByStatus(status: PinStatus, opts: { limit: number; cursor?: string }): Promise<PinPage>
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
  /** Makes the message visible again after `delaySeconds` (0: at once). */
  release(receipt: string, delaySeconds: number): Promise<void>
  delete(receipt: string): Promise<void>
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
  get(
    key: string,
    opts?: { signal?: AbortSignal },
  ): Promise<(ObjectInfo & { body: AsyncIterable<Uint8Array> }) | undefined>
  head(key: string): Promise<ObjectInfo | undefined>
  delete(key: string): Promise<void>
  /** Server-side copy of `key` into `dest` (another bucket of the same backend). */
  copyTo(key: string, dest: ObjectStore, destKey: string, opts?: { size?: number }): Promise<void>
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
}

// ---------------------------------------------------------------- workers

export interface WorkerInfo {
  id: string
  multiaddrs: string[]
  /** Epoch milliseconds after which the entry is stale. */
  expires: number
}

/** Live workers announce their multiaddrs so the APIs can give them to clients as delegates. */
export interface WorkerRegistry {
  announce(info: WorkerInfo): Promise<void>
  remove(id: string): Promise<void>
  live(now: number): Promise<WorkerInfo[]>
}
