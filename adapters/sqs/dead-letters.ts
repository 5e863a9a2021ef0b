/**
 * The pin queue's dead-letter queue on SQS, as operators read it (core/dead-letters.ts), and the message
 * counts of any queue. Only what fauxqs also implements: ReceiveMessage with a per-call visibility timeout,
 * ChangeMessageVisibilityBatch, DeleteMessageBatch, PurgeQueue and GetQueueAttributes (no
 * StartMessageMoveTask, which fauxqs lacks and which cannot move selected messages anyway).
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import type { DeadLetter, DeadLetterQueue, QueueCounter, QueueCounts } from '../../core/ports.ts'
import { decodeJob } from './queue.ts'

const MAX_BATCH = 10
const MAX_WAIT_SECONDS = 20
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60

export interface SqsQueueOptions {
  client: SQSClient
  queueUrl: string
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.floor(value)))
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

function count(attributes: Record<string, string> | undefined, name: string): number {
  const n = Number(attributes?.[name])
  return Number.isFinite(n) && n >= 0 ? n : 0
}

/** The queue's approximate counts (GetQueueAttributes). */
export function createSqsQueueCounter({ client, queueUrl }: SqsQueueOptions): QueueCounter {
  return {
    async counts(): Promise<QueueCounts> {
      const { Attributes } = await client.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: [
            'ApproximateNumberOfMessages',
            'ApproximateNumberOfMessagesNotVisible',
            'ApproximateNumberOfMessagesDelayed',
          ],
        }),
      )
      return {
        visible: count(Attributes, 'ApproximateNumberOfMessages'),
        inFlight: count(Attributes, 'ApproximateNumberOfMessagesNotVisible'),
        delayed: count(Attributes, 'ApproximateNumberOfMessagesDelayed'),
      }
    },
  }
}

export function createSqsDeadLetterQueue({ client, queueUrl }: SqsQueueOptions): DeadLetterQueue {
  return {
    ...createSqsQueueCounter({ client, queueUrl }),

    async receive({ max, hideSeconds, waitSeconds }) {
      const res = await client.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          MaxNumberOfMessages: clamp(max, 1, MAX_BATCH),
          VisibilityTimeout: clamp(hideSeconds, 0, MAX_VISIBILITY_SECONDS),
          WaitTimeSeconds: clamp(waitSeconds, 0, MAX_WAIT_SECONDS),
          MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
        }),
      )
      const letters: DeadLetter[] = []
      for (const m of res.Messages ?? []) {
        if (m.MessageId === undefined || m.ReceiptHandle === undefined) continue
        const body = m.Body ?? ''
        const job = decodeJob(body)
        letters.push({
          id: m.MessageId,
          receipt: m.ReceiptHandle,
          body,
          ...(job ? { job } : {}),
          receiveCount: count(m.Attributes, 'ApproximateReceiveCount'),
          sentAt: count(m.Attributes, 'SentTimestamp'),
        })
      }
      return letters
    },

    async release(receipts) {
      for (const batch of chunks(receipts, MAX_BATCH)) {
        // Best effort: a receipt that went stale (the message reappeared and was received again) fails
        // alone, and such a message is visible again anyway.
        await client
          .send(
            new ChangeMessageVisibilityBatchCommand({
              QueueUrl: queueUrl,
              Entries: batch.map((receipt, i) => ({
                Id: String(i),
                ReceiptHandle: receipt,
                VisibilityTimeout: 0,
              })),
            }),
          )
          .catch(() => {})
      }
    },

    async delete(receipts) {
      const failed: string[] = []
      for (const batch of chunks(receipts, MAX_BATCH)) {
        const res = await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: batch.map((receipt, i) => ({ Id: String(i), ReceiptHandle: receipt })),
          }),
        )
        for (const f of res.Failed ?? []) {
          const receipt = batch[Number(f.Id)]
          if (receipt !== undefined) failed.push(receipt)
        }
      }
      return { failed }
    },

    async purge() {
      await client.send(new PurgeQueueCommand({ QueueUrl: queueUrl }))
    },
  }
}
