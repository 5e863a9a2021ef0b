/**
 * The worker's watcher of running pins (core/pin-watch.ts) against the in-memory pin store: each interval it
 * reads the marks set lately, not the pins, and every few intervals (or when the marks outnumber the watched
 * pins) every watched pin.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import type { Pin } from '../../core/pin.ts'
import { createPinWatcher, MARK_MARGIN_MS, type PinWatcher } from '../../core/pin-watch.ts'
import { createTestLogger } from '../helpers/log.ts'
import { waitFor } from '../helpers/wait.ts'

const log = createTestLogger()
let watchers: PinWatcher[] = []
afterEach(() => {
  for (const w of watchers) w.stop()
  watchers = []
})

function setup(fullEvery: number) {
  const pins = createMemoryPinStore()
  const calls = { getMany: 0, listUnreferenced: 0 }
  const counted = {
    getMany: (cids: readonly string[]) => {
      calls.getMany++
      return pins.getMany(cids)
    },
    listUnreferenced: (o: Parameters<typeof pins.listUnreferenced>[0]) => {
      calls.listUnreferenced++
      return pins.listUnreferenced(o)
    },
  }
  const watcher = createPinWatcher({ intervalMs: 10, fullEvery }, { pins: counted, log })
  watchers.push(watcher)
  return { pins, calls, watcher }
}

/** Until `check` holds. */
const until = (what: string, check: () => boolean) =>
  waitFor(what, async () => (check() ? true : undefined), 5000)

async function queued(pins: ReturnType<typeof createMemoryPinStore>, ...cids: string[]) {
  for (const cid of cids) await pins.request(cid, [], Date.now())
}

describe('pin watcher', () => {
  it("reports a watched pin's new mark from a read of the recent marks, without reading the pins", async () => {
    const { pins, calls, watcher } = setup(1000)
    await queued(pins, 'a', 'b', 'c')
    const seen: Array<[string, Pin | undefined]> = []
    for (const cid of ['a', 'b']) watcher.watch(cid, (pin) => seen.push([cid, pin]))
    await until('two reads of the marks', () => calls.listUnreferenced >= 2)
    expect(seen).toEqual([])

    await pins.markUnreferenced('b', Date.now())
    await pins.markUnreferenced('c', Date.now())
    await until('a report', () => seen.length > 0)
    expect(seen[0]![0]).toBe('b')
    expect(seen[0]![1]?.unreferencedSince).toBeDefined()
    // Unwatched content is not reported; the pins themselves were never read.
    expect(seen.every(([cid]) => cid === 'b')).toBe(true)
    expect(calls.getMany).toBe(0)
  })

  it('reads every watched pin every `fullEvery` intervals, which finds a mark older than the window', async () => {
    const { pins, calls, watcher } = setup(3)
    await queued(pins, 'a')
    await pins.markUnreferenced('a', Date.now() - 10 * MARK_MARGIN_MS)
    const seen: Array<{ pin: Pin | undefined; calls: typeof calls }> = []
    watcher.watch('a', (pin) => seen.push({ pin, calls: { ...calls } }))
    await until('a report', () => seen.length > 0)
    // Found by the full read, the third: the two reads of the recent marks before it did not see it.
    expect(seen[0]!.calls).toEqual({ listUnreferenced: 2, getMany: 1 })
    expect(seen[0]!.pin?.cid).toBe('a')
  })

  it('reads the watched pins instead when the recent marks outnumber them', async () => {
    const { pins, calls, watcher } = setup(1000)
    await queued(pins, 'a', 'b', 'c', 'd')
    for (const cid of ['b', 'c', 'd']) await pins.markUnreferenced(cid, Date.now())
    const seen: string[] = []
    watcher.watch('a', (pin) => seen.push(pin?.cid ?? 'none'))
    await until('a read of the pins', () => calls.getMany >= 1)
    expect(calls.listUnreferenced).toBeGreaterThanOrEqual(1)
    await until('a report', () => seen.length > 0)
    // The full read reports every watched pin, marked or not.
    expect(seen[0]).toBe('a')
  })
})
