/**
 * What operators do with the collection jobs' dead-letter queue (`pickup dlq --collections ...`): the
 * collection jobs SQS moved there after `maxReceiveCount` (5) failed deliveries, shown beside their
 * collections as they are now, sent back to the collection jobs queue, purged.
 *
 * A dead collection job carries no record of why it failed: SQS moves it by its redrive policy, with no
 * consumer in between. The consumer records each failed delivery on the collection instead (`lastJobFailure`:
 * step, `CODE: message`, when, receive count), so a view shows its collection's last job failure where the
 * collection still exists and has one (`errorRecorded: true`); otherwise it says so rather than guess, and the
 * consumer's logs have each failure. The collection's own `error` (status `failed`) is shown as what it is.
 *
 * Reading is receiving, as for the failed-jobs queue (core/dead-letters.ts, `scanDeadLetters`), and SQS keeps
 * a moved message's receive count: the receives shown are the deliveries on the jobs queue plus every read of
 * the dead-letter queue since.
 *
 * Redrive never loses a job: each is sent to the collection jobs queue first and deleted from the dead-letter
 * queue only once the send succeeded. A crash between the two leaves the job on both queues, and the
 * duplicate is harmless: every step is re-entrant and the collection names the one job that may run
 * (core/collections/jobs.ts). A copy redoes at most one run's work (the same pages enumerated, the same tokens
 * passed over, writing the same records and the same derived request ids) and sends a next job, of which only
 * one of the two copies' goes on; a job the collection no longer names is dropped as stale.
 */

import {
  findOne,
  listOldestFirst,
  type ReadOptions,
  type RedriveOptions,
  redriveEach,
} from '../dead-letters.ts'
import type { Clock, DeadLetter, DeadLetterQueue, Logger } from '../ports.ts'
import { type CollectionJob, type CollectionJobs, parseCollectionJob } from './archive.ts'
import type { CollectionStatus, JobFailure } from './model.ts'
import type { CollectionStore } from './ports.ts'

/** A dead collection job as shown to operators: the message, and its collection as it is now. */
export interface DeadCollectionJobView {
  id: string
  /** Undefined when the body is not a collection job (nothing can process it). */
  job?: CollectionJob
  /** The raw body, when it is not a collection job. */
  body?: string
  /** Deliveries on the collection jobs queue, plus reads of the dead-letter queue since (SQS keeps counting). */
  receiveCount: number
  /** Epoch ms the job was sent to the collection jobs queue (SQS keeps it when it moves the message). */
  sentAt: number
  ageMs: number
  /** Whether the collection holds a job failure (`collection.lastJobFailure`); else only the logs have it. */
  errorRecorded: boolean
  /** Undefined when there is no collection record (deleted). */
  collection?: {
    owner: string
    chainId: number
    address: string
    name?: string
    status: CollectionStatus
    /** The collection's own failure (status `failed`), not the job's. */
    error?: string
    /** The last failed delivery of one of its jobs, recorded by the consumer. */
    lastJobFailure?: JobFailure
    updated: number
  }
}

export interface DeadCollectionJobReadContext {
  deadLetters: DeadLetterQueue
  collections: Pick<CollectionStore, 'get'>
  clock: Clock
}

async function collectionsOf(
  batch: readonly DeadLetter[],
  collections: Pick<CollectionStore, 'get'>,
): Promise<Map<string, NonNullable<Awaited<ReturnType<CollectionStore['get']>>>>> {
  const ids = [...new Set(batch.flatMap((m) => parseCollectionJob(m.body)?.collectionId ?? []))]
  const records = await Promise.all(ids.map((id) => collections.get(id)))
  return new Map(records.flatMap((r) => (r ? [[r.id, r] as const] : [])))
}

