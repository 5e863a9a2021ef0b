/**
 * `pickup dlq ... --collections` against local mode: the collection jobs' dead-letter queue in the embedded
 * SQS. The dead jobs are sent to that queue directly (failing a job through the consumer takes 5 deliveries
 * 30 s to 240 s of backoff apart); the redriven job goes to the real collection jobs queue, where local mode's
 * real consumer runs it: the collection it advances reaches `done`.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDynamoCollectionStore } from '../../adapters/dynamodb/collections.ts'
import type { CollectionStore } from '../../core/collections/ports.ts'
import { startTestSystem, type TestSystem, writeEndpointsFile } from '../helpers/system.ts'
import { pickup, queueCounts, sendBodies, waitUntil } from './helpers.ts'

let t: TestSystem
let dir: string
let collections: CollectionStore

beforeAll(async () => {
  ;[t, dir] = await Promise.all([
    startTestSystem({}, { worker: 'none' }),
    mkdtemp(join(tmpdir(), 'pickup-cli-dlq-collections-')),
  ])
  await writeEndpointsFile(t.system, dir)
  const { clients, names } = t.system.services
  collections = createDynamoCollectionStore({ client: clients.dynamodb, tableName: names.collectionsTable })
})
afterAll(async () => {
  await t?.stop()
  if (dir) await rm(dir, { recursive: true, force: true })
})

interface ListedJob {
  id: string
  job?: { collectionId: string; step: string }
  body?: string
  receiveCount: number
  sent: string
  errorRecorded: boolean
  collection?: {
    owner: string
    status: string
    updatedAt: string
    lastJobFailure?: { step: string; error: string; at: string; receives: number }
  }
}

describe('pickup stats without the collection queues', () => {
  it('still answers, and says the collection queues are not configured', async () => {
    const old = await mkdtemp(join(tmpdir(), 'pickup-cli-stats-no-collections-'))
    try {
      await writeEndpointsFile(t.system, old)
      const file = join(old, 'endpoints.json')
      const info = JSON.parse(await readFile(file, 'utf8'))
      delete info.resources.collectionJobsQueueUrl
      delete info.resources.collectionDeadLetterQueueUrl
      await writeFile(file, JSON.stringify(info))
      const json = await pickup(old, ['stats', '--json'])
      expect(json.code, json.stderr).toBe(0)
      expect(JSON.parse(json.stdout)).not.toHaveProperty('collections')
      expect((await pickup(old, ['stats'])).stdout).toMatch(
        /^Collection jobs +\(not configured here: local mode's endpoints.json names no collection queues; restart local mode\)$/m,
      )
    } finally {
      await rm(old, { recursive: true, force: true })
    }
  })
})

describe('pickup dlq --collections', () => {
  it('lists, shows and redrives dead collection jobs; the redriven job runs; purge empties the queue', async () => {
    const { clients, names } = t.system.services
    const now = Date.now()
    // Archiving, with no token left to wait for: one advance pass makes it done.
    await collections.create({
      id: 'c0llect10n0000000000000001',
      owner: 'psa:alice',
      chainId: 1,
      address: `0x${'ab'.repeat(20)}`,
      name: 'Stuck',
      follow: false,
      status: 'archiving',
      created: now,
      updated: now,
    })
    // As the consumer records it on each failed delivery.
    const failedAt = Date.UTC(2026, 0, 2, 3, 4, 5)
    expect(
      await collections.putJobFailure('c0llect10n0000000000000001', {
        step: 'advance',
        error: 'RPC_RATE_LIMITED: the provider answered 429',
        at: failedAt,
        receives: 5,
      }),
    ).toBe(true)
    await sendBodies(clients.sqs, names.collectionDeadLetterQueueUrl, [
      JSON.stringify({ collectionId: 'c0llect10n0000000000000001', step: 'advance' }),
      JSON.stringify({ collectionId: 'deleted0000000000000000000', step: 'enumerate' }),
      'not a job',
    ])
    // The pin jobs' failed-jobs queue is another queue: untouched.
    await sendBodies(clients.sqs, names.failedJobsQueueUrl, [
      JSON.stringify({ cid: 'bafyother', origins: [] }),
    ])

    const listed = await pickup(dir, ['dlq', 'list', '--collections', '--json'])
    expect(listed.code, listed.stderr).toBe(0)
    const jobs = JSON.parse(listed.stdout) as ListedJob[]
    expect(jobs).toHaveLength(3)
    const live = jobs.find((j) => j.job?.collectionId === 'c0llect10n0000000000000001')!
    expect(live).toMatchObject({
      job: { step: 'advance' },
      errorRecorded: true,
      collection: {
        owner: 'psa:alice',
        status: 'archiving',
        lastJobFailure: {
          step: 'advance',
          error: 'RPC_RATE_LIMITED: the provider answered 429',
          at: '2026-01-02T03:04:05.000Z',
          receives: 5,
        },
      },
      receiveCount: 1,
    })
    expect(Date.parse(live.sent)).toBeLessThanOrEqual(Date.now())
    const deleted = jobs.find((j) => j.job?.collectionId === 'deleted0000000000000000000')!
    expect(deleted).not.toHaveProperty('collection')
    expect(deleted.errorRecorded).toBe(false)
    expect(jobs.find((j) => j.body === 'not a job')).not.toHaveProperty('job')

    const table = await pickup(dir, ['dlq', 'list', '--collections'])
    const lines = table.stdout.split('\n')
    expect(lines[0]).toMatch(/^ID\s+COLLECTION\s+STEP\s+OWNER\s+STATUS\s+RECEIVES\s+SENT\s+LAST FAILURE$/)
    expect(table.stdout).toMatch(
      new RegExp(
        `^${live.id}\\s+c0llect10n0000000000000001\\s+advance\\s+psa:alice\\s+archiving\\s+2\\s+\\S+ ago\\s+RPC_RATE_LIMITED: the provider answered 429$`,
        'm',
      ),
    )
    expect(table.stdout).toMatch(/\s+enumerate\s+-\s+no collection\s+2\s+\S+ ago\s+-$/m)
    expect(table.stdout).toMatch(
      /^LAST FAILURE: .*; where "-": not recorded: .*"collection job failed; it will be retried"/m,
    )

    const shown = await pickup(dir, ['dlq', 'show', live.id, '--collections'])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(/^Collection c0llect10n0000000000000001$/m)
    expect(shown.stdout).toMatch(/^Owner +psa:alice$/m)
    expect(shown.stdout).toMatch(/^Contract +1:0xabab.* \(Stuck\)$/m)
    expect(shown.stdout).toMatch(
      /^Error +RPC_RATE_LIMITED: the provider answered 429 \(step advance, delivery 5, at 2026-01-02T03:04:05.000Z\)$/m,
    )
    const gone = await pickup(dir, ['dlq', 'show', deleted.id, '--collections'])
    expect(gone.stdout).toMatch(/^Error +not recorded: /m)
    expect(await pickup(dir, ['dlq', 'show', 'no-such-id', '--collections'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/no message no-such-id in the collection jobs' dead-letter queue/),
    })
    // Reading left them where they were, visible.
    expect(await queueCounts(clients.sqs, names.collectionDeadLetterQueueUrl)).toEqual({
      visible: 3,
      inFlight: 0,
    })

    // pickup stats counts them too, beside the collection jobs queue.
    const stats = await pickup(dir, ['stats', '--json'])
    expect(stats.code, stats.stderr).toBe(0)
    expect(JSON.parse(stats.stdout).collections).toEqual({
      jobs: { visible: 0, inFlight: 0, delayed: 0 },
      deadLetters: { visible: 3, inFlight: 0, delayed: 0 },
    })
    expect((await pickup(dir, ['stats'])).stdout).toMatch(
      /^Collection jobs +0 waiting, 0 in flight, 0 delayed; dead-lettered: 3 waiting, 0 in flight, 0 delayed \(pickup dlq list --collections\)$/m,
    )

    const one = await pickup(dir, ['dlq', 'redrive', live.id, '--collections'])
    expect(one.code, one.stderr).toBe(0)
    expect(one.stdout).toBe('Sent 1 message back to the collection jobs queue.\n')
    // Local mode's consumer took it from the collection jobs queue and ran the pass.
    await waitUntil(
      'the redriven advance job to run',
      () => collections.get('c0llect10n0000000000000001'),
      (c) => c?.status === 'done',
    )
    expect(await queueCounts(clients.sqs, names.collectionDeadLetterQueueUrl)).toEqual({
      visible: 2,
      inFlight: 0,
    })

    const rest = await pickup(dir, ['dlq', 'redrive', '--all', '--collections', '--json'])
    expect(rest.code, rest.stderr).toBe(0)
    expect(JSON.parse(rest.stdout)).toEqual({
      redriven: 0,
      notDeleted: 0,
      skipped: { notCollectionJob: 1, noCollection: 1, sendFailed: 0 },
      notFound: [],
      interrupted: false,
    })
    expect((await queueCounts(clients.sqs, names.collectionDeadLetterQueueUrl)).visible).toBe(2)

    const purged = await pickup(dir, ['dlq', 'purge', '--collections', '--yes'])
    expect(purged).toMatchObject({
      code: 0,
      stdout: "Purged the collection jobs' dead-letter queue (2 messages).\n",
    })
    expect((await pickup(dir, ['dlq', 'list', '--collections'])).stdout).toBe(
      "the collection jobs' dead-letter queue is empty\n",
    )
    expect(await queueCounts(clients.sqs, names.failedJobsQueueUrl)).toEqual({ visible: 1, inFlight: 0 })
  })
})
