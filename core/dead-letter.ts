/**
 * The dead-letter consumer: a message that was received MAX_ATTEMPTS times without success lands here, and
 * its pin becomes `failed` with the last attempt's reason. Content that is pinned meanwhile, or that a live
 * attempt holds, is left alone.
 */
import type { PinJob } from './pin.ts'
import type { Clock, Logger, PinStore } from './ports.ts'

export interface DeadLetterContext {
  pins: PinStore
  clock: Clock
  log: Logger
}

export type DeadLetterOutcome = 'failed' | 'skipped'

export async function failDeadLetter(
  job: PinJob,
  receiveCount: number,
  ctx: DeadLetterContext,
): Promise<DeadLetterOutcome> {
  const now = ctx.clock.now()
  const pin = await ctx.pins.get(job.cid)
  if (pin?.status === 'pinned' || pin?.status === 'failed') return 'skipped'
  if (pin?.status === 'pinning' && (pin.leaseExpires ?? 0) > now) return 'skipped'
  const error = `${pin?.error ?? 'DEAD_LETTER: no attempt succeeded'} (gave up after ${receiveCount} receives)`
  const settled = await ctx.pins.settle(job.cid, undefined, { status: 'failed', error }, now)
  ctx.log.warn({ cid: job.cid, receiveCount, error, settled }, 'dead letter: pin failed')
  return settled ? 'failed' : 'skipped'
}
