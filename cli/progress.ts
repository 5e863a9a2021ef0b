/**
 * Progress of a long operation, on stderr so stdout stays clean for results: a bar redrawn in place when
 * stderr is a terminal, otherwise a plain line at most every `plainEveryMs` (and a last one at the end).
 */
export interface ProgressReporter {
  update(done: number): void
  /** Adds to the expected total (when more work shows up than first counted). */
  setTotal(total: number): void
  finish(): void
}

export interface ProgressOptions {
  label: string
  /** Expected total; the bar shows no percentage without one. */
  total?: number
  write: (text: string) => void
  tty: boolean
  now?: () => number
  /** Plain mode: least time between two lines. Default 2 s. */
  plainEveryMs?: number
}

const WIDTH = 30
const REDRAW_EVERY_MS = 100

export function createProgress(opts: ProgressOptions): ProgressReporter {
  const now = opts.now ?? (() => Date.now())
  const started = now()
  let total = opts.total
  let done = 0
  let lastDraw = Number.NEGATIVE_INFINITY
  let drawn = false
  let drawnDone = -1

  const rate = () => {
    const s = (now() - started) / 1000
    return s > 0 ? Math.round(done / s) : 0
  }

  const line = () => {
    const of = total !== undefined && total > 0 ? `${done}/${total}` : String(done)
    const pct = total !== undefined && total > 0 ? ` ${Math.min(100, Math.floor((done / total) * 100))}%` : ''
    return `${opts.label}: ${of}${pct}, ${rate()}/s`
  }

  const draw = (force: boolean) => {
    const t = now()
    const every = opts.tty ? REDRAW_EVERY_MS : (opts.plainEveryMs ?? 2_000)
    if (!force && t - lastDraw < every) return
    lastDraw = t
    drawn = true
    drawnDone = done
    if (!opts.tty) {
      opts.write(`${line()}\n`)
      return
    }
    const fraction = total !== undefined && total > 0 ? Math.min(1, done / total) : 0
    const filled = Math.round(fraction * WIDTH)
    const bar =
      total !== undefined && total > 0 ? `[${'#'.repeat(filled)}${'-'.repeat(WIDTH - filled)}] ` : ''
    opts.write(`\r\x1b[2K${bar}${line()}`)
  }

  return {
    update(n) {
      done = n
      if (total !== undefined && done > total) total = done
      draw(false)
    },
    setTotal(n) {
      total = n
    },
    finish() {
      if (opts.tty) {
        if (drawn || done > 0) {
          draw(true)
          opts.write('\n')
        }
      } else if (drawn && drawnDone !== done) draw(true)
    },
  }
}
