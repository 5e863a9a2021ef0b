/**
 * The re-asking BlockSource (core/reask.ts) over a scripted in-memory source: which unanswered gets are asked
 * again and which are left alone. Real bitswap losses are in test/helia/export-car.test.ts and test/e2e/.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { describe, expect, it } from 'vitest'
import { blockKey } from '../../core/links.ts'
import type { BlockSource } from '../../core/ports.ts'
import { withReasking } from '../../core/reask.ts'
import { block } from '../fixtures/dags.ts'

const blocks = Array.from({ length: 12 }, (_, i) => block(raw.code, new TextEncoder().encode(`block ${i}`)))

/**
 * A source whose n-th get of a block answers after `delay(cid, n)` ms, or never when that is Infinity (an
 * answer lost on the way), until its signal aborts.
 */
function scripted(delay: (cid: CID, n: number) => number) {
  const asked = new Map<string, number>()
  const bytes = new Map(blocks.map((b) => [blockKey(b.cid), b.bytes]))
  const source: BlockSource & { asked: Map<string, number> } = {
    asked,
    async connect() {},
    async multiaddrs() {
      return []
    },
    get(cid, opts) {
      const key = blockKey(cid)
      const n = (asked.get(key) ?? 0) + 1
      asked.set(key, n)
      const ms = delay(cid, n)
      return new Promise((resolve, reject) => {
        const signal = opts?.signal
        const timer = Number.isFinite(ms)
          ? setTimeout(() => resolve(bytes.get(key) ?? new Uint8Array()), ms)
          : undefined
        signal?.addEventListener(
          'abort',
          () => {
            clearTimeout(timer)
            reject(signal.reason)
          },
          { once: true },
        )
      })
    },
  }
  return source
}

const lost = blocks[0]!.cid

describe('withReasking', () => {
  it('asks again for a block whose answer was lost while later blocks arrive, and gets it', async () => {
    const inner = scripted((cid, n) => (cid.equals(lost) && n === 1 ? Number.POSITIVE_INFINITY : 20))
    const source = withReasking(inner, { afterMs: 150, overtakenBy: 4, maxWaitMs: 10_000 })
    const got = await Promise.all(blocks.map((b) => source.get(b.cid)))
    expect(got.map((g) => new TextDecoder().decode(g))).toEqual(blocks.map((_, i) => `block ${i}`))
    expect(inner.asked.get(blockKey(lost))).toBe(2)
    expect(source.reasks()).toBe(1)
  })

  it('leaves alone slow blocks that arrive in the order they were asked', async () => {
    // Each answer comes 60 ms after the previous one: the last waits 720 ms, far past afterMs, but nothing
    // asked after it overtakes it and answers keep coming.
    const order = new Map(blocks.map((b, i) => [blockKey(b.cid), i]))
    const inner = scripted((cid) => 60 * ((order.get(blockKey(cid)) ?? 0) + 1))
    const source = withReasking(inner, { afterMs: 150, overtakenBy: 4, maxWaitMs: 10_000 })
    await Promise.all(blocks.map((b) => source.get(b.cid)))
    expect(source.reasks()).toBe(0)
    expect([...inner.asked.values()].every((n) => n === 1)).toBe(true)
  })

  it('asks again when nothing at all arrives (a dropped connection), with growing intervals', async () => {
    const inner = scripted((_, n) => (n <= 2 ? Number.POSITIVE_INFINITY : 10))
    const source = withReasking(inner, { afterMs: 100, maxWaitMs: 10_000 })
    const started = Date.now()
    await source.get(lost)
    // Asked at 0, again after 100 ms, then after 200 ms more.
    expect(inner.asked.get(blockKey(lost))).toBe(3)
    expect(Date.now() - started).toBeGreaterThanOrEqual(300)
    expect(source.reasks()).toBe(2)
  })

  it("passes the caller's abort through and stops asking", async () => {
    const inner = scripted(() => Number.POSITIVE_INFINITY)
    const source = withReasking(inner, { afterMs: 50 })
    const controller = new AbortController()
    const get = source.get(lost, { signal: controller.signal })
    await sleep(180)
    controller.abort(new Error('job over'))
    await expect(get).rejects.toThrow('job over')
    const asked = inner.asked.get(blockKey(lost))
    await sleep(200)
    expect(inner.asked.get(blockKey(lost))).toBe(asked)
  })

  it("passes the inner source's errors through without asking again", async () => {
    const failing: BlockSource = {
      async connect() {},
      async multiaddrs() {
        return []
      },
      async get() {
        throw new Error('unsupported hash')
      },
    }
    const source = withReasking(failing, { afterMs: 50 })
    await expect(source.get(lost)).rejects.toThrow('unsupported hash')
    expect(source.reasks()).toBe(0)
  })
})
