/**
 * `pickup pin show|retry`, `pickup pins list`, `pickup car get` and `pickup stats` against local mode with a
 * worker: content pinned through the cluster API is shown with its CAR and requesters and downloaded intact;
 * a failed pin is retried once its cause is fixed; `--json` output parses.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CarBlockIterator } from '@ipld/car/iterator'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { contentKey } from '../../core/cid.ts'
import { collect, rawBlock, unixfsFile } from '../fixtures/dags.ts'
import { startTestSystem, type TestSystem, writeEndpointsFile } from '../helpers/system.ts'
import { pickup, runPickup, spawnPickup } from './helpers.ts'

let t: TestSystem
let dataDir: string
let cid: string
let carKey: string

beforeAll(async () => {
  ;[t, dataDir] = await Promise.all([startTestSystem(), mkdtemp(join(tmpdir(), 'pickup-cli-pins-'))])
  await writeEndpointsFile(t.system, dataDir)
  const file = await unixfsFile(600 * 1024, { seed: 'cli-pins' })
  await t.addToOrigin(file.blocks)
  cid = contentKey(file.root)
  const origins = encodeURIComponent(t.originAddrs().join(','))
  expect((await t.api(`/pins/${cid}?origins=${origins}`, { method: 'POST' })).status).toBe(200)
  carKey = (await t.waitForPin(cid, 'pinned')).car!.key
})
afterAll(async () => {
  await t?.stop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

describe('pickup pin show', () => {
  it('shows status, attempts, the stored CAR and who wants it; --json parses', async () => {
    const shown = await runPickup(dataDir, ['pin', 'show', cid])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toMatch(new RegExp(`^CID +${cid}$`, 'm'))
    expect(shown.stdout).toMatch(/^Status +pinned$/m)
    expect(shown.stdout).toMatch(/^Attempts +1$/m)
    expect(shown.stdout).toMatch(new RegExp(`^CAR key +${carKey.replace(/[.]/g, '\\.')}$`, 'm'))
    expect(shown.stdout).toMatch(/^CAR size +\d+\.\d KiB \(\d+ B\), \d+ blocks$/m)
    expect(shown.stdout).toMatch(/^Requesters +cluster /m)

    const json = JSON.parse((await pickup(dataDir, ['pin', 'show', cid, '--json'])).stdout) as {
      pin: { status: string; car: { key: string; bytes: number; cid: string } }
      requests: Array<{ owner: string }>
    }
    expect(json.pin).toMatchObject({ status: 'pinned', car: { key: carKey } })
    expect(json.requests.map((r) => r.owner)).toEqual(['cluster'])

    expect(
      await pickup(dataDir, ['pin', 'show', 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku']),
    ).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/^pickup: no pin for bafkrei/),
    })
    expect(await pickup(dataDir, ['pin', 'show', 'not-a-cid'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/not a valid CID/),
    })
  })
})

describe('pickup car get', () => {
  it('downloads the stored CAR to a file and to stdout, byte for byte', async () => {
    const stored = await t.destination.get(carKey)
    const expected = Buffer.from(await collect(stored!.body))
    const file = join(dataDir, 'pinned.car')
    const got = await pickup(dataDir, ['car', 'get', cid, '-o', file])
    expect(got.code, got.stderr).toBe(0)
    expect(got.stderr).toContain(`Wrote ${carKey}`)
    expect((await readFile(file)).equals(expected)).toBe(true)
    const roots = await (await CarBlockIterator.fromBytes(await readFile(file))).getRoots()
    expect(roots.map(String)).toEqual([cid])

    const { child, done } = spawnPickup(dataDir, ['car', 'get', cid])
    const chunks: Buffer[] = []
    child.stdout?.on('data', (c: Buffer) => chunks.push(c))
    expect((await done).code).toBe(0)
    expect(Buffer.concat(chunks).equals(expected)).toBe(true)

    expect(await pickup(dataDir, ['car', 'get', cid])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/give a file with -o/),
    })
  })
})

describe('pickup pin retry', () => {
  it('queues a failed pin again once its cause is fixed, and leaves a pinned one alone', async () => {
    const file = await unixfsFile(300 * 1024, { seed: 'cli-retry' })
    const key = contentKey(file.root)
    // Failed: its origin did not have the content (the job is long gone).
    await t.pins.request(key, t.originAddrs(), Date.now())
    await t.pins.settle(key, undefined, { status: 'failed', error: 'FETCH_STALLED: no data' }, Date.now())
    await t.addToOrigin(file.blocks)

    const retried = await runPickup(dataDir, ['pin', 'retry', key])
    expect(retried.code, retried.stderr).toBe(0)
    expect(retried.stdout).toBe(`${key} was failed; it is queued and a job is on the pin queue.\n`)
    expect((await t.waitForPin(key, 'pinned')).attempts).toBe(1)

    expect(JSON.parse((await pickup(dataDir, ['pin', 'retry', cid, '--json'])).stdout)).toMatchObject({
      outcome: 'pinned',
    })
  })
})

describe('pickup pins list', () => {
  it('pages through the pins of a status', async () => {
    const first = await pickup(dataDir, ['pins', 'list', '--status', 'pinned', '--limit', '1', '--json'])
    expect(first.code, first.stderr).toBe(0)
    const page1 = JSON.parse(first.stdout) as { pins: Array<{ cid: string }>; cursor?: string }
    expect(page1.pins).toHaveLength(1)
    expect(page1.cursor).toBeDefined()
    const page2 = JSON.parse(
      (
        await pickup(dataDir, [
          'pins',
          'list',
          '--status',
          'pinned',
          '--limit',
          '1',
          '--cursor',
          page1.cursor!,
          '--json',
        ])
      ).stdout,
    ) as { pins: Array<{ cid: string }>; cursor?: string }
    expect(page2.pins).toHaveLength(1)
    expect(page2.pins[0]!.cid).not.toBe(page1.pins[0]!.cid)

    const table = await pickup(dataDir, ['pins', 'list', '--status', 'pinned', '--limit', '1'])
    expect(table.stdout.split('\n')[0]).toMatch(/^CID\s+ATTEMPTS\s+UPDATED\s+SIZE\s+LAST ERROR$/)
    expect(table.stdout).toMatch(/^next page: pickup pins list --status pinned --limit 1 --cursor \S+$/m)
    expect((await pickup(dataDir, ['pins', 'list', '--status', 'failed'])).stdout).toBe('no failed pins\n')
    expect(await pickup(dataDir, ['pins', 'list', '--status', 'lost'])).toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/one of queued, pinning, pinned, failed/),
    })
  })
})

describe('pickup stats', () => {
  it('counts pins per status, the jobs searching and transferring, and the queues', async () => {
    // Two attempts held by a worker (straight in the pin table: no job is sent, nothing fetches them).
    const held = [
      rawBlock(64, `stats searching ${Math.random()}`),
      rawBlock(64, `stats moving ${Math.random()}`),
    ]
    const phases = ['searching', 'transferring'] as const
    for (const [i, dag] of held.entries()) {
      const key = contentKey(dag.root)
      await t.pins.request(key, [], Date.now())
      await t.pins.claim(key, `stats${i}`, Date.now() + 60_000, Date.now())
      const progress = { bytes: i * 100, blocks: i, phase: phases[i], searchStarted: Date.now() }
      await t.pins.heartbeat(key, `stats${i}`, Date.now() + 60_000, progress, Date.now())
    }
    const stats = await pickup(dataDir, ['stats', '--json'])
    expect(stats.code, stats.stderr).toBe(0)
    const s = JSON.parse(stats.stdout) as {
      pins: Record<string, number>
      queue: { visible: number }
      deadLetters: { visible: number }
      failedJobs: { visible: number }
      workers: { live: number; ready: number; notReady: unknown[] }
      jobs: { searching: number; waiting: number; transferring: number }
    }
    expect(s.jobs.searching).toBeGreaterThanOrEqual(1)
    expect(s.jobs.transferring).toBeGreaterThanOrEqual(1)
    expect(s.pins.pinned).toBeGreaterThanOrEqual(2)
    expect(s.pins.failed).toBe(0)
    expect(typeof s.queue.visible).toBe('number')
    expect(s.deadLetters.visible).toBe(0)
    expect(s.failedJobs.visible).toBe(0)
    expect(s.workers).toEqual({ live: 1, ready: 1, notReady: [] })
    const table = await runPickup(dataDir, ['stats'])
    expect(table.stdout).toMatch(/^ {2}pinned +\d+$/m)
    expect(table.stdout).toMatch(
      /^Jobs +[1-9]\d* searching, \d+ waiting for a transfer slot, [1-9]\d* transferring$/m,
    )
    expect(table.stdout).toMatch(/^Pin queue +\d+ waiting, \d+ in flight, \d+ delayed$/m)
    expect(table.stdout).toMatch(/^Dead-letter queue +0 waiting, 0 in flight, 0 delayed$/m)
    expect(table.stdout).toMatch(/^Failed jobs +0 waiting, 0 in flight, 0 delayed \(pickup dlq list\)$/m)
    expect(table.stdout).toMatch(/^Oldest queued pin +\(none queued\)$/m)
    // The local worker's embedded node answers.
    expect(table.stdout).toMatch(/^Workers +1 live, 1 ready$/m)
  })
})
