/**
 * The data directory's lock (local/data-dir.ts) in process, for the cases a second process cannot easily
 * set up: a lock held by another live process, an unreadable lock, and a release that must not remove
 * someone else's lock.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LOCK_FILE, lockDataDir, prepareDataDir } from '../../local/data-dir.ts'
import { DataDirLockedError } from '../../local/errors.ts'

let dir: string
beforeEach(async () => {
  dir = await prepareDataDir(join(await mkdtemp(join(tmpdir(), 'pickup-lock-')), 'data'))
})
afterEach(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true })
})

const readLock = async () =>
  JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')) as { pid: number; api?: string }

describe('the data directory lock', () => {
  it('is refused while its holder lives, naming it; taken once the holder is gone', async () => {
    const holder = await lockDataDir(dir, { pid: 1111 })
    await holder.setApi('http://127.0.0.1:3000')
    const alive = new Set([1111])
    const refused = await lockDataDir(dir, { pid: 2222, alive: (p) => alive.has(p) }).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(DataDirLockedError)
    expect(refused).toMatchObject({ dir, holder: { pid: 1111, api: 'http://127.0.0.1:3000' } })
    expect(await readLock()).toMatchObject({ pid: 1111 })

    alive.clear()
    const taker = await lockDataDir(dir, { pid: 2222, alive: (p) => alive.has(p) })
    expect(taker.tookOverFrom).toMatchObject({ pid: 1111, api: 'http://127.0.0.1:3000' })
    expect(await readLock()).toMatchObject({ pid: 2222 })

    // The old holder's release leaves the new holder's lock alone.
    await holder.release()
    expect(await readLock()).toMatchObject({ pid: 2222 })
    await taker.release()
    await expect(readFile(join(dir, LOCK_FILE))).rejects.toThrow(/ENOENT/)
  })

  it('takes over a lock that is not a lock (empty or garbled)', async () => {
    await writeFile(join(dir, LOCK_FILE), '')
    const lock = await lockDataDir(dir, { pid: 3333, alive: () => true })
    expect(lock.tookOverFrom).toBeUndefined()
    expect(await readLock()).toMatchObject({ pid: 3333 })
  })
})
