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
 * The claim (a conditional write that takes the lease and records the status) goes through the worker's
 * claim lane (./claim-lane.ts). When the lane has room the attempt claims before anything else (content
 * pinned, unwanted or held by another attempt ends it there); when a backlog of searches fills the lane, the
 * attempt searches while its claim waits its turn, and its first block hurries the claim ahead of the lane
 * (nothing is transferred unclaimed). Until then its pin still says `queued`. An attempt that ends before its
 * claim ran writes nothing, unless it was cancelled: then it claims, and the claim records the cancellation.
 * The lease is renewed throughout; a pin whose last request went away (marked unreferenced) stops the
 * attempt within one `progressIntervalMs` (the worker's PinWatcher reads the marks set lately that often, and
 * every running pin every few intervals), stores nothing and is left `failed` with CANCELLED_ERROR.
 */
import { CID } from 'multiformats/cid'
import { type ClaimLane, immediateClaims } from './claim-lane.ts'
import {
  describeError,
  FetchCancelledError,
  FetchStalledError,
  FetchTimeoutError,
  PickupError,
} from './errors.ts'
import { checkFetchable, exportCar } from './export-car.ts'
import { isInline } from './links.ts'
import { bytesPerSecond, dimensionValue, METRICS, type Metrics, noMetrics } from './metrics.ts'
import { type FetchPhase, mergeOrigins, type PinJob, type Progress, tempCarKey } from './pin.ts'
import { createPinWatcher, type PinWatcher } from './pin-watch.ts'
import type { BlockSource, ClaimResult, Clock, Logger, ObjectStore, PinStore } from './ports.ts'

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
  /** The order of the worker's claims (core/claim-lane.ts); without one, the attempt claims at once. */
  claims?: ClaimLane
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

type ClaimState =
  | { kind: 'pending' }
  | { kind: 'held'; attempts: number }
  | { kind: 'refused'; outcome: FetchOutcome }
  | { kind: 'failed'; err: unknown }

/** The claim found nothing for this attempt to do (the outcome is the claim's); the search stops. */
class ClaimRefusedError extends PickupError {
  readonly code = 'CLAIM_REFUSED'
  constructor() {
    super('the claim found nothing to fetch')
  }
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
  const started = ctx.clock.now()
  const metrics = ctx.metrics ?? noMetrics
  const jobOrigins = mergeOrigins([], job.origins)
  // The attempt's status from the start (searching, the job's origins); the claim writes it as it is then.
  const progress: Progress = {
    bytes: 0,
    blocks: 0,
    phase: 'searching',
    searchStarted: started,
    dialled: jobOrigins,
  }
  let leaseExpires = started + limits.leaseMs
  /** The phase the pin record shows (written by the claim, then by heartbeats). */
  let phaseWritten: FetchPhase | undefined
  const ticket = (ctx.claims ?? immediateClaims).enqueue(() => {
    const t = ctx.clock.now()
    leaseExpires = t + limits.leaseMs
    phaseWritten = progress.phase
    return ctx.pins.claim(job.cid, attemptId, leaseExpires, t, { ...progress })
  })
  // Claimed at once unless the worker's claims are backed up: then content that is pinned, unwanted or held
  // by another attempt ends the job here, before anything is fetched.
  let early: ClaimResult | undefined
  if (ticket.started) {
    const claim = await ticket.result
    early = claim
    const refused = refusal(claim, job, ctx.log, ctx.clock.now())
    if (refused) return refused
    // Every requester's origins, not only those of the request that sent this job: dialled from the start.
    if (claim.kind === 'claimed') {
      const origins = mergeOrigins(claim.pin.origins, job.origins)
      if (origins.length !== jobOrigins.length) {
        progress.dialled = origins
        // The claim wrote the job's origins only: the first heartbeat writes them all.
        phaseWritten = undefined
      }
    }
  }

