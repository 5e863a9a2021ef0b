/**
 * The collection jobs consumer (api/collection-jobs.ts over core/collections/jobs.ts) against in-memory ports:
 * each job sends the next, a job that fails transiently is reported for redelivery and, delivered again,
 * continues from the checkpoint the records hold. The chain is the enumeration port's twin (its pages, with a
 * provider failure on demand); stored files the content reader's twin.
 */
import type { SQSEvent } from 'aws-lambda'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../../adapters/log.ts'
import { createMemoryCollectionStore } from '../../../adapters/memory/collections.ts'
import { createMemoryPinStore } from '../../../adapters/memory/pins.ts'
import { createMemoryJobQueue } from '../../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../../adapters/memory/requests.ts'
import { createCollectionJobHandler } from '../../../api/collection-jobs.ts'
import {
  addCollection,
  type CollectionJob,
  type CollectionJobs,
  encodeCollectionJob,
  parseCollectionJob,
  type StoredContentReader,
} from '../../../core/collections/archive.ts'
import type { CollectionEnumerator, EnumerationPage } from '../../../core/collections/enumeration.ts'
import { InvalidInputError } from '../../../core/errors.ts'
import { rawBlock } from '../../fixtures/dags.ts'
import { createTestLogger } from '../../helpers/log.ts'

const now = 1_700_000_000_000
const clock = { now: () => now }
const ROOT = rawBlock(8, 'jobs-metadata-dir').root.toString()
const ADDRESS = '0x00000000000000000000000000000000000000CD'

const pages: EnumerationPage[] = [1, 2, 3].map((n) => ({
  standard: 'erc721',
  tokens: [{ tokenId: String(n), uri: `ipfs://${ROOT}/${n}` }],
  checkpoint: { standard: 'erc721', method: 'index', total: '3', next: String(n) },
}))

class ProviderDownError extends Error {
  readonly code = 'PROVIDER_DOWN'
}

