/**
 * Lambda handler for the dead-letter queue: marks each dead job's pin `failed`, reporting partial batch
 * failures (the stack turns on `reportBatchItemFailures`), so one bad record never re-runs the others.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda'
import { type DeadLetterContext, failDeadLetter } from '../core/dead-letter.ts'
import { parsePinJob } from '../core/pin.ts'

export function createDeadLetterHandler(ctx: DeadLetterContext) {
  return async (event: SQSEvent): Promise<SQSBatchResponse> => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = []
    for (const record of event.Records) {
      const job = parsePinJob(record.body)
      if (!job) {
        // Nothing to mark: a body that is not a pin job can only be dropped.
        ctx.log.error(
          { messageId: record.messageId, body: record.body.slice(0, 200) },
          'dead letter is not a pin job',
        )
        continue
      }
      try {
        await failDeadLetter(job, Number(record.attributes.ApproximateReceiveCount), ctx)
      } catch (err) {
        ctx.log.error(
          { cid: job.cid, err: err instanceof Error ? err.stack : String(err) },
          'dead letter not handled',
        )
        batchItemFailures.push({ itemIdentifier: record.messageId })
      }
    }
    return { batchItemFailures }
  }
}
