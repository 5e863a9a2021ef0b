/**
 * The failed-jobs queue on SQS: the dead-letter consumer's side (`createSqsFailedJobs`: each dead job's body,
 * unchanged, with what became of it as message attributes) and the operators' side (`createSqsDeadLetterQueue`,
 * read by core/dead-letters.ts), plus the message counts of any queue. Only what fauxqs also implements:
 * SendMessage with message attributes, ReceiveMessage with a per-call visibility timeout,
 * ChangeMessageVisibilityBatch, DeleteMessageBatch, PurgeQueue and GetQueueAttributes (no
 * StartMessageMoveTask, which fauxqs lacks and which cannot move selected messages anyway).
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type MessageAttributeValue,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import { parsePinJob } from '../../core/pin.ts'
import type {
  DeadLetter,
  DeadLetterQueue,
  FailedJobInfo,
  FailedJobs,
  QueueCounter,
  QueueCounts,
} from '../../core/ports.ts'

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

// ---------------------------------------------------------------- failed-job attributes

/** The message attributes a failed job carries: one definition for the writer and the reader. */
const ATTR = {
  reason: 'reason',
  receiveCount: 'receiveCount',
  sentAt: 'sentAt',
  failedAt: 'failedAt',
} as const

/** Longest reason kept (a message and its attributes must stay well under SQS's 256 KiB). */
const MAX_REASON_CHARS = 4096

/**
 * SQS accepts only XML characters in attribute values (tab, newline, carriage return, U+0020 on, no lone
 * surrogates): the others become U+FFFD, so a reason can never make the forward fail.
 */
function xmlSafe(text: string): string {
  return (
    text
      // biome-ignore lint/suspicious/noControlCharactersInRegex: exactly the characters SQS refuses.
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD')
      .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
  )
}

export function encodeFailedJobInfo(info: FailedJobInfo): Record<string, MessageAttributeValue> {
  const number = (v: number): MessageAttributeValue => ({ DataType: 'Number', StringValue: String(v) })
  const reason = info.reason && xmlSafe(info.reason.slice(0, MAX_REASON_CHARS))
  return {
    // SQS refuses empty attribute values: an unknown reason or send time is left out.
    ...(reason ? { [ATTR.reason]: { DataType: 'String', StringValue: reason } } : {}),
    [ATTR.receiveCount]: number(info.receiveCount),
    ...(info.sentAt === undefined ? {} : { [ATTR.sentAt]: number(info.sentAt) }),
    [ATTR.failedAt]: number(info.failedAt),
  }
}

/** What a failed job's attributes say; undefined for a message without them (put in by other means). */
export function decodeFailedJobInfo(
  attributes: Record<string, MessageAttributeValue> | undefined,
): FailedJobInfo | undefined {
  const num = (name: string) => {
    const v = attributes?.[name]?.StringValue
    const n = v === undefined ? Number.NaN : Number(v)
    return Number.isSafeInteger(n) && n >= 0 ? n : undefined
  }
  const failedAt = num(ATTR.failedAt)
  if (failedAt === undefined) return undefined
  const reason = attributes?.[ATTR.reason]?.StringValue
  const sentAt = num(ATTR.sentAt)
  return {
    ...(reason ? { reason } : {}),
    receiveCount: num(ATTR.receiveCount) ?? 0,
    ...(sentAt === undefined ? {} : { sentAt }),
    failedAt,
  }
}

/** The dead-letter consumer's side of the failed-jobs queue. */
export function createSqsFailedJobs({ client, queueUrl }: SqsQueueOptions): FailedJobs {
  return {
    async add(body, info) {
      await client.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: body,
          MessageAttributes: encodeFailedJobInfo(info),
        }),
      )
    },
  }
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

/** The operators' side of the failed-jobs queue. */
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
          MessageAttributeNames: Object.values(ATTR),
        }),
      )
      const letters: DeadLetter[] = []
      for (const m of res.Messages ?? []) {
        if (m.MessageId === undefined || m.ReceiptHandle === undefined) continue
        const body = m.Body ?? ''
        const job = parsePinJob(body)
        const failure = decodeFailedJobInfo(m.MessageAttributes)
        letters.push({
          id: m.MessageId,
          receipt: m.ReceiptHandle,
          body,
          ...(job ? { job } : {}),
          receiveCount: count(m.Attributes, 'ApproximateReceiveCount'),
          sentAt: failure?.sentAt ?? count(m.Attributes, 'SentTimestamp'),
          ...(failure ? { failure } : {}),
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
