/**
 * The DeadLetterQueue and FailedJobs contracts (core/ports.ts): the failed-jobs queue as operators read it and
 * as the dead-letter consumer writes it, run against the in-memory queue and SQS (fauxqs, in memory and
 * persisted). Plain messages are put in as SQS does when a job's receives run out: `add` for memory, a pin
 * queue with a redrive policy for SQS; forwarded ones through `FailedJobs`, whose info comes back on receive.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createMemoryDeadLetterQueue, createMemoryFailedJobs } from '../../adapters/memory/dead-letters.ts'
import { createSqsDeadLetterQueue, createSqsFailedJobs } from '../../adapters/sqs/dead-letters.ts'
import type { DeadLetterQueue, FailedJobs } from '../../core/ports.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createRandomQueue, sleep } from './harness.ts'

interface Harness {
  queue: DeadLetterQueue
  /** The dead-letter consumer's side of the same queue. */
  failedJobs: FailedJobs
  /** Puts a dead letter in (a job that ran out of receives); resolves once it is in the queue. */
  add(body: string): Promise<void>
}

function suite(name: string, factory: () => Promise<Harness>) {
  describe(`DeadLetterQueue: ${name}`, () => {
    let h: Harness
    beforeEach(async () => {
      h = await factory()
    })

    it('receives with the job decoded, the receive count and the first send time, hiding what it received', async () => {
      const before = Date.now()
      await h.add(JSON.stringify({ cid: 'bafyone', origins: ['/a'] }))
      await h.add('not json')
      expect(await h.queue.counts()).toEqual({ visible: 2, inFlight: 0, delayed: 0 })
      const got = await h.queue.receive({ max: 10, hideSeconds: 30, waitSeconds: 0 })
      expect(got).toHaveLength(2)
      const job = got.find((m) => m.job)!
      expect(job.job).toEqual({ cid: 'bafyone', origins: ['/a'] })
      expect(job.receiveCount).toBeGreaterThanOrEqual(1)
      expect(job.sentAt).toBeGreaterThanOrEqual(before - 1000)
      expect(job.sentAt).toBeLessThanOrEqual(Date.now())
      const bad = got.find((m) => !m.job)!
      expect(bad.body).toBe('not json')
      expect(await h.queue.counts()).toEqual({ visible: 0, inFlight: 2, delayed: 0 })
      expect(await h.queue.receive({ max: 10, hideSeconds: 30, waitSeconds: 0 })).toEqual([])
    })

    it('releases at once, deletes by receipt, and counts each receive', async () => {
      await h.add(JSON.stringify({ cid: 'bafyone', origins: [] }))
      await h.add(JSON.stringify({ cid: 'bafytwo', origins: [] }))
      const [a, b] = await h.queue.receive({ max: 10, hideSeconds: 30, waitSeconds: 0 })
      await h.queue.release([a!.receipt, 'stale-receipt'])
      const again = await h.queue.receive({ max: 10, hideSeconds: 30, waitSeconds: 0 })
      expect(again.map((m) => m.id)).toEqual([a!.id])
      expect(again[0]!.receiveCount).toBe(a!.receiveCount + 1)
      expect(await h.queue.delete([again[0]!.receipt, b!.receipt])).toEqual({ failed: [] })
      expect(await h.queue.counts()).toEqual({ visible: 0, inFlight: 0, delayed: 0 })
    })

    it('shows a message again once its hiding time passed', async () => {
      await h.add(JSON.stringify({ cid: 'bafyone', origins: [] }))
      const [m] = await h.queue.receive({ max: 1, hideSeconds: 1, waitSeconds: 0 })
      await sleep(1100)
      const again = await h.queue.receive({ max: 1, hideSeconds: 30, waitSeconds: 0 })
      expect(again.map((x) => x.id)).toEqual([m!.id])
    })

    it('gives back a forwarded job: the body unchanged, with its failure info (no reason: none recorded)', async () => {
      const body = JSON.stringify({ cid: 'bafyone', origins: ['/a'] })
      const info = {
        reason: 'FETCH_STALLED: no data received for 300 ms (gave up after 3 receives) — ünïcode',
        receiveCount: 3,
        sentAt: 1_700_000_000_000,
        failedAt: 1_700_000_060_000,
      }
      await h.failedJobs.add(body, info)
      const before = Date.now()
      await h.failedJobs.add('{"cid":"bafytwo","origins":[],"extra":true}', { receiveCount: 5, failedAt: 42 })
      const got = await h.queue.receive({ max: 10, hideSeconds: 30, waitSeconds: 0 })
      expect(got).toHaveLength(2)
      const one = got.find((m) => m.job?.cid === 'bafyone')!
      expect(one).toMatchObject({ body, failure: info, sentAt: info.sentAt, receiveCount: 1 })
      const two = got.find((m) => m.job?.cid === 'bafytwo')!
      expect(two.body).toBe('{"cid":"bafytwo","origins":[],"extra":true}')
      expect(two.failure).toEqual({ receiveCount: 5, failedAt: 42 })
      // Without a recorded first send, the time it was put in.
      expect(two.sentAt).toBeGreaterThanOrEqual(before - 1000)
    })

    it('purges everything, messages being read included', async () => {
      for (let i = 0; i < 3; i++) await h.add(JSON.stringify({ cid: `bafy${i}`, origins: [] }))
      await h.queue.receive({ max: 1, hideSeconds: 30, waitSeconds: 0 })
      await h.queue.purge()
      expect(await h.queue.counts()).toEqual({ visible: 0, inFlight: 0, delayed: 0 })
    })
  })
}

