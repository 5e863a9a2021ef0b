import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SendMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createSqsJobQueue, createSqsPinQueue, encodeJob } from '../../adapters/sqs/queue.ts'
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
})
