/**
 * The metrics operators read, as CloudWatch would extract them: local mode writes its embedded metric format
 * lines into an array here, and every line is parsed back (adapters/metrics/emf.ts) to check names, units,
 * dimensions and values against what really happened: a pin through the cluster API and one through the
 * Pinning Service API, stored; content nobody serves, stalled; a CAR with a flipped byte, refused; bad
 * requests to both APIs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEmfMetrics, type ParsedPoint, parseEmfLines, pointsOf } from '../../adapters/metrics/emf.ts'
import { contentKey } from '../../core/cid.ts'
import { bytesPerSecond, METRICS, type MetricDef } from '../../core/metrics.ts'
import { tempCarKey } from '../../core/pin.ts'
import { flippedByte } from '../fixtures/cars.ts'
import { rawBlock, unixfsFile } from '../fixtures/dags.ts'
import { startTestSystem, type TestSystem } from '../helpers/system.ts'

const NAMESPACE = 'pickup/metrics-test'
let t: TestSystem
const lines: string[] = []
const points = (): ParsedPoint[] => parseEmfLines(lines.join('\n'))
/** The points of one metric for exactly these dimensions (`{}`: the metric's total series). */
const series = (metric: MetricDef, dimensions: Record<string, string> = {}) =>
  pointsOf(points(), metric).filter((p) => JSON.stringify(p.dimensions) === JSON.stringify(dimensions))
