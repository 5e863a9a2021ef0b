/**
 * The metrics port's two implementations, one suite: the EMF adapter (its lines parsed back as CloudWatch
 * extracts them) and the in-memory twin record the same values under the same dimensions.
 */
import { describe, expect, it } from 'vitest'
import { createMemoryMetrics } from '../../adapters/memory/metrics.ts'
import { createEmfMetrics, parseEmfLine, parseEmfLines, toEmf } from '../../adapters/metrics/emf.ts'
import { dimensionValue, METRICS, type MetricDef, type MetricPoint, sizeClass } from '../../core/metrics.ts'

interface Harness {
  emit(...points: MetricPoint[]): void
  /** Values of `metric` in the series with exactly these dimensions. */
  series(metric: MetricDef, dimensions: Record<string, string>): number[]
}

const sameDims = (a: Record<string, string>, b: Record<string, string>) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort())

const harnesses: Array<[string, () => Harness]> = [
  [
    'EMF lines',
    () => {
      const lines: string[] = []
      const m = createEmfMetrics({ namespace: 'pickup/t', write: (l) => lines.push(l), now: () => 1000 })
      return {
        emit: (...p) => m.emit(...p),
        series: (metric, dims) =>
          parseEmfLines(lines.join('\n'))
            .filter((p) => p.name === metric.name && sameDims(p.dimensions, dims))
            .map((p) => p.value),
      }
    },
  ],
  [
    'in memory',
    () => {
      const m = createMemoryMetrics()
      // A point belongs to each series its dimension sets name (what CloudWatch does with EMF).
      return {
        emit: (...p) => m.emit(...p),
        series: (metric, dims) =>
          m.points
            .filter(
              (p) =>
                p.metric.name === metric.name &&
                p.metric.dimensionSets.some((set) =>
                  sameDims(Object.fromEntries(set.map((d) => [d, p.dimensions![d]!])), dims),
                ),
            )
            .map((p) => p.value),
      }
    },
  ],
]

describe.each(harnesses)('metrics through %s', (_, make) => {
  it('records each point in its total and per-dimension series', () => {
    const h = make()
    h.emit(
      { metric: METRICS.jobsFailed, value: 1, dimensions: { Reason: 'FETCH_STALLED' } },
      { metric: METRICS.jobsFailed, value: 1, dimensions: { Reason: 'CAR_TOO_LARGE' } },
      { metric: METRICS.jobsFailed, value: 1, dimensions: { Reason: 'FETCH_STALLED' } },
      { metric: METRICS.timeToPinned, value: 1234, dimensions: { SizeClass: 'small' } },
      { metric: METRICS.pinsStored, value: 1 },
      { metric: METRICS.clientErrors, value: 1, dimensions: { Api: 'psa', Reason: 'INVALID_CID' } },
    )
    expect(h.series(METRICS.jobsFailed, {})).toEqual([1, 1, 1])
    expect(h.series(METRICS.jobsFailed, { Reason: 'FETCH_STALLED' })).toEqual([1, 1])
    expect(h.series(METRICS.jobsFailed, { Reason: 'CAR_TOO_LARGE' })).toEqual([1])
    expect(h.series(METRICS.timeToPinned, {})).toEqual([1234])
    expect(h.series(METRICS.timeToPinned, { SizeClass: 'small' })).toEqual([1234])
    expect(h.series(METRICS.pinsStored, {})).toEqual([1])
    expect(h.series(METRICS.clientErrors, { Api: 'psa' })).toEqual([1])
    expect(h.series(METRICS.clientErrors, { Api: 'psa', Reason: 'INVALID_CID' })).toEqual([1])
    expect(h.series(METRICS.clientErrors, {})).toEqual([])
  })
})

describe('EMF lines', () => {
  it('share a line per set of dimension values, one directive per dimension-set shape', () => {
    const lines = toEmf('pickup/t', 5, [
      { metric: METRICS.jobsFinished, value: 1 },
      { metric: METRICS.transferTime, value: 20 },
      { metric: METRICS.jobsFailed, value: 1, dimensions: { Reason: 'LEASE_LOST' } },
    ])
    expect(lines).toHaveLength(2)
    expect(lines[0]).toEqual({
      _aws: {
        Timestamp: 5,
        CloudWatchMetrics: [
          {
            Namespace: 'pickup/t',
            Dimensions: [[]],
            Metrics: [
              { Name: 'JobsFinished', Unit: 'Count' },
              { Name: 'TransferTime', Unit: 'Milliseconds' },
            ],
          },
        ],
      },
      JobsFinished: 1,
      TransferTime: 20,
    })
    expect(lines[1]).toMatchObject({
      _aws: { CloudWatchMetrics: [{ Dimensions: [[], ['Reason']] }] },
      Reason: 'LEASE_LOST',
      JobsFailed: 1,
    })
  })

  it('a point missing a dimension its metric needs is dropped by the emitter, refused by the twin', () => {
    const lines: string[] = []
    createEmfMetrics({ namespace: 'n', write: (l) => lines.push(l) }).emit({
      metric: METRICS.jobsFailed,
      value: 1,
    })
    expect(lines).toEqual([])
    expect(() => createMemoryMetrics().emit({ metric: METRICS.jobsFailed, value: 1 })).toThrow(/Reason/)
  })

  it('ordinary log lines are not metrics', () => {
    expect(parseEmfLine('{"level":30,"msg":"fetch done"}')).toBeUndefined()
    expect(parseEmfLine('not json')).toBeUndefined()
  })

  it('dimension values stay bounded; size classes', () => {
    expect(dimensionValue('FETCH_STALLED')).toBe('FETCH_STALLED')
    expect(dimensionValue('connect ECONNREFUSED 127.0.0.1:5001')).toBe('OTHER')
    expect(dimensionValue(undefined)).toBe('OTHER')
    expect([sizeClass(0), sizeClass(10 * 1024 * 1024), sizeClass(10 * 1024 * 1024 + 1)]).toEqual([
      'small',
      'small',
      'medium',
    ])
    expect(sizeClass(2 * 1024 ** 3)).toBe('large')
  })
})
