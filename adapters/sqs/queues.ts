/**
 * The SQS queues, one definition each, for the CDK stack and the local harness alike.
 */
import { DEFAULT_VISIBILITY_TIMEOUT_SECONDS } from '../../core/config.ts'

export interface QueueDefinition {
  /** The queue is named `<prefix>-<nameSuffix>` (see `queueName`). */
  readonly nameSuffix: string
  readonly visibilityTimeoutSeconds: number
  readonly messageRetentionSeconds: number
}

export interface RedriveDefinition {
  /** Receives after which SQS moves a message to the dead-letter queue. */
  readonly maxReceiveCount: number
}

const DAY_SECONDS = 24 * 60 * 60

/** The dead-letter queue of the pin queue: jobs that failed `maxReceiveCount` deliveries, kept 14 days. */
export const pinDeadLetterQueue = {
  nameSuffix: 'pin-dlq',
  visibilityTimeoutSeconds: 30,
  messageRetentionSeconds: 14 * DAY_SECONDS,
} as const satisfies QueueDefinition

/**
 * The failed-jobs queue: jobs the dead-letter consumer gave up on, forwarded once their pins were marked
 * `failed` (the body unchanged, with what became of them as message attributes: adapters/sqs/dead-letters.ts),
 * kept 14 days for operators (`pickup dlq`). Nothing consumes it: only operators read, redrive and purge, so
 * it has no redrive policy of its own.
 */
export const failedJobsQueue = {
  nameSuffix: 'pin-failed',
  visibilityTimeoutSeconds: 30,
  messageRetentionSeconds: 14 * DAY_SECONDS,
} as const satisfies QueueDefinition

/**
 * The longest one collection job may run: the consumer's Lambda timeout, and the deadline local mode's
 * consumer gives each job (api/collection-jobs.ts aborts the job shortly before it). One enumerate job reads
 * COLLECTION_PAGES_PER_JOB pages and checkpoints after each, so an aborted job loses at most one page.
 */
export const COLLECTION_JOB_TIMEOUT_SECONDS = 300

/** The dead-letter queue of the collection jobs: jobs that failed `maxReceiveCount` deliveries, kept 14 days. */
export const collectionDeadLetterQueue = {
  nameSuffix: 'collection-dlq',
  visibilityTimeoutSeconds: 30,
  messageRetentionSeconds: 14 * DAY_SECONDS,
} as const satisfies QueueDefinition

/**
 * Collection jobs (core/collections/jobs.ts: enumerate a page range, or advance the archiving): each run
 * records its progress in the collection (checkpoint, token states) and sends the next job, so a crash loses
 * at most one run, which the message's reappearance after the visibility timeout repeats. The visibility
 * timeout is six times the job's timeout, as AWS advises for a Lambda's SQS event source (it must be at
 * least the timeout; the rest leaves room for retries of a throttled invocation). A job that failed
 * `maxReceiveCount` times goes to the dead-letter queue, where operators find it.
 */
export const collectionJobsQueue = {
  nameSuffix: 'collection-jobs',
  visibilityTimeoutSeconds: 6 * COLLECTION_JOB_TIMEOUT_SECONDS,
  messageRetentionSeconds: 4 * DAY_SECONDS,
  deadLetter: { maxReceiveCount: 5, queue: collectionDeadLetterQueue },
} as const satisfies QueueDefinition & { deadLetter: RedriveDefinition & { queue: QueueDefinition } }

/** Receives of a pin job before it goes to the dead-letter queue (the worker's MAX_ATTEMPTS, default 3). */
export const PIN_QUEUE_MAX_RECEIVE_COUNT = 3

/** Pin jobs (`PinJob` as JSON), consumed by the workers. */
export function pinQueueDefinition(
  opts: { visibilityTimeoutSeconds?: number; maxReceiveCount?: number } = {},
): QueueDefinition & { deadLetter: RedriveDefinition & { queue: QueueDefinition } } {
  return {
    nameSuffix: 'pin',
    visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds ?? DEFAULT_VISIBILITY_TIMEOUT_SECONDS,
    messageRetentionSeconds: 4 * DAY_SECONDS,
    deadLetter: {
      maxReceiveCount: opts.maxReceiveCount ?? PIN_QUEUE_MAX_RECEIVE_COUNT,
      queue: pinDeadLetterQueue,
    },
  }
}

export const pinQueue = pinQueueDefinition()

export function queueName(prefix: string, def: QueueDefinition): string {
  return `${prefix}-${def.nameSuffix}`
}

/** CreateQueue attributes for a definition; with a redrive policy when a dead-letter queue ARN is given. */
export function queueAttributes(
  def: QueueDefinition,
  redrive?: { deadLetterTargetArn: string; maxReceiveCount: number },
): Record<string, string> {
  return {
    VisibilityTimeout: String(def.visibilityTimeoutSeconds),
    MessageRetentionPeriod: String(def.messageRetentionSeconds),
    ...(redrive
      ? {
          RedrivePolicy: JSON.stringify({
            deadLetterTargetArn: redrive.deadLetterTargetArn,
            maxReceiveCount: redrive.maxReceiveCount,
          }),
        }
      : {}),
  }
}
