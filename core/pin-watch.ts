/**
 * Reads the pins of every running attempt of one worker together, every `intervalMs`, and tells each attempt
 * what its pin looks like now: how an attempt learns that nobody wants its content any longer (the pin is
 * marked unreferenced) and stops within one interval. Hundreds of attempts searching at once cost one batched
 * read (`PinStore.getMany`: BatchGetItem, 100 keys a call) per interval instead of a read or write each.
 */
import type { Pin } from './pin.ts'
import type { Logger, PinStore } from './ports.ts'

export interface PinWatcher {
  /**
   * Calls `onPin` after each read with the pin as read (undefined: no record), until the returned function
   * is called. Only reads that started after `watch` was called are reported.
   */
  watch(cid: string, onPin: (pin: Pin | undefined) => void): () => void
  stop(): void
}

export function createPinWatcher(
  opts: { intervalMs: number },
  ctx: { pins: PinStore; log: Logger },
): PinWatcher {
  const watchers = new Map<string, Set<(pin: Pin | undefined) => void>>()
  let timer: ReturnType<typeof setInterval> | undefined
  let reading = false

  const read = async () => {
    if (reading || watchers.size === 0) return
    reading = true
    // Snapshot who is watching now: a watcher added during the read waits for the next one.
    const snapshot = [...watchers].map(([cid, set]) => [cid, [...set]] as const)
    try {
      const pins = await ctx.pins.getMany(snapshot.map(([cid]) => cid))
      for (const [cid, callbacks] of snapshot) {
        for (const onPin of callbacks) {
          if (watchers.get(cid)?.has(onPin)) onPin(pins.get(cid))
        }
      }
    } catch (err) {
      ctx.log.warn({ err, pins: snapshot.length }, 'reading the running pins failed')
    } finally {
      reading = false
    }
  }

  return {
    watch(cid, onPin) {
      const set = watchers.get(cid) ?? new Set()
      watchers.set(cid, set)
      set.add(onPin)
      timer ??= setInterval(() => void read(), opts.intervalMs)
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
