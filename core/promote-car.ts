/**
 * The validator: runs on every object created in the temporary bucket. A CAR that parses, has the requested
 * root, hashes right block by block and holds the whole DAG is copied to the destination bucket and the pin
 * becomes `pinned`; anything else is never promoted, and the pin is retried or failed with the precise reason.
 * Every step is safe to repeat: S3 events can arrive twice, and an invocation can die at any point.
 */
import { CID } from 'multiformats/cid'
import { CopySourceChangedError } from './errors.ts'
import { bytesPerSecond, dimensionValue, METRICS, type Metrics, noMetrics, sizeClass } from './metrics.ts'
import { type CarInfo, destinationCarKey, parseTempCarKey } from './pin.ts'
import type { Clock, EventSink, Logger, ObjectStore, PinQueue, PinStore } from './ports.ts'
import { jobRetryDelaySeconds, type RetryPolicy } from './retry-policy.ts'
import { PERMANENT_CAR_FAULTS, validateCar } from './validate-car.ts'

export interface PromoteContext {
  pins: PinStore
  temp: ObjectStore
  destination: ObjectStore
  queue: PinQueue
  events: EventSink
  clock: Clock
  log: Logger
  /** Pins stored, time to pinned, CAR bytes and blocks, validation time and rate, invalid CARs by fault. */
  metrics?: Metrics
}

export interface PromoteOptions {
  maxCarBytes: number
  /** Most distinct blocks (link targets included) of one DAG; default DEFAULT_MAX_DAG_BLOCKS. */
  maxDagBlocks?: number
  maxAttempts: number
  /** The retry of an attempt whose CAR was invalid waits as a failed fetch's does (core/retry-policy.ts). */
  retry: RetryPolicy
}

export type PromoteOutcome =
  | { kind: 'pinned'; car: CarInfo }
  /** Another attempt's CAR was promoted first; this one was discarded. */
  | { kind: 'duplicate' }
  | { kind: 'invalid'; code: string; reason: string; retried: boolean }
  /** Not a pickup upload, or already handled (the object is gone). */
  | { kind: 'ignored'; why: string }

export async function promoteCar(
  key: string,
  opts: PromoteOptions,
  ctx: PromoteContext,
): Promise<PromoteOutcome> {
  const parsed = parseTempCarKey(key)
  if (!parsed) {
    ctx.log.warn({ key }, 'not a pickup upload: deleted')
    await ctx.temp.delete(key)
    return { kind: 'ignored', why: 'unrecognised key' }
  }
  const { cid, attemptId } = parsed
  const log = ctx.log.child({ cid, attemptId, key })
  const started = ctx.clock.now()

  const pin = await ctx.pins.get(cid)
  if (!pin) return discardUnwanted(key, log, ctx)
  if (pin.status === 'pinned' && pin.attemptId !== attemptId) {
    await ctx.temp.delete(key)
    log.info({}, 'already pinned by another attempt: upload discarded')
    return { kind: 'duplicate' }
  }

  const object = await ctx.temp.get(key)
  if (!object) return { kind: 'ignored', why: 'object already handled' }

  const metrics = ctx.metrics ?? noMetrics
  const validating = ctx.clock.now()
  const verdict = await validateCar(object.body, {
    root: CID.parse(cid),
    maxBytes: opts.maxCarBytes,
    ...(opts.maxDagBlocks === undefined ? {} : { maxBlocks: opts.maxDagBlocks }),
  })
  const validationMs = ctx.clock.now() - validating
  metrics.emit(
    { metric: METRICS.validationTime, value: validationMs },
    { metric: METRICS.validationRate, value: bytesPerSecond(verdict.bytes, validationMs) },
  )
  if (!verdict.valid) {
    metrics.emit({
      metric: METRICS.invalidCars,
      value: 1,
      dimensions: { FaultCode: dimensionValue(verdict.code) },
    })
    const permanent = PERMANENT_CAR_FAULTS.has(verdict.code)
    const retried = await retryOrFail(
      cid,
      attemptId,
      `${verdict.code}: ${verdict.reason}`,
      permanent,
      opts,
      ctx,
    )
    await ctx.temp.delete(key)
    log.warn(
      { code: verdict.code, reason: verdict.reason, bytes: verdict.bytes, retried, permanent },
      'invalid CAR: not promoted',
    )
    return { kind: 'invalid', code: verdict.code, reason: verdict.reason, retried }
  }

  const carCid = verdict.carCid.toString()
  const car: CarInfo = {
    cid: carCid,
    bytes: verdict.bytes,
    blocks: verdict.blocks,
    key: destinationCarKey(carCid),
  }
  try {
    // Conditional on the ETag of the bytes just verified: a replaced object is never copied in their name.
    await ctx.temp.copyTo(key, ctx.destination, car.key, { size: verdict.bytes, ifMatch: object.etag })
  } catch (err) {
    if (!(err instanceof CopySourceChangedError)) throw err
    log.warn({ etag: object.etag }, 'the object changed after it was verified: not promoted')
    return { kind: 'ignored', why: 'object changed since it was verified' }
  }
  const pinnedAt = ctx.clock.now()
  const won = await ctx.pins.markPinned(cid, attemptId, car, pinnedAt)
  // Counted by the delivery whose mark won: a redelivered event finishing the steps counts nothing again.
  if (won) {
    metrics.emit(
      { metric: METRICS.pinsStored, value: 1 },
      {
        metric: METRICS.timeToPinned,
        value: Math.max(0, pinnedAt - pin.created),
        dimensions: { SizeClass: sizeClass(car.bytes) },
      },
      { metric: METRICS.carBytes, value: car.bytes },
      { metric: METRICS.carBlocks, value: car.blocks },
    )
  }
  if (!won) {
    const current = await ctx.pins.get(cid)
    // The same bytes land at the same key, so only a differently ordered CAR is removed.
    if (current?.car?.key !== car.key) await deleteCopy(cid, key, car.key, object.etag, ctx)
    if (!current) return discardUnwanted(key, log, ctx)
    if (current?.attemptId !== attemptId) {
      await ctx.temp.delete(key)
      log.info({}, 'already pinned by another attempt: upload discarded')
      return { kind: 'duplicate' }
    }
    // This attempt won on an earlier delivery that died before finishing: finish its remaining steps.
  }
  // The sweep of unreferenced content may have deleted this key between the copy and the mark (the content was
  // swept and wanted again): copy it again while the temporary object is still there. A delete after this
  // check comes after the mark, and the sweep's own re-check sees it (core/unreferenced-content.ts).
  if (!(await ctx.destination.head(car.key))) {
    log.warn({ carKey: car.key }, 'the CAR was deleted after it was copied (swept meanwhile): copied again')
    await ctx.temp.copyTo(key, ctx.destination, car.key, { size: verdict.bytes, ifMatch: object.etag })
  }
  // At least once: a delivery that died after marking the pin publishes again on redelivery.
  await ctx.events.carStored({
    cid,
    car,
    bucket: ctx.destination.bucket,
    storedAt: new Date(ctx.clock.now()).toISOString(),
  })
  await ctx.temp.delete(key)
  log.info(
    { carCid, bytes: car.bytes, blocks: car.blocks, ms: ctx.clock.now() - started },
    'CAR valid: promoted',
  )
  return { kind: 'pinned', car }
}

