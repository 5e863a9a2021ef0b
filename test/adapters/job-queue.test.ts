import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SendMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import {
  createSqsJobQueue,
  createSqsPinQueue,
  encodeJob,
  SqsBatchEntryError,
} from '../../adapters/sqs/queue.ts'
import { parsePinJob } from '../../core/pin.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createTestLogger } from '../helpers/log.ts'
import { createRandomQueue } from './harness.ts'
import {
  jobQueueSuite,
  SUITE_MAX_RECEIVE_COUNT,
  SUITE_VISIBILITY_TIMEOUT_SECONDS,
} from './job-queue.suite.ts'

let services: Services
/** fauxqs with its SQLite persistence on, which runs different code paths (and had a bug of its own). */
let persisted: Services
let dataDir: string
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'pickup-queue-'))
  ;[services, persisted] = await Promise.all([startServices(), startServices({ dataDir })])
})
afterAll(async () => {
  await Promise.all([services?.stop(), persisted?.stop()])
  await rm(dataDir, { recursive: true, force: true })
})

jobQueueSuite('memory', async () => {
  const deadLetter = createMemoryJobQueue({ visibilityTimeoutSeconds: 30 })
  const queue = createMemoryJobQueue({
    visibilityTimeoutSeconds: SUITE_VISIBILITY_TIMEOUT_SECONDS,
    deadLetter: { queue: deadLetter, maxReceiveCount: SUITE_MAX_RECEIVE_COUNT },
  })
  return { queue, deadLetter }
})

async function sqsQueues(on: Services) {
  const { url, deadLetterUrl } = await createRandomQueue(on, {
    visibilityTimeoutSeconds: SUITE_VISIBILITY_TIMEOUT_SECONDS,
    maxReceiveCount: SUITE_MAX_RECEIVE_COUNT,
  })
  const client = on.clients.sqs
  return {
    queue: createSqsJobQueue({ client, queueUrl: url }),
    deadLetter: createSqsJobQueue({ client, queueUrl: deadLetterUrl }),
  }
}

jobQueueSuite('SQS (fauxqs)', () => sqsQueues(services))
jobQueueSuite('SQS (fauxqs, persisted)', () => sqsQueues(persisted))

describe('SQS pin queue messages', () => {
  it('are the job as JSON', () => {
    const job = { cid: 'bafyx', origins: ['/a'] }
    expect(JSON.parse(encodeJob(job))).toEqual(job)
    expect(parsePinJob(encodeJob(job))).toEqual(job)
    expect(parsePinJob('{"origins":[]}')).toBeUndefined()
    expect(parsePinJob('nope')).toBeUndefined()
  })

  it('deletes and logs malformed messages instead of delivering them', async () => {
    const { url } = await createRandomQueue(services, { visibilityTimeoutSeconds: 1, maxReceiveCount: 3 })
    const lines: Array<{ level: string; msg?: string; obj: object }> = []
    const queue = createSqsJobQueue({
      client: services.clients.sqs,
      queueUrl: url,
      log: createTestLogger(lines),
    })
    await services.clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'not json' }))
    await services.clients.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: '{"cid":42}' }))
    await createSqsPinQueue({ client: services.clients.sqs, queueUrl: url }).send({
      cid: 'bafyok',
      origins: [],
    })
    const got = []
    for (let i = 0; i < 5 && got.length === 0; i++)
      got.push(...(await queue.receive({ max: 10, waitSeconds: 1 })))
    expect(got.map((r) => r.job)).toEqual([{ cid: 'bafyok', origins: [] }])
    await queue.delete(got[0]!.receipt)
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(2)
    // Deleted, not hidden: nothing comes back after the visibility timeout.
    expect(await queue.receive({ max: 10, waitSeconds: 2 })).toEqual([])
  })

  it('settles a burst of releases and deletes in batch requests, each caller hearing of its own entry', async () => {
    const { url } = await createRandomQueue(services, { visibilityTimeoutSeconds: 30, maxReceiveCount: 3 })
    const producer = createSqsPinQueue({ client: services.clients.sqs, queueUrl: url })
    const jobs = Array.from({ length: 25 }, (_, i) => ({ cid: `bafyburst${i}`, origins: [] }))
    for (const job of jobs) await producer.send(job)
    // A client of its own, recording the requests the queue sends.
    const client = services.newClients().sqs
    const sent: string[] = []
    client.middlewareStack.add(
      (next, context) => (args) => {
        sent.push(String(context.commandName))
        return next(args)
      },
      { step: 'initialize' },
    )
    const queue = createSqsJobQueue({ client, queueUrl: url })
    const got = []
    while (got.length < jobs.length) got.push(...(await queue.receive({ max: 10, waitSeconds: 1 })))
    sent.length = 0

    const [released, deleted] = [got.slice(0, 12), got.slice(12)]
    const results = await Promise.allSettled([
      ...released.map((m) => queue.release(m.receipt, 0)),
      queue.release('not-a-receipt', 0),
      ...deleted.map((m) => queue.delete(m.receipt)),
    ])
    // Only the made-up receipt is refused, and only its caller hears of it.
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1)
    expect((results[12] as PromiseRejectedResult).reason).toBeInstanceOf(SqsBatchEntryError)
    // 13 releases and 13 deletes: two batch requests each, no single ones.
    expect(sent.sort()).toEqual([
      'ChangeMessageVisibilityBatchCommand',
      'ChangeMessageVisibilityBatchCommand',
      'DeleteMessageBatchCommand',
      'DeleteMessageBatchCommand',
    ])
    // The released come back at once; the deleted never.
    const again: string[] = []
    while (again.length < released.length) {
      for (const m of await queue.receive({ max: 10, waitSeconds: 1 })) again.push(m.job.cid)
    }
    expect(again.sort()).toEqual(released.map((m) => m.job.cid).sort())
    expect(await queue.receive({ max: 10, waitSeconds: 1 })).toEqual([])
  })
})
