/**
 * One fetch attempt, as a worker runs it: claim the pin, dial the origins, stream the DAG as a CAR into the
 * temporary bucket under limits, and record the outcome. The S3-event validator takes it from there.
 */
import { CID } from 'multiformats/cid'
import { describeError, FetchStalledError, FetchTimeoutError, PickupError } from './errors.ts'
import { exportCar } from './export-car.ts'
import { mergeOrigins, type PinJob, type Progress, tempCarKey } from './pin.ts'
import type { BlockSource, Clock, Logger, ObjectStore, PinStore } from './ports.ts'

export interface FetchLimits {
  maxCarBytes: number
  fetchTimeoutMs: number
  fetchChunkTimeoutMs: number
  concurrency: number
  dialTimeoutMs: number
  /** How long a claim lasts without a heartbeat. */
  leaseMs: number
  progressIntervalMs: number
  partBytes: number
  /** After the upload, how long the pin stays leased to this attempt while the validator checks the CAR. */
  validationLeaseMs: number
  /** Attempts a pin gets; after the last, or a failure not retried, the source may drop what it kept. */
  maxAttempts?: number
}

export interface FetchPinContext {
  pins: PinStore
  temp: ObjectStore
  ipfs: BlockSource
  clock: Clock
  log: Logger
  newId: () => string
}

export type FetchOutcome =
  | { kind: 'already-pinned' }
  /** No pin record: nobody wants the content (it was swept, say, before an old job was redriven). */
  | { kind: 'unwanted' }
  /**
   * Another attempt holds the pin under a lease that has not run out: a duplicate delivery while it works, or
   * the job of a worker that died, come back before its lease expired. `leaseExpires` says when to look again.
   */
  | { kind: 'busy'; attemptId?: string; leaseExpires: number }
  | { kind: 'uploaded'; attemptId: string; key: string; bytes: number; blocks: number }
  | { kind: 'failed'; attemptId: string; code: string; reason: string; retryable: boolean; attempts: number }

/** The attempt lost its claim (an operator or the reconciler gave the pin to another attempt). */
export class LeaseLostError extends PickupError {
  readonly code = 'LEASE_LOST'
  constructor() {
    super('another attempt took over the pin')
  }
}

/** Lets the source drop the blocks it kept for this pin, in the background. */
function release(ctx: FetchPinContext, cid: string, log: Logger): void {
  ctx.ipfs.release?.(CID.parse(cid)).catch((err: unknown) => {
    log.warn({ err: describeError(err) }, 'could not release the fetched blocks')
  })
}

