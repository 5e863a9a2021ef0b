/**
 * Content nobody serves must not hold up content that can be served. Through local mode (`local/main.ts` in a
 * child process, its worker in one of its own, default settings: BATCH_SIZE 10, SEARCH_CONCURRENCY 2,500, a
 * 2-minute stall timeout), one run:
 *
 *   - the anchor: time to pin 50 reachable 100 KiB pins (one Pinning Service API user, origins given) alone,
 *     after unmeasured warm-up rounds of the same (WARM_UP, default 3), and measured again after the
 *     backlogs (each backlog row is compared with both);
 *   - the same behind 20, 200 and 2,000 unreachable pins posted first by the same user (CIDs no peer has);
 *   - after each backlog, its requests are deleted: how long until no job for them is left (deleting cancels);
 *     a row whose 50 are not all pinned within BACKLOG_WAIT_S (default 900) says how many were;
 *   - fairness between requesters: time to pin another user's single pin posted after one user's FAIR_BACKLOG
 *     (default 10,000) reachable 1 KiB pins, against the time to pin a single pin alone (0: no such row).
 *
 * Every row also says the machine's load average at its start and end (the bench shares the machine), how
 * many jobs the dead-letter queue has taken so far, and for a backlog row how long until all of it was
 * received (the pin queue has no visible message), the CPU seconds meanwhile of local mode's process and of
 * its worker's (a process of its own, as `npm start` runs it), and the worker's resident memory before and
 * then (what thousands of searches cost it). LOCAL_CPU_PROF=<dir> writes a CPU profile of local mode's
 * process there.
 *
 *   npm run bench -- dead-backlog [backlogs ... | none]      default: 20 200 2000
 */

import { availableParallelism, loadavg } from 'node:os'
import {
  BatchWriteItemCommand,
  type BatchWriteItemCommandOutput,
  DynamoDBClient,
  type WriteRequest,
} from '@aws-sdk/client-dynamodb'
import { GetQueueAttributesCommand, SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs'
import { createStores, type ResourceName } from '../adapters/compose.ts'
import { encodePin } from '../adapters/dynamodb/pins.ts'
import { encodeRequest } from '../adapters/dynamodb/requests.ts'
import { createHeliaNode } from '../adapters/helia/node.ts'
import { encodeJob, messageGroupOf } from '../adapters/sqs/queue.ts'
import { createAccessToken, psaOwner } from '../core/access-tokens.ts'
import { contentKey } from '../core/cid.ts'
import type { PinJob } from '../core/pin.ts'
import type { PinRequest, PinStore } from '../core/ports.ts'
import { newRequestId } from '../core/psa-requests.ts'
import { type Dag, rawBlock } from '../test/fixtures/dags.ts'
import { childPids } from '../test/helpers/proc.ts'
import { startLocalMode } from './lib/local-mode.ts'
import { cpuSeconds, rssBytes } from './lib/proc.ts'

const args = process.argv.slice(2)
const backlogs = args.includes('none') ? [] : args.length > 0 ? args.map(Number) : [20, 200, 2000]
const REACHABLE = 50
const FAIR_BACKLOG = Number(process.env.FAIR_BACKLOG ?? 10_000)
const BACKLOG_WAIT_MS = Number(process.env.BACKLOG_WAIT_S ?? 900) * 1000
const POST_CONCURRENCY = 16
const WARM_UP = Number(process.env.WARM_UP ?? 3)

const local = await startLocalMode()
/** `npm start`'s worker runs as a process of its own (LOCAL_WORKER=process, the default). */
const workerPid = childPids(local.child.pid)[0]
const aws = local.endpoints.aws as {
  dynamodb: string
  sqs: string
  region: string
  credentials: { accessKeyId: string; secretAccessKey: string }
}
const resources = local.endpoints.resources as Record<ResourceName, string>
const dynamodb = new DynamoDBClient({
  endpoint: aws.dynamodb,
  region: aws.region,
  credentials: aws.credentials,
})
const sqs = new SQSClient({ endpoint: aws.sqs, region: aws.region, credentials: aws.credentials })
const stores = createStores({ dynamodb }, (name) => resources[name])
const pins = stores.pins()
const requests = stores.requests()
const tokens = stores.tokens()
const clock = { now: () => Date.now() }
const token = async (user: string) => (await createAccessToken({ user }, { tokens, clock })).token

const origin = await createHeliaNode({ allowPrivateDials: true })
const origins = origin.libp2p.getMultiaddrs().map((a) => a.toString())

let round = 0
function reachable(n: number, size: number): Dag[] {
  round++
  return Array.from({ length: n }, (_, i) => rawBlock(size, `reachable ${round} ${i} ${Math.random()}`))
}
function unreachable(n: number): Dag[] {
  round++
  return Array.from({ length: n }, (_, i) => rawBlock(64, `nobody serves ${round} ${i} ${Math.random()}`))
}

async function serve(dags: Dag[]): Promise<void> {
  for (const d of dags) for (const b of d.blocks) await origin.blockstore.put(b.cid, b.bytes)
}

async function inBatches<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  await Promise.all(
    Array.from({ length: POST_CONCURRENCY }, async () => {
      while (next < items.length) {
        const i = next++
        out[i] = await fn(items[i]!)
      }
    }),
  )
  return out
}

