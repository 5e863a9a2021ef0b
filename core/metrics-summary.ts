/**
 * The last hour's figures from recorded metric points (`pickup stats` in local mode, from the metric lines local
 * mode keeps): what the dashboard shows first, for a person running pickup on one machine.
 */
import { METRICS, type MetricDef } from './metrics.ts'

/** A recorded value of one series, as parsed back from an EMF line (one point per dimension set). */
export interface RecordedPoint {
  name: string
  value: number
  /** The series' dimensions; empty for the metric's total. */
  dimensions: Record<string, string>
  timestamp: number
}

export interface Percentiles {
  p50: number
  p90: number
  p99: number
}

export interface MetricsSummary {
  since: number
  pinsStored: number
  bytesStored: number
  /** From the first request to pinned; absent when nothing was stored. */
  timeToPinnedMs?: Percentiles
  jobs: {
    started: number
    finished: number
    failed: number
    /** Failed attempts by reason code, most first. */
    failedByReason: Array<[string, number]>
  }
  searchMs?: Percentiles
  transferMs?: Percentiles
  /** Fetch rate of the attempts that uploaded, p50, bytes per second. */
  fetchBytesPerSecondP50?: number
  invalidCarsByFault: Array<[string, number]>
  requestsAccepted: Record<string, number>
  clientErrorsByReason: Array<[string, number]>
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!
}

function percentiles(values: number[]): Percentiles | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((a, b) => a - b)
  return { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) }
}

export function summarizeMetrics(points: readonly RecordedPoint[], since: number): MetricsSummary {
  const recent = points.filter((p) => p.timestamp >= since)
  /** Values of the series with exactly these dimensions. */
  const values = (def: MetricDef, dims: string[] = []) =>
    recent.filter(
      (p) => p.name === def.name && Object.keys(p.dimensions).sort().join() === [...dims].sort().join(),
    )
  const sum = (def: MetricDef) => values(def).reduce((n, p) => n + p.value, 0)
  const byDimension = (def: MetricDef, dims: string[], key: (d: Record<string, string>) => string) => {
    const counts = new Map<string, number>()
    for (const p of values(def, dims))
      counts.set(key(p.dimensions), (counts.get(key(p.dimensions)) ?? 0) + p.value)
    return [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
  }
  const list = (def: MetricDef) => values(def).map((p) => p.value)
  const rates = percentiles(list(METRICS.fetchRate))
  const timeToPinnedMs = percentiles(list(METRICS.timeToPinned))
  const searchMs = percentiles(list(METRICS.searchTime))
  const transferMs = percentiles(list(METRICS.transferTime))
  return {
    since,
    pinsStored: sum(METRICS.pinsStored),
    bytesStored: sum(METRICS.carBytes),
    ...(timeToPinnedMs ? { timeToPinnedMs } : {}),
    jobs: {
      started: sum(METRICS.jobsStarted),
      finished: sum(METRICS.jobsFinished),
      failed: sum(METRICS.jobsFailed),
      failedByReason: byDimension(METRICS.jobsFailed, ['Reason'], (d) => d.Reason ?? 'OTHER'),
    },
    ...(searchMs ? { searchMs } : {}),
    ...(transferMs ? { transferMs } : {}),
    ...(rates ? { fetchBytesPerSecondP50: rates.p50 } : {}),
    invalidCarsByFault: byDimension(METRICS.invalidCars, ['FaultCode'], (d) => d.FaultCode ?? 'OTHER'),
    requestsAccepted: Object.fromEntries(
      byDimension(METRICS.pinRequestsAccepted, ['Api'], (d) => d.Api ?? 'OTHER'),
    ),
    clientErrorsByReason: byDimension(
      METRICS.clientErrors,
      ['Api', 'Reason'],
      (d) => `${d.Api ?? 'OTHER'} ${d.Reason ?? 'OTHER'}`,
    ),
  }
}
