/**
 * A pin request from either API: record the content as wanted and, if it needs fetching, enqueue a job.
 * Content that is queued, pinning or pinned is never fetched again; failed content is queued again, and its
 * requests known failed (core/ports.ts PinRequest) are pending again.
 */
import { normalizeCid } from './cid.ts'
import type { Pin } from './pin.ts'
import type { Clock, PinQueue, PinStore, RequestStore } from './ports.ts'

export interface RequestPinContext {
  pins: PinStore
  queue: PinQueue
  clock: Clock
  requests: Pick<RequestStore, 'returnToPending'>
}

export async function requestPin(
  input: {
    cid: string
    origins: readonly string[]
    /** Who asks (`cluster`, `psa:<user>`): the job's fairness key. */
    requester?: string
  },
  ctx: RequestPinContext,
): Promise<Pin> {
  const { key } = normalizeCid(input.cid)
  const now = ctx.clock.now()
  const { pin, enqueue, requeued } = await ctx.pins.request(key, input.origins, now)
  if (enqueue) {
    try {
      await ctx.queue.send({
        cid: key,
        origins: pin.origins,
        ...(input.requester === undefined ? {} : { requester: input.requester }),
      })
    } catch (err) {
      // Without a message nothing would fetch the pin, and a retried request would see it queued and not
      // enqueue: mark it failed so the client's retry queues it again.
      await ctx.pins.settle(
        key,
        undefined,
        { status: 'failed', error: 'ENQUEUE_FAILED: the pin queue did not accept the job' },
        now,
      )
      throw err
    }
    // Failed content queued again: its requests that listings had seen failed are pending again (new content
    // has none to read).
    if (requeued) await ctx.requests.returnToPending(key)
  }
  return pin
}
