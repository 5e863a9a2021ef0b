/**
 * Local stand-in for Lambda's SQS event source mapping: long-polls a queue, hands batches to a handler in the
 * SQSEvent shape and deletes the records the handler did not report as failed. Used for the dead-letter
 * consumer in local mode.
 */
import { DeleteMessageBatchCommand, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs'
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import type { Logger } from '../core/ports.ts'

export function pollQueueToHandler(
  opts: { client: SQSClient; queueUrl: string; queueArn: string; batchSize?: number; waitSeconds?: number },
  handler: (event: SQSEvent) => Promise<SQSBatchResponse>,
  log: Logger,
): { stop(): Promise<void> } {
  const abort = new AbortController()
  const loop = (async () => {
    while (!abort.signal.aborted) {
      try {
        const res = await opts.client.send(
          new ReceiveMessageCommand({
            QueueUrl: opts.queueUrl,
            MaxNumberOfMessages: opts.batchSize ?? 10,
            WaitTimeSeconds: opts.waitSeconds ?? 20,
            MessageSystemAttributeNames: ['All'],
          }),
          { abortSignal: abort.signal },
        )
        const messages = res.Messages ?? []
        if (messages.length === 0) continue
        const event: SQSEvent = {
          Records: messages.map((m) => ({
            messageId: m.MessageId ?? '',
            receiptHandle: m.ReceiptHandle ?? '',
            body: m.Body ?? '',
            attributes: {
              ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
              SentTimestamp: m.Attributes?.SentTimestamp ?? '',
              SenderId: m.Attributes?.SenderId ?? '',
              ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? '',
            },
            messageAttributes: {},
            md5OfBody: m.MD5OfBody ?? '',
            eventSource: 'aws:sqs',
            eventSourceARN: opts.queueArn,
            awsRegion: '',
          })),
        }
        const { batchItemFailures } = await handler(event)
        const failed = new Set(batchItemFailures.map((f) => f.itemIdentifier))
        const done = messages.filter((m) => !failed.has(m.MessageId ?? ''))
        if (done.length > 0) {
          await opts.client.send(
            new DeleteMessageBatchCommand({
              QueueUrl: opts.queueUrl,
              Entries: done.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
            }),
          )
        }
      } catch (err) {
        if (abort.signal.aborted) break
        log.error({ err: err instanceof Error ? err.message : String(err) }, 'event source poll failed')
        await new Promise((r) => setTimeout(r, 1000))
      }
    }
  })()
  return {
    async stop() {
      abort.abort()
      await loop
    },
  }
}
