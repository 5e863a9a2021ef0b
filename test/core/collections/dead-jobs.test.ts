/**
 * core/collections/dead-jobs.ts against in-memory ports: listing shows each dead collection job beside its
 * collection and leaves it in the queue; redrive sends before it deletes (a refused send or a failed delete
 * never loses a job), takes selected ids, skips what cannot be processed, and honours a limit.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryCollectionStore } from '../../../adapters/memory/collections.ts'
import {
  createMemoryDeadLetterQueue,
  type MemoryDeadLetterQueue,
} from '../../../adapters/memory/dead-letters.ts'
import type { CollectionJob, CollectionJobs } from '../../../core/collections/archive.ts'
import {
  findDeadCollectionJob,
  listDeadCollectionJobs,
  redriveDeadCollectionJobs,
} from '../../../core/collections/dead-jobs.ts'
import type { CollectionRecord } from '../../../core/collections/model.ts'
import type { CollectionStore } from '../../../core/collections/ports.ts'
import { createTestLogger } from '../../helpers/log.ts'

const T0 = 1_700_000_000_000
const clock = { now: () => T0 }
let dlq: MemoryDeadLetterQueue
let collections: CollectionStore
let sent: CollectionJob[]
let refuse: Set<string>
const jobs: CollectionJobs = {
  async send(job) {
    if (refuse.has(job.collectionId)) throw new Error('queue refused')
    sent.push(job)
  },
}

function record(id: string, over: Partial<CollectionRecord> = {}): CollectionRecord {
  return {
    id,
    owner: 'psa:alice',
    chainId: 1,
    address: `0x${id.padStart(40, '0')}`,
    follow: false,
    status: 'archiving',
    created: T0,
    updated: T0,
    ...over,
  }
}

const body = (collectionId: string, step: CollectionJob['step'] = 'advance') =>
  JSON.stringify({ collectionId, step })

beforeEach(() => {
  dlq = createMemoryDeadLetterQueue({ clock })
  collections = createMemoryCollectionStore()
  sent = []
  refuse = new Set()
})

const ctx = () => ({ deadLetters: dlq, collections, clock, jobs, log: createTestLogger([]) })

describe('dead collection jobs', () => {
  it('are listed oldest first beside their collections, with no invented error, and stay in the queue', async () => {
    await collections.create(record('c1', { status: 'failed', error: 'NOT_AN_NFT_CONTRACT: no code' }))
    const a = dlq.add(body('c1', 'enumerate'), { receiveCount: 5, sentAt: T0 - 2000 })
    const b = dlq.add(body('gone'), { receiveCount: 5, sentAt: T0 - 3000 })
    const c = dlq.add('not a job', { sentAt: T0 - 1000 })

    const views = await listDeadCollectionJobs({ limit: 10 }, ctx())
    expect(views.map((v) => v.id)).toEqual([b, a, c])
    expect(views[1]).toEqual({
      id: a,
      job: { collectionId: 'c1', step: 'enumerate' },
      receiveCount: 6,
      sentAt: T0 - 2000,
      ageMs: 2000,
      errorRecorded: false,
      collection: {
        owner: 'psa:alice',
        chainId: 1,
        address: record('c1').address,
        status: 'failed',
        error: 'NOT_AN_NFT_CONTRACT: no code',
        updated: T0,
      },
    })
    expect(views[0]).not.toHaveProperty('collection')
    expect(views[2]).toMatchObject({ body: 'not a job' })
    expect(views[2]).not.toHaveProperty('job')
    expect(dlq.all().every((m) => m.visible)).toBe(true)

    expect((await findDeadCollectionJob(b, {}, ctx()))?.job).toEqual({
      collectionId: 'gone',
      step: 'advance',
    })
    expect(await findDeadCollectionJob('nope', {}, ctx())).toBeUndefined()
    expect(await listDeadCollectionJobs({ limit: 2 }, ctx())).toHaveLength(2)
  })

  it('are redriven send first: a refused send or a failed delete leaves the job in the queue', async () => {
    for (const id of ['c1', 'c2', 'c3', 'c4']) await collections.create(record(id))
    // Sent back as it was, with its id and its predecessor's: it runs if its collection still names it.
    const ok = dlq.add(JSON.stringify({ collectionId: 'c1', step: 'advance', id: 'j2', prev: 'j1' }))
    const refused = dlq.add(body('c2'))
    const undeleted = dlq.add(body('c3', 'enumerate'))
    const other = dlq.add(body('c4'))
    const gone = dlq.add(body('gone'))
    const junk = dlq.add('{"cid":"bafy"}')
    refuse.add('c2')
    dlq.failDeletesOf([undeleted])

    const result = await redriveDeadCollectionJobs(
      { ids: [ok, refused, undeleted, gone, junk, 'missing'] },
      ctx(),
    )
    expect(result).toEqual({
      redriven: 2,
      notDeleted: 1,
      skipped: { notCollectionJob: 1, noCollection: 1, sendFailed: 1 },
      notFound: ['missing'],
    })
    expect(sent).toEqual([
      { collectionId: 'c1', step: 'advance', id: 'j2', prev: 'j1' },
      { collectionId: 'c3', step: 'enumerate' },
    ])
    // Only the one sent and deleted is gone; the unselected one was not touched.
    expect(
      dlq
        .all()
        .map((m) => m.id)
        .sort(),
    ).toEqual([refused, undeleted, other, gone, junk].sort())

    sent = []
    refuse.clear()
    const rest = await redriveDeadCollectionJobs({ limit: 1 }, ctx())
    expect(rest.redriven).toBe(1)
    expect(sent).toHaveLength(1)
  })
})
