/**
 * The metric lines local mode keeps: EMF lines appended to a file in the data directory
 * (`<data dir>/metrics.ndjson`), for `pickup stats` to read the last hour from. Bounded: once the file passes
 * `maxBytes` it becomes `<file>.1` (replacing the previous one) and a new file starts, so at most twice
 * `maxBytes` is kept (~16 MiB by default: some hundred thousand pins' worth of lines).
 */
import { appendFileSync, readFileSync, renameSync, statSync } from 'node:fs'
import { type ParsedPoint, parseEmfLines } from './emf.ts'

export const DEFAULT_METRICS_FILE_BYTES = 8 * 1024 * 1024

export interface MetricsFileOptions {
  maxBytes?: number
  onError?: (err: unknown) => void
}

/**
 * Appends EMF lines to the file, rotating it past `maxBytes` (the `write` of createEmfMetrics). Local mode has
 * one writer per file: a worker running as a process of its own sends it its lines (local/worker-process.ts).
 */
export function createMetricsFileWriter(path: string, opts: MetricsFileOptions = {}): (line: string) => void {
  const maxBytes = opts.maxBytes ?? DEFAULT_METRICS_FILE_BYTES
  let size: number
  try {
    size = statSync(path).size
  } catch {
    size = 0
  }
  return (line) => {
    try {
      if (size >= maxBytes) {
        renameSync(path, `${path}.1`)
        size = 0
      }
      // Synchronous: a few lines per job, and the order of lines is the order of events.
      appendFileSync(path, `${line}\n`, { mode: 0o600 })
      size += Buffer.byteLength(line) + 1
    } catch (err) {
      opts.onError?.(err)
    }
  }
}

/** Every point in the kept files (the rotated one first), with a timestamp at or after `since`. */
export function readMetricsFile(path: string, since: number): ParsedPoint[] {
  const out: ParsedPoint[] = []
  for (const file of [`${path}.1`, path]) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const p of parseEmfLines(text)) if (p.timestamp >= since) out.push(p)
  }
  return out
}