/** Posts Pinning Service API requests for the DAGs; answers their requestids. */
function post(user: string, dags: Dag[], withOrigins: boolean): Promise<string[]> {
  return inBatches(dags, async (d) => {
    const res = await fetch(`${local.api}/psa/pins`, {
      method: 'POST',
      headers: { authorization: `Bearer ${user}`, 'content-type': 'application/json' },
      body: JSON.stringify({ cid: d.root.toString(), ...(withOrigins ? { origins } : {}) }),
    })
    if (res.status !== 202) throw new Error(`POST /psa/pins: ${res.status} ${await res.text()}`)
    return ((await res.json()) as { requestid: string }).requestid
  })
}

async function batchWrite(table: string, items: WriteRequest[]): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    let pending: WriteRequest[] | undefined = items.slice(i, i + 25)
    while (pending && pending.length > 0) {
      const res: BatchWriteItemCommandOutput = await dynamodb.send(
        new BatchWriteItemCommand({ RequestItems: { [table]: pending } }),
      )
      pending = res.UnprocessedItems?.[table]
    }
  }
}

/**
 * Writes what POST /psa/pins writes for each DAG (a queued pin, the user's request, a job on the pin queue),
 * in batches: the API takes a request at a time, and under load posts more slowly than the worker pins
 * reachable content, so a backlog of thousands would never be queued at once. The pins and requests are in
 * the tables before any job is on the queue. Answers the requestids.
 */
async function seed(userName: string, dags: Dag[], withOrigins: boolean): Promise<string[]> {
  const owner = psaOwner(userName)
  const now = Date.now()
  const first = await requests.reserveCreated(owner, now)
  const created = await requests.reserveCreated(owner, first + dags.length)
  const jobs: PinJob[] = []
  const pinItems: WriteRequest[] = []
  const requestItems: WriteRequest[] = []
  const ids: string[] = []
  for (const [i, d] of dags.entries()) {
    const key = contentKey(d.root)
    const jobOrigins = withOrigins ? origins : []
    pinItems.push({
      PutRequest: {
        Item: encodePin({
          cid: key,
          status: 'queued',
          created: now,
          updated: now,
          attempts: 0,
          origins: jobOrigins,
        }),
      },
    })
    const request: PinRequest = {
      requestid: newRequestId(key),
      owner,
      cid: key,
      sourceCid: d.root.toString(),
      meta: {},
      origins: jobOrigins,
      created: created - dags.length + i,
      knownPinned: false,
    }
    ids.push(request.requestid)
    requestItems.push({ PutRequest: { Item: encodeRequest(request) } })
    jobs.push({ cid: key, origins: jobOrigins, requester: owner })
  }
  await batchWrite(resources.pinsTable, pinItems)
  await batchWrite(resources.requestsTable, requestItems)
  const batches: PinJob[][] = []
  for (let i = 0; i < jobs.length; i += 10) batches.push(jobs.slice(i, i + 10))
  await inBatches(batches, async (batch) => {
    const res = await sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: resources.pinQueueUrl,
        Entries: batch.map((job, j) => ({
          Id: String(j),
          MessageBody: encodeJob(job),
          MessageGroupId: messageGroupOf(job),
        })),
      }),
    )
    if ((res.Failed ?? []).length > 0) throw new Error(`SendMessageBatch: ${JSON.stringify(res.Failed)}`)
  })
  return ids
}

async function remove(user: string, requestids: string[]): Promise<void> {
  await inBatches(requestids, async (id) => {
    const res = await fetch(`${local.api}/psa/pins/${id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${user}` },
    })
    if (res.status !== 202) throw new Error(`DELETE /psa/pins: ${res.status} ${await res.text()}`)
  })
}

