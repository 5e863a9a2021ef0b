/**
 * The collection jobs consumer's deadline (api/collection-jobs.ts): a job still running when the Lambda's
 * time (less a margin) runs out is aborted and reported for redelivery, records not started are reported
 * too, and the redelivered job continues from the last checkpoint. In-memory ports; the chain is the
 * enumeration port's twin, which yields one page and then waits until it is aborted (a provider that stopped
 * answering).
 */
import type { SQSEvent } from 'aws-lambda'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../../adapters/log.ts'
import { createMemoryCollectionStore } from '../../../adapters/memory/collections.ts'
import { createMemoryPinStore } from '../../../adapters/memory/pins.ts'
import { createMemoryJobQueue } from '../../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../../adapters/memory/requests.ts'
import { COLLECTION_JOB_TIMEOUT_SECONDS } from '../../../adapters/sqs/queues.ts'
import {
  createCollectionJobHandler,
  JOB_DEADLINE_MARGIN_MS,
  jobDeadlineMs,
} from '../../../api/collection-jobs.ts'
import { addCollection, type CollectionJob, type CollectionJobs } from '../../../core/collections/archive.ts'
import type { CollectionEnumerator, EnumerationPage } from '../../../core/collections/enumeration.ts'

const now = 1_700_000_000_000
const clock = { now: () => now }
const ADDRESS = '0x00000000000000000000000000000000000000EF'

const pages: EnumerationPage[] = [1, 2].map((n) => ({
  standard: 'erc721',
  tokens: [{ tokenId: String(n), uri: `data:application/json,{"name":"${n}"}` }],
  checkpoint: { standard: 'erc721', method: 'index', total: '2', next: String(n) },
}))

describe('collection jobs deadline', () => {
  it("is the Lambda's remaining time less the margin, or the job timeout where there is no Lambda", () => {
    expect(jobDeadlineMs({ getRemainingTimeInMillis: () => 60_000 })).toBe(60_000 - JOB_DEADLINE_MARGIN_MS)
    expect(jobDeadlineMs(undefined)).toBe(COLLECTION_JOB_TIMEOUT_SECONDS * 1000 - JOB_DEADLINE_MARGIN_MS)
    expect(jobDeadlineMs({ getRemainingTimeInMillis: () => 0 })).toBe(1)
  })

  it('aborts a job that outlives it, reports it and the records after it, and the redelivery resumes', async () => {
    const collections = createMemoryCollectionStore()
    const sent: CollectionJob[] = []
    const jobs: CollectionJobs = { send: async (job) => void sent.push(job) }
    const retried: Array<{ receipt: string; seconds: number }> = []
    const starts: Array<string | undefined> = []
    let hang = true
    const enumerator: CollectionEnumerator = {
      async *enumerate({ checkpoint }, opts) {
        starts.push(checkpoint?.method === 'index' ? checkpoint.next : undefined)
        const from = checkpoint?.method === 'index' ? Number(checkpoint.next) : 0
        for (const page of pages.slice(from)) {
          yield page
          if (hang) {
            // The provider stops answering: only the deadline ends the wait.
            const signal = opts?.signal
            if (!signal) throw new Error('the job was given no deadline')
            await new Promise((_, reject) =>
              signal.addEventListener('abort', () => reject(signal.reason), { once: true }),
            )
          }
        }
      },
    }
    const handle = createCollectionJobHandler(
      { pagesPerJob: 10, advanceDelaySeconds: 1 },
      {
        collections,
        requests: createMemoryRequestStore(),
        pins: createMemoryPinStore(),
        queue: createMemoryJobQueue({ clock }),
        clock,
        jobs,
        enumerator,
        reader: { readFile: async () => new Uint8Array() },
        log: createLogger('test', 'silent'),
        retries: { retryAfter: async (receipt, seconds) => void retried.push({ receipt, seconds }) },
      },
    )
    const { record } = await addCollection(
      { user: 'alice', chainId: 1, address: ADDRESS },
      { collections, clock, jobs, chains: new Set([1]) },
    )
    const job = sent.shift()!
    const body = JSON.stringify(job)
    const event = {
      Records: [
        { messageId: 'first', receiptHandle: 'r1', body, attributes: { ApproximateReceiveCount: '1' } },
        { messageId: 'second', receiptHandle: 'r2', body, attributes: { ApproximateReceiveCount: '2' } },
      ],
    } as unknown as SQSEvent

    // A Lambda invoked with only the margin and a moment left.
    const nearlyOut = { getRemainingTimeInMillis: () => JOB_DEADLINE_MARGIN_MS + 20 }
    expect((await handle(event, nearlyOut)).batchItemFailures).toEqual([
      { itemIdentifier: 'first' },
      { itemIdentifier: 'second' },
    ])
    // Both come back after their backoff, by delivery (the one cut short, and the one with no time left).
    expect(retried).toEqual([
      { receipt: 'r1', seconds: 30 },
      { receipt: 'r2', seconds: 60 },
    ])
    // The first page was checkpointed before the wait; nothing was sent (the same job comes back).
    expect(sent).toEqual([])
    expect((await collections.get(record.id))?.checkpoint).toEqual(pages[0]!.checkpoint)
    expect((await collections.listTokens(record.id, { limit: 10 })).tokens.map((t) => t.tokenId)).toEqual([
      '1',
    ])

    // Redelivered with time to spare: it continues from the checkpoint and finishes enumerating.
    hang = false
    const plenty = { getRemainingTimeInMillis: () => 300_000 }
    expect(
      (await handle({ Records: [{ messageId: 'again', body }] } as unknown as SQSEvent, plenty))
        .batchItemFailures,
    ).toEqual([])
    expect(starts).toEqual([undefined, '1'])
    expect((await collections.listTokens(record.id, { limit: 10 })).tokens.map((t) => t.tokenId)).toEqual([
      '1',
      '2',
    ])
    expect((await collections.get(record.id))?.status).toBe('archiving')
    expect(sent).toEqual([
      { collectionId: record.id, step: 'advance', id: expect.any(String), prev: record.jobId },
    ])
  })
})
