/**
 * The dead-letter consumer: a message that was received MAX_ATTEMPTS times without success lands in the
 * dead-letter queue, and its pin becomes `failed` with the last attempt's reason. The job is then forwarded to
 * the failed-jobs queue (its body unchanged, with the reason, receive count and time it failed), where
 * operators find it (`pickup dlq`): the dead-letter queue itself is emptied by its consumer.
 *
 * Idempotent, for redelivery: the pin is marked first, then the job forwarded, and only then is the message
 * done. When the forward fails this throws; the message comes back and finds the pin `failed` already, which
 * is forwarded as well (at worst a job is forwarded twice, if a forward succeeded but its message was not
 * deleted). Content that is pinned meanwhile, or that a live attempt holds, is left alone and not forwarded:
 * nothing failed. So are a job whose pin record is gone (no request wants that content any longer) and a
 * body that is not a pin job (nothing can process it; logged as an error).
 */
import { parsePinJob } from './pin.ts'
import type { Clock, FailedJobs, Logger, PinStore } from './ports.ts'

export interface DeadLetterContext {
  pins: Pick<PinStore, 'get' | 'settleIfUnchanged'>
  failedJobs: FailedJobs
  clock: Clock
  log: Logger
}

export interface DeadLetterInput {
  /** The message body: a pin job as JSON. Forwarded unchanged. */
  body: string
  /** Receives of the message, on the pin queue and the dead-letter queue. */
  receiveCount: number
  /** When the job was first sent to the pin queue, epoch ms, when known. */
  sentAt?: number
  /** For the logs. */
  messageId?: string
}

export type DeadLetterOutcome =
  /** The pin was marked `failed` now, and the job forwarded. */
  | 'failed'
  /** The pin was `failed` already (a duplicate job, or this one delivered again): the job forwarded. */
  | 'already-failed'
  /** Pinned meanwhile, or held by a live attempt: left alone, not forwarded. */
  | 'skipped'
  /** No pin record (nobody wants the content): dropped. */
  | 'no-pin'
  /** The body is not a pin job: dropped. */
  | 'not-a-job'

/** Rounds of read-then-write before giving up on a pin that keeps changing (the message then comes back). */
const MAX_ROUNDS = 5

export async function failDeadLetter(
  input: DeadLetterInput,
  ctx: DeadLetterContext,
): Promise<DeadLetterOutcome> {
  const { receiveCount } = input
  const job = parsePinJob(input.body)
  if (!job) {
    ctx.log.error(
      { messageId: input.messageId, body: input.body.slice(0, 200) },
      'dead letter is not a pin job: dropped',
    )
    return 'not-a-job'
  }
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const now = ctx.clock.now()
    const pin = await ctx.pins.get(job.cid)
    if (!pin) {
      ctx.log.info({ cid: job.cid, receiveCount }, 'dead letter without a pin record: dropped')
      return 'no-pin'
    }
    if (pin.status === 'pinned') return 'skipped'
    if (pin.status === 'pinning' && (pin.leaseExpires ?? 0) > now) return 'skipped'
    let outcome: DeadLetterOutcome
    let reason: string | undefined
    let failedAt = now
    if (pin.status === 'failed') {
      outcome = 'already-failed'
      reason = pin.error
      failedAt = pin.updated
    } else {
      outcome = 'failed'
      reason = `${pin.error ?? 'DEAD_LETTER: no attempt succeeded'} (gave up after ${receiveCount} receives)`
      // Only if the pin is still as read: a worker that claimed it meanwhile is not overruled.
      if (!(await ctx.pins.settleIfUnchanged(job.cid, pin, { status: 'failed', error: reason }, now))) {
        continue
      }
      ctx.log.warn({ cid: job.cid, receiveCount, error: reason }, 'dead letter: pin failed')
    }
    await ctx.failedJobs.add(input.body, {
      ...(reason === undefined ? {} : { reason }),
      receiveCount,
      ...(input.sentAt === undefined ? {} : { sentAt: input.sentAt }),
      failedAt,
    })
    return outcome
  }
  throw new Error(`pin ${job.cid} kept changing while its dead letter was handled; it will be tried again`)
}
