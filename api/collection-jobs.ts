/**
 * The collection jobs consumer, in the shape of an SQS-triggered Lambda (batch item failures): local mode
 * drives it with its SQS event source (local/sqs-event-source.ts). A job that fails transiently is reported
 * failed and comes back after the queue's visibility timeout; a body that is not a job is logged and dropped.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { decodeCollectionJob } from '../adapters/sqs/collection-jobs.ts'
import {
  type CollectionJobContext,
  type CollectionJobOptions,
  runCollectionJob,
} from '../core/collections/jobs.ts'

export function createCollectionJobHandler(
  opts: CollectionJobOptions,
  ctx: CollectionJobContext,
): (event: SQSEvent) => Promise<SQSBatchResponse> {
  return async (event) => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = []
    for (const record of event.Records) {
      const job = decodeCollectionJob(record.body)
      if (!job) {
        ctx.log.error({ messageId: record.messageId }, 'not a collection job; dropped')
        continue
      }
      try {
        await runCollectionJob(job, ctx, opts)
      } catch (err) {
        ctx.log.warn({ err, ...job }, 'collection job failed; it will be retried')
        batchItemFailures.push({ itemIdentifier: record.messageId })
      }
    }
    return { batchItemFailures }
  }
}
