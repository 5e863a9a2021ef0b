/**
 * core/dead-letters.ts against in-memory ports: listing and finding leave every message in the queue,
 * redrive sends before it deletes (so a failed send or delete never loses a job), selected ids only, limits,
 * skipped messages, abort, purge.
 */
import { beforeEach, describe, expect, it } from 'vitest'
import {
  createMemoryDeadLetterQueue,
  type MemoryDeadLetterQueue,
} from '../../adapters/memory/dead-letters.ts'
import { createMemoryPinStore, type MemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import {
  findDeadLetter,
  listDeadLetters,
  purgeDeadLetters,
  redriveDeadLetters,
} from '../../core/dead-letters.ts'
import type { PinJob } from '../../core/pin.ts'
import type { PinQueue, ReceivedJob } from '../../core/ports.ts'
import { createTestLogger } from '../helpers/log.ts'

const T0 = 1_700_000_000_000
let now = T0
const clock = { now: () => now }

let deadLetters: MemoryDeadLetterQueue
let pins: MemoryPinStore
let queue: MemoryJobQueue
const log = createTestLogger()

beforeEach(() => {
  now = T0
  deadLetters = createMemoryDeadLetterQueue()
  pins = createMemoryPinStore()
  queue = createMemoryJobQueue()
})

/** A dead letter for a pin that failed after 3 attempts, sent `ageMs` ago. */
async function deadPin(cid: string, ageMs = 60_000): Promise<string> {
  await pins.request(cid, ['/origin'], T0 - ageMs)
  for (let i = 1; i <= 3; i++) {
    await pins.claim(cid, `att${i}`, T0, T0 - ageMs + i)
    await pins.settle(cid, `att${i}`, { status: 'queued', error: 'FETCH_STALLED: no data' }, T0 - ageMs + i)
  }
  await pins.settle(cid, undefined, { status: 'failed', error: 'FETCH_STALLED: no data (gave up)' }, T0 - 10)
  return deadLetters.add(JSON.stringify({ cid, origins: ['/origin'] }), {
    receiveCount: 4,
    sentAt: T0 - ageMs,
  })
}

async function drain(q: MemoryJobQueue): Promise<ReceivedJob[]> {
  const out: ReceivedJob[] = []
  for (;;) {
    const got = await q.receive({ max: 10, waitSeconds: 0 })
    if (got.length === 0) return out
    out.push(...got)
  }
}

const ctx = () => ({ deadLetters, pins, queue, clock, log, requests: createMemoryRequestStore() })

describe('listing and finding dead letters', () => {
  it('lists oldest first with the pin beside each message, and leaves them all in the queue', async () => {
    const a = await deadPin('bafya', 60_000)
    const b = await deadPin('bafyb', 120_000)
    const junk = deadLetters.add('garbage', { sentAt: T0 - 1 })
    const gone = deadLetters.add(JSON.stringify({ cid: 'bafygone', origins: [] }), { sentAt: T0 - 2 })
    const views = await listDeadLetters({ limit: 100 }, ctx())
    expect(views.map((v) => v.id)).toEqual([b, a, gone, junk])
    expect(views[0]).toMatchObject({
      cid: 'bafyb',
      origins: ['/origin'],
      receiveCount: 5,
      ageMs: 120_000,
      pin: { status: 'failed', attempts: 3, error: 'FETCH_STALLED: no data (gave up)' },
    })
    expect(views[2]!.pin).toBeUndefined()
    expect(views[3]).toMatchObject({ body: 'garbage' })
    expect(views[3]!.cid).toBeUndefined()
    expect(deadLetters.all().every((m) => m.visible)).toBe(true)
  })

  it('stops at the limit, and finds one message by id without keeping it', async () => {
    const ids = []
    for (let i = 0; i < 25; i++) ids.push(await deadPin(`bafy${i}`))
    expect(await listDeadLetters({ limit: 12 }, ctx())).toHaveLength(12)
    const found = await findDeadLetter(ids[17]!, {}, ctx())
    expect(found).toMatchObject({ id: ids[17], cid: 'bafy17' })
    expect(await findDeadLetter('no-such-id', {}, ctx())).toBeUndefined()
    expect(deadLetters.all()).toHaveLength(25)
    expect(deadLetters.all().every((m) => m.visible)).toBe(true)
  })
})

describe('redriving dead letters', () => {
  it('sends every job back, deletes it only then, and queues failed pins again', async () => {
    for (let i = 0; i < 23; i++) await deadPin(`bafy${i}`)
    const progress: number[] = []
    const result = await redriveDeadLetters({ onProgress: (p) => progress.push(p.redriven) }, ctx())
    expect(result).toMatchObject({ redriven: 23, requeued: 23, notDeleted: 0, notFound: [] })
    expect(deadLetters.all()).toEqual([])
    const jobs = await drain(queue)
    expect(jobs.map((j) => j.job.cid).sort()).toEqual(Array.from({ length: 23 }, (_, i) => `bafy${i}`).sort())
    expect(jobs[0]!.job.origins).toEqual(['/origin'])
    expect(progress.at(-1)).toBe(23)
    expect(
      pins.all().every((p) => p.status === 'queued' && p.error === 'FETCH_STALLED: no data (gave up)'),
    ).toBe(true)
  })

  it('sends only the ids asked for, and says which it did not find', async () => {
    const ids = []
    for (let i = 0; i < 15; i++) ids.push(await deadPin(`bafy${i}`))
    const result = await redriveDeadLetters({ ids: [ids[3]!, ids[12]!, 'missing'] }, ctx())
    expect(result).toMatchObject({ redriven: 2, notFound: ['missing'] })
    expect((await drain(queue)).map((j) => j.job.cid).sort()).toEqual(['bafy12', 'bafy3'])
    expect(deadLetters.all()).toHaveLength(13)
    expect(deadLetters.all().every((m) => m.visible)).toBe(true)
  })

  it('leaves messages that are not pin jobs or whose pin is gone, and stops at the limit', async () => {
    for (let i = 0; i < 5; i++) await deadPin(`bafy${i}`)
    deadLetters.add('garbage')
    deadLetters.add(JSON.stringify({ cid: 'bafygone', origins: [] }))
    const first = await redriveDeadLetters({ limit: 3 }, ctx())
    expect(first.redriven).toBe(3)
    const rest = await redriveDeadLetters({}, ctx())
    expect(rest).toMatchObject({ redriven: 2, skipped: { notPinJob: 1, noPin: 1, sendFailed: 0 } })
    expect(
      deadLetters
        .all()
        .map((m) => m.body)
        .sort(),
    ).toEqual(['garbage', JSON.stringify({ cid: 'bafygone', origins: [] })].sort())
  })

  it('keeps a job the pin queue refused, and reports one it sent but could not delete', async () => {
    const ids = []
    for (let i = 0; i < 4; i++) ids.push(await deadPin(`bafy${i}`))
    const refusing: PinQueue = {
      async send(job: PinJob) {
        if (job.cid === 'bafy1') throw new Error('throttled')
        await queue.send(job)
      },
    }
    deadLetters.failDeletesOf([ids[2]!])
    const result = await redriveDeadLetters({}, { ...ctx(), queue: refusing })
    expect(result).toMatchObject({ redriven: 3, notDeleted: 1, skipped: { sendFailed: 1 } })
    // Nothing lost: every job is on one queue or the other (bafy2 on both).
    const onQueue = (await drain(queue)).map((j) => j.job.cid)
    const onDlq = deadLetters.all().map((m) => JSON.parse(m.body).cid as string)
    expect(new Set([...onQueue, ...onDlq])).toEqual(new Set(['bafy0', 'bafy1', 'bafy2', 'bafy3']))
    expect(onDlq.sort()).toEqual(['bafy1', 'bafy2'])
  })

  it('stops after the batch in hand when aborted; the rest stays', async () => {
    for (let i = 0; i < 35; i++) await deadPin(`bafy${i}`)
    const abort = new AbortController()
    const result = await redriveDeadLetters(
      {
        signal: abort.signal,
        onProgress: (p) => {
          if (p.redriven >= 10) abort.abort()
        },
      },
      ctx(),
    )
    expect(result.redriven).toBe(10)
    expect((await drain(queue)).length).toBe(10)
    expect(deadLetters.all()).toHaveLength(25)
    expect(deadLetters.all().every((m) => m.visible)).toBe(true)
  })
})

describe('purging', () => {
  it('deletes everything and says how many there were', async () => {
    for (let i = 0; i < 4; i++) await deadPin(`bafy${i}`)
    expect(await purgeDeadLetters({ deadLetters, log })).toEqual({ purged: 4 })
    expect(deadLetters.all()).toEqual([])
  })
})
