/**
 * Cluster API throughput: requests per second and p50/p99 latency of `GET /pins/{cid}` and
 * `POST /pins/{cid}` against local mode at concurrency 1, 16 and 64, beside `GET /healthz` of the same
 * server (the ratio shows pickup's own overhead: auth, validation, DynamoDB and SQS round trips).
 *
 *   npm run bench -- cluster-api [seconds per run, default 5]
 */
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { type LoadResult, measure, printTable } from './lib/load.ts'
import { startLocalMode } from './lib/local-mode.ts'

const seconds = Number(process.argv[2] ?? 5)
// No worker fetches anything here: the pins stay queued, so POST measures the request path alone.
const local = await startLocalMode({ BATCH_SIZE: '1', FETCH_CHUNK_TIMEOUT_MS: String(3_600_000) })
const headers = { authorization: local.authorization }

async function randomCid(): Promise<string> {
  return CID.createV1(raw.code, await sha256.digest(randomBytes(32))).toString()
}
const known = await Promise.all(Array.from({ length: 200 }, randomCid))
for (const cid of known) await fetch(`${local.api}/pins/${cid}`, { method: 'POST', headers })
const fresh = await Promise.all(Array.from({ length: 50_000 }, randomCid))

const results: LoadResult[] = []
try {
  for (const concurrency of [1, 16, 64]) {
    results.push(
      await measure('GET /healthz', concurrency, seconds * 1000, () => fetch(`${local.api}/healthz`)),
    )
    results.push(
      await measure('GET /pins/{cid}', concurrency, seconds * 1000, (i) =>
        fetch(`${local.api}/pins/${known[i % known.length]}`, { headers }),
      ),
    )
    results.push(
      await measure('POST /pins/{cid}', concurrency, seconds * 1000, (i) =>
        fetch(`${local.api}/pins/${fresh[i % fresh.length]}`, { method: 'POST', headers }),
      ),
    )
  }
} finally {
  await local.stop()
}
printTable(results)
