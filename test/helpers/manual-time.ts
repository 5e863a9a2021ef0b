import type { Clock, Timers } from '../../core/ports.ts'

/**
 * A clock and timers that move only when the test says so: `advance(ms)` runs every timer that falls due, in
 * order, letting the promise jobs each one starts run before the next; nothing waits in real time.
 */
export function createManualTime(start = 1_700_000_000_000): {
  clock: Clock
  timers: Timers
  advance(ms: number): Promise<void>
} {
  let now = start
  let nextId = 0
  const pending = new Map<number, { at: number; fn: () => void; every?: number }>()
  const settle = () => new Promise<void>((resolve) => setImmediate(resolve))
  const add = (fn: () => void, ms: number, every?: number) => {
    const id = ++nextId
    pending.set(id, { at: now + Math.max(0, ms), fn, ...(every === undefined ? {} : { every }) })
    return id
  }
  const remove = (handle: unknown) => void pending.delete(handle as number)
  return {
    clock: { now: () => now },
    timers: {
      setTimeout: (fn, ms) => add(fn, ms),
      clearTimeout: remove,
      setInterval: (fn, ms) => add(fn, ms, Math.max(1, ms)),
      clearInterval: remove,
    },
    async advance(ms) {
      const until = now + ms
      await settle()
      for (;;) {
        let due: [number, { at: number; fn: () => void; every?: number }] | undefined
        for (const entry of pending)
          if (entry[1].at <= until && (!due || entry[1].at < due[1].at)) due = entry
        if (!due) break
        const [id, timer] = due
        now = timer.at
        if (timer.every === undefined) pending.delete(id)
        else timer.at += timer.every
        timer.fn()
        await settle()
      }
      now = until
      await settle()
    },
  }
}
