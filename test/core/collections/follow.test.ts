/**
 * The follow tick (core/collections/follow.ts through api/collection-follow.ts) against in-memory ports: it
 * sends followed collections that are done to enumerate again from their checkpoint, takes the longest
 * unchecked first and at most its limit, and leaves busy, failed, deleted and unfollowed collections be.
 * The tokens minted since being found and archived is the end-to-end test's (test/e2e/collections.test.ts,
 * on anvil).
 */
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryCollectionStore } from '../../../adapters/memory/collections.ts'
import { createCollectionFollowHandler } from '../../../api/collection-follow.ts'
import type { CollectionJob } from '../../../core/collections/archive.ts'
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

beforeEach(() => {
  collections = createMemoryCollectionStore()
  sent = []
})

describe('the follow tick', () => {
  it('sends followed collections that are done to enumerate from their checkpoint; leaves the others be', async () => {
    const done = record('done')
    const archiving = record('archiving')
    const failed = record('failed', { error: 'NOT_AN_NFT_CONTRACT: no' })
    const notFollowed = record('done', { follow: false })
    const deleting = record('failed', { deleting: now })
    for (const r of [done, archiving, failed, notFollowed, deleting]) await collections.create(r)

    now += 1000
    const result = await tick(10)
    expect(result).toEqual({ checked: 4, enumerating: [done.id] })
    expect(sent).toEqual([{ collectionId: done.id, step: 'enumerate' }])
    // Enumerating again from where it stopped: the checkpoint is kept.
    expect(await collections.get(done.id)).toMatchObject({
      status: 'enumerating',
      checkpoint: done.checkpoint,
      followChecked: now,
    })
    for (const r of [archiving, failed, deleting])
      expect(await collections.get(r.id)).toMatchObject({ status: r.status, followChecked: now })
    expect(await collections.get(notFollowed.id)).toEqual(notFollowed)

    // Still enumerating at the next tick: not sent again.
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
      // Archived again by the time of the next tick.
      for (const id of turns.at(-1) ?? []) await collections.update(id, { status: 'done' }, now)
    }
    expect(turns.map((t) => t.length)).toEqual([2, 2, 2])
    // Every collection had its turn before any had a second.
    expect(new Set(turns.flat().slice(0, 5))).toEqual(new Set(rs.map((r) => r.id)))
  })

  it('two ticks at once send one job for a collection', async () => {
    const r = record('done')
    await collections.create(r)
    const [a, b] = await Promise.all([tick(10), tick(10)])
    expect([...a.enumerating, ...b.enumerating]).toEqual([r.id])
    expect(sent).toEqual([{ collectionId: r.id, step: 'enumerate' }])
  })

  it('a job that cannot be sent puts the collection back to done, for the next tick', async () => {
    const r = record('done')
    await collections.create(r)
    const failing = createCollectionFollowHandler(
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
    )
    await expect(failing()).rejects.toThrow('SQS is unavailable')
    expect((await collections.get(r.id))?.status).toBe('done')
    now += 1000
    expect((await tick(10)).enumerating).toEqual([r.id])
  })
})