/**
 * Removes the copy this attempt made at `carKey` when the pin points elsewhere (or nowhere). If the pin is
 * `pinned` at that very key once the delete is done (the content was swept, wanted and promoted again
 * meanwhile), the delete removed a live CAR: the same bytes are copied back from the temporary object.
 */
async function deleteCopy(cid: string, key: string, carKey: string, etag: string, ctx: PromoteContext) {
  await ctx.destination.delete(carKey)
  const now = await ctx.pins.get(cid)
  if (now?.status === 'pinned' && now.car?.key === carKey)
    await ctx.temp.copyTo(key, ctx.destination, carKey, { ifMatch: etag })
}

/** The pin record is gone (swept: no request wants the content): the upload is dropped, nothing recorded. */
async function discardUnwanted(key: string, log: Logger, ctx: PromoteContext): Promise<PromoteOutcome> {
  await ctx.temp.delete(key)
  log.info({}, 'no request wants the content any longer (its pin record is gone): upload discarded')
  return { kind: 'ignored', why: 'no pin record' }
}

/**
 * Records a failed attempt: back to the queue with a delay while attempts remain and the fault is not
 * `permanent` (one no fetch can change), otherwise `failed`.
 * The record is written before the message is sent, so a crash in between leaves a `queued` pin without a
 * message, which the reconciler re-sends, rather than a message the pin would refuse.
 */
async function retryOrFail(
  cid: string,
  attemptId: string,
  error: string,
  permanent: boolean,
  opts: PromoteOptions,
  ctx: PromoteContext,
): Promise<boolean> {
  const pin = await ctx.pins.get(cid)
  if (!pin || pin.attemptId !== attemptId || pin.status !== 'pinning') return false
  const retry = !permanent && pin.attempts < opts.maxAttempts
  const settled = await ctx.pins.settle(
    cid,
    attemptId,
    { status: retry ? 'queued' : 'failed', error },
    ctx.clock.now(),
  )
  if (settled && retry)
    await ctx.queue.send(
      { cid, origins: pin.origins },
      { delaySeconds: jobRetryDelaySeconds(pin.attempts, opts.retry) },
    )
  return settled && retry
}
