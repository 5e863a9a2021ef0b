/**
 * What operators do with pins (`pickup pin ...`, `pickup pins list`, `pickup stats`, `pickup car get`): look
 * at one pin and who wants it, send it to the queue again, list pins by status, count everything, and read the
 * stored CAR.
 */
import { normalizeCid } from './cid.ts'
import { PickupError } from './errors.ts'
import { PIN_STATUSES, type Pin, type PinStatus } from './pin.ts'
import type {
  Clock,
  Logger,
  ObjectInfo,
  ObjectStore,
  PinPage,
  PinQueue,
  PinRequest,
  PinStore,
  QueueCounter,
  QueueCounts,
  RequestStore,
  WorkerRegistry,
} from './ports.ts'

export class PinNotFoundError extends PickupError {
  readonly code = 'PIN_NOT_FOUND'
  override readonly retryable = false
  constructor(cid: string) {
    super(`no pin for ${cid}: nobody asked pickup for this content (or it was deleted, unwanted)`)
  }
}

export class NotPinnedError extends PickupError {
  readonly code = 'NOT_PINNED'
  override readonly retryable = false
  constructor(pin: Pin) {
    super(
      `${pin.cid} is ${pin.status}, not pinned: there is no stored CAR${pin.error ? ` (last error: ${pin.error})` : ''}`,
    )
  }
}

/** The stored CAR is not where the pin says (deleted behind pickup's back, or the wrong bucket configured). */
export class CarMissingError extends PickupError {
  readonly code = 'CAR_MISSING'
  override readonly retryable = false
  constructor(key: string, bucket: string) {
    super(`the pin records a CAR at ${key}, but bucket ${bucket} has no such object`)
  }
}

export interface PinDetails {
  pin: Pin
  /** Up to `requestLimit` requests for the content (any owner). */
  requests: PinRequest[]
}

/** The pin of a CID (any form: it is normalized to the CIDv1 key) and the requests that want it. */
export async function showPin(
  cid: string,
  opts: { requestLimit: number },
  ctx: { pins: Pick<PinStore, 'get'>; requests: Pick<RequestStore, 'forContent'> },
): Promise<PinDetails> {
  const { key } = normalizeCid(cid)
  const [pin, requests] = await Promise.all([
    ctx.pins.get(key),
    ctx.requests.forContent(key, opts.requestLimit),
  ])
  if (!pin) throw new PinNotFoundError(key)
  return { pin, requests }
}

export type RetryOutcome =
  /** Set `queued` (when it was not) and a job sent. */
  | { kind: 'enqueued'; pin: Pin; was: PinStatus }
  | { kind: 'pinned'; pin: Pin }
  /** A worker holds it under a live lease; `force` takes it away (the worker's attempt then stops). */
  | { kind: 'busy'; pin: Pin }

/**
 * Sends a job for the pin again. Failed, queued and abandoned (expired lease) pins are set `queued` (their
 * last error kept) and enqueued; a pinned pin is left alone; one a worker holds under a live lease only with
 * `force`. The write is conditional on the pin being as read and comes before the send: a pin that changed
 * meanwhile is read again, and a failed send leaves a queued pin the reconciler enqueues later.
 */
export async function retryPin(
  cid: string,
  opts: { force?: boolean },
  ctx: {
    pins: Pick<PinStore, 'get' | 'settleIfUnchanged'>
    requests: Pick<RequestStore, 'returnToPending'>
    queue: PinQueue
    clock: Clock
    log: Logger
  },
): Promise<RetryOutcome> {
  const { key } = normalizeCid(cid)
  for (let i = 0; i < 5; i++) {
    const pin = await ctx.pins.get(key)
    if (!pin) throw new PinNotFoundError(key)
    if (pin.status === 'pinned') return { kind: 'pinned', pin }
    const now = ctx.clock.now()
    if (pin.status === 'pinning' && (pin.leaseExpires ?? 0) >= now && !opts.force)
      return { kind: 'busy', pin }
    const error = pin.error ?? 'RETRIED: sent to the pin queue again by an operator'
    if (!(await ctx.pins.settleIfUnchanged(key, pin, { status: 'queued', error }, now))) continue
    await ctx.queue.send({ cid: key, origins: pin.origins })
    // Its requests that listings had seen failed are pending again.
    if (pin.status === 'failed') await ctx.requests.returnToPending(key)
    ctx.log.info({ cid: key, was: pin.status, attempts: pin.attempts }, 'pin retried by an operator')
    return { kind: 'enqueued', pin: { ...pin, status: 'queued', error, updated: now }, was: pin.status }
  }
  throw new Error(`pin ${key} kept changing while it was being retried; try again`)
}

