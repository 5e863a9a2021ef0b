/**
 * The ObjectStore contract (core/ports.ts) with S3 semantics, run against every implementation.
 */
import { createHash } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { CopySourceChangedError } from '../../core/errors.ts'
import type { ObjectStore } from '../../core/ports.ts'
import { collect, sleep } from './harness.ts'

const MiB = 1024 * 1024

export interface ObjectStoreFixture {
  /** An empty store. */
  store: ObjectStore
  /** Another empty store of the same backend (another bucket), for copies. */
  other: ObjectStore
  /** The store's bucket seen by a store that copies part by part (UploadPartCopy) in 5 MiB ranges. */
  partwiseCopier?: ObjectStore
}

export type ObjectStoreFactory = () => Promise<ObjectStoreFixture>

/** Deterministic pseudo-random bytes in odd-sized chunks, hashed as they are produced. */
function generate(total: number, chunk = 64 * 1024 + 7) {
  const hash = createHash('sha256')
  let state = 0x12345678
  async function* body(): AsyncGenerator<Uint8Array> {
    for (let sent = 0; sent < total; ) {
      const n = Math.min(chunk, total - sent)
      const bytes = new Uint8Array(n)
      for (let i = 0; i < n; i += 4) {
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0
        bytes[i] = state & 0xff
        bytes[i + 1] = (state >>> 8) & 0xff
        bytes[i + 2] = (state >>> 16) & 0xff
        bytes[i + 3] = (state >>> 24) & 0xff
      }
      hash.update(bytes)
      sent += n
      yield bytes
    }
  }
  return { body: body(), digest: () => hash.digest('hex') }
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

async function read(
  body: AsyncIterable<Uint8Array>,
): Promise<{ size: number; sha256: string; bytes: Buffer }> {
  const chunks: Uint8Array[] = []
  for await (const c of body) chunks.push(c)
  const bytes = Buffer.concat(chunks)
  return { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex'), bytes }
}

/** A body that yields `bytes` of data, then stalls for good (or fails, when `fail` is given). */
function stalling(bytes: number, fail?: Error) {
  async function* body(): AsyncGenerator<Uint8Array> {
    for (let sent = 0; sent < bytes; sent += MiB) yield new Uint8Array(Math.min(MiB, bytes - sent)).fill(7)
    if (fail) throw fail
    await new Promise(() => {})
  }
  return { body: body() }
}

const text = (s: string) => new TextEncoder().encode(s)

export function objectStoreSuite(name: string, factory: ObjectStoreFactory): void {
  describe.concurrent(`ObjectStore: ${name}`, () => {
    it('puts, heads, gets, lists and deletes a small object, with metadata', async () => {
      const { store } = await factory()
      const res = await store.put('bafyx/att1.car', once(text('hello car')), {
        metadata: { cid: 'bafyx', 'attempt-id': 'att1', Mixed: 'Case' },
      })
      expect(res).toEqual({ bytes: 9 })
      const metadata = { cid: 'bafyx', 'attempt-id': 'att1', mixed: 'Case' }
      expect(await store.head('bafyx/att1.car')).toEqual({ size: 9, metadata })
      const got = await store.get('bafyx/att1.car')
      expect(got).toMatchObject({ size: 9, metadata })
      expect((await read(got!.body)).bytes.toString()).toBe('hello car')
      expect(await collect(store.list())).toEqual([{ key: 'bafyx/att1.car', size: 9 }])
      await store.delete('bafyx/att1.car')
      expect(await store.head('bafyx/att1.car')).toBeUndefined()
      expect(await collect(store.list())).toEqual([])
    })

    it('answers undefined for missing objects and deletes them without error', async () => {
      const { store } = await factory()
      expect(await store.get('nope')).toBeUndefined()
      expect(await store.head('nope')).toBeUndefined()
      await store.delete('nope')
    })

    it('stores an empty body', async () => {
      const { store } = await factory()
      expect(await store.put('empty', (async function* () {})())).toEqual({ bytes: 0 })
      expect(await store.head('empty')).toEqual({ size: 0, metadata: {} })
      expect((await read((await store.get('empty'))!.body)).size).toBe(0)
    })

    it('streams a ~20 MiB body in 5 MiB parts, byte-exact', async () => {
      const { store } = await factory()
      const total = 20 * MiB + 12_345
      const gen = generate(total)
      const res = await store.put('big.car', gen.body, { partSize: 5 * MiB })
      expect(res).toEqual({ bytes: total })
      const digest = gen.digest()
      expect(await store.head('big.car')).toMatchObject({ size: total })
      const got = await store.get('big.car')
      const back = await read(got!.body)
      expect(back.size).toBe(total)
      expect(back.sha256).toBe(digest)
    })

    it('replaces an object on a second put', async () => {
      const { store } = await factory()
      await store.put('k', once(text('first')))
      await store.put('k', once(text('second!')), { metadata: { v: '2' } })
      expect(await store.head('k')).toEqual({ size: 7, metadata: { v: '2' } })
    })

    it('an upload aborted mid-stream rejects with the reason and leaves nothing', async () => {
      const { store } = await factory()
      const reason = new Error('stop')
      const controller = new AbortController()
      // 12 MiB then a stall: two 5 MiB parts are on their way when the abort comes.
      const source = stalling(12 * MiB)
      const putting = store.put('aborted/a.car', source.body, {
        partSize: 5 * MiB,
        signal: controller.signal,
      })
      await sleep(300)
      controller.abort(reason)
      await expect(putting).rejects.toBe(reason)
      expect(await store.head('aborted/a.car')).toBeUndefined()
      expect(await collect(store.list('aborted/'))).toEqual([])
    })

    it('an upload whose body fails rejects with its error and leaves nothing', async () => {
      const { store } = await factory()
      const failure = new Error('source broke')
      const source = stalling(11 * MiB, failure)
      await expect(store.put('failed/a.car', source.body, { partSize: 5 * MiB })).rejects.toBe(failure)
      expect(await store.head('failed/a.car')).toBeUndefined()
      const small = stalling(10, failure)
      await expect(store.put('failed/b.car', small.body)).rejects.toBe(failure)
      expect(await collect(store.list('failed/'))).toEqual([])
    })

    it('a failed upload does not replace the object already there', async () => {
      const { store } = await factory()
      await store.put('keep', once(text('original')))
      const source = stalling(6 * MiB, new Error('broke'))
      await expect(store.put('keep', source.body, { partSize: 5 * MiB })).rejects.toThrow('broke')
      const got = await store.get('keep')
      expect((await read(got!.body)).bytes.toString()).toBe('original')
    })

    it('an upload with an already aborted signal sends nothing', async () => {
      const { store } = await factory()
      const reason = new Error('early')
      await expect(store.put('early', once(text('x')), { signal: AbortSignal.abort(reason) })).rejects.toBe(
        reason,
      )
      expect(await store.head('early')).toBeUndefined()
    })

    it('lists by prefix, in key order, with sizes', async () => {
      const { store } = await factory()
      const keys = ['b/2.car', 'a/1.car', 'b/1.car', 'c.car', 'b/10.car']
      await Promise.all(keys.map((k, i) => store.put(k, once(new Uint8Array(i + 1)))))
      expect(await collect(store.list('b/'))).toEqual([
        { key: 'b/1.car', size: 3 },
        { key: 'b/10.car', size: 5 },
        { key: 'b/2.car', size: 1 },
      ])
      expect((await collect(store.list())).map((o) => o.key)).toEqual([...keys].sort())
      expect(await collect(store.list('zzz'))).toEqual([])
    })

    it('copies to another bucket, server side, with the metadata', async () => {
      const { store, other } = await factory()
      await store.put('src/a.car', once(text('car bytes')), { metadata: { cid: 'bafya' } })
      await store.copyTo('src/a.car', other, 'dst/a.car')
      expect(await other.head('dst/a.car')).toEqual({ size: 9, metadata: { cid: 'bafya' } })
      expect((await read((await other.get('dst/a.car'))!.body)).bytes.toString()).toBe('car bytes')
      // The source stays.
      expect(await store.head('src/a.car')).toMatchObject({ size: 9 })
      // A size given by the caller saves a HEAD.
      await store.copyTo('src/a.car', other, 'dst/b.car', { size: 9 })
      expect(await other.head('dst/b.car')).toMatchObject({ size: 9 })
    })

    it('copies large objects part by part, byte-exact', async () => {
      const { store, other, partwiseCopier } = await factory()
      const copier = partwiseCopier ?? store
      const total = 12 * MiB + 3
      const gen = generate(total)
      await store.put('large.car', gen.body, { partSize: 5 * MiB, metadata: { cid: 'bafylarge' } })
      const digest = gen.digest()
      await copier.copyTo('large.car', other, 'large-copy.car')
      expect(await other.head('large-copy.car')).toEqual({ size: total, metadata: { cid: 'bafylarge' } })
      expect((await read((await other.get('large-copy.car'))!.body)).sha256).toBe(digest)
      // A small object takes one (range) part.
      await store.put('tiny.car', once(text('tiny')))
      await copier.copyTo('tiny.car', other, 'tiny-copy.car', { size: 4 })
      expect((await read((await other.get('tiny-copy.car'))!.body)).bytes.toString()).toBe('tiny')
    })

    it('copies only the object that was read: a source replaced since then is refused (If-Match on its ETag)', async () => {
      const { store, other, partwiseCopier } = await factory()
      await store.put('v.car', once(text('validated bytes')))
      const validated = await store.get('v.car')
      expect(typeof validated?.etag).toBe('string')
      await read(validated!.body)
      // Replaced between the read and the copy.
      await store.put('v.car', once(text('unverified bytes')))
      const copier = partwiseCopier ?? store
      for (const [s, key] of [
        [store, 'whole.car'],
        [copier, 'parts.car'],
      ] as const) {
        const copy = s.copyTo('v.car', other, key, { ifMatch: validated!.etag })
        await expect(copy).rejects.toBeInstanceOf(CopySourceChangedError)
        await expect(copy).rejects.toMatchObject({ code: 'COPY_SOURCE_CHANGED' })
        expect(await other.head(key)).toBeUndefined()
      }
      // What is there now copies under its own ETag.
      const current = await store.get('v.car')
      expect(current?.etag).not.toBe(validated?.etag)
      await read(current!.body)
      await copier.copyTo('v.car', other, 'parts.car', { ifMatch: current!.etag })
      expect((await read((await other.get('parts.car'))!.body)).bytes.toString()).toBe('unverified bytes')
    })

    it('fails to copy a missing object', async () => {
      const { store, other, partwiseCopier } = await factory()
      await expect(store.copyTo('missing', other, 'x')).rejects.toThrow()
      await expect((partwiseCopier ?? store).copyTo('missing', other, 'y')).rejects.toThrow()
      expect(await other.head('x')).toBeUndefined()
      expect(await other.head('y')).toBeUndefined()
    })
  })
}