async function statuses(store: PinStore, dags: Dag[]) {
  const keys = dags.map((d) => contentKey(d.root))
  const found = new Map<string, number>()
  for (let i = 0; i < keys.length; i += 100) {
    for (const pin of (await store.getMany(keys.slice(i, i + 100))).values()) {
      const s = pin.status === 'pinning' ? `pinning:${pin.progress?.phase ?? 'searching'}` : pin.status
      found.set(s, (found.get(s) ?? 0) + 1)
    }
  }
  return found
}

async function until(check: () => Promise<boolean>, timeoutMs = 30 * 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 200))
  }
}

/**
 * Posts `n` reachable 100 KiB pins with the token and answers the seconds until all are pinned, or undefined
 * (and how many were) when they are not within `waitMs`.
 */
async function pinReachable(
  user: string,
  n = REACHABLE,
  waitMs = 30 * 60_000,
): Promise<{ s?: number; postS: number; pinned: number }> {
  const dags = reachable(n, 100 * 1024)
  await serve(dags)
  const started = Date.now()
  await post(user, dags, true)
  const postS = (Date.now() - started) / 1000
  let pinned = 0
  try {
    await until(async () => {
      pinned = (await statuses(pins, dags)).get('pinned') ?? 0
      return pinned === dags.length
    }, waitMs)
  } catch {
    return { postS, pinned }
  }
  return { s: (Date.now() - started) / 1000, postS, pinned }
}

const seconds = (r: { s?: number }) => r.s ?? Number.NaN
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0)

/** The machine's 1-minute load average now (the bench shares it: every figure is read beside it). */
const load = () => loadavg()[0]!.toFixed(1)

/** Jobs the dead-letter queue has taken so far (its consumer forwards them to the failed-jobs queue). */
async function deadLettered(): Promise<number> {
  const res = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: resources.failedJobsQueueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  )
  const a = res.Attributes ?? {}
  return Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0)
}

/** Seconds from `started` until none of the backlog's pins is queued or held by a worker. */
async function drained(dags: Dag[], started: number): Promise<number> {
  await until(async () => {
    const s = await statuses(pins, dags)
    return [...s.keys()].every((k) => !k.startsWith('pinning') && k !== 'queued')
  })
  return (Date.now() - started) / 1000
}

const rows: Array<Record<string, string>> = []
let rowLoad = load()
/** Adds a row, with the load average at its start and end and the jobs dead-lettered so far. */
async function push(row: Record<string, string>): Promise<void> {
  rows.push({
    ...row,
    'load average (1 min), start / end': `${rowLoad} / ${load()}`,
    'dead-lettered so far': String(await deadLettered()),
  })
  console.error(rows.at(-1))
  rowLoad = load()
}

/**
 * Seconds from `since` until the pin queue holds no visible message (the backlog, and the measured pins
 * posted so far, all received by the worker, which claims each at once), polled every 250 ms through one
 * GetQueueAttributes: reading the backlog's pins instead would load local mode's DynamoDB with thousands of
 * reads a second while it is measured. Undefined if `stop` resolves first.
 */
async function allReceived(since: number, stop: Promise<unknown>): Promise<number | undefined> {
  let stopped = false
  void stop.finally(() => {
    stopped = true
  })
  while (!stopped) {
    const res = await sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: resources.pinQueueUrl,
        AttributeNames: ['ApproximateNumberOfMessages'],
      }),
    )
    if (Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) === 0) return (Date.now() - since) / 1000
    await new Promise((r) => setTimeout(r, 250))
  }
  return undefined
}

