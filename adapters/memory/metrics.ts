/** The in-memory twin of the EMF metrics: keeps every point as emitted, for core tests. */
import type { MetricDef, MetricPoint, Metrics } from '../../core/metrics.ts'

export interface MemoryMetrics extends Metrics {
  readonly points: MetricPoint[]
  /** The values of one metric, optionally only those with these dimension values. */
  values(metric: MetricDef, dimensions?: Record<string, string>): number[]
}

export function createMemoryMetrics(): MemoryMetrics {
  const points: MetricPoint[] = []
  return {
    points,
    emit(...ps) {
      for (const p of ps) {
        for (const set of p.metric.dimensionSets)
          for (const d of set)
            if (p.dimensions?.[d] === undefined)
              throw new Error(`metric ${p.metric.name} needs dimension ${d}`)
        points.push(p)
      }
    },
    values(metric, dimensions = {}) {
      return points
        .filter(
          (p) =>
            p.metric.name === metric.name &&
            Object.entries(dimensions).every(([k, v]) => p.dimensions?.[k] === v),
        )
        .map((p) => p.value)
    },
  }
}