/** One page of the pins of a status. */
export async function listPins(
  status: PinStatus,
  opts: { limit: number; cursor?: string; order?: 'newest' | 'oldest' },
  ctx: { pins: Pick<PinStore, 'listByStatus'> },
): Promise<PinPage> {
  return ctx.pins.listByStatus(status, {
    limit: opts.limit,
    ...(opts.cursor === undefined ? {} : { cursor: opts.cursor }),
    ...(opts.order === undefined ? {} : { order: opts.order }),
  })
}

export interface Stats {
  /** Pins per status; a count equal to `countLimit` means at least that many. */
  pins: Record<PinStatus, number>
  countLimit: number
  queue: QueueCounts
  /** The dead-letter queue: jobs that ran out of receives, which its consumer handles within seconds. */
  deadLetters: QueueCounts
  /** The failed-jobs queue: jobs given up on, waiting for an operator (`pickup dlq`). */
  failedJobs: QueueCounts
  /** The queued pin waiting longest (by its last update): how far behind the workers are. */
  oldestQueued?: { cid: string; ageMs: number }
  /** Live workers (announced and not expired), how many take jobs, and why the others do not. */
  workers: { live: number; ready: number; notReady: Array<{ id: string; problem?: string }> }
  /**
   * Attempts under a live lease, by what they do: searching (no block yet), waiting for a transfer slot,
   * transferring. Counted from the pinning pins, at most `countLimit` of them.
   */
  jobs: { searching: number; waiting: number; transferring: number }
}

/** Pinning pins read per page while counting jobs by phase. */
const JOBS_PAGE = 100

async function countJobs(
  limit: number,
  ctx: { pins: Pick<PinStore, 'listByStatus'>; clock: Clock },
): Promise<Stats['jobs']> {
  const jobs = { searching: 0, waiting: 0, transferring: 0 }
  const now = ctx.clock.now()
  let seen = 0
  let cursor: string | undefined
  do {
    const page = await ctx.pins.listByStatus('pinning', {
      limit: Math.min(JOBS_PAGE, limit - seen),
      ...(cursor === undefined ? {} : { cursor }),
    })
    for (const pin of page.pins) {
      seen++
      // An expired lease is an attempt whose worker died: no job (the reconciler takes it).
      if ((pin.leaseExpires ?? 0) < now) continue
      // No progress yet: just claimed, searching. Progress without a phase: written before phases existed.
      const phase = pin.progress ? (pin.progress.phase ?? 'transferring') : 'searching'
      jobs[phase]++
    }
    cursor = page.cursor
  } while (cursor !== undefined && seen < limit)
  return jobs
}

export async function collectStats(
  opts: { countLimit: number },
  ctx: {
    pins: Pick<PinStore, 'countByStatus' | 'listByStatus'>
    queue: QueueCounter
    deadLetters: QueueCounter
    failedJobs: QueueCounter
    workers: Pick<WorkerRegistry, 'live'>
    clock: Clock
  },
): Promise<Stats> {
  const [counts, queue, deadLetters, failedJobs, oldest, live, jobs] = await Promise.all([
    Promise.all(PIN_STATUSES.map((s) => ctx.pins.countByStatus(s, { max: opts.countLimit }))),
    ctx.queue.counts(),
    ctx.deadLetters.counts(),
    ctx.failedJobs.counts(),
    ctx.pins.listByStatus('queued', { limit: 1, order: 'oldest' }),
    ctx.workers.live(ctx.clock.now()),
    countJobs(opts.countLimit, ctx),
  ])
  const notReady = live
    .filter((w) => w.ready === false)
    .map((w) => ({ id: w.id, ...(w.problem === undefined ? {} : { problem: w.problem }) }))
  const pins = Object.fromEntries(PIN_STATUSES.map((s, i) => [s, counts[i] ?? 0])) as Record<
    PinStatus,
    number
  >
  const first = oldest.pins[0]
  return {
    pins,
    countLimit: opts.countLimit,
    queue,
    deadLetters,
    failedJobs,
    workers: { live: live.length, ready: live.length - notReady.length, notReady },
    jobs,
    ...(first
      ? { oldestQueued: { cid: first.cid, ageMs: Math.max(0, ctx.clock.now() - first.updated) } }
      : {}),
  }
}

/** The stored CAR of a pinned CID, streamed from the destination bucket. */
export async function openStoredCar(
  cid: string,
  ctx: { pins: Pick<PinStore, 'get'>; destination: ObjectStore },
  signal?: AbortSignal,
): Promise<{ pin: Pin; object: ObjectInfo & { body: AsyncIterable<Uint8Array> } }> {
  const { key } = normalizeCid(cid)
  const pin = await ctx.pins.get(key)
  if (!pin) throw new PinNotFoundError(key)
  if (pin.status !== 'pinned' || !pin.car) throw new NotPinnedError(pin)
  const object = await ctx.destination.get(pin.car.key, signal ? { signal } : {})
  if (!object) throw new CarMissingError(pin.car.key, ctx.destination.bucket)
  return { pin, object }
}
