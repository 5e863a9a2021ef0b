/**
 * `pickup dlq ...` against local mode: the command works on the failed-jobs queue, where the dead-letter
 * consumer forwards the jobs it gave up on. One system has a worker and fails real jobs through the normal path
 * (pin queue, dead-letter queue, consumer); the other has none, so what the command sends to the pin queue
 * stays there to be counted, and its failed-jobs queue is filled by hand.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Pin } from '../../core/pin.ts'
import { rawBlock } from '../fixtures/dags.ts'
import { startTestSystem, type TestSystem, writeEndpointsFile } from '../helpers/system.ts'
import {
  drainQueue,
  pickup,
  putPins,
  queueCounts,
  runPickup,
  sendBodies,
  spawnPickup,
  waitUntil,
} from './helpers.ts'

let failing: TestSystem
let idle: TestSystem
let failingDir: string
let idleDir: string

beforeAll(async () => {
  ;[failing, idle, failingDir, idleDir] = await Promise.all([
    startTestSystem({ FETCH_CHUNK_TIMEOUT_MS: '300', RETRY_BASE_DELAY_SECONDS: '0', MAX_ATTEMPTS: '2' }),
    startTestSystem({}, { worker: 'none' }),
    mkdtemp(join(tmpdir(), 'pickup-cli-dlq-a-')),
    mkdtemp(join(tmpdir(), 'pickup-cli-dlq-b-')),
  ])
  await Promise.all([
    writeEndpointsFile(failing.system, failingDir),
    writeEndpointsFile(idle.system, idleDir),
  ])
})
afterAll(async () => {
  await Promise.all([failing?.stop(), idle?.stop()])
  await Promise.all([failingDir, idleDir].map((d) => d && rm(d, { recursive: true, force: true })))
})

interface ListedLetter {
  id: string
  cid?: string
  body?: string
  receiveCount: number
  ageMs: number
  sent: string
  reason?: string
  failedAt?: number
  failed?: string
  pin?: { status: string; attempts: number; error?: string }
}

/** Pin records for `n` CIDs (so redrive has pins to send jobs for) and their jobs in the failed-jobs queue. */
async function deadJobs(t: TestSystem, prefix: string, n: number, status: Pin['status'] = 'failed') {
  const now = Date.now()
  const cids = Array.from({ length: n }, (_, i) => `bafy${prefix}${String(i).padStart(6, '0')}`)
  const { clients, names } = t.system.services
  await putPins(
    clients.dynamodb,
    names.pinsTable,
    cids.map((cid) => ({
      cid,
      status,
      created: now,
      updated: now,
      attempts: 3,
      origins: [],
      error: 'FETCH_STALLED: no data received for 300 ms',
    })),
  )
  await sendBodies(
    clients.sqs,
    names.failedJobsQueueUrl,
    cids.map((cid) => JSON.stringify({ cid, origins: [] })),
  )
  return cids
}

function cidsOf(bodies: string[]): string[] {
  return bodies.map((b) => (JSON.parse(b) as { cid: string }).cid)
}

