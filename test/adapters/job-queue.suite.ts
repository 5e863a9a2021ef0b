/**
 * The JobQueue contract (core/ports.ts) with SQS standard-queue semantics, run against every implementation.
 */
import { describe, expect, it } from 'vitest'
import type { PinJob } from '../../core/pin.ts'
import type { JobQueue, ReceivedJob } from '../../core/ports.ts'
import { sleep } from './harness.ts'

/** The visibility timeout the factory must give the queue: short, so expiry is quick to test. */
export const SUITE_VISIBILITY_TIMEOUT_SECONDS = 1
/** Receives after which the factory's queue moves a message to its dead-letter queue. */
export const SUITE_MAX_RECEIVE_COUNT = 3

/** A fresh, empty queue (and its dead-letter queue) per test. */
export type JobQueueFactory = () => Promise<{ queue: JobQueue; deadLetter: JobQueue }>

function job(n: number): PinJob {
  return { cid: `bafyjob${n}`, origins: [`/ip4/10.0.0.${n % 250}/tcp/4001`] }
}

async function receiveOne(queue: JobQueue, waitSeconds = 2): Promise<ReceivedJob> {
  const got = await queue.receive({ max: 1, waitSeconds })
  expect(got).toHaveLength(1)
  return got[0]!
}

async function expectEmpty(queue: JobQueue): Promise<void> {
  expect(await queue.receive({ max: 10, waitSeconds: 0 })).toEqual([])
}

/**
 * Which ends first: a long poll of `waitSeconds`, started by `poll`, or a timer of the same wait started just
 * before it. A poll that something wakes ends first, whatever the machine's load; one that runs to the end
 * of its wait ends second. (Upper bounds on elapsed time flaked here: three suites share this process's
 * event loop, beside other test workers on two cores, and a poll could come back seconds late.)
 */
async function firstToEnd(waitSeconds: number, poll: () => Promise<unknown>): Promise<'poll' | 'wait'> {
  let timer: NodeJS.Timeout | undefined
  const wait = new Promise<'wait'>((resolve) => {
    timer = setTimeout(() => resolve('wait'), waitSeconds * 1000)
  })
  const polling = poll().then(
    () => 'poll' as const,
    () => 'poll' as const,
  )
  try {
    return await Promise.race([polling, wait])
  } finally {
    clearTimeout(timer)
  }
}

