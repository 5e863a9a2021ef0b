/**
 * One collection job, and the job that follows it. `enumerate` runs a bounded number of pages (checkpointed
 * after each) and sends itself again until enumeration has finished, then an `advance`; `advance` makes one
 * pass over the incomplete tokens and, until the collection is done, sends itself again after a delay (the
 * pins it waits for are fetched by the workers meanwhile). Every step is re-entrant: a job delivered twice,
 * or repeated after a crash, redoes at most one run's work.
 */
import type { Logger } from '../ports.ts'
import {
  advanceCollection,
  type CollectionContext,
  type CollectionJob,
  type CollectionJobs,
  enumerateCollection,
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
  const { collectionId } = job
  if (job.step === 'enumerate') {
    const result = await enumerateCollection(
      { collectionId, maxPages: opts.pagesPerJob, ...(signal ? { signal } : {}) },
      ctx,
    )
    ctx.log.info({ collectionId, tokens: result.tokens, finished: result.finished }, 'collection enumerated')
    if (!result.finished) await ctx.jobs.send({ collectionId, step: 'enumerate' })
    else if ((await ctx.collections.get(collectionId))?.status === 'archiving')
      await ctx.jobs.send({ collectionId, step: 'advance' })
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
    await ctx.jobs.send({ collectionId, step: 'advance' }, { delaySeconds: opts.advanceDelaySeconds })
}
