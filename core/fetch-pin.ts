/**
 * One fetch attempt, as a worker runs it: claim the pin, dial the origins, stream the DAG as a CAR into the
 * temporary bucket under limits, and record the outcome. The S3-event validator takes it from there.
 *
 * An attempt first *searches*: no block has arrived yet (dialling, finding providers, waiting for the root).
 * Searching costs a held message, a lease and one want, so a worker runs hundreds of searches at once. When
 * the first block arrives the attempt asks the worker for a transfer slot (`hooks.startTransfer`) and
 * *waits* for one holding that block (nothing else is fetched meanwhile), then *transfers*. Limits:
 * - `fetchChunkTimeoutMs`: searching ends in a stall after that long without the first block; transferring,
 *   after that long without the next. Waiting for a slot is not a stall (the network is not at fault), so
 *   the stall timer stops while it waits and starts again with the transfer.
 * - `fetchTimeoutMs`: the time spent searching and transferring, waiting for a slot excluded.
 * - `maxCarBytes`: the CAR, as before.
 * The lease is renewed throughout; a pin whose last request went away (marked unreferenced) stops the
 * attempt within one `progressIntervalMs` (the worker's PinWatcher reads every running pin that often),
 * stores nothing and is left `failed` with CANCELLED_ERROR.
 */
import { CID } from 'multiformats/cid'
import {
  describeError,
  FetchCancelledError,
  FetchStalledError,
  FetchTimeoutError,
  PickupError,
} from './errors.ts'
import { exportCar } from './export-car.ts'
import { bytesPerSecond, dimensionValue, METRICS, type Metrics, noMetrics } from './metrics.ts'
import { type FetchPhase, mergeOrigins, type PinJob, type Progress, tempCarKey } from './pin.ts'
import { createPinWatcher, type PinWatcher } from './pin-watch.ts'
import type { BlockSource, Clock, Logger, ObjectStore, PinStore } from './ports.ts'

export interface FetchLimits {
  maxCarBytes: number
  /** Most distinct blocks (link targets included) of one DAG; default DEFAULT_MAX_DAG_BLOCKS. */
  maxDagBlocks?: number
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
  /** The worker's shared watcher of running pins; without one, the attempt reads its pin on its own. */
  watcher?: PinWatcher
  /** Jobs started, finished and failed by reason; time searching vs transferring; fetch rate. */
  metrics?: Metrics
}

export interface FetchPinHooks {
  /**
   * Called once, when the first block arrives: resolves when the attempt may transfer (it holds one of the
   * worker's transfer slots until it ends), rejects with the signal's reason if the attempt is aborted first.
   * Absent: the transfer starts at once. `heldBytes`: the size of the first block, held while waiting.
   */
  startTransfer?: (signal: AbortSignal, heldBytes: number) => Promise<void>
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
  /** No request wants the content any longer: dropped before fetching, or stopped; the pin says CANCELLED. */
  | { kind: 'cancelled'; attemptId?: string }
  | {
      kind: 'failed'
      attemptId: string
      code: string
      reason: string
      retryable: boolean
      attempts: number
      /** Retry at once rather than after the growing delay (the attempt was stopped, nothing failed). */
      retryNow?: boolean
    }

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
    log.warn({ err }, 'could not release the fetched blocks')
  })
}

