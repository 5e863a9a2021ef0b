/**
 * Tells a worker's running attempts when their content is no longer wanted: how an attempt learns that its
 * pin was marked unreferenced (the last request went away) and stops within one `intervalMs`.
 *
 * Every interval it reads the marks set lately, not the pins: one Query of the pins table's sparse
 * `unreferenced-since` index for marks set since the previous read (less `MARK_MARGIN_MS`, for the clocks of
 * the API and the worker and for the index's lag), usually empty, whatever number of attempts the worker
 * runs. A worker searching for 2,500 pins read all 2,500 every interval before (25 BatchGetItem calls of
 * 100, about 250 read units a second); now it reads one near-empty page. A watched pin among the marks is
 * reported. Every `fullEvery`th interval, and whenever the marks read outnumber the watched pins, it reads
 * every watched pin instead (`PinStore.getMany`, 100 keys a call), which also reports marks the window
 * missed (a clock further off than the margin, an index behind by more than it).
 */
import type { Pin } from './pin.ts'
import type { Clock, Logger, PinStore } from './ports.ts'
import { systemClock } from './ports.ts'

export interface PinWatcher {
  /**
   * Calls `onPin` with the pin as a read found it, until the returned function is called: after a read of
   * the recent marks, for a watched pin marked unreferenced; after a read of every watched pin, for each
   * (undefined: no record). Only reads that started after `watch` was called are reported.
   */
  watch(cid: string, onPin: (pin: Pin | undefined) => void): () => void
  stop(): void
}

/** How far before the previous read the recent marks are read from. */
export const MARK_MARGIN_MS = 60_000
/** Every this many intervals, every watched pin is read (once a minute at the default 5 s interval). */
const DEFAULT_FULL_READ_EVERY = 12
const MARKS_PAGE = 1000

export function createPinWatcher(
  opts: { intervalMs: number; fullEvery?: number },
  ctx: { pins: Pick<PinStore, 'getMany' | 'listUnreferenced'>; log: Logger; clock?: Clock },
): PinWatcher {
  const clock = ctx.clock ?? systemClock
  const fullEvery = opts.fullEvery ?? DEFAULT_FULL_READ_EVERY
  const watchers = new Map<string, Set<(pin: Pin | undefined) => void>>()
  let timer: ReturnType<typeof setInterval> | undefined
  let reading = false
  let reads = 0
  /** When the last read of the recent marks that completed started. */
  let marksReadAt = clock.now()

  /** The recent marks, or undefined when there are more than watched pins (then read the pins instead). */
  const recentMarks = async (since: number, most: number): Promise<Pin[] | undefined> => {
    const marks: Pin[] = []
    let cursor: string | undefined
    do {
      const page = await ctx.pins.listUnreferenced({
        markedSince: since,
        markedBefore: Number.MAX_SAFE_INTEGER,
        // Past `most` marks the pins are read instead: no need to read more to learn that.
        limit: Math.min(MARKS_PAGE, most + 1 - marks.length),
        ...(cursor === undefined ? {} : { cursor }),
      })
      marks.push(...page.pins)
      if (marks.length > most) return undefined
      cursor = page.cursor
    } while (cursor !== undefined)
    return marks
  }

  const read = async () => {
    if (reading || watchers.size === 0) return
    reading = true
    // Snapshot who is watching now: a watcher added during the read waits for the next one.
    const snapshot = [...watchers].map(([cid, set]) => [cid, [...set]] as const)
    const report = (cid: string, callbacks: readonly ((pin: Pin | undefined) => void)[], pin?: Pin) => {
      for (const onPin of callbacks) if (watchers.get(cid)?.has(onPin)) onPin(pin)
    }
    const startedAt = clock.now()
    try {
      reads++
      const marks =
        reads % fullEvery === 0 ? undefined : await recentMarks(marksReadAt - MARK_MARGIN_MS, snapshot.length)
      if (marks) {
        const marked = new Map(marks.map((p) => [p.cid, p]))
        for (const [cid, callbacks] of snapshot) {
          const pin = marked.get(cid)
          if (pin) report(cid, callbacks, pin)
        }
      } else {
        const pins = await ctx.pins.getMany(snapshot.map(([cid]) => cid))
        for (const [cid, callbacks] of snapshot) report(cid, callbacks, pins.get(cid))
      }
      marksReadAt = startedAt
    } catch (err) {
      ctx.log.warn({ err, pins: snapshot.length }, 'reading the marks of the running pins failed')
    } finally {
      reading = false
    }
  }

  return {
    watch(cid, onPin) {
      const set = watchers.get(cid) ?? new Set()
      watchers.set(cid, set)
      set.add(onPin)
      if (!timer) {
        // Nothing ran while no pin was watched: marks older than now are the claims' to find.
        marksReadAt = clock.now()
        timer = setInterval(() => void read(), opts.intervalMs)
      }
      return () => {
        const current = watchers.get(cid)
        current?.delete(onPin)
        if (current?.size === 0) watchers.delete(cid)
        if (watchers.size === 0 && timer) {
          clearInterval(timer)
          timer = undefined
        }
      }
    },
    stop() {
      if (timer) clearInterval(timer)
      timer = undefined
      watchers.clear()
    },
  }
}