describe('pickup dlq, with real failures', () => {
  it('lists and shows a job that failed every attempt, with the reason the consumer recorded; redrive gives it another round', async () => {
    const cid = rawBlock(64, 'nobody-has-this').root.toString()
    expect((await failing.api(`/pins/${cid}`, { method: 'POST' })).status).toBe(200)
    const { clients, names } = failing.system.services
    // Two attempts, the dead-letter queue, its consumer: the pin is failed and the job forwarded.
    await waitUntil(
      'the failed job',
      () => queueCounts(clients.sqs, names.failedJobsQueueUrl),
      (c) => c.visible === 1,
    )
    expect((await failing.pins.get(cid))?.status).toBe('failed')
    // Deleted from the dead-letter queue once forwarded.
    await waitUntil(
      'the dead letter deleted',
      () => queueCounts(clients.sqs, names.deadLetterQueueUrl),
      (c) => c.visible === 0 && c.inFlight === 0,
      5_000,
    )

    const listed = await runPickup(failingDir, ['dlq', 'list', '--json'])
    expect(listed.code, listed.stderr).toBe(0)
    const letters = JSON.parse(listed.stdout) as ListedLetter[]
    expect(letters).toHaveLength(1)
    const [letter] = letters
    expect(letter).toMatchObject({ cid, pin: { status: 'failed', attempts: 2 } })
    expect(letter!.receiveCount).toBeGreaterThanOrEqual(3)
    expect(letter!.reason).toBe(
      `FETCH_STALLED: no data received for 300 ms (gave up after ${letter!.receiveCount} receives)`,
    )
    expect(letter!.pin!.error).toBe(letter!.reason)
    expect(Date.parse(letter!.failed!)).toBe(letter!.failedAt)
    expect(letter!.failedAt).toBeGreaterThanOrEqual(Date.parse(letter!.sent))
    expect(letter!.failedAt).toBeLessThanOrEqual(Date.now())
    expect(letter!.ageMs).toBeGreaterThanOrEqual(0)

    const table = await pickup(failingDir, ['dlq', 'list'])
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+CID\s+PIN\s+ATTEMPTS\s+RECEIVES\s+FAILED\s+REASON$/)
    expect(table.stdout.split('\n')[1]).toMatch(
      new RegExp(
        `^${letter!.id}\\s+${cid}\\s+failed\\s+2\\s+${letter!.receiveCount}\\s+\\S+ ago\\s+FETCH_STALLED`,
      ),
    )

    const shown = await pickup(failingDir, ['dlq', 'show', letter!.id])
    expect(shown.code, shown.stderr).toBe(0)
    expect(shown.stdout).toContain(`CID        ${cid}`)
    expect(shown.stdout).toMatch(/^Failed +\d{4}-\d\d-\d\dT.* ago\), after \d+ receives$/m)
    expect(shown.stdout).toMatch(/^Reason +FETCH_STALLED: no data received for 300 ms \(gave up after/m)
    expect(shown.stdout).toMatch(/^Last error +FETCH_STALLED/m)
    expect(
      JSON.parse((await pickup(failingDir, ['dlq', 'show', letter!.id, '--json'])).stdout),
    ).toMatchObject({ id: letter!.id, cid, reason: letter!.reason })
    // Reading left it where it was, visible.
    expect(await queueCounts(clients.sqs, names.failedJobsQueueUrl)).toEqual({ visible: 1, inFlight: 0 })
    expect(await pickup(failingDir, ['dlq', 'show', 'no-such-id'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/no message no-such-id in the failed-jobs queue/),
    })
    const stats = JSON.parse((await pickup(failingDir, ['stats', '--json'])).stdout) as {
      deadLetters: { visible: number }
      failedJobs: { visible: number }
    }
    expect(stats.failedJobs.visible).toBe(1)
    expect(stats.deadLetters.visible).toBe(0)

    const redriven = await pickup(failingDir, ['dlq', 'redrive', letter!.id])
    expect(redriven.code, redriven.stderr).toBe(0)
    expect(redriven.stdout).toBe('Sent 1 message back to the pin queue (1 failed pins are queued again).\n')
    // The worker tries again (attempts go on from 2), fails again, and the job is given up on again.
    const again = await waitUntil(
      'another round of attempts, failed',
      () => failing.pins.get(cid),
      (p) => (p?.attempts ?? 0) >= 4 && p?.status === 'failed',
      30_000,
    )
    expect(again?.error).toMatch(
      /^FETCH_STALLED: no data received for 300 ms \(gave up after \d+ receives\)$/,
    )
    await waitUntil(
      'the failed job again',
      () => queueCounts(clients.sqs, names.failedJobsQueueUrl),
      (c) => c.visible === 1,
    )
    const [second] = JSON.parse(
      (await pickup(failingDir, ['dlq', 'list', '--json'])).stdout,
    ) as ListedLetter[]
    expect(second).toMatchObject({ cid, reason: again!.error, pin: { attempts: 4 } })
    expect(second!.id).not.toBe(letter!.id)
  })
})