function view(
  m: DeadLetter,
  records: Awaited<ReturnType<typeof collectionsOf>>,
  now: number,
): DeadCollectionJobView {
  const job = parseCollectionJob(m.body)
  const c = job && records.get(job.collectionId)
  return {
    id: m.id,
    ...(job ? { job } : { body: m.body }),
    receiveCount: m.receiveCount,
    sentAt: m.sentAt,
    ageMs: Math.max(0, now - m.sentAt),
    errorRecorded: !!c?.lastJobFailure,
    ...(c
      ? {
          collection: {
            owner: c.owner,
            chainId: c.chainId,
            address: c.address,
            ...(c.name === undefined ? {} : { name: c.name }),
            status: c.status,
            ...(c.error === undefined ? {} : { error: c.error }),
            ...(c.lastJobFailure === undefined ? {} : { lastJobFailure: c.lastJobFailure }),
            updated: c.updated,
          },
        }
      : {}),
  }
}

/** Up to `limit` dead collection jobs, oldest first, with their collections. */
export function listDeadCollectionJobs(
  opts: ReadOptions & { limit: number },
  ctx: DeadCollectionJobReadContext,
): Promise<DeadCollectionJobView[]> {
  return listOldestFirst(ctx.deadLetters, opts, async (batch) => {
    const records = await collectionsOf(batch, ctx.collections)
    const now = ctx.clock.now()
    return batch.map((m) => view(m, records, now))
  })
}

/** The message with this id, or undefined when the queue holds none (it is left in the queue either way). */
export function findDeadCollectionJob(
  id: string,
  opts: ReadOptions,
  ctx: DeadCollectionJobReadContext,
): Promise<DeadCollectionJobView | undefined> {
  return findOne(ctx.deadLetters, id, opts, async (m) =>
    view(m, await collectionsOf([m], ctx.collections), ctx.clock.now()),
  )
}

export interface CollectionRedriveContext extends DeadCollectionJobReadContext {
  jobs: CollectionJobs
  log: Logger
}

export interface CollectionRedriveResult {
  /** Sent to the collection jobs queue (and, but for `notDeleted`, deleted from the dead-letter queue). */
  redriven: number
  /** Sent but not deleted: on both queues now, harmlessly (see above); a later redrive sends them again. */
  notDeleted: number
  /** Left in the dead-letter queue: */
  skipped: {
    /** the body is not a collection job (purge them); */
    notCollectionJob: number
    /** the collection no longer exists: the job would do nothing (purge them); */
    noCollection: number
    /** the collection jobs queue refused the send (see the log; run the redrive again). */
    sendFailed: number
  }
  /** Of the ids asked for, those not found in the dead-letter queue. */
  notFound: string[]
}

/**
 * Sends dead collection jobs back to the collection jobs queue, each sent before it is deleted from the
 * dead-letter queue. Stops after the batch in hand on abort: what was not sent stays in the dead-letter queue.
 */
export async function redriveDeadCollectionJobs(
  opts: RedriveOptions,
  ctx: CollectionRedriveContext,
): Promise<CollectionRedriveResult> {
  const started = ctx.clock.now()
  const skipped = { notCollectionJob: 0, noCollection: 0 }
  const sent = await redriveEach(opts, ctx, {
    target: 'the collection jobs queue',
    source: 'the dead-letter queue',
    send: (job: CollectionJob) => ctx.jobs.send(job),
    fields: (m, job) => ({ messageId: m.id, ...job }),
    async pick(selected) {
      const records = await collectionsOf(selected, ctx.collections)
      const toSend: Array<{ m: DeadLetter; job: CollectionJob }> = []
      for (const m of selected) {
        const job = parseCollectionJob(m.body)
        if (!job) skipped.notCollectionJob++
        else if (!records.has(job.collectionId)) skipped.noCollection++
        else toSend.push({ m, job })
      }
      return toSend
    },
  })
  const result: CollectionRedriveResult = {
    redriven: sent.redriven,
    notDeleted: sent.notDeleted,
    skipped: { ...skipped, sendFailed: sent.sendFailed },
    notFound: sent.notFound,
  }
  ctx.log.info({ ...result, ms: ctx.clock.now() - started }, 'dead collection jobs redriven')
  return result
}