export async function fetchPin(
  job: PinJob,
  limits: FetchLimits,
  ctx: FetchPinContext,
  signal?: AbortSignal,
): Promise<FetchOutcome> {
  const attemptId = ctx.newId()
  const now = ctx.clock.now()
  const claim = await ctx.pins.claim(job.cid, attemptId, now + limits.leaseMs, now)
  if (claim.kind === 'missing') return { kind: 'unwanted' }
  if (claim.kind === 'pinned') return { kind: 'already-pinned' }
  if (claim.kind === 'busy') {
    return { kind: 'busy', attemptId: claim.pin.attemptId, leaseExpires: claim.pin.leaseExpires ?? now }
  }

  const attempts = claim.pin.attempts
  const log = ctx.log.child({ cid: job.cid, attemptId, attempt: attempts })
  const started = ctx.clock.now()
  const progress: Progress = { bytes: 0, blocks: 0 }
  const controller = new AbortController()
  const abort = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason)
  }
  const onOuterAbort = () => abort(signal?.reason)
  signal?.addEventListener('abort', onOuterAbort, { once: true })
  if (signal?.aborted) onOuterAbort()

  const overall = setTimeout(() => abort(new FetchTimeoutError(limits.fetchTimeoutMs)), limits.fetchTimeoutMs)
  let stall = setTimeout(
    () => abort(new FetchStalledError(limits.fetchChunkTimeoutMs)),
    limits.fetchChunkTimeoutMs,
  )
  const resetStall = () => {
    clearTimeout(stall)
    stall = setTimeout(
      () => abort(new FetchStalledError(limits.fetchChunkTimeoutMs)),
      limits.fetchChunkTimeoutMs,
    )
  }

  // Progress is recorded every beat; the lease is renewed every third of its length, in step with the
  // message's visibility, so that when a dead worker's message reappears its lease has run out too.
  const heartbeatEvery = Math.min(limits.progressIntervalMs, limits.leaseMs / 3)
  let leaseExpires = now + limits.leaseMs
  let beating: Promise<void> = Promise.resolve()
  const heartbeat = setInterval(() => {
    beating = beating.then(async () => {
      try {
        const t = ctx.clock.now()
        if (leaseExpires - t <= (limits.leaseMs * 2) / 3) leaseExpires = t + limits.leaseMs
        const held = await ctx.pins.heartbeat(job.cid, attemptId, leaseExpires, { ...progress }, t)
        if (!held) abort(new LeaseLostError())
      } catch (err) {
        // A failed heartbeat is not fatal: the lease outlives several missed beats.
        log.warn({ err: describeError(err) }, 'heartbeat failed')
      }
    })
  }, heartbeatEvery)

  const key = tempCarKey(job.cid, attemptId)
  try {
    // Every requester's origins, not only those of the request that sent this job.
    const origins = mergeOrigins(claim.pin.origins, job.origins)
    log.info({ origins: origins.length }, 'fetch started')
    await ctx.ipfs.connect(origins, {
      signal: AbortSignal.any([controller.signal, AbortSignal.timeout(limits.dialTimeoutMs)]),
    })

    const car = exportCar(CID.parse(job.cid), ctx.ipfs, {
      concurrency: limits.concurrency,
      maxBytes: limits.maxCarBytes,
      signal: controller.signal,
      onProgress: (p) => {
        progress.bytes = p.bytes
        progress.blocks = p.blocks
        resetStall()
      },
    })
    const { bytes } = await ctx.temp.put(key, car, {
      signal: controller.signal,
      partSize: limits.partBytes,
      metadata: { cid: job.cid, attempt: attemptId },
    })
    clearInterval(heartbeat)
    await beating
    // Keep the pin leased to this attempt while the validator works, so nothing re-queues it meanwhile.
    const t = ctx.clock.now()
    await ctx.pins.heartbeat(job.cid, attemptId, t + limits.validationLeaseMs, { ...progress }, t)
    log.info({ bytes, blocks: progress.blocks, ms: ctx.clock.now() - started }, 'fetch done: CAR uploaded')
    release(ctx, job.cid, log)
    return { kind: 'uploaded', attemptId, key, bytes, blocks: progress.blocks }
  } catch (thrown) {
    // When we aborted, the abort reason is the real cause (timeout, stall, shutdown, lost lease); what was
    // thrown is then only the SDK's or the walk's AbortError.
    const { code, message, retryable } = describeError(
      controller.signal.aborted ? controller.signal.reason : thrown,
    )
    clearInterval(heartbeat)
    await beating
    const status = retryable ? 'queued' : 'failed'
    await ctx.pins.settle(job.cid, attemptId, { status, error: `${code}: ${message}` }, ctx.clock.now())
    log.warn(
      {
        code,
        reason: message,
        retryable,
        bytes: progress.bytes,
        blocks: progress.blocks,
        ms: ctx.clock.now() - started,
      },
      'fetch failed',
    )
    if (!retryable || attempts >= (limits.maxAttempts ?? Number.POSITIVE_INFINITY)) release(ctx, job.cid, log)
    return { kind: 'failed', attemptId, code, reason: message, retryable, attempts }
  } finally {
    clearTimeout(overall)
    clearTimeout(stall)
    clearInterval(heartbeat)
    signal?.removeEventListener('abort', onOuterAbort)
  }
}