describe('collection jobs', () => {
  it('chain enumerate → enumerate → advance, survive a failed delivery from the checkpoint, and stop once done', async () => {
    const pins = createMemoryPinStore()
    const store = createMemoryCollectionStore()
    // The in-memory store, whose write of a job's failure can be made to fail.
    let recordingFails = false
    const collections: typeof store = {
      ...store,
      putJobFailure: async (id, failure) => {
        if (recordingFails) throw new Error('the table is unavailable')
        return store.putJobFailure(id, failure)
      },
    }
    const sent: Array<{ job: CollectionJob; delaySeconds?: number }> = []
    const jobs: CollectionJobs = {
      send: async (job, opts) =>
        void sent.push({ job, ...(opts?.delaySeconds ? { delaySeconds: opts.delaySeconds } : {}) }),
    }
    const retried: Array<{ receipt: string; seconds: number }> = []
    const starts: Array<string | undefined> = []
    let failAfterPages: number | undefined
    const enumerator: CollectionEnumerator = {
      async *enumerate({ checkpoint }) {
        starts.push(checkpoint?.method === 'index' ? checkpoint.next : undefined)
        const from = checkpoint?.method === 'index' ? Number(checkpoint.next) : 0
        let yielded = 0
        for (const page of pages.slice(from)) {
          if (failAfterPages !== undefined && yielded === failAfterPages)
            throw new ProviderDownError('the provider answered 503 through every retry')
          yield page
          yielded++
        }
      },
    }
    const reader: StoredContentReader = {
      async readFile(pin, path) {
        if (pin.cid !== ROOT) throw new InvalidInputError('PATH_NOT_FOUND', `no ${path}`)
        return new TextEncoder().encode(JSON.stringify({ name: path }))
      },
    }
    const ctx = {
      collections,
      requests: createMemoryRequestStore(),
      pins,
      queue: createMemoryJobQueue({ clock }),
      clock,
      jobs,
      enumerator,
      reader,
      log: createLogger('test', 'silent'),
      retries: {
        retryAfter: async (receipt: string, seconds: number) => void retried.push({ receipt, seconds }),
      },
    }
    const handle = createCollectionJobHandler({ pagesPerJob: 1, advanceDelaySeconds: 7 }, ctx)
    let delivery = 0
    const deliver = async (job: CollectionJob, receiveCount = 1) => {
      const messageId = `m${++delivery}`
      const record = {
        messageId,
        receiptHandle: `r${delivery}`,
        body: JSON.stringify(job),
        attributes: { ApproximateReceiveCount: String(receiveCount) },
      }
      const event = { Records: [record] } as unknown as SQSEvent
      return (await handle(event)).batchItemFailures.map((f) => f.itemIdentifier)
    }
    const next = () => {
      const s = sent.shift()
      if (!s) throw new Error('no job was sent')
      return s
    }

    const { record } = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS },
      { collections, clock, jobs, chains: new Set([1]) },
    )
    const first = next()
    expect(first).toEqual({ job: { collectionId: record.id, step: 'enumerate', id: record.jobId } })

    // One page per job: the next enumerate job is sent, in the place of the first.
    expect(await deliver(first.job)).toEqual([])
    const second = next().job
    expect(second).toEqual({
      collectionId: record.id,
      step: 'enumerate',
      id: expect.any(String),
      prev: record.jobId,
    })
    expect(second.id).not.toBe(record.jobId)

    // The provider fails through every retry: the job is reported for redelivery, after 30 s (not the queue's
    // 30-minute visibility timeout), then after twice as long on each delivery...
    failAfterPages = 0
    expect(await deliver(second)).toEqual([`m${delivery}`])
    expect(sent).toEqual([]) // nothing sent: the same job comes back
    expect(retried).toEqual([{ receipt: `r${delivery}`, seconds: 30 }])
    // It took the first's place on its first delivery; its redeliveries are the job the collection names.
    expect((await collections.get(record.id))?.jobId).toBe(second.id)
    // The failure is recorded on the collection: its step, `CODE: message`, when and the delivery's count.
    const failure = {
      step: 'enumerate',
      error: 'PROVIDER_DOWN: the provider answered 503 through every retry',
      at: now,
      receives: 1,
    }
    expect((await collections.get(record.id))?.lastJobFailure).toEqual(failure)
    await deliver(second, 2)
    expect((await collections.get(record.id))?.lastJobFailure).toEqual({ ...failure, receives: 2 })
    // A failure to record it changes nothing of the retry.
    recordingFails = true
    expect(await deliver(second, 3)).toEqual([`m${delivery}`])
    expect(retried.at(-1)).toEqual({ receipt: `r${delivery}`, seconds: 120 })
    expect(sent).toEqual([])
    expect((await collections.get(record.id))?.lastJobFailure).toEqual({ ...failure, receives: 2 })
    recordingFails = false
    // ...and the redelivery continues from the checkpoint, not from the start.
    failAfterPages = undefined
    expect(await deliver(second)).toEqual([])
    const third = next().job
    expect(third).toMatchObject({ step: 'enumerate', prev: second.id })
    expect(await deliver(third)).toEqual([])
    expect(starts).toEqual([undefined, '1', '1', '1', '1', '2'])
    // Kept after the job succeeds: the last failure there was, with its time.
    expect((await collections.get(record.id))?.lastJobFailure).toEqual({ ...failure, receives: 2 })
    expect((await collections.listTokens(record.id, { limit: 10 })).tokens.map((t) => t.tokenId)).toEqual([
      '1',
      '2',
      '3',
    ])

    // Enumerated: the last enumerate job found nothing more and handed over to advance.
    expect(await deliver(next().job)).toEqual([])
    const advance = next()
    expect(advance.job).toMatchObject({ collectionId: record.id, step: 'advance' })
    expect((await collections.get(record.id))?.status).toBe('archiving')

    // The root is still queued: advance looks again after the delay.
    expect(await deliver(advance.job)).toEqual([])
    const again = next()
    expect(again).toMatchObject({ job: { step: 'advance', prev: advance.job.id }, delaySeconds: 7 })

    // Stored: the metadata is read, the collection is done and no further job is sent.
    await pins.markPinned(ROOT, 'att', { cid: `bagcar-${ROOT}`, bytes: 1, blocks: 1, key: `k/${ROOT}` }, now)
    expect(await deliver(again.job)).toEqual([])
    expect((await collections.get(record.id))?.status).toBe('done')
    expect(sent).toEqual([])
  })

  it('runs one chain per collection: of copies of a job, one successor goes on; stale jobs are dropped', async () => {
    const collections = createMemoryCollectionStore()
    const sent: CollectionJob[] = []
    const jobs: CollectionJobs = { send: async (job) => void sent.push(job) }
    const logged: Array<{ level: string; msg?: string; obj: object }> = []
    const handle = createCollectionJobHandler(
      { pagesPerJob: 1, advanceDelaySeconds: 7 },
      {
        collections,
        requests: createMemoryRequestStore(),
        pins: createMemoryPinStore(),
        queue: createMemoryJobQueue({ clock }),
        clock,
        jobs,
        enumerator: {
          async *enumerate({ checkpoint }) {
            const from = checkpoint?.method === 'index' ? Number(checkpoint.next) : 0
            yield* pages.slice(from)
          },
        },
        reader: { readFile: async () => new Uint8Array() },
        log: createTestLogger(logged),
        retries: { retryAfter: async () => {} },
      },
    )
    let delivery = 0
    const deliver = async (job: CollectionJob) => {
      const messageId = `m${++delivery}`
      const event = {
        Records: [{ messageId, receiptHandle: `r${delivery}`, body: JSON.stringify(job), attributes: {} }],
      } as unknown as SQSEvent
      return (await handle(event)).batchItemFailures
    }
    const take = () => sent.splice(0)
    const dropped = () => logged.filter((l) => l.msg?.startsWith('stale collection job dropped')).length

    const { record } = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS },
      { collections, clock, jobs, chains: new Set([1]) },
    )
    const [first] = take()
    if (!first) throw new Error('no first job')

    // SQS delivers the first job twice, at once: both copies run (the collection names it) and each sends a
    // successor; of the two, the first to start takes its place and the other is dropped.
    expect(await Promise.all([deliver(first), deliver(first)])).toEqual([[], []])
    const successors = take()
    expect(successors.map((j) => [j.step, j.prev])).toEqual([
      ['enumerate', first.id],
      ['enumerate', first.id],
    ])
    const [a, b] = successors as [CollectionJob, CollectionJob]
    expect(a.id).not.toBe(b.id)
    await deliver(b)
    expect((await collections.get(record.id))?.jobId).toBe(b.id)
    const afterB = take()
    expect(afterB).toHaveLength(1)
    expect(await deliver(a)).toEqual([])
    expect(take()).toEqual([]) // a sends nothing: the chain goes on from b alone
    expect(dropped()).toBe(1)

    // A copy of the first job delivered again now, and a job from before ids, are stale too.
    await deliver(first)
    await deliver({ collectionId: record.id, step: 'enumerate' })
    expect(take()).toEqual([])
    expect(dropped()).toBe(3)
    expect((await collections.get(record.id))?.jobId).toBe(b.id)

    // The one chain runs to the end: the last enumerate hands over to advance.
    let job = afterB[0]
    while (job?.step === 'enumerate') {
      await deliver(job)
      ;[job] = take()
    }
    expect(job).toMatchObject({ step: 'advance' })
    expect((await collections.get(record.id))?.status).toBe('archiving')
  })

  it('a collection from before job ids: its job gives itself one, once', async () => {
    const collections = createMemoryCollectionStore()
    const sent: CollectionJob[] = []
    const { record } = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS },
      { collections, clock, jobs: { send: async () => {} }, chains: new Set([1]) },
    )
    // A record written before job ids has none.
    const legacy = { ...record }
    delete legacy.jobId
    await collections.delete(record.id)
    await collections.create(legacy)
    const handle = createCollectionJobHandler({ pagesPerJob: 1, advanceDelaySeconds: 7 }, {
      collections,
      requests: createMemoryRequestStore(),
      pins: createMemoryPinStore(),
      queue: createMemoryJobQueue({ clock }),
      clock,
      jobs: { send: async (job: CollectionJob) => void sent.push(job) },
      enumerator: {
        async *enumerate() {
          yield* pages.slice(0, 1)
        },
      },
      reader: { readFile: async () => new Uint8Array() },
      log: createTestLogger([]),
      retries: { retryAfter: async () => {} },
    } as never)
    const body = JSON.stringify({ collectionId: record.id, step: 'enumerate' })
    const event = (m: string) => ({ Records: [{ messageId: m, receiptHandle: m, body, attributes: {} }] })
    await handle(event('m1') as unknown as SQSEvent)
    const named = (await collections.get(record.id))?.jobId
    expect(named).toEqual(expect.any(String))
    expect(sent).toEqual([
      { collectionId: record.id, step: 'enumerate', id: expect.any(String), prev: named },
    ])
    // The same old message again: the collection names a job now, so it is stale.
    await handle(event('m2') as unknown as SQSEvent)
    expect(sent).toHaveLength(1)
  })

  it('drops a body that is not a job, without a retry', async () => {
    const handle = createCollectionJobHandler({ pagesPerJob: 1, advanceDelaySeconds: 1 }, {
      collections: createMemoryCollectionStore(),
      log: createLogger('test', 'silent'),
    } as never)
    const event = {
      Records: [
        { messageId: 'a', body: 'not json' },
        { messageId: 'b', body: JSON.stringify({ collectionId: 'x', step: 'sing' }) },
      ],
    } as unknown as SQSEvent
    expect(await handle(event)).toEqual({ batchItemFailures: [] })
  })

  it('a message body holds the job with its id, the job it follows and whether a follow tick sent it', () => {
    const jobs: CollectionJob[] = [
      { collectionId: 'x', step: 'enumerate' },
      { collectionId: 'x', step: 'enumerate', id: 'a', follow: true },
      { collectionId: 'x', step: 'advance', id: 'b', prev: 'a' },
    ]
    for (const job of jobs) expect(parseCollectionJob(encodeCollectionJob(job))).toEqual(job)
    // A follow job, or one taking another's place, has an id of its own; ids are strings.
    for (const bad of [
      { collectionId: 'x', step: 'enumerate', follow: true },
      { collectionId: 'x', step: 'advance', prev: 'a' },
      { collectionId: 'x', step: 'advance', id: 7 },
      { collectionId: 'x', step: 'advance', id: 'b', follow: 'yes' },
    ])
      expect(parseCollectionJob(JSON.stringify(bad))).toBeUndefined()
  })
})
