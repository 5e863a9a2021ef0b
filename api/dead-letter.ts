/**
 * Lambda handler for the dead-letter queue: marks each dead job's pin `failed` and forwards the job to the
 * failed-jobs queue (core/dead-letter.ts). A record is done only once both happened; otherwise it is reported
 * as a batch item failure (the stack turns on `reportBatchItemFailures`) and comes back, so one bad record
 * never re-runs the others and a failed forward never loses a job.
 */
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda'
import { type DeadLetterContext, failDeadLetter } from '../core/dead-letter.ts'

function positive(value: string | undefined): number | undefined {
  const n = Number(value)
  return value !== undefined && value !== '' && Number.isSafeInteger(n) && n > 0 ? n : undefined
}

export function createDeadLetterHandler(ctx: DeadLetterContext) {
  const handle = async (record: SQSRecord) => {
    const sentAt = positive(record.attributes.SentTimestamp)
    await failDeadLetter(
      {
        body: record.body,
        receiveCount: positive(record.attributes.ApproximateReceiveCount) ?? 1,
        ...(sentAt === undefined ? {} : { sentAt }),
        messageId: record.messageId,
      },
      ctx,
    )
  }
  return async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = []
    for (const record of event.Records) {
      try {
        await handle(record)
      } catch (err) {
        ctx.log.error({ messageId: record.messageId, err }, 'dead letter not handled; it will be tried again')
        batchItemFailures.push({ itemIdentifier: record.messageId })
      }
    }
    return { batchItemFailures }
  }
}