console.error(
  `${availableParallelism()} cores, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}; ` +
    `SEARCH_CONCURRENCY=${process.env.SEARCH_CONCURRENCY ?? '(default)'} BATCH_SIZE=${process.env.BATCH_SIZE ?? '(default)'}`,
)
const user = await token('bench-user')
try {
  // Unmeasured: local mode's first requests compile the API's and the worker's code paths, which made the
  // first anchor up to 1.5x slower than the same measured again at the end (WARM_UP rounds, default 3).
  for (let i = 0; i < WARM_UP; i++) {
    const warm = await pinReachable(user)
    await push({
      'backlog posted first': 'none (warm-up, not measured)',
      '50 pinned in s': seconds(warm).toFixed(1),
    })
  }
  const first = await pinReachable(user)
  const alone = seconds(first)
  await push({
    'backlog posted first': 'none (anchor)',
    '50 pinned in s': alone.toFixed(1),
    'x alone': '1.0',
    'of which posting the 50, s': first.postS.toFixed(1),
  })
  /** The backlog rows and their times, compared with the anchor measured again at the end too. */
  const backlogRows: Array<{ row: Record<string, string>; s: number }> = []
  for (const n of backlogs) {
    const dead = unreachable(n)
    const cpuBefore = cpuSeconds(local.child.pid)
    const workerCpuBefore = cpuSeconds(workerPid)
    const workerRssBefore = rssBytes(workerPid)
    const postStarted = Date.now()
    const ids = await seed('bench-user', dead, false)
    const postS = (Date.now() - postStarted) / 1000
    const measured = pinReachable(user, REACHABLE, BACKLOG_WAIT_MS)
    const startedS = await allReceived(postStarted, measured)
    const startCpuS = cpuSeconds(local.child.pid) - cpuBefore
    const workerStartCpuS = cpuSeconds(workerPid) - workerCpuBefore
    const workerRss = rssBytes(workerPid)
    const r = await measured
    const during = await statuses(pins, dead)
    const deleteStarted = Date.now()
    await remove(user, ids)
    const drainS = await drained(dead, deleteStarted)
    const after = await statuses(pins, dead)
    await push({
      'backlog posted first': `${n} unreachable (same user; queued in ${postS.toFixed(0)} s)`,
      '50 pinned in s':
        r.s === undefined ? `not within ${BACKLOG_WAIT_MS / 1000} s (${r.pinned} pinned)` : r.s.toFixed(1),
      'x alone':
        r.s === undefined ? `> ${(BACKLOG_WAIT_MS / 1000 / alone).toFixed(0)}` : (r.s / alone).toFixed(1),
      'backlog when the measured pins were pinned': [...during].map(([k, v]) => `${v} ${k}`).join(', '),
      'CPU s from queueing until the backlog was all received (50 pins included), local mode / its worker':
        startedS === undefined ? '' : `${startCpuS.toFixed(1)} / ${workerStartCpuS.toFixed(1)}`,
      "worker's resident MiB before / when all received":
        startedS === undefined ? '' : `${mib(workerRssBefore)} / ${mib(workerRss)}`,
      'backlog all received after s':
        startedS === undefined ? 'not before the 50 were pinned' : startedS.toFixed(1),
      'deleted: no job left after s (deletes included)': drainS.toFixed(1),
      'backlog after': [...after].map(([k, v]) => `${v} ${k}`).join(', '),
    })
    if (r.s !== undefined) backlogRows.push({ row: rows.at(-1)!, s: r.s })
  }

  const last = await pinReachable(user)
  const again = seconds(last)
  await push({
    'backlog posted first': 'none (anchor, again)',
    '50 pinned in s': again.toFixed(1),
    'x alone': (again / alone).toFixed(1),
    'of which posting the 50, s': last.postS.toFixed(1),
  })
  for (const { row, s } of backlogRows) row['x anchor again'] = (s / again).toFixed(1)

  if (FAIR_BACKLOG > 0) {
    // Fairness: one user's backlog of reachable pins queued, then another user's single pin.
    const single = await token('bench-single-user')
    const oneAlone = seconds(await pinReachable(single, 1))
    await push({
      'backlog posted first': 'none: a single pin (anchor)',
      '1 pinned in s': oneAlone.toFixed(1),
    })
    const theirs = reachable(FAIR_BACKLOG, 1024)
    await serve(theirs)
    const postStarted = Date.now()
    await seed('bench-busy-user', theirs, true)
    const postS = (Date.now() - postStarted) / 1000
    const before = await statuses(pins, theirs)
    const one = seconds(await pinReachable(single, 1))
    const during = await statuses(pins, theirs)
    // The last row: its backlog is left to the worker (deleting 10,000 through the API takes longer than the
    // rest of the run).
    await push({
      'backlog posted first': `${FAIR_BACKLOG} reachable 1 KiB pins of another user (queued in ${postS.toFixed(0)} s; when the single pin was posted: ${[...before].map(([k, v]) => `${v} ${k}`).join(', ')})`,
      '1 pinned in s': one.toFixed(1),
      'x alone': (one / oneAlone).toFixed(1),
      'backlog when the measured pins were pinned': [...during].map(([k, v]) => `${v} ${k}`).join(', '),
    })
  }
} finally {
  await origin.stop()
  await local.stop()
  dynamodb.destroy()
  sqs.destroy()
}

const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))]
console.log(`| ${columns.join(' | ')} |`)
console.log(`|${columns.map(() => '---').join('|')}|`)
for (const r of rows) console.log(`| ${columns.map((c) => r[c] ?? '').join(' | ')} |`)
