/**
 * Pinning Service API throughput for a user holding 10,000 requests (seeded straight into the stores, all
 * but 20 pinned): requests per second and p50/p99 latency of `GET /psa/pins/{requestid}` (kubo polls it every
 * 500 ms while it waits), `GET /psa/pins?limit=10` (the default listing: pinned only, with `count`) and kubo's
 * paging query (`status=pinned&limit=10&before=<a random request's created>`), beside `GET /healthz` of the
 * same server, against local mode in a child process (`npm start`: dynalite on disk, fauxqs).
 *
 *   npm run bench -- psa [seconds per run, default 5] [requests, default 10000]
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { createStores } from '../adapters/compose.ts'
import { createAccessToken, psaOwner } from '../core/access-tokens.ts'
import type { PinRequest } from '../core/ports.ts'
import { newRequestId } from '../core/psa-requests.ts'
import { rawBlock } from '../test/fixtures/dags.ts'
import { type LoadResult, measure, printTable } from './lib/load.ts'
import { startLocalMode } from './lib/local-mode.ts'

const seconds = Number(process.argv[2] ?? 5)
const total = Number(process.argv[3] ?? 10_000)
const PENDING = 20

const local = await startLocalMode()
const info = JSON.parse(await readFile(join(local.dataDir, 'endpoints.json'), 'utf8'))
const client = new DynamoDBClient({
  endpoint: info.aws.dynamodb,
  region: info.aws.region,
  credentials: info.aws.credentials,
})
const names = info.resources
const stores = createStores({ dynamodb: client }, (name) => names[name], { requestCountCache: false })
const pins = stores.pins()
const requests = stores.requests()
const tokens = stores.tokens()
const { token } = await createAccessToken({ user: 'bench' }, { tokens, clock: { now: () => Date.now() } })
const headers = { authorization: `Bearer ${token}` }

// Seed: one pin per request, pinned, except the last PENDING (queued: the not-yet-pinned set is not empty).
const owner = psaOwner('bench')
const t0 = Date.now() - total
const seeded: PinRequest[] = []
const started = performance.now()
let next = 0
await Promise.all(
  Array.from({ length: 32 }, async () => {
    while (next < total) {
      const i = next++
      const cid = rawBlock(8, `bench-psa-${i}`).root.toString()
      const pending = i >= total - PENDING
      await pins.request(cid, [], t0 + i)
      if (!pending)
        await pins.markPinned(
          cid,
          'bench',
          { cid: `bagcar${i}`, bytes: 1000 + i, blocks: 1, key: `k${i}` },
          t0 + i,
        )
      const request: PinRequest = {
        requestid: newRequestId(cid),
        owner,
        cid,
        sourceCid: cid,
        name: `file-${i}`,
        meta: { app: 'bench' },
        origins: [],
        created: t0 + i,
        knownPinned: !pending,
      }
      await requests.put(request)
      seeded[i] = request
    }
  }),
)
console.log(`seeded ${total} requests in ${((performance.now() - started) / 1000).toFixed(1)} s`)

const psa = `${local.api}/psa`
const cold = performance.now()
const first = (await (await fetch(`${psa}/pins?limit=10`, { headers })).json()) as { count: number }
console.log(
  `first GET /pins?limit=10 (count read from the index): ${(performance.now() - cold).toFixed(0)} ms, count ${first.count}`,
)
if (first.count !== total - PENDING) throw new Error(`count ${first.count}, expected ${total - PENDING}`)

const results: LoadResult[] = []
try {
  for (const concurrency of [1, 16]) {
    const ms = seconds * 1000
    results.push(await measure('GET /healthz', concurrency, ms, () => fetch(`${local.api}/healthz`)))
    results.push(
      await measure('GET /psa/pins/{requestid}', concurrency, ms, (i) =>
        fetch(`${psa}/pins/${seeded[(i * 7919) % total]!.requestid}`, { headers }),
      ),
    )
    results.push(
      await measure('GET /psa/pins?limit=10', concurrency, ms, () =>
        fetch(`${psa}/pins?limit=10`, { headers }),
      ),
    )
    results.push(
      await measure('GET /psa/pins?status=pinned&before=…', concurrency, ms, (i) => {
        const before = new Date(seeded[(i * 7919) % total]!.created).toISOString()
        return fetch(`${psa}/pins?status=pinned&limit=10&before=${encodeURIComponent(before)}`, { headers })
      }),
    )
  }
} finally {
  client.destroy()
  await local.stop()
}
printTable(results)