const values = (metric: MetricDef, dimensions: Record<string, string> = {}) =>
  series(metric, dimensions).map((p) => p.value)

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const started = Date.now()
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() - started > 60_000) throw new Error(`gave up waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

beforeAll(async () => {
  t = await startTestSystem(
    {},
    {
      metrics: createEmfMetrics({ namespace: NAMESPACE, write: (line) => lines.push(line) }),
      gaugeIntervalMs: 100,
    },
  )
})
afterAll(async () => {
  await t?.stop()
})

describe('metrics from local mode, parsed back from their EMF lines', () => {
  it('a stored pin: worker and validator figures, with the units and dimensions CloudWatch gets', async () => {
    const file = await unixfsFile(600 * 1024, { seed: 'metrics-stored' })
    await t.addToOrigin(file.blocks)
    const cid = contentKey(file.root)
    const origins = encodeURIComponent(t.originAddrs().join(','))
    const asked = Date.now()
    expect((await t.api(`/pins/${cid}?origins=${origins}`, { method: 'POST' })).status).toBe(200)
    const pin = await t.waitForPin(cid, 'pinned')
    const took = Date.now() - asked
    await until('the validator line', () => (values(METRICS.pinsStored).length > 0 ? true : undefined))

    for (const p of points()) expect(p.namespace).toBe(NAMESPACE)
    expect(values(METRICS.pinRequestsAccepted, { Api: 'cluster' })).toEqual([1])
    expect(values(METRICS.pinRequestsAccepted)).toEqual([1])
    expect(series(METRICS.pinsStored)).toEqual([expect.objectContaining({ unit: 'Count', value: 1 })])
    // Time to pinned: in total and for its size class (600 KiB is small), the same value, within the time the
    // test saw pass between asking and seeing it pinned.
    const [ttp] = series(METRICS.timeToPinned)
    expect(ttp?.unit).toBe('Milliseconds')
    expect(ttp!.value).toBeGreaterThan(0)
    expect(ttp!.value).toBeLessThanOrEqual(took)
    expect(values(METRICS.timeToPinned, { SizeClass: 'small' })).toEqual([ttp!.value])
    expect(series(METRICS.carBytes)).toEqual([
      expect.objectContaining({ unit: 'Bytes', value: pin.car!.bytes }),
    ])
    expect(values(METRICS.carBlocks)).toEqual([pin.car!.blocks])
    expect(series(METRICS.validationTime)[0]?.unit).toBe('Milliseconds')
    const [rate] = series(METRICS.validationRate)
    expect(rate?.unit).toBe('Bytes/Second')
    expect(values(METRICS.validationRate)).toEqual([
      bytesPerSecond(pin.car!.bytes, values(METRICS.validationTime)[0]!),
    ])

    // The worker: started, searched, transferred and uploaded the same bytes. Every attempt ends uploaded or
    // failed (on a loaded machine an attempt may stall and be retried: then with its reason).
    expect(values(METRICS.jobsFinished)).toEqual([1])
    expect(values(METRICS.jobsStarted).length).toBe(1 + values(METRICS.jobsFailed).length)
    for (const p of pointsOf(points(), METRICS.jobsFailed).filter((p) => p.dimensions.Reason))
      expect(p.dimensions.Reason).toMatch(/^[A-Z_]+$/)
    expect(series(METRICS.searchTime)[0]?.unit).toBe('Milliseconds')
    const [transferMs] = values(METRICS.transferTime)
    expect(transferMs).toBeGreaterThanOrEqual(0)
    expect(series(METRICS.fetchRate)).toEqual([
      expect.objectContaining({ unit: 'Bytes/Second', value: bytesPerSecond(pin.car!.bytes, transferMs!) }),
    ])
    // Gauges from the start, idle included: every one a whole number of jobs.
    for (const g of [METRICS.jobsSearching, METRICS.jobsWaiting, METRICS.jobsTransferring]) {
      expect(series(g).length).toBeGreaterThan(0)
      for (const p of series(g))
        expect(Number.isInteger(p.value) && p.value >= 0 && p.unit === 'Count').toBe(true)
    }
  })

  it('content nobody serves: a search shows in the gauges, then a failed job by reason', async () => {
    const dead = contentKey(rawBlock(64, `metrics-dead ${Math.random()}`).root)
    const before = lines.length
    expect((await t.api(`/pins/${dead}`, { method: 'POST' })).status).toBe(200)
    await until('a gauge of one job searching', () =>
      parseEmfLines(lines.slice(before).join('\n')).some(
        (p) => p.name === METRICS.jobsSearching.name && p.value >= 1,
      )
        ? true
        : undefined,
    )
    await until('a stalled attempt', () =>
      values(METRICS.jobsFailed, { Reason: 'FETCH_STALLED' }).length > 0 ? true : undefined,
    )
    expect(series(METRICS.jobsFailed, { Reason: 'FETCH_STALLED' })[0]?.unit).toBe('Count')
    // Counted in the total series too (one total per reason), and nothing stored for it.
    const reasons = pointsOf(points(), METRICS.jobsFailed).filter((p) => p.dimensions.Reason !== undefined)
    expect(values(METRICS.jobsFailed).length).toBe(reasons.length)
    expect(values(METRICS.pinsStored)).toEqual([1])
    // Stop its retries: the request goes away.
    expect((await t.api(`/pins/${dead}`, { method: 'DELETE' })).status).toBe(200)
  })

  it('a CAR with a flipped byte: counted by fault code, not stored', async () => {
    const bad = flippedByte()
    const cid = contentKey(bad.root)
    const now = Date.now()
    await t.pins.request(cid, [], now)
    expect((await t.pins.claim(cid, 'metricsbad', now + 60_000, now)).kind).toBe('claimed')
    await t.temp.put(
      tempCarKey(cid, 'metricsbad'),
      (async function* () {
        yield bad.car
      })(),
    )
    await until('the invalid CAR line', () => (values(METRICS.invalidCars).length > 0 ? true : undefined))
    expect(values(METRICS.invalidCars, { FaultCode: bad.code })).toEqual([1])
    expect(series(METRICS.invalidCars)).toEqual([expect.objectContaining({ unit: 'Count', value: 1 })])
    expect(values(METRICS.pinsStored)).toEqual([1])
  })

  it('requests: accepted per API, 4xx by API and reason code', async () => {
    const token = await t.createPsaToken('metrics')
    const psa = (path: string, init: RequestInit = {}) =>
      fetch(`${t.psaUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
      })
    const cid = contentKey(rawBlock(64, `metrics-psa ${Math.random()}`).root)
    expect((await psa('/pins', { method: 'POST', body: JSON.stringify({ cid }) })).status).toBe(202)
    const badCid = await psa('/pins', { method: 'POST', body: JSON.stringify({ cid: 'not-a-cid' }) })
    expect(badCid.status).toBe(400)
    const psaReason = ((await badCid.json()) as { error: { reason: string } }).error.reason
    expect((await fetch(`${t.psaUrl}/pins`, { headers: { authorization: 'Bearer nope' } })).status).toBe(401)

    expect((await t.api('/pins/not-a-cid', { method: 'POST' })).status).toBe(400)
    expect((await fetch(`${t.system.url}/pins`, { headers: { authorization: 'Basic nope' } })).status).toBe(
      401,
    )
    expect((await t.api('/nowhere')).status).toBe(404)

    expect(values(METRICS.pinRequestsAccepted, { Api: 'psa' })).toEqual([1])
    expect(values(METRICS.clientErrors, { Api: 'psa', Reason: psaReason })).toEqual([1])
    expect(values(METRICS.clientErrors, { Api: 'psa', Reason: 'UNAUTHORIZED' })).toEqual([1])
    expect(values(METRICS.clientErrors, { Api: 'cluster', Reason: 'INVALID_CID' })).toEqual([1])
    expect(values(METRICS.clientErrors, { Api: 'cluster', Reason: 'UNAUTHORIZED' })).toEqual([1])
    expect(values(METRICS.clientErrors, { Api: 'cluster', Reason: 'NOT_FOUND' })).toEqual([1])
    // The per-API series counts every 4xx of that API; there is no series without an Api.
    expect(values(METRICS.clientErrors, { Api: 'psa' })).toEqual([1, 1])
    expect(values(METRICS.clientErrors, { Api: 'cluster' })).toEqual([1, 1, 1])
    expect(values(METRICS.clientErrors)).toEqual([])
    for (const p of pointsOf(points(), METRICS.clientErrors)) expect(p.unit).toBe('Count')
  })
})
