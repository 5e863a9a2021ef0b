/**
 * The cost of posting new content: `POST /psa/pins` and the cluster API's `POST /pins/{cid}`, each of a CID
 * nobody has posted before (an 8-byte raw block no peer holds), against local mode in a child process (`npm
 * start`: dynalite on disk, fauxqs, the API; bench/lib/local-mode.ts), once with `LOCAL_WORKER=none` (the API
 * and the emulators only) and once with its worker on (a process of its own, as `npm start` runs it: each
 * post's job is then received, claimed and starts a search for content it will not find). For each, at
 * concurrency 1 and 16: requests per second, p50/p99 latency and **local mode's CPU per request** (utime +
 * stime of its process and its worker's from /proc, over the run and, with the worker on, until the pin queue
 * holds no visible message: the jobs posted are all received and started), beside two anchors measured in the
 * same process in the same run: `GET /healthz` (HTTP alone) and a bare DynamoDB PutItem of a small item
 * through the AWS SDK to the same dynalite (one emulator round trip; its SDK work is the bench's, its
 * dynalite work local mode's). Before each row, local mode's CPU over one second with no request in flight
 * (with the worker on, its searches' timers and want lists: a share of every later row's figure). Prints the
 * machine's 1-minute load average at each row (it is shared: compare rows of one run).
 *
 *   npm run bench -- psa-post [seconds per run, default 5] [off|on|both, default both]
 *   LOCAL_CPU_PROF=<dir> npm run bench -- psa-post ...   local mode's V8 CPU profiles (scripts/cpu-profile.ts)
 *   POSTS_ONLY=1 npm run bench -- psa-post ...           the POST rows alone (to profile them)
 */
import { availableParallelism, loadavg } from 'node:os'
import {
  CreateTableCommand,
  DynamoDBClient,
  PutItemCommand,
  waitUntilTableExists,
} from '@aws-sdk/client-dynamodb'
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs'
import { createStores } from '../adapters/compose.ts'
import { createAccessToken } from '../core/access-tokens.ts'
import { rawBlock } from '../test/fixtures/dags.ts'
import { type LoadResult, measure } from './lib/load.ts'
import { type LocalMode, startLocalMode } from './lib/local-mode.ts'
import { treeCpuSeconds } from './lib/proc.ts'

// POSTS_ONLY=1: no anchor rows (for a CPU profile of posting alone; the figures then have no anchor).
const postsOnly = process.env.POSTS_ONLY === '1'
const seconds = Number(process.argv[2] ?? 5)
const modes = (process.argv[3] ?? 'both') === 'both' ? ['off', 'on'] : [process.argv[3] ?? 'both']
if (!(seconds > 0) || modes.some((m) => m !== 'off' && m !== 'on')) {
  console.error('usage: npm run bench -- psa-post [seconds per run] [off|on|both]')
  process.exit(2)
}

const load = () => loadavg()[0]!.toFixed(1)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface Row extends LoadResult {
  worker: string
  cpuMsPerRequest: number
  idleMsPerS: number
  loadStart: string
  loadEnd: string
}

let unique = 0
const newCid = () => rawBlock(8, `psa-post ${process.pid} ${unique++} ${Math.random()}`).root.toString()

