/**
 * The follow tick (core/collections/follow.ts through api/collection-follow.ts) against in-memory ports: it
 * sends followed collections that are done a job to enumerate again from their checkpoint, takes the longest
 * unchecked first and at most its limit, and leaves busy, failed, deleted and unfollowed collections be. The
 * job moves the collection to `enumerating` as it starts (`claimCollectionJob`, the consumer's first step), so
 * a tick that dies strands nothing, and of several jobs for one collection one goes on.
 * The tokens minted since being found and archived is the end-to-end test's (test/e2e/collections.test.ts,
 * on anvil).
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryCollectionStore } from '../../../adapters/memory/collections.ts'
import { createCollectionFollowHandler } from '../../../api/collection-follow.ts'
import { addCollection, type CollectionJob } from '../../../core/collections/archive.ts'
import { claimCollectionJob } from '../../../core/collections/jobs.ts'
import type { CollectionRecord, CollectionStatus } from '../../../core/collections/model.ts'
import type { CollectionStore } from '../../../core/collections/ports.ts'
import { createTestLogger } from '../../helpers/log.ts'

let now = 1_700_000_000_000
let collections: CollectionStore
let sent: CollectionJob[]
let n = 0

function record(status: CollectionStatus, over: Partial<CollectionRecord> = {}): CollectionRecord {
  n++
  return {
    id: `c${String(n).padStart(3, '0')}`,
    owner: 'psa:alice',
    chainId: 1,
    address: `0x${String(n).padStart(40, '0')}`,
    follow: true,
    status,
    checkpoint: { standard: 'erc721', method: 'logs', fromBlock: '101', toBlock: '100', span: 8, maxSpan: 8 },
    created: now,
    updated: now,
    ...over,
  }
}

const tick = (limit: number) =>
  createCollectionFollowHandler(
    { COLLECTION_FOLLOW_LIMIT: limit },
    {
      collections,
      jobs: { send: async (job) => void sent.push(job) },
      clock: { now: () => now },
      log: createTestLogger([]),
    },
  )()

/** The consumer's first step for a job: whether it runs (and the collection's move, for a follow job). */
const claim = async (job: CollectionJob | undefined) => {
  if (!job) throw new Error('no job')
  return (await claimCollectionJob(job, { collections, clock: { now: () => now } })) !== undefined
}

const failingTick = () =>
  createCollectionFollowHandler(
    { COLLECTION_FOLLOW_LIMIT: 10 },
    {
      collections,
      jobs: {
        send: async () => {
          throw new Error('SQS is unavailable')
        },
      },
      clock: { now: () => now },
      log: createTestLogger([]),
    },
  )()

beforeEach(() => {
  collections = createMemoryCollectionStore()
  sent = []
})

