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
  type StoredContentReader,
} from '../../../core/collections/archive.ts'
import type { CollectionEnumerator, EnumerationPage } from '../../../core/collections/enumeration.ts'
import { InvalidInputError } from '../../../core/errors.ts'
import { rawBlock } from '../../fixtures/dags.ts'

const now = 1_700_000_000_000
const clock = { now: () => now }
const ROOT = rawBlock(8, 'jobs-metadata-dir').root.toString()
const ADDRESS = '0x00000000000000000000000000000000000000CD'

const pages: EnumerationPage[] = [1, 2, 3].map((n) => ({
  standard: 'erc721',
  tokens: [{ tokenId: String(n), uri: `ipfs://${ROOT}/${n}` }],
  checkpoint: { standard: 'erc721', method: 'index', total: '3', next: String(n) },
}))

class ProviderDownError extends Error {}

describe('collection jobs', () => {
  it('chain enumerate → enumerate → advance, survive a failed delivery from the checkpoint, and stop once done', async () => {
    const pins = createMemoryPinStore()
    const collections = createMemoryCollectionStore()
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
    expect(first).toEqual({ job: { collectionId: record.id, step: 'enumerate' } })

    // One page per job: the next enumerate job is sent.
    expect(await deliver(first.job)).toEqual([])
    expect(next()).toEqual({ job: { collectionId: record.id, step: 'enumerate' } })

    // The provider fails through every retry: the job is reported for redelivery, after 30 s (not the queue's
    // 30-minute visibility timeout), then after twice as long on each delivery...
    failAfterPages = 0
    expect(await deliver({ collectionId: record.id, step: 'enumerate' })).toEqual([`m${delivery}`])
    expect(sent).toEqual([]) // nothing sent: the same job comes back
    expect(retried).toEqual([{ receipt: `r${delivery}`, seconds: 30 }])
    expect(await deliver({ collectionId: record.id, step: 'enumerate' }, 3)).toEqual([`m${delivery}`])
    expect(retried.at(-1)).toEqual({ receipt: `r${delivery}`, seconds: 120 })
    expect(sent).toEqual([])
    // ...and the redelivery continues from the checkpoint, not from the start.
    failAfterPages = undefined
    expect(await deliver({ collectionId: record.id, step: 'enumerate' })).toEqual([])
    expect(next().job.step).toBe('enumerate')
    expect(await deliver({ collectionId: record.id, step: 'enumerate' })).toEqual([])
    expect(starts).toEqual([undefined, '1', '1', '1', '2'])
    expect((await collections.listTokens(record.id, { limit: 10 })).tokens.map((t) => t.tokenId)).toEqual([
      '1',
      '2',
      '3',
    ])

    // Enumerated: the last enumerate job found nothing more and handed over to advance.
    expect(await deliver(next().job)).toEqual([])
    const advance = next()
    expect(advance).toEqual({ job: { collectionId: record.id, step: 'advance' } })
    expect((await collections.get(record.id))?.status).toBe('archiving')

    // The root is still queued: advance looks again after the delay.
    expect(await deliver(advance.job)).toEqual([])
    const again = next()
    expect(again).toEqual({ job: { collectionId: record.id, step: 'advance' }, delaySeconds: 7 })

    // Stored: the metadata is read, the collection is done and no further job is sent.
    await pins.markPinned(ROOT, 'att', { cid: `bagcar-${ROOT}`, bytes: 1, blocks: 1, key: `k/${ROOT}` }, now)
    expect(await deliver(again.job)).toEqual([])
    expect((await collections.get(record.id))?.status).toBe('done')
    expect(sent).toEqual([])
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
})
