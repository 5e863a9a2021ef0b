/**
 * Operators' metrics: what a user of pickup feels (time to pin, failures by reason, bytes stored, jobs
 * looking vs transferring), recorded where it happens. The port is one method; the catalogue below is the one
 * definition of every metric's name, unit and dimension sets, shared by the emitters (adapters/metrics/emf.ts
 * writes CloudWatch embedded metric format lines), the stacks' dashboard, alarms and scaling policy, and the
 * tests that parse the lines back.
 *
 * Dimensions are few and bounded: a reason or fault is an error code (a constant of the code base, sanitised
 * by `dimensionValue`), an API is `cluster` or `psa`, a size class one of three. Nothing per pin, user or task.
 */

export type MetricUnit = 'Count' | 'Milliseconds' | 'Bytes' | 'Bytes/Second'

export interface MetricDef {
  readonly name: string
  readonly unit: MetricUnit
  /**
   * The dimension sets CloudWatch aggregates it under: `[]` is the total, `['Reason']` one series per reason.
   * Every point of the metric carries a value for each dimension named here.
   */
  readonly dimensionSets: readonly (readonly string[])[]
}

const total: readonly (readonly string[])[] = [[]]

/** Every metric pickup emits. */
export const METRICS = {
  // ---- validator (api/validate-car.ts -> core/promote-car.ts)
  /** A CAR verified and promoted: one pin stored (counted once, by the attempt whose mark won). */
  pinsStored: { name: 'PinsStored', unit: 'Count', dimensionSets: total },
  /** From the first request for the content (the pin's `created`) to `pinned`, by SizeClass and in total. */
  timeToPinned: { name: 'TimeToPinned', unit: 'Milliseconds', dimensionSets: [[], ['SizeClass']] },
  /** Bytes of each stored CAR: summed, the bytes stored. */
  carBytes: { name: 'CarBytes', unit: 'Bytes', dimensionSets: total },
  carBlocks: { name: 'CarBlocks', unit: 'Count', dimensionSets: total },
  /** Reading and verifying one CAR (valid or not). */
  validationTime: { name: 'ValidationTime', unit: 'Milliseconds', dimensionSets: total },
  validationRate: { name: 'ValidationBytesPerSecond', unit: 'Bytes/Second', dimensionSets: total },
  /** A CAR refused, by its fault code (BLOCK_HASH_MISMATCH, ...). */
  invalidCars: { name: 'InvalidCars', unit: 'Count', dimensionSets: [[], ['FaultCode']] },

  // ---- worker (core/fetch-pin.ts, pickup/worker.ts)
  /** An attempt claimed its pin and started looking for the content. */
  jobsStarted: { name: 'JobsStarted', unit: 'Count', dimensionSets: total },
  /** An attempt uploaded its CAR (the validator decides whether it is stored). */
  jobsFinished: { name: 'JobsFinished', unit: 'Count', dimensionSets: total },
  /** An attempt ended without a CAR, by reason code (FETCH_STALLED, FETCH_TIMEOUT, CAR_TOO_LARGE, CANCELLED...). */
  jobsFailed: { name: 'JobsFailed', unit: 'Count', dimensionSets: [[], ['Reason']] },
  /** From the job's start to the first block (dialling, finding providers, waiting for the root). */
  searchTime: { name: 'SearchTime', unit: 'Milliseconds', dimensionSets: total },
  /** From the transfer slot to the uploaded CAR. */
  transferTime: { name: 'TransferTime', unit: 'Milliseconds', dimensionSets: total },
  fetchRate: { name: 'FetchBytesPerSecond', unit: 'Bytes/Second', dimensionSets: total },
  /** Gauges, per worker every `METRICS_GAUGE_INTERVAL_MS`: jobs looking (no block yet)... */
  jobsSearching: { name: 'JobsSearching', unit: 'Count', dimensionSets: total },
  /** ...holding their first block until a transfer slot frees... */
  jobsWaiting: { name: 'JobsWaiting', unit: 'Count', dimensionSets: total },
  /** ...and moving bytes. */
  jobsTransferring: { name: 'JobsTransferring', unit: 'Count', dimensionSets: total },

  // ---- API (api/http/*)
  /** A pin request accepted (cluster `POST /pins/{cid}`, PSA add or replace, `POST /collections`), by Api. */
  pinRequestsAccepted: { name: 'PinRequestsAccepted', unit: 'Count', dimensionSets: [[], ['Api']] },
  /** A 4xx answer, by Api and reason code (INVALID_CID, UNAUTHORIZED, BODY_TOO_LARGE...). */
  clientErrors: { name: 'ClientErrors', unit: 'Count', dimensionSets: [['Api'], ['Api', 'Reason']] },
} as const satisfies Record<string, MetricDef>

/** How often a worker reports its gauges: at least twice per 1-minute period the scaling policy reads. */
export const METRICS_GAUGE_INTERVAL_MS = 20_000

/** The CloudWatch namespace of a stage's metrics (the log-derived ones too). */
export const metricNamespace = (stage: string): string => `pickup/${stage}`

/**
 * Size classes of TimeToPinned: what a user may expect differs by orders of magnitude between an image and a
 * video archive, so the alarm watches the small class alone.
 */
export const SIZE_CLASSES = [
  { name: 'small', maxBytes: 10 * 1024 * 1024 },
  { name: 'medium', maxBytes: 1024 * 1024 * 1024 },
  { name: 'large', maxBytes: Number.POSITIVE_INFINITY },
] as const

export type SizeClass = (typeof SIZE_CLASSES)[number]['name']

export function sizeClass(bytes: number): SizeClass {
  return SIZE_CLASSES.find((c) => bytes <= c.maxBytes)!.name
}

/** One value of one metric, with a value for each dimension the metric's sets name. */
export interface MetricPoint {
  metric: MetricDef
  value: number
  dimensions?: Record<string, string>
}

export interface Metrics {
  /** Records points about one event. Never throws, never waits: metrics must not fail the work. */
  emit(...points: MetricPoint[]): void
}

/** Metrics that go nowhere (a component whose figures nobody reads, e.g. a CLI run). */
export const noMetrics: Metrics = { emit() {} }

/** Every point to each of `sinks`. */
export function teeMetrics(...sinks: Metrics[]): Metrics {
  return {
    emit(...points) {
      for (const s of sinks) s.emit(...points)
    },
  }
}

/**
 * A dimension value from an error code or other name: codes are constants of the code base, but a code that is
 * not one (an SDK's error name, say) must not open a new series per message, so anything that does not look
 * like a code is `OTHER`.
 */
export function dimensionValue(code: string | undefined): string {
  return code !== undefined && /^[A-Z][A-Z0-9_]{0,63}$/.test(code) ? code : 'OTHER'
}

/** Bytes per second over `ms`; 0 for an instant (the rate of nothing measurable). */
export function bytesPerSecond(bytes: number, ms: number): number {
  return ms > 0 ? Math.round((bytes * 1000) / ms) : 0
}
