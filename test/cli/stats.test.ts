/**
 * `pickup stats` shows the last hour's figures in local mode, from the metric lines local mode keeps: after
 * three pins stored and one that nobody serves failed, the counts, bytes, time to pinned and failures by reason
 * it prints are those of the pin records.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { contentKey } from '../../core/cid.ts'
import type { MetricsSummary } from '../../core/metrics-summary.ts'
import type { Pin } from '../../core/pin.ts'
import { rawBlock, unixfsFile } from '../fixtures/dags.ts'
import { startTestSystem, type TestSystem, writeEndpointsFile } from '../helpers/system.ts'
import { pickup } from './helpers.ts'

let t: TestSystem
let dataDir: string
const stored: Pin[] = []

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'pickup-cli-stats-'))
  // Two attempts per pin: the content nobody serves fails after two stalls.
  t = await startTestSystem(
    { MAX_ATTEMPTS: '2', FETCH_CHUNK_TIMEOUT_MS: '2500' },
    { metricsFile: join(dataDir, 'metrics.ndjson') },
  )
  await writeEndpointsFile(t.system, dataDir)
  const origins = encodeURIComponent(t.originAddrs().join(','))
  const files = await Promise.all(
    [100, 300, 900].map((kib) => unixfsFile(kib * 1024, { seed: `cli-stats-${kib}-${Math.random()}` })),
  )
  for (const f of files) await t.addToOrigin(f.blocks)
  const dead = contentKey(rawBlock(64, `cli-stats dead ${Math.random()}`).root)
  for (const cid of [...files.map((f) => contentKey(f.root)), dead])
    expect((await t.api(`/pins/${cid}?origins=${origins}`, { method: 'POST' })).status).toBe(200)
  for (const f of files) stored.push(await t.waitForPin(contentKey(f.root), 'pinned'))
  await t.waitForPin(dead, 'failed')
})
afterAll(async () => {
  await t?.stop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

describe('pickup stats: the last hour', () => {
  it('shows pins stored, bytes, time to pinned and failures by reason, as the records have them', async () => {
    // Time to pinned is the validator's mark (the record's last update) less the first request (its creation).
    const times = stored.map((p) => p.updated - p.created).sort((a, b) => a - b)
    const bytes = stored.reduce((n, p) => n + p.car!.bytes, 0)

    const json = await pickup(dataDir, ['stats', '--json'])
    expect(json.code, json.stderr).toBe(0)
    const { lastHour, pins } = JSON.parse(json.stdout) as {
      lastHour: MetricsSummary
      pins: Record<string, number>
    }
    expect(pins).toMatchObject({ pinned: 3, failed: 1 })
    // Every attempt ends uploaded or failed; the dead content's two attempts stalled (on a loaded machine a
    // reachable pin's attempt may stall too, and be retried).
    const { failed } = lastHour.jobs
    expect(failed).toBeGreaterThanOrEqual(2)
    expect(lastHour).toMatchObject({
      pinsStored: 3,
      bytesStored: bytes,
      // Nearest rank of three: the middle one, then the largest.
      timeToPinnedMs: { p50: times[1], p90: times[2], p99: times[2] },
      jobs: { started: 3 + failed, finished: 3, failed, failedByReason: [['FETCH_STALLED', failed]] },
      invalidCarsByFault: [],
      requestsAccepted: { cluster: 4 },
      clientErrorsByReason: [],
    })
    expect(lastHour.searchMs?.p50).toBeGreaterThanOrEqual(0)
    expect(lastHour.transferMs?.p99).toBeGreaterThanOrEqual(lastHour.transferMs!.p50)

    const text = await pickup(dataDir, ['stats'])
    expect(text.code, text.stderr).toBe(0)
    const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`
    expect(text.stdout).toMatch(/^Last hour \(the metric lines local mode keeps\)$/m)
    expect(text.stdout).toContain(
      `  Pins stored        3, ${(bytes / 1024 / 1024).toFixed(1)} MiB (${bytes} B)\n`,
    )
    expect(text.stdout).toContain(
      `  Time to pinned     p50 ${s(times[1]!)}, p90 ${s(times[2]!)}, p99 ${s(times[2]!)} (from the first request)\n`,
    )
    expect(text.stdout).toContain(
      `  Fetch attempts     ${3 + failed} started, 3 uploaded, ${failed} failed (FETCH_STALLED ${failed})\n`,
    )
    expect(text.stdout).toContain('  Requests accepted  cluster 4\n')
    expect(text.stdout).toContain('  Invalid CARs       none\n')
  })
})
