/**
 * The dead-letter consumer (api/dead-letter.ts over core/dead-letter.ts) against in-memory ports: a record is
 * done only once its pin is failed and its job forwarded to the failed-jobs queue; a failed forward is a batch
 * item failure, and the record delivered again is forwarded then. What is not forwarded: pinned and live
 * pins, jobs without a pin, bodies that are not pin jobs.
 */
import type { SQSEvent, SQSRecord } from 'aws-lambda'
import { beforeEach, describe, expect, it } from 'vitest'
import {
  createMemoryDeadLetterQueue,
  createMemoryFailedJobs,
  type MemoryDeadLetterQueue,
  type MemoryFailedJobs,
} from '../../adapters/memory/dead-letters.ts'
import { createMemoryPinStore, type MemoryPinStore } from '../../adapters/memory/pins.ts'
import { createDeadLetterHandler } from '../../api/dead-letter.ts'
import { listDeadLetters } from '../../core/dead-letters.ts'
import type { PinStore } from '../../core/ports.ts'
import { createTestLogger } from '../helpers/log.ts'

const T0 = 1_700_000_000_000
let now = T0
const clock = { now: () => now }
const log = createTestLogger()

let pins: MemoryPinStore
let failed: MemoryDeadLetterQueue
let failedJobs: MemoryFailedJobs

beforeEach(() => {
  now = T0
  pins = createMemoryPinStore()
  failed = createMemoryDeadLetterQueue({ clock })
  failedJobs = createMemoryFailedJobs(failed)
})

function record(id: string, body: string, receiveCount = 3, sentAt = T0 - 60_000): SQSRecord {
  return {
    messageId: id,
    receiptHandle: `r-${id}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: String(sentAt),
      SenderId: 'x',
      ApproximateFirstReceiveTimestamp: String(sentAt),
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:pickup-pin-dlq',
    awsRegion: 'us-east-1',
  }
}

const job = (cid: string) => JSON.stringify({ cid, origins: ['/dns4/origin.example/tcp/4001'] })

/** A pin that was attempted and put back in the queue with `error`. */
async function queuedPin(cid: string, error = 'FETCH_STALLED: no data received for 300 ms') {
  await pins.request(cid, [], T0 - 60_000)
  await pins.settle(cid, undefined, { status: 'queued', error }, T0 - 1000)
}

describe('dead-letter consumer', () => {
  it('fails the pin, forwards the body unchanged with the reason, receives and times, and reports no failure', async () => {
    await queuedPin('bafya')
    const handler = createDeadLetterHandler({ pins, failedJobs, clock, log })
    const res = await handler({ Records: [record('m1', job('bafya'), 4)] })
    expect(res).toEqual({ batchItemFailures: [] })
    const reason = 'FETCH_STALLED: no data received for 300 ms (gave up after 4 receives)'
    expect(await pins.get('bafya')).toMatchObject({ status: 'failed', error: reason })
    expect(failed.all()).toEqual([
      {
        id: expect.any(String),
        body: job('bafya'),
        visible: true,
        failure: { reason, receiveCount: 4, sentAt: T0 - 60_000, failedAt: T0 },
      },
    ])
    // As operators see it: the forwarded info, beside the pin's state now.
    const [view] = await listDeadLetters({ limit: 10 }, { deadLetters: failed, pins, clock })
    expect(view).toMatchObject({
      cid: 'bafya',
      reason,
      receiveCount: 4,
      failedAt: T0,
      sentAt: T0 - 60_000,
      pin: { status: 'failed' },
    })
  })

  it('reports a failed forward as a batch item failure; delivered again, the job is forwarded once', async () => {
    await queuedPin('bafya')
    await queuedPin('bafyb')
    const handler = createDeadLetterHandler({ pins, failedJobs, clock, log })
    failedJobs.failAdds(1)
    const first = await handler({ Records: [record('m1', job('bafya')), record('m2', job('bafyb'))] })
    // The first record's forward failed: it comes back. The second is done, independently.
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'm1' }])
    expect((await pins.get('bafya'))?.status).toBe('failed')
    expect(failed.all().map((m) => m.body)).toEqual([job('bafyb')])

    now += 30_000
    const again = await handler({ Records: [record('m1', job('bafya'), 4)] })
    expect(again.batchItemFailures).toEqual([])
    const forwarded = failed.all().find((m) => m.body === job('bafya'))
    // The reason and failure time are those of when the pin was marked, not of the second delivery.
    expect(forwarded?.failure).toEqual({
      reason: 'FETCH_STALLED: no data received for 300 ms (gave up after 3 receives)',
      receiveCount: 4,
      sentAt: T0 - 60_000,
      failedAt: T0,
    })
    expect(failed.all()).toHaveLength(2)
  })

  it('leaves pinned and live pins alone, and drops jobs without a pin and bodies that are not jobs', async () => {
    await pins.request('bafypinned', [], T0)
    await pins.claim('bafypinned', 'att', T0 + 60_000, T0)
    await pins.markPinned('bafypinned', 'att', { cid: 'bagcar', key: 'k.car', bytes: 1, blocks: 1 }, T0)
    await pins.request('bafylive', [], T0)
    await pins.claim('bafylive', 'att', T0 + 60_000, T0)
    const handler = createDeadLetterHandler({ pins, failedJobs, clock, log })
    const res = await handler({
      Records: [
        record('m1', job('bafypinned')),
        record('m2', job('bafylive')),
        record('m3', job('bafynopin')),
        record('m4', 'not a job'),
      ],
    } satisfies SQSEvent)
    expect(res.batchItemFailures).toEqual([])
    expect(failed.all()).toEqual([])
    expect((await pins.get('bafypinned'))?.status).toBe('pinned')
    expect((await pins.get('bafylive'))?.status).toBe('pinning')
    expect(await pins.get('bafynopin')).toBeUndefined()
  })

  it('does not overrule a worker that claimed the pin between the read and the write', async () => {
    await queuedPin('bafya')
    // The first read sees it queued; then a worker claims it (a redriven duplicate job, say).
    let reads = 0
    const racing: Pick<PinStore, 'get' | 'settleIfUnchanged'> = {
      get: async (cid) => {
        const pin = await pins.get(cid)
        if (reads++ === 0) await pins.claim(cid, 'worker', T0 + 60_000, T0)
        return pin
      },
      settleIfUnchanged: (...args) => pins.settleIfUnchanged(...args),
    }
    const handler = createDeadLetterHandler({ pins: racing, failedJobs, clock, log })
    expect((await handler({ Records: [record('m1', job('bafya'))] })).batchItemFailures).toEqual([])
    expect((await pins.get('bafya'))?.status).toBe('pinning')
    expect(failed.all()).toEqual([])
  })
})
