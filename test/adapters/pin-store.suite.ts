/**
 * The PinStore contract (core/ports.ts), run against every implementation.
 */
import { randomBytes } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import { InvalidInputError } from '../../core/errors.ts'
import { CANCELLED_ERROR, type CarInfo, MAX_ORIGINS, type Pin, type Progress } from '../../core/pin.ts'
import type { PinStore } from '../../core/ports.ts'

/** A fresh, empty store per test. */
export type PinStoreFactory = () => Promise<PinStore>

const T0 = 1_700_000_000_000

function cid(): string {
  return `bafy${randomBytes(16).toString('hex')}`
}

const car: CarInfo = { cid: 'bagcar', bytes: 1234, blocks: 7, key: 'bagcar/bagcar.car' }

export function pinStoreSuite(name: string, factory: PinStoreFactory): void {
  describe(`PinStore: ${name}`, () => {
    let store: PinStore
    beforeEach(async () => {
      store = await factory()
    })

    describe('get / getMany', () => {
      it('returns undefined and an empty map for unknown pins', async () => {
        expect(await store.get(cid())).toBeUndefined()
        expect((await store.getMany([cid(), cid()])).size).toBe(0)
        expect((await store.getMany([])).size).toBe(0)
      })

      it('gets many, in chunks, ignoring unknown and repeated cids', async () => {
        const known = Array.from({ length: 130 }, cid)
        await Promise.all(known.map((c, i) => store.request(c, [`/ip4/1.2.3.4/tcp/${i}`], T0 + i)))
        const asked = [...known, ...Array.from({ length: 40 }, cid), known[0]!, known[129]!]
        const got = await store.getMany(asked)
        expect(got.size).toBe(130)
        for (const [i, c] of known.entries()) {
          expect(got.get(c)).toMatchObject({ cid: c, status: 'queued', origins: [`/ip4/1.2.3.4/tcp/${i}`] })
        }
      })

      it('returns copies the caller cannot change the store through', async () => {
        const c = cid()
        const { pin } = await store.request(c, ['/a'], T0)
        pin.origins.push('/mutated')
        pin.status = 'pinned'
        const got = await store.get(c)
        expect(got).toMatchObject({ status: 'queued', origins: ['/a'] })
        got!.origins.push('/again')
        expect((await store.get(c))!.origins).toEqual(['/a'])
      })
    })

    describe('request', () => {
      it('creates the pin as queued and asks for a job', async () => {
        const c = cid()
        const res = await store.request(c, ['/a', '/b', '/a'], T0)
        const expected: Pin = {
          cid: c,
          status: 'queued',
          created: T0,
          updated: T0,
          attempts: 0,
          origins: ['/a', '/b'],
        }
        expect(res).toEqual({ pin: expected, enqueue: true })
        expect(res.requeued).toBeUndefined() // new content: nothing failed to bring back
        expect(await store.get(c)).toEqual(expected)
      })

      it('merges new origins into a queued pin, newest first, at most 20, without a job', async () => {
        const c = cid()
        await store.request(c, ['/a', '/b'], T0)
        const res = await store.request(c, ['/c', '/a'], T0 + 5)
        expect(res.enqueue).toBe(false)
        expect(res.pin).toMatchObject({
          status: 'queued',
          origins: ['/c', '/a', '/b'],
          created: T0,
          updated: T0 + 5,
        })
        const many = Array.from({ length: 30 }, (_, i) => `/m/${i}`)
        const capped = await store.request(c, many, T0 + 6)
        expect(capped.pin.origins).toEqual(many.slice(0, MAX_ORIGINS))
        expect(await store.get(c)).toEqual(capped.pin)
      })

      it('leaves the pin untouched when nothing is new', async () => {
        const c = cid()
        const first = await store.request(c, ['/a'], T0)
        const again = await store.request(c, ['/a'], T0 + 10)
        const none = await store.request(c, [], T0 + 11)
        expect(again).toEqual({ pin: first.pin, enqueue: false })
        expect(none).toEqual({ pin: first.pin, enqueue: false })
        expect(await store.get(c)).toEqual(first.pin)
      })

      it('re-queues a failed pin with a fresh count of attempts, keeping its last error', async () => {
        const c = cid()
        await store.request(c, ['/a'], T0)
        await store.claim(c, 'att1', T0 + 1000, T0 + 1)
        expect(
          await store.settle(c, 'att1', { status: 'failed', error: 'FETCH_STALLED: no data' }, T0 + 2),
        ).toBe(true)
        const res = await store.request(c, ['/b'], T0 + 3)
        expect(res.enqueue).toBe(true)
        expect(res.pin).toMatchObject({
          status: 'queued',
          error: 'FETCH_STALLED: no data',
          // A new request starts a new round: the validator and the reconciler bound attempts per round.
          attempts: 0,
          origins: ['/b', '/a'],
          updated: T0 + 3,
        })
        expect(await store.get(c)).toEqual(res.pin)
        // Re-requesting the now-queued pin asks for no second job.
        expect((await store.request(c, ['/b'], T0 + 4)).enqueue).toBe(false)
      })

      it('does not re-queue pinning or pinned pins', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0 + 1)
        const pinning = await store.request(c, ['/x'], T0 + 2)
        expect(pinning).toMatchObject({
          enqueue: false,
          pin: { status: 'pinning', attemptId: 'att1', origins: ['/x'] },
        })
        await store.markPinned(c, 'att1', car, T0 + 3)
        const pinned = await store.request(c, ['/y'], T0 + 4)
        expect(pinned).toMatchObject({
          enqueue: false,
          pin: { status: 'pinned', car, origins: ['/y', '/x'] },
        })
      })

      it('asks for exactly one job when the same new pin is requested concurrently', async () => {
        const c = cid()
        const results = await Promise.all(
          Array.from({ length: 8 }, (_, i) => store.request(c, [`/o/${i}`], T0)),
        )
        expect(results.filter((r) => r.enqueue)).toHaveLength(1)
        const pin = await store.get(c)
        expect(pin?.status).toBe('queued')
        expect(new Set(pin?.origins)).toEqual(new Set(Array.from({ length: 8 }, (_, i) => `/o/${i}`)))
      })
    })

    describe('claim', () => {
      it('takes a queued pin: pinning, lease, attempt counted', async () => {
        const c = cid()
        await store.request(c, ['/a'], T0)
        const res = await store.claim(c, 'att1', T0 + 60_000, T0 + 10)
        const expected: Pin = {
          cid: c,
          status: 'pinning',
          created: T0,
          updated: T0 + 10,
          attempts: 1,
          origins: ['/a'],
          attemptId: 'att1',
          leaseExpires: T0 + 60_000,
        }
        expect(res).toEqual({ kind: 'claimed', pin: expected })
        expect(await store.get(c)).toEqual(expected)
      })

      it("writes the attempt's first progress with the claim, and clears a former attempt's without one", async () => {
        const c = cid()
        await store.request(c, ['/a'], T0)
        const first = {
          bytes: 0,
          blocks: 0,
          phase: 'searching' as const,
          searchStarted: T0 + 10,
          dialled: ['/a'],
        }
        const res = await store.claim(c, 'att1', T0 + 1000, T0 + 10, first)
        expect(res).toMatchObject({ kind: 'claimed', pin: { attemptId: 'att1', progress: first } })
        expect((await store.get(c))?.progress).toEqual(first)
        // The lease runs out: the next claim, without progress, leaves none of the former attempt's.
        const taken = await store.claim(c, 'att2', T0 + 5000, T0 + 1001)
        expect(taken.kind).toBe('claimed')
        expect((await store.get(c))?.progress).toBeUndefined()
      })

      it('is busy while another attempt holds a live lease, and takes over an expired one', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.heartbeat(c, 'att1', T0 + 1000, { bytes: 10, blocks: 1 }, T0 + 1)

        const busy = await store.claim(c, 'att2', T0 + 5000, T0 + 999)
        expect(busy.kind).toBe('busy')
        expect(busy.pin).toMatchObject({ attemptId: 'att1', leaseExpires: T0 + 1000, attempts: 1 })
        // A lease expiring exactly now is still live.
        expect((await store.claim(c, 'att2', T0 + 5000, T0 + 1000)).kind).toBe('busy')

        const taken = await store.claim(c, 'att2', T0 + 5000, T0 + 1001)
        expect(taken.kind).toBe('claimed')
        expect(taken.pin).toMatchObject({
          status: 'pinning',
          attemptId: 'att2',
          leaseExpires: T0 + 5000,
          attempts: 2,
        })
        expect(taken.pin?.progress).toBeUndefined()
        expect(await store.get(c)).toEqual(taken.pin)
      })

      it('takes a failed pin', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.settle(c, 'att1', { status: 'failed', error: 'X: y' }, T0 + 1)
        const res = await store.claim(c, 'att2', T0 + 2000, T0 + 2)
        expect(res).toMatchObject({
          kind: 'claimed',
          pin: { status: 'pinning', attemptId: 'att2', attempts: 2 },
        })
      })

      it('reports a pinned pin without changing it', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.markPinned(c, 'att1', car, T0 + 1)
        const before = await store.get(c)
        const res = await store.claim(c, 'att2', T0 + 5000, T0 + 2)
        expect(res).toEqual({ kind: 'pinned', pin: before })
        expect(await store.get(c)).toEqual(before)
      })

      it('never creates a record: a job for content no request wants is missing', async () => {
        const c = cid()
        expect(await store.claim(c, 'att1', T0 + 1000, T0)).toEqual({ kind: 'missing' })
        expect(await store.get(c)).toBeUndefined()
      })

      it('does not take content no request wants: it is failed as cancelled, and a new request queues it', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.markUnreferenced(c, T0 + 1)
        const res = await store.claim(c, 'att1', T0 + 1000, T0 + 2)
        expect(res).toMatchObject({ kind: 'cancelled', pin: { status: 'failed', error: CANCELLED_ERROR } })
        expect(await store.get(c)).toMatchObject({ status: 'failed', error: CANCELLED_ERROR, attempts: 0 })
        // A duplicate delivery finds it cancelled too; a new request clears the mark and asks for a job.
        expect((await store.claim(c, 'att2', T0 + 1000, T0 + 3)).kind).toBe('cancelled')
        const again = await store.request(c, [], T0 + 4)
        expect(again).toMatchObject({ enqueue: true, requeued: true, pin: { status: 'queued' } })
        expect(again.pin.unreferencedSince).toBeUndefined()
        expect((await store.claim(c, 'att3', T0 + 1000, T0 + 5)).kind).toBe('claimed')
      })

      it('takes content wanted again before its job came', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.markUnreferenced(c, T0 + 1)
        expect(await store.request(c, [], T0 + 2)).toMatchObject({
          enqueue: false,
          pin: { status: 'queued' },
        })
        expect((await store.claim(c, 'att1', T0 + 1000, T0 + 3)).kind).toBe('claimed')
      })

      it('still reports pinned content as pinned when nobody wants it (the sweep deletes it later)', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.markPinned(c, 'att1', car, T0 + 1)
        await store.markUnreferenced(c, T0 + 2)
        expect((await store.claim(c, 'att2', T0 + 1000, T0 + 3)).kind).toBe('pinned')
        expect(await store.get(c)).toMatchObject({ status: 'pinned', car })
      })

      it('lets exactly one of concurrent attempts win', async () => {
        const c = cid()
        await store.request(c, [], T0)
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) => store.claim(c, `att${i}`, T0 + 10_000, T0 + 1)),
        )
        const winners = results.filter((r) => r.kind === 'claimed')
        expect(winners).toHaveLength(1)
        expect(results.filter((r) => r.kind === 'busy')).toHaveLength(5)
        expect(await store.get(c)).toMatchObject({ attempts: 1, attemptId: winners[0]!.pin.attemptId })
      })
    })

    describe('heartbeat', () => {
      it('renews the lease and records progress for the holder only', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        expect(await store.heartbeat(c, 'att1', T0 + 2000, { bytes: 100, blocks: 3 }, T0 + 500)).toBe(true)
        expect(await store.get(c)).toMatchObject({
          status: 'pinning',
          leaseExpires: T0 + 2000,
          progress: { bytes: 100, blocks: 3 },
          updated: T0 + 500,
        })
        expect(await store.heartbeat(c, 'other', T0 + 9000, { bytes: 1, blocks: 1 }, T0 + 600)).toBe(false)
        // What the attempt is doing: searching, then transferring.
        const searching: Progress = {
          bytes: 0,
          blocks: 0,
          phase: 'searching',
          searchStarted: T0,
          dialled: ['/a', '/b'],
        }
        expect(await store.heartbeat(c, 'att1', T0 + 2000, searching, T0 + 700)).toBe(true)
        expect((await store.get(c))?.progress).toEqual(searching)
        const transferring: Progress = { ...searching, bytes: 100, blocks: 3, phase: 'transferring' }
        expect(await store.heartbeat(c, 'att1', T0 + 2000, transferring, T0 + 800)).toBe(true)
        expect((await store.get(c))?.progress).toEqual(transferring)
        expect(await store.heartbeat(c, 'att1', T0 + 2000, { bytes: 100, blocks: 3 }, T0 + 900)).toBe(true)
        expect(await store.get(c)).toMatchObject({
          leaseExpires: T0 + 2000,
          progress: { bytes: 100, blocks: 3 },
        })
      })

      it('fails once the attempt lost the pin (settled, taken over, pinned, unknown)', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.settle(c, 'att1', { status: 'queued', error: 'E: retry' }, T0 + 1)
        expect(await store.heartbeat(c, 'att1', T0 + 2000, { bytes: 1, blocks: 1 }, T0 + 2)).toBe(false)

        await store.claim(c, 'att2', T0 + 1000, T0 + 3)
        await store.claim(c, 'att3', T0 + 9000, T0 + 1001)
        expect(await store.heartbeat(c, 'att2', T0 + 9000, { bytes: 1, blocks: 1 }, T0 + 1002)).toBe(false)

        await store.markPinned(c, 'att3', car, T0 + 1003)
        expect(await store.heartbeat(c, 'att3', T0 + 9000, { bytes: 1, blocks: 1 }, T0 + 1004)).toBe(false)
        expect(await store.heartbeat(cid(), 'att3', T0 + 9000, { bytes: 1, blocks: 1 }, T0)).toBe(false)
      })
    })

    describe('cancel', () => {
      it('fails the running attempt as cancelled while nobody wants the content', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        // Still wanted: nothing to cancel.
        expect(await store.cancel(c, 'att1', T0 + 1)).toBe(false)
        await store.markUnreferenced(c, T0 + 2)
        // Only the holder's attempt.
        expect(await store.cancel(c, 'other', T0 + 3)).toBe(false)
        expect(await store.cancel(c, 'att1', T0 + 4)).toBe(true)
        const pin = await store.get(c)
        expect(pin).toMatchObject({ status: 'failed', error: CANCELLED_ERROR, updated: T0 + 4 })
        expect(pin?.leaseExpires).toBeUndefined()
        expect(pin?.progress).toBeUndefined()
        expect(await store.cancel(c, 'att1', T0 + 5)).toBe(false)
      })

      it('does not cancel once a new request wants the content again', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.markUnreferenced(c, T0 + 1)
        await store.request(c, [], T0 + 2)
        expect(await store.cancel(c, 'att1', T0 + 3)).toBe(false)
        expect(await store.get(c)).toMatchObject({ status: 'pinning', attemptId: 'att1' })
      })
    })

    describe('settle', () => {
      it('ends the holding attempt: queued or failed with the error, lease and progress removed', async () => {
        const c = cid()
        await store.request(c, ['/a'], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.heartbeat(c, 'att1', T0 + 1000, { bytes: 5, blocks: 1 }, T0 + 1)
        expect(await store.settle(c, 'att1', { status: 'queued', error: 'FETCH_STALLED: x' }, T0 + 2)).toBe(
          true,
        )
        const pin = await store.get(c)
        expect(pin).toMatchObject({
          status: 'queued',
          error: 'FETCH_STALLED: x',
          updated: T0 + 2,
          attempts: 1,
        })
        expect(pin?.leaseExpires).toBeUndefined()
        expect(pin?.progress).toBeUndefined()
        // The attempt no longer holds it: a second settle is refused.
        expect(await store.settle(c, 'att1', { status: 'failed', error: 'X: y' }, T0 + 3)).toBe(false)
        expect((await store.get(c))?.status).toBe('queued')
      })

      it('refuses an attempt that does not hold the pin', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        expect(await store.settle(c, 'att0', { status: 'failed', error: 'X: y' }, T0 + 1)).toBe(false)
        expect(await store.get(c)).toMatchObject({ status: 'pinning', attemptId: 'att1' })
        expect(await store.settle(cid(), 'att1', { status: 'failed', error: 'X: y' }, T0 + 1)).toBe(false)
      })

      it('never unpins, even for the attempt that produced the CAR', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.markPinned(c, 'att1', car, T0 + 1)
        expect(await store.settle(c, 'att1', { status: 'failed', error: 'X: y' }, T0 + 2)).toBe(false)
        expect(await store.settle(c, undefined, { status: 'failed', error: 'X: y' }, T0 + 2)).toBe(false)
        expect(await store.get(c)).toMatchObject({ status: 'pinned', car })
      })

      it('without an attempt: settles any pin that is not pinned, and no unknown one', async () => {
        const queued = cid()
        await store.request(queued, [], T0)
        expect(
          await store.settle(queued, undefined, { status: 'failed', error: 'DLQ: gave up' }, T0 + 1),
        ).toBe(true)
        expect(await store.get(queued)).toMatchObject({
          status: 'failed',
          error: 'DLQ: gave up',
          updated: T0 + 1,
        })

        const pinning = cid()
        await store.request(pinning, [], T0)
        await store.claim(pinning, 'att1', T0 + 1000, T0)
        expect(
          await store.settle(pinning, undefined, { status: 'failed', error: 'DLQ: gave up' }, T0 + 1),
        ).toBe(true)
        const p = await store.get(pinning)
        expect(p).toMatchObject({ status: 'failed' })
        expect(p?.leaseExpires).toBeUndefined()

        const unknown = cid()
        expect(await store.settle(unknown, undefined, { status: 'failed', error: 'X: y' }, T0)).toBe(false)
        expect(await store.get(unknown)).toBeUndefined()
      })
    })

    describe('settleIfUnchanged', () => {
      it('settles a pin still as read, ending an expired hold', async () => {
        const c = cid()
        await store.request(c, ['/a'], T0)
        await store.claim(c, 'att1', T0 + 1000, T0 + 1)
        await store.heartbeat(c, 'att1', T0 + 1000, { bytes: 5, blocks: 1 }, T0 + 2)
        const seen = (await store.get(c))!
        expect(
          await store.settleIfUnchanged(c, seen, { status: 'queued', error: 'RECONCILED: x' }, T0 + 5000),
        ).toBe(true)
        const pin = await store.get(c)
        expect(pin).toMatchObject({
          status: 'queued',
          error: 'RECONCILED: x',
          updated: T0 + 5000,
          attempts: 1,
        })
        expect(pin?.leaseExpires).toBeUndefined()
        expect(pin?.progress).toBeUndefined()
        // What was read is stale now.
        expect(await store.settleIfUnchanged(c, seen, { status: 'failed', error: 'X: y' }, T0 + 6000)).toBe(
          false,
        )
        expect((await store.get(c))?.status).toBe('queued')
      })

      it('leaves a pin that changed since it was read, a pinned pin and an unknown one', async () => {
        const c = cid()
        await store.request(c, [], T0)
        const seen = (await store.get(c))!
        await store.claim(c, 'att1', T0 + 1000, T0 + 1)
        expect(await store.settleIfUnchanged(c, seen, { status: 'queued', error: 'X: y' }, T0 + 2)).toBe(
          false,
        )
        expect(await store.get(c)).toMatchObject({ status: 'pinning', attemptId: 'att1' })
        await store.markPinned(c, 'att1', car, T0 + 3)
        const pinned = (await store.get(c))!
        expect(await store.settleIfUnchanged(c, pinned, { status: 'queued', error: 'X: y' }, T0 + 4)).toBe(
          false,
        )
        expect(await store.settleIfUnchanged(cid(), seen, { status: 'queued', error: 'X: y' }, T0 + 4)).toBe(
          false,
        )
      })

      it('notices an attempt that took the pin within the same millisecond', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 - 1, T0)
        const seen = (await store.get(c))!
        await store.claim(c, 'att2', T0 + 1000, T0)
        expect(await store.settleIfUnchanged(c, seen, { status: 'queued', error: 'X: y' }, T0)).toBe(false)
        expect(await store.get(c)).toMatchObject({ status: 'pinning', attemptId: 'att2', attempts: 2 })
      })
    })

    describe('countByStatus', () => {
      it('counts the pins of a status, up to a bound', async () => {
        for (let i = 0; i < 5; i++) await store.request(cid(), [], T0 + i)
        const other = cid()
        await store.request(other, [], T0)
        await store.claim(other, 'att', T0 + 1000, T0 + 1)
        expect(await store.countByStatus('queued', { max: 100 })).toBe(5)
        expect(await store.countByStatus('queued', { max: 3 })).toBe(3)
        expect(await store.countByStatus('pinning', { max: 100 })).toBe(1)
        expect(await store.countByStatus('failed', { max: 100 })).toBe(0)
      })
    })

    describe('markPinned', () => {
      it('records the CAR and clears error, lease and progress', async () => {
        const c = cid()
        await store.request(c, ['/a'], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.settle(c, 'att1', { status: 'queued', error: 'E: first failed' }, T0 + 1)
        await store.claim(c, 'att2', T0 + 2000, T0 + 2)
        await store.heartbeat(c, 'att2', T0 + 2000, { bytes: 1, blocks: 1 }, T0 + 3)
        expect(await store.markPinned(c, 'att2', car, T0 + 4)).toBe(true)
        const expected: Pin = {
          cid: c,
          status: 'pinned',
          created: T0,
          updated: T0 + 4,
          attempts: 2,
          origins: ['/a'],
          attemptId: 'att2',
          car,
        }
        expect(await store.get(c)).toEqual(expected)
      })

      it('accepts any attempt but only once', async () => {
        const c = cid()
        await store.request(c, [], T0)
        await store.claim(c, 'att2', T0 + 1000, T0)
        // An older attempt's CAR validated after all: still the content.
        expect(await store.markPinned(c, 'att1', car, T0 + 1)).toBe(true)
        expect(await store.markPinned(c, 'att2', { ...car, cid: 'other' }, T0 + 2)).toBe(false)
        expect(await store.get(c)).toMatchObject({
          status: 'pinned',
          attemptId: 'att1',
          car,
          updated: T0 + 1,
        })
      })

      it('refuses content without a record: a late validation never re-creates a swept pin', async () => {
        const c = cid()
        expect(await store.markPinned(c, 'att1', car, T0)).toBe(false)
        expect(await store.get(c)).toBeUndefined()
        // Requested, failed, no longer wanted and swept: a CAR of that attempt validated late finds no record.
        await store.request(c, [], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.settle(c, 'att1', { status: 'failed', error: 'E: gave up' }, T0 + 1)
        await store.markUnreferenced(c, T0 + 2)
        expect(await store.deleteUnreferenced(c, T0 + 2)).toMatchObject({ cid: c, status: 'failed' })
        expect(await store.markPinned(c, 'att1', car, T0 + 3)).toBe(false)
        expect(await store.get(c)).toBeUndefined()
      })
    })

    describe('requeueLostCar', () => {
      it('sets a pin whose CAR is gone queued, attempts reset and without the CAR, only if it still has that CAR', async () => {
        const c = cid()
        await store.request(c, ['/a'], T0)
        await store.claim(c, 'att1', T0 + 1000, T0)
        await store.settle(c, 'att1', { status: 'queued', error: 'E: first failed' }, T0 + 1)
        await store.claim(c, 'att2', T0 + 2000, T0 + 2)
        await store.markPinned(c, 'att2', car, T0 + 3)
        expect(await store.requeueLostCar(c, 'other/key.car', 'CAR_LOST: x', T0 + 4)).toBe(false)
        expect(await store.requeueLostCar(cid(), car.key, 'CAR_LOST: x', T0 + 4)).toBe(false)
        expect(await store.requeueLostCar(c, car.key, 'CAR_LOST: x', T0 + 5)).toBe(true)
        const expected: Pin = {
          cid: c,
          status: 'queued',
          created: T0,
          updated: T0 + 5,
          attempts: 0,
          origins: ['/a'],
          error: 'CAR_LOST: x',
        }
        expect(await store.get(c)).toEqual(expected)
        // Not pinned any more: nothing to do a second time, and the next attempt claims it.
        expect(await store.requeueLostCar(c, car.key, 'CAR_LOST: x', T0 + 6)).toBe(false)
        expect((await store.claim(c, 'att3', T0 + 3000, T0 + 7)).kind).toBe('claimed')
      })
    })

    describe('listByStatus', () => {
      it('pages newest first with a cursor absent on the last page', async () => {
        const queued = Array.from({ length: 5 }, cid)
        for (const [i, c] of queued.entries()) await store.request(c, [], T0 + i * 10)
        // Noise in other states.
        const other = cid()
        await store.request(other, [], T0 + 1)
        await store.claim(other, 'att', T0 + 1000, T0 + 100)

        const newestFirst = [...queued].reverse()
        const seen: string[] = []
        let cursor: string | undefined
        let pages = 0
        do {
          const page = await store.listByStatus('queued', { limit: 2, cursor })
          pages++
          expect(page.pins.length).toBeGreaterThan(0)
          expect(page.pins.every((p) => p.status === 'queued')).toBe(true)
          seen.push(...page.pins.map((p) => p.cid))
          cursor = page.cursor
        } while (cursor)
        expect(seen).toEqual(newestFirst)
        expect(pages).toBe(3)

        const pinning = await store.listByStatus('pinning', { limit: 10 })
        expect(pinning.pins.map((p) => p.cid)).toEqual([other])
        expect(pinning.cursor).toBeUndefined()
        expect(await store.listByStatus('pinned', { limit: 10 })).toEqual({ pins: [] })
      })

      it('gives no cursor when the last page is exactly full', async () => {
        for (let i = 0; i < 4; i++) await store.request(cid(), [], T0 + i)
        const first = await store.listByStatus('queued', { limit: 2 })
        expect(first.cursor).toBeDefined()
        const second = await store.listByStatus('queued', { limit: 2, cursor: first.cursor })
        expect(second.pins).toHaveLength(2)
        expect(second.cursor).toBeUndefined()
        const all = await store.listByStatus('queued', { limit: 4 })
        expect(all.pins).toHaveLength(4)
        expect(all.cursor).toBeUndefined()
      })

      it('follows pins that move between statuses', async () => {
        const a = cid()
        const b = cid()
        await store.request(a, [], T0)
        await store.request(b, [], T0 + 1)
        await store.claim(a, 'att', T0 + 1000, T0 + 2)
        expect((await store.listByStatus('queued', { limit: 10 })).pins.map((p) => p.cid)).toEqual([b])
        expect((await store.listByStatus('pinning', { limit: 10 })).pins.map((p) => p.cid)).toEqual([a])
      })

      it('pages oldest first, and only pins updated before a time', async () => {
        const queued = Array.from({ length: 5 }, cid)
        for (const [i, c] of queued.entries()) await store.request(c, [], T0 + i * 10)
        const seen: string[] = []
        let cursor: string | undefined
        do {
          const page = await store.listByStatus('queued', {
            limit: 2,
            order: 'oldest',
            updatedBefore: T0 + 40,
            cursor,
          })
          seen.push(...page.pins.map((p) => p.cid))
          cursor = page.cursor
        } while (cursor)
        expect(seen).toEqual(queued.slice(0, 4))
        const newest = await store.listByStatus('queued', { limit: 10, updatedBefore: T0 + 20 })
        expect(newest.pins.map((p) => p.cid)).toEqual([queued[1], queued[0]])
      })

      it('rejects cursors it did not make, or made for another status', async () => {
        for (let i = 0; i < 3; i++) await store.request(cid(), [], T0 + i)
        const page = await store.listByStatus('queued', { limit: 1 })
        await expect(store.listByStatus('failed', { limit: 1, cursor: page.cursor })).rejects.toBeInstanceOf(
          InvalidInputError,
        )
        await expect(store.listByStatus('queued', { limit: 1, cursor: 'garbage!' })).rejects.toMatchObject({
          code: 'INVALID_CURSOR',
        })
        await expect(store.listByStatus('queued', { limit: 0 })).rejects.toBeInstanceOf(InvalidInputError)
      })
    })
  })
}
