/**
 * Content nobody wants any longer. When the last request for some content goes away (a Pinning Service API
 * delete or replace, or the cluster API's unpin), its pin is marked unreferenced; a new request for it clears
 * the mark. `sweepUnreferenced` deletes the CAR and the pin record of content that stayed unreferenced for the
 * retention period, re-checking first that no request appeared meanwhile.
 *
 * Retention: 7 days by default. Long enough that a user who deletes by mistake, or replaces a pin and then
 * returns to the old CID, finds it still `pinned` at once, and that a crashed client's delete-then-re-add is
 * free; short enough that storage for abandoned content stops within a week. A request that comes back after
 * the sweep simply fetches the content again.
 *
 * Order of the sweep, and why: the pin record is deleted first, conditionally on the mark still being the one
 * read (a request that arrived meanwhile cleared it, and then nothing is deleted), then the CAR. The other
 * order could leave a `pinned` record without its CAR. A failed CAR delete leaves an object no record points
 * at (logged), never a record without its data.
 *
 * Between the two deletes the content can be requested, fetched and promoted again, to the same
 * content-addressed key: the CAR delete then removes the new copy. So the sweep re-checks after it: a pin
 * `pinned` at that key whose object is gone is set `queued` again (`requeueLostCar`; the reconciler sends its
 * job and it is fetched again). The validator covers the other half: after marking a pin it checks that its
 * CAR is there and copies it again if a delete landed between its copy and its mark (core/promote-car.ts).
 * Whichever of the two deletes the sweep's comes after, the mark or the validator's check sees it.
 */
import type { Clock, Logger, ObjectStore, PinStore, RequestStore } from './ports.ts'

export const DEFAULT_UNREFERENCED_RETENTION_MS = 7 * 24 * 60 * 60 * 1000

/**
 * The shortest retention the configuration accepts: 1 hour. Whether content is still wanted is read from the
 * requests' CID index, which DynamoDB updates asynchronously (a global secondary index: usually within a
 * second, longer under load). A request created just as the last other one is deleted can be missed by the
 * delete's check, which then marks the content unreferenced although it is wanted; only the sweep's own check
 * undoes that, and it must not run before the index shows the new request. The retention is counted from the
 * mark, so an hour leaves the index a wide margin. With a retention of 0, a sweep right after such a mark
 * deletes the record and the CAR of content a request wants, and nothing fetches it again.
 */
export const MIN_UNREFERENCED_RETENTION_MS = 60 * 60 * 1000

export interface ReleaseContext {
  pins: PinStore
  requests: Pick<RequestStore, 'forContent'>
  clock: Clock
}

/**
 * Call after deleting a request for the content (any API): marks the pin unreferenced when no request for it
 * is left. Returns whether it did.
 */
export async function releaseContent(cid: string, ctx: ReleaseContext): Promise<boolean> {
  const left = await ctx.requests.forContent(cid, 1)
  if (left.length > 0) return false
  return ctx.pins.markUnreferenced(cid, ctx.clock.now())
}

export interface DeleteRequestContext extends ReleaseContext {
  requests: Pick<RequestStore, 'forContent' | 'delete'>
}

/**
 * Deletes a request and releases its content (any API), safe against a crash in between: when the request is
 * the content's last one, the content is marked unreferenced *before* the request is deleted, so a process
 * that dies after the delete leaves a mark the sweep acts on after the retention period, instead of content
 * stored for ever. One that dies before the delete leaves the request, which the sweep finds, clearing the mark.
 * After the delete the content is released again, for a concurrent delete of its other requests. With
 * `release: false` (a replace keeping the same content) the content is left alone. False when the request was
 * already gone.
 */
export async function deleteRequest(
  request: { requestid: string; cid: string },
  ctx: DeleteRequestContext,
  opts: { release?: boolean } = {},
): Promise<boolean> {
  const release = opts.release ?? true
  if (release) {
    const others = (await ctx.requests.forContent(request.cid, 2)).filter(
      (r) => r.requestid !== request.requestid,
    )
    if (others.length === 0) await ctx.pins.markUnreferenced(request.cid, ctx.clock.now())
  }
  const deleted = await ctx.requests.delete(request.requestid)
  if (release) await releaseContent(request.cid, ctx)
  return deleted
}