describe('the follow tick', () => {
  it('sends followed collections that are done a job to enumerate from their checkpoint; leaves the others be', async () => {
    const done = record('done', { jobId: 'last-advance' })
    const archiving = record('archiving')
    const failed = record('failed', { error: 'NOT_AN_NFT_CONTRACT: no' })
    const notFollowed = record('done', { follow: false })
    const deleting = record('failed', { deleting: now })
    for (const r of [done, archiving, failed, notFollowed, deleting]) await collections.create(r)

    now += 1000
    const result = await tick(10)
    expect(result).toEqual({ checked: 4, enumerating: [done.id] })
    expect(sent).toEqual([{ collectionId: done.id, step: 'enumerate', id: expect.any(String), follow: true }])
    // The tick only marks what it looked at; the job moves the collection as it starts.
    expect(await collections.get(done.id)).toEqual({ ...done, followChecked: now, updated: now })
    for (const r of [archiving, failed, deleting])
      expect(await collections.get(r.id)).toMatchObject({ status: r.status, followChecked: now })
    expect(await collections.get(notFollowed.id)).toEqual(notFollowed)

    // Enumerating again from where it stopped (the checkpoint is kept), with the job as its one job.
    expect(await claim(sent[0])).toBe(true)
    expect(await collections.get(done.id)).toMatchObject({
      status: 'enumerating',
      checkpoint: done.checkpoint,
      jobId: sent[0]?.id,
    })
    // Delivered again, the job runs again (a retry); still enumerating at the next tick: nothing is sent.
    expect(await claim(sent[0])).toBe(true)
    now += 1000
    expect((await tick(10)).enumerating).toEqual([])
    expect(sent).toHaveLength(1)
  })

  it('looks at most at its limit a tick, the longest unchecked first, so that each has its turn', async () => {
    const rs = [1, 2, 3, 4, 5].map(() => record('done'))
    for (const r of rs) await collections.create(r)
    const turns: string[][] = []
    for (let i = 0; i < 3; i++) {
      now += 1000
      turns.push((await tick(2)).enumerating)
    }
    expect(turns.map((t) => t.length)).toEqual([2, 2, 2])
    // Every collection had its turn before any had a second.
    expect(new Set(turns.flat().slice(0, 5))).toEqual(new Set(rs.map((r) => r.id)))
  })

  it('of the jobs two ticks at once send for a collection, one moves it and the other is dropped', async () => {
    const r = record('done')
    await collections.create(r)
    const [a, b] = await Promise.all([tick(10), tick(10)])
    expect([...a.enumerating, ...b.enumerating]).toEqual([r.id, r.id])
    expect(sent.map((j) => j.follow)).toEqual([true, true])
    expect(await Promise.all(sent.map(claim))).toEqual([true, false])
    expect(await collections.get(r.id)).toMatchObject({ status: 'enumerating', jobId: sent[0]?.id })
    // The dropped one stays dropped when it comes again.
    expect(await claim(sent[1])).toBe(false)
  })

  it('a tick whose send fails leaves the collection done, and a later tick sends its job', async () => {
    const r = record('done')
    await collections.create(r)
    await expect(failingTick()).rejects.toThrow('SQS is unavailable')
    expect(await collections.get(r.id)).toEqual(r)
    now += 1000
    expect((await tick(10)).enumerating).toEqual([r.id])
    expect(await claim(sent[0])).toBe(true)
    expect((await collections.get(r.id))?.status).toBe('enumerating')
  })

  it("a tick that dies after its send strands nothing: its job moves the collection, a later tick's is dropped", async () => {
    const r = record('done')
    await collections.create(r)
    // The tick sent and died before marking the collection checked: the next tick sends again.
    now += 1000
    await tick(10)
    await collections.update(r.id, { followChecked: r.followChecked ?? 0 }, now)
    now += 1000
    await tick(10)
    expect(sent).toHaveLength(2)
    // The first job arrives (however late): it moves the collection; the second finds it enumerating.
    expect(await claim(sent[0])).toBe(true)
    expect(await claim(sent[1])).toBe(false)
    expect(await collections.get(r.id)).toMatchObject({ status: 'enumerating', jobId: sent[0]?.id })
  })

  it("a user's post racing a tick: one chain, whichever moves the collection first", async () => {
    const chains = new Set([1])
    const jobs = { send: async (job: CollectionJob) => void sent.push(job) }
    const clock = { now: () => now }
    const post = () =>
      addCollection(
        { user: 'alice', chainId: 1, address: `0x${'ab'.repeat(20)}`, follow: true },
        {
          collections,
          clock,
          jobs,
          chains,
        },
      )
    const { record: posted } = await post()
    await collections.update(posted.id, { status: 'done' }, now) // archived
    sent.length = 0

    // The tick's job is sent; the user posts before it arrives: the post moves the collection and names its own
    // job, and the tick's job, arriving next, is dropped.
    now += 1000
    await tick(10)
    expect((await post()).record.status).toBe('enumerating')
    const [tickJob, postJob] = sent
    expect(postJob).toEqual({ collectionId: posted.id, step: 'enumerate', id: expect.any(String) })
    expect(await claim(tickJob)).toBe(false)
    expect(await claim(postJob)).toBe(true)
    expect((await collections.get(posted.id))?.jobId).toBe(postJob?.id)

    // Done again; this time the tick's job moves it first: the user's post sends that same job again (a copy of
    // the job the collection names, for a chain that lost its message; a copy of a running one is dropped once
    // either has handed over, test/core/collections/jobs.test.ts).
    await collections.update(posted.id, { status: 'done' }, now)
    sent.length = 0
    now += 1000
    await tick(10)
    expect(await claim(sent[0])).toBe(true)
    await post()
    expect(sent[1]).toEqual({ collectionId: posted.id, step: 'enumerate', id: sent[0]?.id })
    expect((await collections.get(posted.id))?.jobId).toBe(sent[0]?.id)
  })
})
