/**
 * A pin is one piece of content pickup keeps a copy of, keyed by its CIDv1. Many requests (the cluster API's
 * claim, any number of Pinning Service API requests from any user) can point at one pin: the content is
 * fetched and stored once and shared by all of them.
 */
export const PIN_STATUSES = ['queued', 'pinning', 'pinned', 'failed'] as const
export type PinStatus = (typeof PIN_STATUSES)[number]

export interface CarInfo {
  /** CIDv1, codec 0x0202 (car), sha2-256 of the CAR bytes. */
  cid: string
  bytes: number
  blocks: number
  /** Key of the CAR in the destination bucket: `<carCid>/<carCid>.car`. */
  key: string
}

/**
 * What a fetch attempt is doing. `searching`: no block received yet (dialling origins, finding providers,
 * waiting for the root); `waiting`: its first block arrived and it waits for one of the worker's transfer
 * slots; `transferring`: blocks are flowing into the CAR.
 */
export const FETCH_PHASES = ['searching', 'waiting', 'transferring'] as const
export type FetchPhase = (typeof FETCH_PHASES)[number]

export interface Progress {
  bytes: number
  blocks: number
  /** Absent in records written before phases existed: read as `transferring`. */
  phase?: FetchPhase
  /** When the attempt started searching, epoch ms. */
  searchStarted?: number
  /** The origins the attempt dialled (multiaddrs, at most MAX_ORIGINS). */
  dialled?: string[]
}

/** A copy of the progress with only the fields that are set (how both stores keep it). */
export function copyProgress(p: Progress): Progress {
  return {
    bytes: p.bytes,
    blocks: p.blocks,
    ...(p.phase === undefined ? {} : { phase: p.phase }),
    ...(p.searchStarted === undefined ? {} : { searchStarted: p.searchStarted }),
    ...(p.dialled === undefined ? {} : { dialled: p.dialled.slice(0, MAX_ORIGINS) }),
  }
}

/** The error a pin records when its fetch was dropped or stopped because no request wants it any longer. */
export const CANCELLED_CODE = 'CANCELLED'
export const CANCELLED_ERROR = `${CANCELLED_CODE}: no request wants this content any longer (a new request fetches it again)`

export interface Pin {
  /** Content key: the CIDv1 (base32) of the DAG root. */
  cid: string
  status: PinStatus
  /** Epoch milliseconds. */
  created: number
  updated: number
  /** Fetch attempts started so far. */
  attempts: number
  /** The last failure reason, as `CODE: message`. */
  error?: string
  /** Origins named by requesters, as multiaddr strings (at most 20). */
  origins: string[]
  /** The attempt that currently holds the pin (while pinning) or produced its CAR. */
  attemptId?: string
  /** While pinning: the attempt's lease, renewed by its heartbeat. Epoch milliseconds. */
  leaseExpires?: number
  /** While pinning: bytes and blocks received so far, updated at a bounded rate. */
  progress?: Progress
  /** Once pinned. */
  car?: CarInfo
  /**
   * Epoch milliseconds since which no request wants the content (set when its last request goes away, cleared
   * by a new request). `sweepUnreferenced` deletes the CAR and the pin once this is older than the retention.
   */
  unreferencedSince?: number
}

export const MAX_ORIGINS = 20

/** Merges origins, keeping the newest first, at most MAX_ORIGINS. */
export function mergeOrigins(current: readonly string[], added: readonly string[]): string[] {
  return [...new Set([...added, ...current])].slice(0, MAX_ORIGINS)
}

/** The message on the pin queue. Small on purpose: the pin record is the source of truth. */
export interface PinJob {
  cid: string
  origins: string[]
  /**
   * Who asked (`cluster`, `psa:<user>`): the fairness key. The pin queue's message group in AWS (SQS fair
   * queues) and local mode's emulation of it, so one requester's backlog does not hold back another's pins.
   */
  requester?: string
}

/** Where a worker's attempt is uploaded in the temporary bucket. The validator recovers cid and attempt from it. */
export function tempCarKey(cid: string, attemptId: string): string {
  return `${cid}/${attemptId}.car`
}

export function parseTempCarKey(key: string): { cid: string; attemptId: string } | undefined {
  const m = /^([a-z2-7]+)\/([A-Za-z0-9_-]+)\.car$/.exec(key)
  return m ? { cid: m[1]!, attemptId: m[2]! } : undefined
}

export function destinationCarKey(carCid: string): string {
  return `${carCid}/${carCid}.car`
}

/** Decodes a queue message body; undefined when it is not a pin job. */
export function parsePinJob(body: string): PinJob | undefined {
  try {
    const value: unknown = JSON.parse(body)
    if (typeof value !== 'object' || value === null) return undefined
    const { cid, origins, requester } = value as Record<string, unknown>
    if (typeof cid !== 'string') return undefined
    const list = Array.isArray(origins) ? origins.filter((o): o is string => typeof o === 'string') : []
    return {
      cid,
      origins: list.slice(0, MAX_ORIGINS),
      ...(typeof requester === 'string' && requester !== '' ? { requester: requester.slice(0, 128) } : {}),
    }
  } catch {
    return undefined
  }
}
