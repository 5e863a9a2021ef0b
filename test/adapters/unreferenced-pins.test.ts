/**
 * The PinStore's unreferenced mark (markUnreferenced, listUnreferenced, clearUnreferenced, deleteUnreferenced,
 * and `request` clearing it), against both implementations.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createDynamoPinStore, decodePin, encodePin } from '../../adapters/dynamodb/pins.ts'
import { pinsTable } from '../../adapters/dynamodb/tables.ts'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import type { CarInfo } from '../../core/pin.ts'
import type { PinStore } from '../../core/ports.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createRandomTable } from './harness.ts'

let services: Services
beforeAll(async () => {
  services = await startServices()
})
afterAll(async () => {
  await services?.stop()
})

const T0 = 1_700_000_000_000
const car: CarInfo = { cid: 'bagcar', bytes: 10, blocks: 1, key: 'bagcar/bagcar.car' }
const cid = () => `bafy${randomBytes(12).toString('hex')}`

function suite(name: string, factory: () => Promise<PinStore>) {
  describe(`PinStore unreferenced mark: ${name}`, () => {
    let store: PinStore
    beforeEach(async () => {
      store = await factory()
    })

    async function pinned(c: string) {
      await store.request(c, [], T0)
      await store.claim(c, 'att', T0 + 1000, T0)
      await store.markPinned(c, 'att', car, T0)
    }

    it('marks, keeps the first mark, and lists marks oldest first in pages', async () => {
      const cs = [cid(), cid(), cid(), cid()]
      for (const c of cs) await pinned(c)
      expect(await store.markUnreferenced(cid(), T0)).toBe(false)
      for (const [i, c] of cs.entries()) expect(await store.markUnreferenced(c, T0 + 100 - i * 10)).toBe(true)
      expect(await store.markUnreferenced(cs[0]!, T0 + 500)).toBe(true)
      expect((await store.get(cs[0]!))!.unreferencedSince).toBe(T0 + 100)
      const page1 = await store.listUnreferenced({ markedBefore: T0 + 90, limit: 2 })
      expect(page1.pins.map((p) => p.cid)).toEqual([cs[3], cs[2]])
      const page2 = await store.listUnreferenced({ markedBefore: T0 + 90, limit: 2, cursor: page1.cursor! })
      expect(page2.pins.map((p) => p.cid)).toEqual([cs[1]])
      expect(page2.cursor).toBeUndefined()
      // Marks within a window (how a worker's watcher finds the content deleted lately).
      const recent = await store.listUnreferenced({ markedSince: T0 + 80, markedBefore: T0 + 100, limit: 10 })
      expect(recent.pins.map((p) => p.cid)).toEqual([cs[2], cs[1], cs[0]])
      const one = await store.listUnreferenced({ markedSince: T0 + 71, markedBefore: T0 + 89, limit: 10 })
      expect(one.pins.map((p) => p.cid)).toEqual([cs[2]])
    })

    it('clears the mark on a new request, or when asked with the same mark', async () => {
      const [a, b] = [cid(), cid()]
      await pinned(a)
      await pinned(b)
      await store.markUnreferenced(a, T0 + 1)
      await store.markUnreferenced(b, T0 + 2)
      const res = await store.request(a, [], T0 + 3)
      expect(res.enqueue).toBe(false)
      expect(res.pin.status).toBe('pinned')
      expect(res.pin.unreferencedSince).toBeUndefined()
      expect(await store.clearUnreferenced(b, T0 + 99)).toBe(false)
      expect(await store.clearUnreferenced(b, T0 + 2)).toBe(true)
      expect((await store.listUnreferenced({ markedBefore: T0 + 10, limit: 10 })).pins).toEqual([])
    })

    it('deletes only pinned or failed pins still marked with the same time', async () => {
      const [a, q] = [cid(), cid()]
      await pinned(a)
      await store.request(q, [], T0)
      await store.markUnreferenced(a, T0 + 1)
      await store.markUnreferenced(q, T0 + 1)
      expect(await store.deleteUnreferenced(a, T0 + 2)).toBeUndefined()
      expect(await store.deleteUnreferenced(q, T0 + 1)).toBeUndefined()
      const deleted = await store.deleteUnreferenced(a, T0 + 1)
      expect(deleted).toMatchObject({ cid: a, status: 'pinned', car, unreferencedSince: T0 + 1 })
      expect(await store.get(a)).toBeUndefined()
      expect(await store.get(q)).toBeDefined()
    })
  })
}

suite('memory', async () => createMemoryPinStore())
suite('DynamoDB (dynalite)', async () => {
  const tableName = await createRandomTable(services, pinsTable)
  return createDynamoPinStore({ client: services.clients.dynamodb, tableName })
})

it('encodes the mark with the sparse index key', () => {
  const pin = {
    cid: 'bafy',
    status: 'pinned' as const,
    created: 1,
    updated: 1,
    attempts: 1,
    origins: [],
    unreferencedSince: 7,
  }
  const item = encodePin(pin)
  expect(item.unreferenced).toEqual({ S: 'true' })
  expect(item.unreferencedSince).toEqual({ N: '7' })
  expect(decodePin(item)).toEqual(pin)
})