export function jobQueueSuite(name: string, factory: JobQueueFactory): void {
  // Each test has its own queue and mostly waits on timeouts: run them side by side.
  describe.concurrent(`JobQueue: ${name}`, () => {
    it('delivers a job with an id, a receipt and a receive count; delete removes it', async () => {
      const { queue } = await factory()
      await queue.send(job(1))
      const got = await receiveOne(queue)
      expect(got.job).toEqual(job(1))
      expect(got.receiveCount).toBe(1)
      expect(got.id).toEqual(expect.any(String))
      expect(got.receipt).toEqual(expect.any(String))
      await queue.delete(got.receipt)
      await sleep(SUITE_VISIBILITY_TIMEOUT_SECONDS * 1000 + 200)
      await expectEmpty(queue)
      // Deleting again (a redelivered job finishing twice) is harmless.
      await queue.delete(got.receipt)
    })

    it("delivers like a fair queue: one requester's backlog does not hold another's job behind it", async () => {
      const { queue } = await factory()
      for (let i = 0; i < 20; i++) await queue.send({ ...job(i), requester: 'psa:busy' })
      await queue.send({ ...job(100), requester: 'psa:other' })
      // The busy requester's oldest, then the other's (it has nothing in flight), then the busy one's again.
      const first = await queue.receive({ max: 2, waitSeconds: 2 })
      expect(first.map((r) => r.job)).toEqual([
        { ...job(0), requester: 'psa:busy' },
        { ...job(100), requester: 'psa:other' },
      ])
      await queue.send({ ...job(101), requester: 'psa:other' })
      // The other requester holds one in flight, the busy one one too: oldest first among equals.
      const next = await queue.receive({ max: 3, waitSeconds: 2 })
      expect(next.map((r) => r.job.cid)).toEqual([job(1).cid, job(101).cid, job(2).cid])
    })

    it('receives at most 10 (and at most max) per call', async () => {
      const { queue } = await factory()
      await Promise.all(Array.from({ length: 12 }, (_, i) => queue.send(job(i))))
      const three = await queue.receive({ max: 3, waitSeconds: 1 })
      expect(three.length).toBeGreaterThan(0)
      expect(three.length).toBeLessThanOrEqual(3)
      const seen = new Set(three.map((r) => r.job.cid))
      for (let i = 0; i < 10 && seen.size < 12; i++) {
        const batch = await queue.receive({ max: 50, waitSeconds: 1 })
        expect(batch.length).toBeLessThanOrEqual(10)
        for (const r of batch) seen.add(r.job.cid)
      }
      expect(seen).toEqual(new Set(Array.from({ length: 12 }, (_, i) => job(i).cid)))
    })

    it('hides a received job for the visibility timeout, then delivers it again, counted', async () => {
      const { queue } = await factory()
      await queue.send(job(1))
      const first = await receiveOne(queue)
      await expectEmpty(queue)
      const second = await receiveOne(queue, 3)
      expect(second.id).toBe(first.id)
      expect(second.receipt).not.toBe(first.receipt)
      expect(second.receiveCount).toBe(2)
    })

    it('extend keeps the job hidden past its timeout; release(0) shows it at once', async () => {
      const { queue } = await factory()
      await queue.send(job(1))
      const first = await receiveOne(queue)
      await queue.extend(first.receipt, 5)
      await sleep(SUITE_VISIBILITY_TIMEOUT_SECONDS * 1000 + 300)
      await expectEmpty(queue)
      await queue.release(first.receipt, 0)
      const again = await receiveOne(queue, 0)
      expect(again).toMatchObject({ id: first.id, receiveCount: 2, job: job(1) })
    })

    it('extendMany keeps many jobs hidden past their timeout and names the receipts it could not extend', async () => {
      const { queue } = await factory()
      if (!queue.extendMany) throw new Error('every JobQueue here implements extendMany')
      for (let n = 0; n < 25; n++) await queue.send(job(n))
      const got: ReceivedJob[] = []
      while (got.length < 25) got.push(...(await queue.receive({ max: 10, waitSeconds: 1 })))
      const gone = got[7]!
      await queue.delete(gone.receipt)
      // 25 receipts: three SQS batches, one entry of them no longer in flight.
      const failed = await queue.extendMany(
        got.map((m) => m.receipt),
        5,
      )
      expect(failed).toEqual([gone.receipt])
      await sleep(SUITE_VISIBILITY_TIMEOUT_SECONDS * 1000 + 300)
      await expectEmpty(queue)
      for (const m of got) if (m !== gone) await queue.release(m.receipt, 0)
      const again: ReceivedJob[] = []
      while (again.length < 24) {
        const batch = await queue.receive({ max: 10, waitSeconds: 1 })
        expect(batch.length).toBeGreaterThan(0)
        again.push(...batch)
      }
      expect(new Set(again.map((m) => m.id))).toEqual(new Set(got.filter((m) => m !== gone).map((m) => m.id)))
    })

    it('release with a delay shows the job after the delay, waking a long poll', async () => {
      const { queue } = await factory()
      await queue.send(job(1))
      const first = await receiveOne(queue)
      const released = Date.now()
      await queue.release(first.receipt, 2)
      await expectEmpty(queue)
      // A poll of the longest wait: the job showing wakes it, so it ends before its wait.
      let again: ReceivedJob | undefined
      expect(await firstToEnd(20, async () => (again = await receiveOne(queue, 20)))).toBe('poll')
      expect(again?.id).toBe(first.id)
      // Not before the delay (a lower bound: load only makes it later).
      expect(Date.now() - released).toBeGreaterThanOrEqual(2000)
    })

    it('send with a delay hides the job for the delay', async () => {
      const { queue } = await factory()
      const sent = Date.now()
      await queue.send(job(1), { delaySeconds: 1 })
      await expectEmpty(queue)
      const got = await receiveOne(queue, 4)
      expect(got.job).toEqual(job(1))
      expect(Date.now() - sent).toBeGreaterThanOrEqual(900)
    })

    it(`moves a job to the dead-letter queue after ${SUITE_MAX_RECEIVE_COUNT} receives`, async () => {
      const { queue, deadLetter } = await factory()
      await queue.send(job(7))
      let id: string | undefined
      for (let n = 1; n <= SUITE_MAX_RECEIVE_COUNT; n++) {
        const got = await receiveOne(queue, 1)
        expect(got.receiveCount).toBe(n)
        id ??= got.id
        expect(got.id).toBe(id)
        await queue.release(got.receipt, 0)
      }
      expect(await queue.receive({ max: 10, waitSeconds: 1 })).toEqual([])
      const dead = await receiveOne(deadLetter, 2)
      expect(dead.job).toEqual(job(7))
      expect(dead.id).toBe(id)
    })

    it('a long poll returns as soon as a job arrives', async () => {
      const { queue } = await factory()
      let got: ReceivedJob[] = []
      const ended = firstToEnd(20, async () => {
        got = await queue.receive({ max: 10, waitSeconds: 20 })
      })
      await sleep(300)
      await queue.send(job(1))
      expect(await ended).toBe('poll')
      expect(got.map((r) => r.job)).toEqual([job(1)])
    })

    it('a long poll with nothing to receive returns empty after its wait', async () => {
      const { queue } = await factory()
      const started = Date.now()
      expect(await queue.receive({ max: 1, waitSeconds: 1 })).toEqual([])
      expect(Date.now() - started).toBeGreaterThanOrEqual(900)
    })

    it('aborting a long poll rejects with the abort reason, promptly', async () => {
      const { queue } = await factory()
      const reason = new Error('shutting down')
      const controller = new AbortController()
      let polling: Promise<unknown> | undefined
      const ended = firstToEnd(20, () => {
        polling = queue.receive({ max: 1, waitSeconds: 20, signal: controller.signal })
        return polling
      })
      setTimeout(() => controller.abort(reason), 200)
      expect(await ended).toBe('poll')
      await expect(polling).rejects.toBe(reason)
      await expect(queue.receive({ max: 1, waitSeconds: 1, signal: AbortSignal.abort(reason) })).rejects.toBe(
        reason,
      )
    })

    it('refuses to extend or release a delivery that is no longer in flight', async () => {
      const { queue } = await factory()
      await queue.send(job(1))
      const got = await receiveOne(queue)
      await queue.delete(got.receipt)
      await expect(queue.extend(got.receipt, 10)).rejects.toMatchObject({ name: 'MessageNotInflight' })
      // SQS names a batch entry's refusal otherwise than a single call's (releases go out in batches).
      await expect(queue.release(got.receipt, 0)).rejects.toMatchObject({
        name: expect.stringMatching(/^(MessageNotInflight|ReceiptHandleIsInvalid)$/),
      })

      await queue.send(job(2))
      const second = await receiveOne(queue)
      await queue.release(second.receipt, 0)
      // Visible again: its receipt no longer holds it.
      await expect(queue.extend(second.receipt, 10)).rejects.toMatchObject({ name: 'MessageNotInflight' })
    })
  })
}