export async function fetchPin(
  job: PinJob,
  limits: FetchLimits,
  ctx: FetchPinContext,
  signal?: AbortSignal,
  hooks: FetchPinHooks = {},
): Promise<FetchOutcome> {
  const attemptId = ctx.newId()
  const now = ctx.clock.now()
  // The attempt's first status (searching, the job's origins) is written by the claim itself.
  const jobOrigins = mergeOrigins([], job.origins)
  const claimedProgress: Progress = {
    bytes: 0,
    blocks: 0,
    phase: 'searching',
    searchStarted: now,
    dialled: jobOrigins,
  }
  const claim = await ctx.pins.claim(job.cid, attemptId, now + limits.leaseMs, now, claimedProgress)
  if (claim.kind === 'missing') return { kind: 'unwanted' }
  if (claim.kind === 'pinned') return { kind: 'already-pinned' }
  if (claim.kind === 'cancelled') {
    ctx.log.info({ cid: job.cid }, 'job dropped: no request wants the content any longer')
    return { kind: 'cancelled' }
  }
  if (claim.kind === 'busy') {
    return { kind: 'busy', attemptId: claim.pin.attemptId, leaseExpires: claim.pin.leaseExpires ?? now }
  }

  const attempts = claim.pin.attempts
  const log = ctx.log.child({ cid: job.cid, attemptId, attempt: attempts })
  const started = ctx.clock.now()
  const metrics = ctx.metrics ?? noMetrics
  metrics.emit({ metric: METRICS.jobsStarted, value: 1 })
  /** When the transfer slot was granted (the first block arrived, and any wait for a slot ended). */
  let transferAt: number | undefined
  // Every requester's origins, not only those of the request that sent this job.
  const origins = mergeOrigins(claim.pin.origins, job.origins)
  const progress: Progress = { ...claimedProgress, dialled: origins }
  const controller = new AbortController()
  const abort = (reason: unknown) => {
    if (!controller.signal.aborted) controller.abort(reason)
  }
  const onOuterAbort = () => abort(signal?.reason)
  signal?.addEventListener('abort', onOuterAbort, { once: true })
  if (signal?.aborted) onOuterAbort()

  const overall = pausableTimeout(limits.fetchTimeoutMs, () =>
    abort(new FetchTimeoutError(limits.fetchTimeoutMs)),
  )
  let stall: ReturnType<typeof setTimeout> | undefined
  const stopStall = () => clearTimeout(stall)
  const resetStall = () => {
    clearTimeout(stall)
    stall = setTimeout(
      () => abort(new FetchStalledError(limits.fetchChunkTimeoutMs)),
      limits.fetchChunkTimeoutMs,
    )
  }
  resetStall()

  // The lease is renewed every third of its length, in step with the message's visibility, so that when a dead
  // worker's message reappears its lease has run out too. Progress is written every beat while transferring;
  // a searching or waiting attempt writes only when its phase changes or its lease needs renewing (hundreds
  // of them search at once).
  const heartbeatEvery = Math.min(limits.progressIntervalMs, limits.leaseMs / 3)
  let leaseExpires = now + limits.leaseMs
  // Written by the claim unless other requests' origins are to be added.
  let phaseWritten: FetchPhase | undefined =
    origins.join('\n') === jobOrigins.join('\n') ? 'searching' : undefined
  let beating: Promise<void> = Promise.resolve()
  const beat = () => {
    beating = beating.then(async () => {
      try {
        const t = ctx.clock.now()
        const renew = leaseExpires - t <= (limits.leaseMs * 2) / 3
        if (!renew && progress.phase !== 'transferring' && progress.phase === phaseWritten) return
        if (renew) leaseExpires = t + limits.leaseMs
        const written = progress.phase
        const held = await ctx.pins.heartbeat(job.cid, attemptId, leaseExpires, { ...progress }, t)
        if (!held) abort(new LeaseLostError())
        phaseWritten = written
      } catch (err) {
        // A failed heartbeat is not fatal: the lease outlives several missed beats.
        log.warn({ err }, 'heartbeat failed')
      }
    })
  }
  const heartbeat = setInterval(beat, heartbeatEvery)
  const setPhase = (phase: FetchPhase) => {
    progress.phase = phase
    beat()
  }
  // Status from the start: searching, and which origins (unless the claim wrote it already).
  beat()

  // The last request for the content going away stops the attempt.
  const ownWatcher = ctx.watcher
    ? undefined
    : createPinWatcher({ intervalMs: limits.progressIntervalMs }, ctx)
  const unwatch = (ctx.watcher ?? ownWatcher)!.watch(job.cid, (pin) => {
    if (pin?.unreferencedSince !== undefined) abort(new FetchCancelledError())
  })

  // The first block moves the attempt from searching to transferring, through the worker's transfer slots.
  let transferReady: Promise<void> | undefined
  const startTransfer = (heldBytes: number): Promise<void> =>
    (transferReady ??= (async () => {
      stopStall()
      overall.pause()
      metrics.emit({ metric: METRICS.searchTime, value: ctx.clock.now() - started })
      if (hooks.startTransfer) {
        setPhase('waiting')
        log.debug({}, 'found: waiting for a transfer slot')
        await hooks.startTransfer(controller.signal, heldBytes)
      }
      controller.signal.throwIfAborted()
      overall.resume()
      resetStall()
      transferAt = ctx.clock.now()
      setPhase('transferring')
    })())
  const source: BlockSource = {
    connect: (addrs, o) => ctx.ipfs.connect(addrs, o),
    multiaddrs: () => ctx.ipfs.multiaddrs(),
    async get(cid, o) {
      const bytes = await ctx.ipfs.get(cid, o)
      await startTransfer(bytes.byteLength)
      return bytes
    },
  }

  const key = tempCarKey(job.cid, attemptId)
  try {
    log.info({ origins: origins.length }, 'fetch started: searching')
    await ctx.ipfs.connect(origins, {
      signal: AbortSignal.any([controller.signal, AbortSignal.timeout(limits.dialTimeoutMs)]),
    })

    const car = exportCar(CID.parse(job.cid), source, {
      concurrency: limits.concurrency,
      maxBytes: limits.maxCarBytes,
      ...(limits.maxDagBlocks === undefined ? {} : { maxBlocks: limits.maxDagBlocks }),
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
    const transferMs = ctx.clock.now() - (transferAt ?? started)
    metrics.emit(
      { metric: METRICS.jobsFinished, value: 1 },
      { metric: METRICS.transferTime, value: transferMs },
      { metric: METRICS.fetchRate, value: bytesPerSecond(bytes, transferMs) },
    )
    release(ctx, job.cid, log)
    return { kind: 'uploaded', attemptId, key, bytes, blocks: progress.blocks }
  } catch (thrown) {
    // When we aborted, the abort reason is the real cause (timeout, stall, shutdown, lost lease, cancelled);
    // what was thrown is then only the SDK's or the walk's AbortError.
    const cause = controller.signal.aborted ? controller.signal.reason : thrown
    const { code, message, retryable } = describeError(cause)
    clearInterval(heartbeat)
    await beating
    const facts = {
      bytes: progress.bytes,
      blocks: progress.blocks,
      phase: progress.phase,
      ms: ctx.clock.now() - started,
    }
    metrics.emit({ metric: METRICS.jobsFailed, value: 1, dimensions: { Reason: dimensionValue(code) } })
    if (cause instanceof FetchCancelledError) {
      if (await ctx.pins.cancel(job.cid, attemptId, ctx.clock.now())) {
        log.info(facts, 'fetch cancelled: no request wants the content any longer')
        release(ctx, job.cid, log)
        return { kind: 'cancelled', attemptId }
      }
      // Wanted again since the watcher saw it unwanted: the pin must be fetched after all, at once.
      const error = `${code}: stopped, then wanted again by a new request`
      await ctx.pins.settle(job.cid, attemptId, { status: 'queued', error }, ctx.clock.now())
      log.info(facts, 'fetch stopped, but the content is wanted again: retrying at once')
      return { kind: 'failed', attemptId, code, reason: message, retryable: true, attempts, retryNow: true }
    }
    const status = retryable ? 'queued' : 'failed'
    await ctx.pins.settle(job.cid, attemptId, { status, error: `${code}: ${message}` }, ctx.clock.now())
    log.warn({ code, reason: message, retryable, ...facts }, 'fetch failed')
    if (!retryable || attempts >= (limits.maxAttempts ?? Number.POSITIVE_INFINITY)) release(ctx, job.cid, log)
    return { kind: 'failed', attemptId, code, reason: message, retryable, attempts }
  } finally {
    overall.clear()
    stopStall()
    clearInterval(heartbeat)
    unwatch()
    ownWatcher?.stop()
    signal?.removeEventListener('abort', onOuterAbort)
  }
}

/** A timeout whose clock can be stopped and started again: it fires once `ms` of running time have passed. */
function pausableTimeout(ms: number, fire: () => void) {
  let remaining = ms
  let since = Date.now()
  let timer: ReturnType<typeof setTimeout> | undefined = setTimeout(fire, remaining)
  return {
    pause() {
      if (!timer) return
      clearTimeout(timer)
      timer = undefined
      remaining -= Date.now() - since
    },
    resume() {
      if (timer) return
      since = Date.now()
      timer = setTimeout(fire, Math.max(0, remaining))
    },
    clear() {
      clearTimeout(timer)
      timer = undefined
    },
  }
}
