/**
 * The collection jobs consumer, in the shape of an SQS-triggered Lambda (batch item failures): the Lambda
 * entry point (api/lambda/collection-jobs.ts) in AWS, local mode's SQS event source (local/sqs-event-source.ts)
 * locally. A job that fails transiently is reported failed and comes back after a backoff (its message's
 * visibility set to 30 s, doubling with each delivery; after `maxReceiveCount` deliveries it goes to the
 * dead-letter queue); a body that is not a job is logged and dropped.
 *
 * Each job runs under a deadline: the Lambda's remaining time (or COLLECTION_JOB_TIMEOUT_SECONDS where there
 * is no Lambda) less a margin, so a job that runs long (a slow JSON-RPC provider, a large collection's pass)
 * is aborted and reported failed, with its progress checkpointed, rather than killed mid-write.
 */
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { z } from 'zod'
import { COLLECTION_JOB_TIMEOUT_SECONDS } from '../adapters/sqs/queues.ts'
import { parseCollectionJob } from '../core/collections/archive.ts'
import {
  type CollectionJobContext,
  type CollectionJobOptions,
  type CollectionJobRetries,
  runCollectionJob,
} from '../core/collections/jobs.ts'
import { collectionWebSchema } from '../core/collections/web-config.ts'
import { describeError } from '../core/errors.ts'

/** The consumer's settings (local mode's configuration and the deploy configuration add them). */
export const collectionJobSettingsSchema = collectionWebSchema.extend({
  /** How long archiving waits between two passes while its pins are still being fetched (SQS delays: ≤ 900). */
  COLLECTION_ADVANCE_DELAY_SECONDS: z.coerce.number().int().min(0).max(900).default(10),
  /** Pages of tokens (100 each) one enumeration job reads before the next job continues. */
  COLLECTION_PAGES_PER_JOB: z.coerce.number().int().min(1).default(10),
  /** The largest stored CAR read into memory to find a token's metadata file or export it. */
  COLLECTION_READ_CAR_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(256 * 1024 * 1024),
})

export type CollectionJobSettings = z.infer<typeof collectionJobSettingsSchema>

export function collectionJobOptionsFromConfig(cfg: CollectionJobSettings): CollectionJobOptions {
  return {
    pagesPerJob: cfg.COLLECTION_PAGES_PER_JOB,
    advanceDelaySeconds: cfg.COLLECTION_ADVANCE_DELAY_SECONDS,
    webImportWindowMs: cfg.COLLECTION_WEB_WINDOW_MS,
  }
}

/** Time kept back from a job's deadline to report it failed and return before the Lambda is stopped. */
export const JOB_DEADLINE_MARGIN_MS = 10_000

/** How long a job may run: the Lambda's remaining time, or the job timeout, less the margin. */
export function jobDeadlineMs(context: Pick<Context, 'getRemainingTimeInMillis'> | undefined): number {
  const remaining = context ? context.getRemainingTimeInMillis() : COLLECTION_JOB_TIMEOUT_SECONDS * 1000
  return Math.max(1, remaining - JOB_DEADLINE_MARGIN_MS)
}

/**
 * When a failed job comes back, by its delivery: 30 s, 60 s, 120 s, 240 s (the fifth delivery's failure sends
 * it to the dead-letter queue). The queue's visibility timeout (six times the consumer's timeout, as AWS
 * requires of a Lambda's queue) would otherwise hold a job that failed on a provider's hiccup for 30 minutes.
 */
function collectionJobRetryDelaySeconds(receiveCount: number): number {
  return Math.min(900, 30 * 2 ** Math.max(0, receiveCount - 1))
}

/** The longest failure message recorded on a collection. */
export const JOB_FAILURE_MAX_CHARS = 500

/** `CODE: message` of a job's failure (the error's own code where it has one), no stack, at most 500 chars. */
export function jobFailureMessage(err: unknown): string {
  let { code, message } = describeError(err)
  const own = (err as { code?: unknown } | null)?.code
  if (code === 'INTERNAL' && typeof own === 'string' && own) code = own
  const text = `${code}: ${message.replace(/\s+/g, ' ').trim()}`
  return text.length > JOB_FAILURE_MAX_CHARS ? `${text.slice(0, JOB_FAILURE_MAX_CHARS - 1)}…` : text
}

export function createCollectionJobHandler(
  opts: CollectionJobOptions,
  ctx: CollectionJobContext & { retries: CollectionJobRetries },
): (event: SQSEvent, context?: Pick<Context, 'getRemainingTimeInMillis'>) => Promise<SQSBatchResponse> {
  return async (event, context) => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = []
    const signal = AbortSignal.timeout(jobDeadlineMs(context))
    /** Reported failed (so not deleted), and back after its backoff. */
    const retryLater = async (record: SQSRecord): Promise<void> => {
      batchItemFailures.push({ itemIdentifier: record.messageId })
      const delaySeconds = collectionJobRetryDelaySeconds(
        Number(record.attributes?.ApproximateReceiveCount) || 1,
      )
      try {
        await ctx.retries.retryAfter(record.receiptHandle, delaySeconds)
      } catch (err) {
        ctx.log.warn(
          { err, messageId: record.messageId },
          'retry delay not set: the job comes back after the visibility timeout',
        )
      }
    }
    for (const record of event.Records) {
      const job = parseCollectionJob(record.body)
      if (!job) {
        ctx.log.error({ messageId: record.messageId }, 'not a collection job; dropped')
        continue
      }
      if (signal.aborted) {
        // Out of time before this record started: it comes back after its backoff.
        await retryLater(record)
        continue
      }
      try {
        await runCollectionJob(job, ctx, opts, signal)
      } catch (err) {
        ctx.log.warn(
          { err, ...job, ...(signal.aborted ? { deadline: 'reached' } : {}) },
          'collection job failed; it will be retried',
        )
        // Recorded on the collection for its API and the operator (kept after later jobs succeed: the last
        // failure there was, with its time). Best effort: the retry goes ahead whatever becomes of it.
        try {
          await ctx.collections.putJobFailure(job.collectionId, {
            step: job.step,
            error: jobFailureMessage(err),
            at: ctx.clock.now(),
            receives: Number(record.attributes?.ApproximateReceiveCount) || 1,
          })
        } catch (recordErr) {
          ctx.log.warn({ err: recordErr, ...job }, 'collection job failure not recorded on the collection')
        }
        await retryLater(record)
      }
    }
    return { batchItemFailures }
  }
}
