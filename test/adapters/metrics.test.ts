/**
 * The metrics port's two implementations, one suite: the EMF adapter (its lines parsed back as CloudWatch
 * extracts them) and the in-memory twin record the same values under the same dimensions.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createMemoryMetrics } from '../../adapters/memory/metrics.ts'
import { createEmfMetrics, parseEmfLine, parseEmfLines, toEmf } from '../../adapters/metrics/emf.ts'
import { createMetricsFileWriter, readMetricsFile } from '../../adapters/metrics/file.ts'
import { dimensionValue, METRICS, type MetricDef, type MetricPoint, sizeClass } from '../../core/metrics.ts'
import { summarizeMetrics } from '../../core/metrics-summary.ts'

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

describe('the metric lines local mode keeps', () => {
  it('rotate past their size bound, and are read back from both files, from `since` on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pickup-metrics-file-'))
    try {
      const path = join(dir, 'metrics.ndjson')
      let now = 1_000
      // Each line is ~200 bytes: the third one starts a fresh file, the first two are kept in `.1`.
      const file = createEmfMetrics({
        namespace: 'pickup/local',
        now: () => now,
        write: createMetricsFileWriter(path, { maxBytes: 300 }),
      })
      for (const [at, reason] of [
        [1_000, 'FETCH_STALLED'],
        [2_000, 'FETCH_TIMEOUT'],
        [3_000, 'CAR_TOO_LARGE'],
      ] as const) {
        now = at
        file.emit({ metric: METRICS.jobsFailed, value: 1, dimensions: { Reason: reason } })
      }
      expect((await readFile(`${path}.1`, 'utf8')).trim().split('\n')).toHaveLength(2)
      expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(1)
      const reasons = (since: number) =>
        readMetricsFile(path, since)
          .filter((p) => p.dimensions.Reason)
          .map((p) => p.dimensions.Reason)
      expect(reasons(0)).toEqual(['FETCH_STALLED', 'FETCH_TIMEOUT', 'CAR_TOO_LARGE'])
      expect(reasons(2_000)).toEqual(['FETCH_TIMEOUT', 'CAR_TOO_LARGE'])
      const summary = summarizeMetrics(readMetricsFile(path, 0), 0)
      expect(summary.jobs.failed).toBe(3)
      expect(summary.jobs.failedByReason).toEqual([
        ['CAR_TOO_LARGE', 1],
        ['FETCH_STALLED', 1],
        ['FETCH_TIMEOUT', 1],
      ])
      expect(readMetricsFile(join(dir, 'none.ndjson'), 0)).toEqual([])
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('summaries: the last hour only, percentiles by nearest rank', () => {
    const point = (
      name: string,
      value: number,
      timestamp: number,
      dimensions: Record<string, string> = {},
    ) => ({
      name,
      value,
      timestamp,
      dimensions,
    })
    const points = [
      point('TimeToPinned', 50_000, 10),
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((s) => point('TimeToPinned', s * 1000, 200)),
      ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((s) =>
        point('TimeToPinned', s * 1000, 200, { SizeClass: 'small' }),
      ),
      point('PinsStored', 1, 10),
      point('PinsStored', 1, 200),
      point('CarBytes', 7, 200),
    ]
    const s = summarizeMetrics(points, 100)
    expect(s.timeToPinnedMs).toEqual({ p50: 5000, p90: 9000, p99: 10_000 })
    expect(s.pinsStored).toBe(1)
    expect(s.bytesStored).toBe(7)
    expect(summarizeMetrics(points, 0).timeToPinnedMs?.p99).toBe(50_000)
    expect(summarizeMetrics([], 0).timeToPinnedMs).toBeUndefined()
  })
})
