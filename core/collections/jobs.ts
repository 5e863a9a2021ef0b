/**
 * One collection job, and the job that follows it. `enumerate` runs a bounded number of pages (checkpointed
 * after each) and sends itself again until enumeration has finished, then an `advance`; `advance` makes one
 * pass over the incomplete tokens and, until the collection is done, sends itself again after a delay (the
 * pins it waits for are fetched by the workers meanwhile). Every step is re-entrant: a job delivered twice,
 * or repeated after a crash, redoes at most one run's work.
 *
 * One chain per collection. The collection names the one job that may run (`jobId`); each job is sent with a
 * new id and, as `prev`, the id of the job that sent it. A job runs when the collection names it (a retry, or
 * a copy: SQS delivers at least once, and posting an enumerating collection sends its job again); it takes
 * its place when the collection still names its `prev`, by a write conditional on that, so of two jobs sent
 * by copies of one job (or by two follow ticks) exactly one goes on; any other job is stale: logged and
 * dropped. The next job is sent before the current one returns and, being sent before anything names it,
 * cannot be stranded by a crash: until a successor takes its place, the current job's message (not yet
 * deleted) comes back and sends again.
 */
import type { Logger } from '../ports.ts'
import {
  advanceCollection,
  type CollectionContext,
  type CollectionJob,
  type CollectionJobs,
  enumerateCollection,
  newJobId,
  type StoredContentReader,
} from './archive.ts'
import type { CollectionEnumerator } from './enumeration.ts'
import type { WebArchivePorts } from './web.ts'

/** The consumer's own queue, for a job that failed: its message comes back after a backoff. */
export interface CollectionJobRetries {
  /** Makes a received message visible again after `delaySeconds`, instead of the queue's visibility timeout. */
  retryAfter(receiptHandle: string, delaySeconds: number): Promise<void>
}

export interface CollectionJobContext extends CollectionContext {
  enumerator: CollectionEnumerator
  reader: StoredContentReader
  jobs: CollectionJobs
  log: Logger
  /** Web-hosted content's fetch and import; without it such content is reported, not archived. */
  web?: WebArchivePorts
}

export interface CollectionJobOptions {
  /** Pages of tokens one enumerate job reads before handing over to the next. */
  pagesPerJob: number
  /** Delay between two passes of `advance` while pins are still queued or pinning. */
  advanceDelaySeconds: number
  /** One `advance` pass starts web fetches only within this long of its start (a Lambda's time). */
  webImportWindowMs?: number
}

/** Runs the job and sends the next; throws (for a retry of the same job) when a step failed transiently. */
export async function runCollectionJob(
  job: CollectionJob,
  ctx: CollectionJobContext,
  opts: CollectionJobOptions,
  signal?: AbortSignal,
): Promise<void> {
  const claimed = await claimCollectionJob(job, ctx)
  if (!claimed) {
    ctx.log.info({ ...job }, 'stale collection job dropped: the collection names another')
    return
  }
  const { collectionId } = claimed
  /** The job after this one: a new id, claimed from this one's. */
  const next = (step: CollectionJob['step']): CollectionJob => ({
    collectionId,
    step,
    id: newJobId(),
    ...(claimed.id !== undefined ? { prev: claimed.id } : {}),
  })
  if (job.step === 'enumerate') {
    const result = await enumerateCollection(
      { collectionId, maxPages: opts.pagesPerJob, ...(signal ? { signal } : {}) },
      ctx,
    )
    ctx.log.info({ collectionId, tokens: result.tokens, finished: result.finished }, 'collection enumerated')
    if (!result.finished) await ctx.jobs.send(next('enumerate'))
    else if ((await ctx.collections.get(collectionId))?.status === 'archiving')
      await ctx.jobs.send(next('advance'))
    return
  }
  const result = await advanceCollection(
    {
      collectionId,
      ...(signal ? { signal } : {}),
      ...(opts.webImportWindowMs ? { webUntil: ctx.clock.now() + opts.webImportWindowMs } : {}),
    },
    ctx,
  )
  if (result.changed > 0 || result.done)
    ctx.log.info({ collectionId, changed: result.changed, done: result.done }, 'collection advanced')
  if (result.done) return
  // Still archiving (not deleted, not failed): look again once the workers have had time.
  if ((await ctx.collections.get(collectionId))?.status === 'archiving')
    await ctx.jobs.send(next('advance'), { delaySeconds: opts.advanceDelaySeconds })
}

/**
 * Whether the job may run, as what: the job itself when the collection names it or it took its `prev`'s place
 * (a follow tick's job takes the place of whatever a `done` collection names, and moves it to
 * `enumerating`); undefined when it is stale (or the collection is gone). A job without an id (sent before
 * jobs had them) runs, with an id it gives itself, on a collection that names none.
 */
export async function claimCollectionJob(
  job: CollectionJob,
  ctx: Pick<CollectionJobContext, 'collections' | 'clock'>,
): Promise<CollectionJob | undefined> {
  const c = await ctx.collections.get(job.collectionId)
  if (!c) return undefined
  if (job.id === undefined) {
    if (c.jobId !== undefined) return undefined
    const id = newJobId()
    const adopted = await ctx.collections.update(c.id, { jobId: id }, ctx.clock.now(), { ifJobId: null })
    return adopted ? { ...job, id } : undefined
  }
  if (c.jobId === job.id) return job
  let taken: boolean
  if (job.follow) {
    // Only a collection still followed and done (its chain has ended), not being deleted, is moved.
    if (c.status !== 'done' || !c.follow || c.deleting !== undefined) return undefined
    taken = !!(await ctx.collections.update(c.id, { status: 'enumerating', jobId: job.id }, ctx.clock.now(), {
      ifStatus: ['done'],
      ifJobId: c.jobId ?? null,
    }))
  } else {
    if (job.prev === undefined || c.jobId !== job.prev) return undefined
    taken = !!(await ctx.collections.update(c.id, { jobId: job.id }, ctx.clock.now(), { ifJobId: job.prev }))
  }
  // Lost to another job, or to a copy of this one: look again.
  return taken || (await ctx.collections.get(c.id))?.jobId === job.id ? job : undefined
}