let services: Services
let persisted: Services
let dataDir: string
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'pickup-dlq-'))
  ;[services, persisted] = await Promise.all([startServices(), startServices({ dataDir })])
})
afterAll(async () => {
  await Promise.all([services?.stop(), persisted?.stop()])
  await rm(dataDir, { recursive: true, force: true })
})

suite('memory', async () => {
  const queue = createMemoryDeadLetterQueue()
  return {
    queue,
    failedJobs: createMemoryFailedJobs(queue),
    async add(body) {
      queue.add(body, { receiveCount: 2 })
    },
  }
})

async function sqs(on: Services): Promise<Harness> {
  const { url, deadLetterUrl } = await createRandomQueue(on, {
    visibilityTimeoutSeconds: 30,
    maxReceiveCount: 1,
  })
  const client = on.clients.sqs
  return {
    queue: createSqsDeadLetterQueue({ client, queueUrl: deadLetterUrl }),
    failedJobs: createSqsFailedJobs({ client, queueUrl: deadLetterUrl }),
    async add(body) {
      // Received once with no visibility, then moved to the dead-letter queue on the next receive.
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }))
      await client.send(new ReceiveMessageCommand({ QueueUrl: url, VisibilityTimeout: 0 }))
      const moved = await client.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 0 }))
      if (moved.Messages?.length) throw new Error('the message was not dead-lettered')
    },
  }
}

suite('SQS (fauxqs)', () => sqs(services))
suite('SQS (fauxqs, persisted)', () => sqs(persisted))

describe('FailedJobs: SQS (fauxqs)', () => {
  it('forwards any reason: characters SQS refuses are replaced, a long one is cut', async () => {
    const { deadLetterUrl } = await createRandomQueue(services, {
      visibilityTimeoutSeconds: 30,
      maxReceiveCount: 1,
    })
    const client = services.clients.sqs
    await createSqsFailedJobs({ client, queueUrl: deadLetterUrl }).add('{"cid":"bafyx","origins":[]}', {
      reason: `BAD: \u0000\u0007\ud800 ${'x'.repeat(10_000)}`,
      receiveCount: 3,
      failedAt: 1,
    })
    const [m] = await createSqsDeadLetterQueue({ client, queueUrl: deadLetterUrl }).receive({
      max: 1,
      hideSeconds: 30,
      waitSeconds: 0,
    })
    expect(m?.failure?.reason?.startsWith('BAD: \ufffd\ufffd\ufffd xxx')).toBe(true)
    expect(m?.failure?.reason?.length).toBe(4096)
  })
})