async function runMode(worker: 'off' | 'on'): Promise<Row[]> {
  const local: LocalMode = await startLocalMode(
    worker === 'on'
      ? // The run lasts minutes: jobs of the first rows giving up their search after the default 2-minute
        // stall would put their failures (and retries) into later rows.
        { LOCAL_WORKER: 'process', FETCH_CHUNK_TIMEOUT_MS: String(30 * 60 * 1000) }
      : { LOCAL_WORKER: 'none' },
  )
  const info = local.endpoints as {
    aws: {
      dynamodb: string
      sqs: string
      region: string
      credentials: { accessKeyId: string; secretAccessKey: string }
    }
    resources: Record<string, string>
  }
  const aws = { region: info.aws.region, credentials: info.aws.credentials }
  const dynamodb = new DynamoDBClient({ ...aws, endpoint: info.aws.dynamodb })
  const sqs = new SQSClient({ ...aws, endpoint: info.aws.sqs })
  const rows: Row[] = []
  try {
    const stores = createStores({ dynamodb }, (name) => info.resources[name]!, { requestCountCache: false })
    const clock = { now: () => Date.now() }
    const { token } = await createAccessToken({ user: 'bench-post' }, { tokens: stores.tokens(), clock })
    const bearer = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const anchorTable = 'bench-anchor'
    await dynamodb.send(
      new CreateTableCommand({
        TableName: anchorTable,
        AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
        KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    )
    await waitUntilTableExists({ client: dynamodb, maxWaitTime: 60 }, { TableName: anchorTable })

    /** Until the pin queue holds no visible message (the worker received every job posted), at most 120 s. */
    const queueEmpty = async () => {
      if (worker === 'off') return
      const deadline = Date.now() + 120_000
      while (Date.now() < deadline) {
        const res = await sqs.send(
          new GetQueueAttributesCommand({
            QueueUrl: info.resources.pinQueueUrl,
            AttributeNames: ['ApproximateNumberOfMessages'],
          }),
        )
        if (Number(res.Attributes?.ApproximateNumberOfMessages ?? 0) === 0) return
        await sleep(100)
      }
      console.error('the pin queue still held messages after 120 s')
    }

    const run = async (name: string, concurrency: number, send: (i: number) => Promise<Response>) => {
      await queueEmpty()
      // What local mode burns with no request in flight (the worker's searches, timers), per second.
      const idleFrom = treeCpuSeconds(local.child.pid)
      await sleep(1000)
      const idleMsPerS = (treeCpuSeconds(local.child.pid) - idleFrom) * 1000
      const loadStart = load()
      const before = treeCpuSeconds(local.child.pid)
      const result = await measure(name, concurrency, seconds * 1000, send)
      await queueEmpty()
      const used = treeCpuSeconds(local.child.pid) - before
      const row: Row = {
        ...result,
        worker,
        cpuMsPerRequest: (used * 1000) / result.requests,
        idleMsPerS,
        loadStart,
        loadEnd: load(),
      }
      console.error(format(row))
      rows.push(row)
    }

    for (const concurrency of [1, 16]) {
      if (!postsOnly) await run('GET /healthz (anchor)', concurrency, () => fetch(`${local.api}/healthz`))
      if (!postsOnly)
        await run('DynamoDB PutItem (anchor)', concurrency, async (i) => {
          await dynamodb.send(
            new PutItemCommand({
              TableName: anchorTable,
              Item: { id: { S: `item-${concurrency}-${i}` }, at: { N: String(Date.now()) } },
            }),
          )
          return new Response(null, { status: 204 })
        })
      await run('POST /psa/pins', concurrency, () =>
        fetch(`${local.api}/psa/pins`, {
          method: 'POST',
          headers: bearer,
          body: JSON.stringify({ cid: newCid(), name: 'bench', meta: { app: 'bench' } }),
        }),
      )
      await run('POST /pins/{cid} (cluster)', concurrency, () =>
        fetch(`${local.api}/pins/${newCid()}`, {
          method: 'POST',
          headers: { authorization: local.authorization },
        }),
      )
    }
  } finally {
    dynamodb.destroy()
    sqs.destroy()
    await local.stop()
  }
  return rows
}

function format(r: Row): Record<string, string | number> {
  return {
    worker: r.worker,
    request: r.name,
    concurrency: r.concurrency,
    requests: r.requests,
    'req/s': r.rps.toFixed(0),
    'p50 ms': r.p50Ms.toFixed(1),
    'p99 ms': r.p99Ms.toFixed(1),
    'local mode CPU ms/request': r.cpuMsPerRequest.toFixed(2),
    'idle CPU ms/s before': r.idleMsPerS.toFixed(0),
    errors: r.errors,
    'load (1 min) start / end': `${r.loadStart} / ${r.loadEnd}`,
  }
}

console.error(
  `${availableParallelism()} cores, load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}; ${seconds} s per run`,
)
const rows: Row[] = []
for (const mode of modes) rows.push(...(await runMode(mode as 'off' | 'on')))
console.table(rows.map(format))
