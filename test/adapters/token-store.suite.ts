/**
 * The TokenStore contract (core/ports.ts), run against every implementation.
 */
import { randomBytes } from 'node:crypto'
import { beforeEach, describe, expect, it } from 'vitest'
import type { AccessTokenRecord, TokenStore } from '../../core/ports.ts'

export type TokenStoreFactory = () => Promise<TokenStore>

const hash = () => randomBytes(32).toString('hex')

export function tokenStoreSuite(name: string, factory: TokenStoreFactory): void {
  describe(`TokenStore: ${name}`, () => {
    let store: TokenStore
    beforeEach(async () => {
      store = await factory()
    })

    it('stores, reads and deletes a token record by hash', async () => {
      const record: AccessTokenRecord = { hash: hash(), user: 'alice', created: 1, label: 'laptop' }
      expect(await store.get(record.hash)).toBeUndefined()
      await store.put(record)
      expect(await store.get(record.hash)).toEqual(record)
      expect(await store.delete(record.hash)).toBe(true)
      expect(await store.get(record.hash)).toBeUndefined()
      expect(await store.delete(record.hash)).toBe(false)
    })

    it('never overwrites an existing token', async () => {
      const record: AccessTokenRecord = { hash: hash(), user: 'alice', created: 1 }
      await store.put(record)
      await expect(store.put({ ...record, user: 'mallory' })).rejects.toThrow()
      expect(await store.get(record.hash)).toEqual(record)
    })

    it("lists one user's tokens or all of them, oldest first", async () => {
      const records: AccessTokenRecord[] = [
        { hash: hash(), user: 'alice', created: 30 },
        { hash: hash(), user: 'bob', created: 20, label: 'ci' },
        { hash: hash(), user: 'alice', created: 10 },
      ]
      for (const r of records) await store.put(r)
      expect(await store.list({ user: 'alice' })).toEqual([records[2], records[0]])
      expect(await store.list({ user: 'carol' })).toEqual([])
      expect(await store.list()).toEqual([records[2], records[1], records[0]])
    })
  })
}