export interface SweepContext extends ReleaseContext {
  destination: ObjectStore
  log: Logger
}

export interface SweepOptions {
  retentionMs: number
  /** Most pins examined in one run. */
  limit: number
}

export interface SweepResult {
  examined: number
  /** Pin records and CARs deleted. */
  deleted: number
  bytesFreed: number
  /** Wanted again (a request exists): the mark was cleared. */
  kept: number
  /** Still queued or pinning, or changed while the sweep ran: left for a later run. */
  skipped: number
  /** Wanted and stored again at the same key while being swept: the CAR was lost, the pin queued again. */
  requeued: number
}

/**
 * After deleting the CAR at `carKey`: if the content was requested and promoted again meanwhile, to that same
 * key, the delete removed the new copy. Such a pin is set `queued` again (attempts reset) so it is fetched
 * again. True when it was.
 */
async function requeueIfStoredAgain(cid: string, carKey: string, ctx: SweepContext): Promise<boolean> {
  const now = await ctx.pins.get(cid)
  if (now?.status !== 'pinned' || now.car?.key !== carKey) return false
  if (await ctx.destination.head(carKey)) return false
  return ctx.pins.requeueLostCar(
    cid,
    carKey,
    'CAR_LOST: the CAR was deleted by the sweep of unreferenced content as the content was stored again; fetched again',
    ctx.clock.now(),
  )
}

export async function sweepUnreferenced(ctx: SweepContext, opts: SweepOptions): Promise<SweepResult> {
  const started = ctx.clock.now()
  const result: SweepResult = { examined: 0, deleted: 0, bytesFreed: 0, kept: 0, skipped: 0, requeued: 0 }
  let cursor: string | undefined
  do {
    const page = await ctx.pins.listUnreferenced({
      markedBefore: started - opts.retentionMs,
      limit: Math.min(100, opts.limit - result.examined),
      ...(cursor === undefined ? {} : { cursor }),
    })
    cursor = page.cursor
    for (const pin of page.pins) {
      result.examined++
      const since = pin.unreferencedSince
      if (since === undefined) continue
      const log = ctx.log.child({ cid: pin.cid, unreferencedSince: since })
      if ((await ctx.requests.forContent(pin.cid, 1)).length > 0) {
        await ctx.pins.clearUnreferenced(pin.cid, since)
        result.kept++
        continue
      }
      if (pin.status !== 'pinned' && pin.status !== 'failed') {
        // A worker may still be on it, or a job is queued: once it settles, a later run takes it.
        result.skipped++
        continue
      }
      const deleted = await ctx.pins.deleteUnreferenced(pin.cid, since)
      if (!deleted) {
        result.skipped++
        continue
      }
      result.deleted++
      if (deleted.car) {
        try {
          await ctx.destination.delete(deleted.car.key)
          result.bytesFreed += deleted.car.bytes
        } catch (err) {
          log.error(
            { key: deleted.car.key, err },
            'unreferenced content: pin deleted but its CAR was not; delete the object by hand',
          )
        }
        if (await requeueIfStoredAgain(pin.cid, deleted.car.key, ctx)) {
          result.requeued++
          log.warn(
            { key: deleted.car.key },
            'unreferenced content: wanted and stored again while it was swept; its CAR is gone, fetched again',
          )
        }
      }
      log.info(
        { status: deleted.status, car: deleted.car?.key, bytes: deleted.car?.bytes ?? 0 },
        'unreferenced content deleted',
      )
    }
  } while (cursor !== undefined && result.examined < opts.limit)
  ctx.log.info(
    { ...result, ms: ctx.clock.now() - started, retentionMs: opts.retentionMs },
    'unreferenced sweep done',
  )
  return result
}
