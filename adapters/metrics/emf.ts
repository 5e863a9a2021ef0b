/**
 * Metrics as CloudWatch embedded metric format (EMF) lines: one JSON object per line on the process's
 * output, which CloudWatch Logs turns into metrics without an API call (Lambda's log agent, and the ECS
 * awslogs driver: PutLogEvents extracts EMF without its optional `x-amzn-logs-format` header). Points with the
 * same dimension values share a line; each metric gets one directive per dimension set it is defined with.
 * `parseEmfLine` reads a line back into points, so tests assert what CloudWatch would extract.
 */
import type { MetricDef, MetricPoint, Metrics, MetricUnit } from '../../core/metrics.ts'

export interface EmfOptions {
  namespace: string
  /** Receives each line (no newline). Default: stdout. */
  write?: (line: string) => void
  now?: () => number
}

interface Directive {
  Namespace: string
  Dimensions: string[][]
  Metrics: Array<{ Name: string; Unit: MetricUnit }>
}

export interface EmfLine {
  _aws: { Timestamp: number; CloudWatchMetrics: Directive[] }
  [key: string]: unknown
}

/** Builds the EMF objects for `points` (one per distinct set of dimension values). */
export function toEmf(namespace: string, timestamp: number, points: readonly MetricPoint[]): EmfLine[] {
  const groups = new Map<string, { dims: Record<string, string>; points: MetricPoint[] }>()
  for (const p of points) {
    const dims = p.dimensions ?? {}
    const key = JSON.stringify(Object.entries(dims).sort(([a], [b]) => a.localeCompare(b)))
    const g = groups.get(key) ?? { dims, points: [] }
    g.points.push(p)
    groups.set(key, g)
  }
  return [...groups.values()].map(({ dims, points: ps }) => {
    const directives = new Map<string, Directive>()
    const values: Record<string, number | number[]> = {}
    for (const p of ps) {
      const sets = p.metric.dimensionSets.map((s) => [...s])
      for (const set of sets)
        for (const d of set)
          if (dims[d] === undefined) throw new Error(`metric ${p.metric.name} needs dimension ${d}`)
      const key = JSON.stringify(sets)
      const dir = directives.get(key) ?? { Namespace: namespace, Dimensions: sets, Metrics: [] }
      if (!dir.Metrics.some((m) => m.Name === p.metric.name))
        dir.Metrics.push({ Name: p.metric.name, Unit: p.metric.unit })
      directives.set(key, dir)
      // Two values of one metric in one line: EMF takes an array.
      const prev = values[p.metric.name]
      values[p.metric.name] =
        prev === undefined ? p.value : Array.isArray(prev) ? [...prev, p.value] : [prev, p.value]
    }
    return {
      _aws: { Timestamp: timestamp, CloudWatchMetrics: [...directives.values()] },
      ...dims,
      ...values,
    }
  })
}

export function createEmfMetrics(opts: EmfOptions): Metrics {
  const write = opts.write ?? ((line: string) => process.stdout.write(`${line}\n`))
  const now = opts.now ?? Date.now
  return {
    emit(...points) {
      if (points.length === 0) return
      try {
        for (const line of toEmf(opts.namespace, now(), points)) write(JSON.stringify(line))
      } catch {
        // Metrics never fail the work they describe (a closed stdout, a point missing a dimension).
      }
    },
  }
}

/** A point as CloudWatch extracts it: one per value, per dimension set of its directive. */
export interface ParsedPoint {
  namespace: string
  name: string
  unit: string
  value: number
  /** The dimensions of this series (empty: the total). */
  dimensions: Record<string, string>
  timestamp: number
}

/** Reads an EMF line back; undefined for a line that is not EMF (an ordinary log line). */
export function parseEmfLine(line: string): ParsedPoint[] | undefined {
  let obj: unknown
  try {
    obj = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof obj !== 'object' || obj === null || !('_aws' in obj)) return undefined
  const root = obj as EmfLine
  const out: ParsedPoint[] = []
  for (const dir of root._aws.CloudWatchMetrics) {
    for (const m of dir.Metrics) {
      const raw = root[m.Name]
      const values = Array.isArray(raw) ? raw : [raw]
      for (const set of dir.Dimensions) {
        const dimensions = Object.fromEntries(set.map((d) => [d, String(root[d])]))
        for (const v of values) {
          if (typeof v !== 'number') throw new Error(`EMF value of ${m.Name} is not a number: ${String(v)}`)
          out.push({
            namespace: dir.Namespace,
            name: m.Name,
            unit: m.Unit,
            value: v,
            dimensions,
            timestamp: root._aws.Timestamp,
          })
        }
      }
    }
  }
  return out
}

/** Every point of every EMF line in `text` (other lines skipped). */
export function parseEmfLines(text: string): ParsedPoint[] {
  return text.split('\n').flatMap((l) => (l.trim() === '' ? [] : (parseEmfLine(l) ?? [])))
}

/** A metric definition's points among parsed ones, as a filter. */
export const pointsOf = (points: readonly ParsedPoint[], metric: MetricDef) =>
  points.filter((p) => p.name === metric.name)