describe('pickup dlq, on a queue filled by hand', () => {
  let sqs: TestSystem['system']['services']['clients']['sqs']
  const names = () => idle.system.services.names
  beforeAll(() => {
    sqs = idle.system.services.clients.sqs
  })

  it('redrives selected ids, then all, with progress lines when not on a terminal', async () => {
    const cids = await deadJobs(idle, 'sel', 25)
    await sendBodies(sqs, names().failedJobsQueueUrl, ['not a job'])
    const listed = JSON.parse((await pickup(idleDir, ['dlq', 'list', '--json'])).stdout) as ListedLetter[]
    expect(listed).toHaveLength(26)
    const picked = listed.filter((l) => l.cid === cids[3] || l.cid === cids[20]).map((l) => l.id)

    const some = await pickup(idleDir, ['dlq', 'redrive', ...picked, 'missing-id'])
    expect(some.code).toBe(1)
    expect(some.stdout).toMatch(/^Sent 2 messages back to the pin queue \(2 failed pins are queued again\)\./)
    expect(some.stdout).toContain('Not in the failed-jobs queue: missing-id')
    expect(await queueCounts(sqs, names().pinQueueUrl)).toEqual({ visible: 2, inFlight: 0 })
    expect((await idle.pins.get(cids[3]!))?.status).toBe('queued')

    const all = await runPickup(idleDir, ['dlq', 'redrive', '--all'])
    expect(all.code, all.stderr).toBe(0)
    expect(all.stdout).toMatch(/^Sent 23 messages back to the pin queue/)
    expect(all.stdout).toContain('Left 1 that are not pin jobs: purge them.')
    expect(all.stderr).toMatch(/^redrive: 24\/24 100%, \d+\/s$/m)
    expect(all.stderr).not.toContain('\r')
    expect(await queueCounts(sqs, names().failedJobsQueueUrl)).toEqual({ visible: 1, inFlight: 0 })
    expect(cidsOf(await drainQueue(sqs, names().pinQueueUrl)).sort()).toEqual([...cids].sort())
    expect(await drainQueue(sqs, names().failedJobsQueueUrl)).toEqual(['not a job'])

    expect(await pickup(idleDir, ['dlq', 'redrive'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/pass --all/),
    })
  })

  it('loses nothing when a redrive is interrupted, by Ctrl-C or by a kill', async () => {
    const cids = await deadJobs(idle, 'int', 1500)
    const pinQueue = names().pinQueueUrl
    const failedJobsQueue = names().failedJobsQueueUrl

    // Ctrl-C: stops after the batch in hand and releases what it holds.
    const gentle = spawnPickup(idleDir, ['dlq', 'redrive', '--all'])
    await waitUntil(
      'the redrive to start',
      () => queueCounts(sqs, pinQueue),
      (c) => c.visible > 0,
      20_000,
      5,
    )
    gentle.child.kill('SIGINT')
    const stopped = await gentle.done
    expect(stopped.code).toBe(130)
    expect(stopped.stdout).toContain('Interrupted: the messages not sent are still in the failed-jobs queue.')
    const afterGentle = await queueCounts(sqs, failedJobsQueue)
    expect(afterGentle.inFlight).toBe(0)
    expect(afterGentle.visible).toBeGreaterThan(0)

    // A kill: whatever it held reappears after --hide-seconds; at worst a job is on both queues.
    const hard = spawnPickup(idleDir, ['dlq', 'redrive', '--all', '--hide-seconds', '1'])
    const before = (await queueCounts(sqs, pinQueue)).visible
    await waitUntil(
      'the redrive to resume',
      () => queueCounts(sqs, pinQueue),
      (c) => c.visible > before,
      20_000,
      5,
    )
    hard.child.kill('SIGKILL')
    await hard.done
    // Killed part way: some jobs are still in the failed-jobs queue (hidden for at most a second more).
    const left = await queueCounts(sqs, failedJobsQueue)
    expect(left.visible + left.inFlight).toBeGreaterThan(0)
    await new Promise((r) => setTimeout(r, 1100))

    const onPinQueue = cidsOf(await drainQueue(sqs, pinQueue))
    const onFailedJobs = cidsOf(await drainQueue(sqs, failedJobsQueue))
    expect(new Set([...onPinQueue, ...onFailedJobs])).toEqual(new Set(cids))
    expect(onPinQueue.length + onFailedJobs.length).toBeGreaterThanOrEqual(cids.length)
  })

  it('purges only after asking, and not without a terminal unless told --yes', async () => {
    await deadJobs(idle, 'purge', 12)
    const noTerminal = await pickup(idleDir, ['dlq', 'purge'])
    expect(noTerminal).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/no terminal to ask on; pass --yes/),
    })
    const questions: string[] = []
    const declined = await pickup(idleDir, ['dlq', 'purge'], {
      prompt: async (q) => {
        questions.push(q)
        return 'no'
      },
    })
    expect(declined).toMatchObject({ code: 1, stderr: 'not purged\n' })
    expect(questions[0]).toMatch(
      /^Delete all 12 messages of the failed-jobs queue http:\/\/127\.0\.0\.1:\d+\/.*pickup-local-pin-failed\?/,
    )
    expect((await queueCounts(sqs, names().failedJobsQueueUrl)).visible).toBe(12)

    const confirmed = await pickup(idleDir, ['dlq', 'purge', '--json'], { prompt: async () => 'yes' })
    expect(confirmed.code, confirmed.stderr).toBe(0)
    expect(JSON.parse(confirmed.stdout)).toEqual({ purged: 12 })
    expect((await queueCounts(sqs, names().failedJobsQueueUrl)).visible).toBe(0)

    await deadJobs(idle, 'purge2', 3)
    const yes = await runPickup(idleDir, ['dlq', 'purge', '--yes'])
    expect(yes).toMatchObject({ code: 0, stdout: 'Purged the failed-jobs queue (3 messages).\n' })
    expect((await runPickup(idleDir, ['dlq', 'list'])).stdout).toBe('the failed-jobs queue is empty\n')
  })
})
