/**
 * Collection jobs on SQS (the `collection-jobs` queue): the producer side (the Collections API, and each job
 * sending the next), the consumer's retries, and the decoding of a received body.
 */
import { ChangeMessageVisibilityCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import { type CollectionJobs, encodeCollectionJob } from '../../core/collections/archive.ts'
import type { CollectionJobRetries } from '../../core/collections/jobs.ts'

/** SQS's longest message delay. */
const MAX_DELAY_SECONDS = 900

export function createSqsCollectionJobs(opts: { client: SQSClient; queueUrl: string }): CollectionJobs {
  return {
    async send(job, sendOpts) {
      const delay = Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.floor(sendOpts?.delaySeconds ?? 0)))
      await opts.client.send(
        new SendMessageCommand({
          QueueUrl: opts.queueUrl,
          MessageBody: encodeCollectionJob(job),
          ...(delay > 0 ? { DelaySeconds: delay } : {}),
        }),
      )
    },
  }
}

/** The consumer's retries: a failed job's message is made visible again after its backoff. */
export function createSqsCollectionJobRetries(opts: {
  client: SQSClient
  queueUrl: string
}): CollectionJobRetries {
  return {
    async retryAfter(receiptHandle, delaySeconds) {
      await opts.client.send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: opts.queueUrl,
          ReceiptHandle: receiptHandle,
          VisibilityTimeout: Math.max(0, Math.floor(delaySeconds)),
        }),
      )
    },
  }
}