  let log = ctx.log.child({ cid: job.cid, attemptId })
  /** What the claim said: nothing yet, this attempt holds the pin, or the job ends without fetching. */
  let claimState = { kind: 'pending' } as ClaimState
  /** When the transfer slot was granted (the first block arrived, and any wait for a slot ended). */
  let transferAt: number | undefined
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
  // of them search at once). Nothing is written before the claim: the claim writes the status as it is then.
  const heartbeatEvery = Math.min(limits.progressIntervalMs, limits.leaseMs / 3)
  let beating: Promise<void> = Promise.resolve()
  const beat = () => {
    beating = beating.then(async () => {
      if (claimState.kind !== 'held') return
      try {
        const t = ctx.clock.now()
        const renew = leaseExpires - t <= (limits.leaseMs * 2) / 3
        if (!renew && progress.phase !== 'transferring' && progress.phase === phaseWritten) return
        if (renew) leaseExpires = t + limits.leaseMs
        const written = progress.phase
        const ok = await ctx.pins.heartbeat(job.cid, attemptId, leaseExpires, { ...progress }, t)
        if (!ok) abort(new LeaseLostError())
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

  // The claim's answer, whenever it comes: a refusal stops the search (nothing was written but the claim); a
  // claim adds the origins other requests gave and starts the lease's heartbeats.
  const onAnswer = (claim: ClaimResult) => {
    const refused = refusal(claim, job, ctx.log, ctx.clock.now())
    if (refused || claim.kind !== 'claimed') {
      claimState = { kind: 'refused', outcome: refused ?? { kind: 'unwanted' } }
      abort(new ClaimRefusedError())
      return
    }
    claimState = { kind: 'held', attempts: claim.pin.attempts }
    log = log.child({ attempt: claim.pin.attempts })
    metrics.emit({ metric: METRICS.jobsStarted, value: 1 })
    // Every requester's origins, not only those of the request that sent this job.
    const origins = mergeOrigins(claim.pin.origins, job.origins)
    const extra = origins.filter((o) => !(progress.dialled ?? []).includes(o))
    if (extra.length > 0) {
      progress.dialled = origins
      phaseWritten = undefined
      ctx.ipfs
        .connect(extra, {
          signal: AbortSignal.any([controller.signal, AbortSignal.timeout(limits.dialTimeoutMs)]),
        })
        .catch((err: unknown) => log.debug({ err }, "dialling the other requests' origins failed"))
    }
    // The phase may have moved on since the claim was sent.
    if (progress.phase !== phaseWritten) beat()
  }
  const claimed: Promise<void> = early
    ? Promise.resolve(onAnswer(early))
    : ticket.result.then(onAnswer, (err: unknown) => {
        claimState = { kind: 'failed', err }
        abort(err)
      })
  /** The claim, now: content that has arrived is claimed ahead of the searches waiting their turn. */
  const claimNow = async () => {
    await ticket.hurry().catch(() => {})
    await claimed
  }

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
      await claimNow()
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

  /**
   * The CAR of a DAG held entirely in its CID (identity), which asks the source for nothing: it ends only once
   * the attempt holds the pin, so its upload cannot complete under an attempt that has not claimed it.
   */
  async function* thenClaimed(car: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    yield* car
    await claimNow()
    controller.signal.throwIfAborted()
  }

  const key = tempCarKey(job.cid, attemptId)
  try {
    const origins = progress.dialled ?? []
    log.info({ origins: origins.length }, 'fetch started: searching')
    // No origins, no dial deadline: a timer and its signal held for each of thousands of searches.
    if (origins.length > 0) {
      await ctx.ipfs.connect(origins, {
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(limits.dialTimeoutMs)]),
      })
    }

    const root = CID.parse(job.cid)
    // A search holds only its want for the root (and its timers): the export, its queues and the upload are
    // built once the root has arrived and a transfer slot is granted. A worker holds thousands of searches
    // (SEARCH_CONCURRENCY), so this is most of what a search costs: it halved the worker's memory per search
    // (bench/dead-backlog.ts). A root pickup could not store fails here, before anything is asked for.
    let rootBytes: Uint8Array | undefined
    if (!isInline(root)) {
      checkFetchable(root)
      rootBytes = await source.get(root, { signal: controller.signal })
    }
    const walk = exportCar(root, withFound(source, root, rootBytes), {
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
    // The export holds the root until it has written it; this frame stays for the whole transfer.
    rootBytes = undefined
    const car = isInline(root) ? thenClaimed(walk) : walk
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
    // A search stopped before its claim's turn for a reason worth a retry (the worker stopping) has recorded
    // nothing and records nothing: the pin is still queued, and its message goes back. A failure not retried
    // (an unsupported codec or hash, found before any block) claims, to record why.
    if (retryable && !(cause instanceof FetchCancelledError) && ticket.withdraw()) {
      log.debug({ code, ms: ctx.clock.now() - started }, 'search stopped before its claim: nothing recorded')
      return { kind: 'failed', attemptId, code, reason: message, retryable: true, attempts: 0 }
    }
    // Otherwise the attempt ends with its claim answered (a cancelled search claims now, and the claim of
    // content nobody wants records why), and what follows is recorded under this attempt.
    await claimNow()
    await beating
    const state = claimState
    if (state.kind === 'failed') throw state.err
    if (state.kind === 'refused') return state.outcome
    if (state.kind === 'pending') throw new Error('the claim settled without an answer')
    const { attempts } = state
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
    // Whatever still waits on the attempt (a transfer slot asked for by a get the walk no longer needs) stops.
    abort(new Error('the attempt has ended'))
    overall.clear()
    stopStall()
    clearInterval(heartbeat)
    unwatch()
    ownWatcher?.stop()
    signal?.removeEventListener('abort', onOuterAbort)
  }
}

/** The job's end without fetching, when the claim says there is nothing for this attempt to do. */
function refusal(claim: ClaimResult, job: PinJob, log: Logger, now: number): FetchOutcome | undefined {
  switch (claim.kind) {
    case 'claimed':
      return undefined
    case 'missing':
      return { kind: 'unwanted' }
    case 'pinned':
      return { kind: 'already-pinned' }
    case 'cancelled':
      log.info({ cid: job.cid }, 'job dropped: no request wants the content any longer')
      return { kind: 'cancelled' }
    case 'busy':
      return {
        kind: 'busy',
        attemptId: claim.pin.attemptId,
        leaseExpires: claim.pin.leaseExpires ?? now,
      }
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

/** The source, answering the first get of `cid` with `bytes` (already fetched) instead of asking again. */
function withFound(source: BlockSource, cid: CID, bytes: Uint8Array | undefined): BlockSource {
  let found = bytes
  return {
    ...source,
    get(wanted, opts) {
      const answer = found
      if (answer && wanted.equals(cid)) {
        found = undefined
        return Promise.resolve(answer)
      }
      return source.get(wanted, opts)
    },
  }
}
