/**
 * How fast the validator reads and verifies a CAR from S3: one GetObject stream against parallel ranged GETs
 * (adapters/s3/ranged-get.ts), each beside plain sha2-256 of the same bytes from a local file (the CPU
 * anchor), all in one run.
 *
 *   npm run bench -- s3-read [size] [--stream-mbps N] [--part-mib P] [--concurrency C]
 *
 * size: the UnixFS file the CAR holds (bytes or K/M/G, default 256M). The local S3 (fauxqs, in memory) runs
 * in this process; every measurement runs in a fresh child process (its own peak RSS), so the reader and the
 * server do not share a thread. Loopback has no per-connection limit, so with `--stream-mbps N` every GET
 * response body is paced to N MB/s in the reading process: a stand-in for the ~90 MB/s one S3 connection
 * gets from a Lambda (an assumption, not a measurement). Each measurement runs BENCH_RUNS times (default 3);
 * the best time and the highest peak RSS are shown.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { NodeHttpHandler } from '@smithy/node-http-handler'
import type { HttpHandlerOptions, HttpResponse } from '@smithy/types'
import { CID } from 'multiformats/cid'
import { S3_CHECKSUMS } from '../adapters/aws-clients.ts'
import { createS3ObjectStore } from '../adapters/s3/objects.ts'
import { getRanged } from '../adapters/s3/ranged-get.ts'
import { validateCar } from '../core/validate-car.ts'
import { startServices } from '../local/services.ts'
import { carFromBlocks, unixfsFile } from '../test/fixtures/dags.ts'
import { parseSize } from './lib/size.ts'

const MiB = 1024 * 1024
const RUNS = Number(process.env.BENCH_RUNS ?? 3)

const MODES = ['sha256', 'get+sha256', 'ranged+sha256', 'get+validate', 'ranged+validate'] as const
type Mode = (typeof MODES)[number]

interface Args {
  mode: Mode
  file: string
  root: string
  endpoint: string
  bucket: string
  key: string
  streamMbps: number
  partMiB: number
  concurrency: number
}

interface Measure {
  ms: number
  bytes: number
  maxRssMiB: number
  result: string
}

/** Paces a stream to `bytesPerSecond` (the stand-in for one S3 connection's rate). */
function pace(bytesPerSecond: number): Transform {
  let due = performance.now()
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      due = Math.max(due, performance.now()) + (chunk.length / bytesPerSecond) * 1000
      const wait = due - performance.now()
      if (wait <= 1) return done(null, chunk)
      sleep(wait).then(() => done(null, chunk), done)
    },
  })
}

function client(a: Args): S3Client {
  const base = new NodeHttpHandler({ httpAgent: { maxSockets: 64, keepAlive: true } })
  const handler = {
    metadata: base.metadata,
    updateHttpClientConfig: base.updateHttpClientConfig.bind(base),
    httpHandlerConfigs: base.httpHandlerConfigs.bind(base),
    destroy: () => base.destroy(),
    async handle(
      request: Parameters<NodeHttpHandler['handle']>[0],
      options?: HttpHandlerOptions,
    ): Promise<{ response: HttpResponse }> {
      const out = await base.handle(request, options)
      const body = out.response.body as Readable | undefined
      if (a.streamMbps > 0 && request.method === 'GET' && body?.pipe) {
        out.response.body = body.pipe(pace(a.streamMbps * 1e6))
      }
      return out
    },
  }
  return new S3Client({
    endpoint: a.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    forcePathStyle: true,
    requestHandler: handler,
    ...S3_CHECKSUMS,
  })
}

async function body(a: Args): Promise<AsyncIterable<Uint8Array>> {
  if (a.mode === 'sha256') return createReadStream(a.file, { highWaterMark: MiB })
  const s3 = client(a)
  if (a.mode.startsWith('get')) {
    const res = await s3.send(new GetObjectCommand({ Bucket: a.bucket, Key: a.key }))
    return res.Body as AsyncIterable<Uint8Array>
  }
  const got = await getRanged(s3, a.bucket, a.key, {
    partBytes: a.partMiB * MiB,
    concurrency: a.concurrency,
  })
  return got!.body
}

async function child(a: Args): Promise<Measure> {
  // Sampled: getrusage's maxRSS on Linux carries over the parent's through fork and exec.
  let peakRss = process.memoryUsage.rss()
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss())
  }, 20)
  const start = performance.now()
  const source = await body(a)
  let bytes = 0
  let result = ''
  if (a.mode.endsWith('validate')) {
    const v = await validateCar(source, { root: CID.parse(a.root) })
    bytes = v.bytes
    result = v.valid ? `valid, ${v.blocks} blocks, ${v.carCid}` : `INVALID ${v.code}: ${v.reason}`
  } else {
    const h = createHash('sha256')
    for await (const c of source) {
      h.update(c)
      bytes += c.length
    }
    result = h.digest('hex')
  }
  const ms = performance.now() - start
  clearInterval(sampler)
  return { ms, bytes, maxRssMiB: Math.max(peakRss, process.memoryUsage.rss()) / MiB, result }
}

/** Asynchronously: the local S3 serving the child runs on this process's event loop. */
async function runChild(a: Args): Promise<Measure> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [fileURLToPath(import.meta.url), '--child', JSON.stringify(a)],
    { encoding: 'utf8', maxBuffer: 16 * MiB },
  )
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Measure
}

function option(args: string[], name: string, def: number): number {
  const i = args.indexOf(name)
  if (i < 0) return def
  const v = Number(args[i + 1])
  args.splice(i, 2)
  return v
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  if (args[0] === '--child') {
    process.stdout.write(`${JSON.stringify(await child(JSON.parse(args[1]!) as Args))}\n`)
    process.exit(0)
  }
  const streamMbps = option(args, '--stream-mbps', 0)
  const partMiB = option(args, '--part-mib', 8)
  const concurrency = option(args, '--concurrency', 8)
  const size = parseSize(args[0] ?? '256M')

  const dir = await mkdtemp(join(tmpdir(), 'pickup-bench-'))
  const services = await startServices()
  try {
    const file = join(dir, 'bench.car')
    const dag = await unixfsFile(size, { seed: `s3-read ${size}` })
    await pipeline(Readable.from(carFromBlocks(dag.root, dag.blocks)), createWriteStream(file))
    const carBytes = (await stat(file)).size
    const bucket = services.names.tempBucket
    const key = `${dag.root}/bench.car`
    await createS3ObjectStore({ client: services.clients.s3, bucket }).put(
      key,
      createReadStream(file, { highWaterMark: MiB }),
    )
    console.log(
      `CAR of ${carBytes} bytes (${(carBytes / MiB).toFixed(0)} MiB), root ${dag.root}; ranged: ${concurrency} x ${partMiB} MiB; ` +
        (streamMbps > 0
          ? `each GET paced to ${streamMbps} MB/s (stand-in for one S3 connection)`
          : 'unpaced loopback'),
    )
    const base = { file, root: dag.root.toString(), endpoint: services.endpoints.s3, bucket, key }
    const best: Partial<Record<Mode, Measure>> = {}
    const peak: Partial<Record<Mode, number>> = {}
    for (let i = 0; i < RUNS; i++) {
      for (const mode of MODES) {
        const m = await runChild({ ...base, mode, streamMbps, partMiB, concurrency })
        if (m.bytes !== carBytes) throw new Error(`${mode} read ${m.bytes} bytes of ${carBytes}`)
        if (!best[mode] || m.ms < best[mode].ms) best[mode] = m
        peak[mode] = Math.max(peak[mode] ?? 0, m.maxRssMiB)
      }
    }
    const rate = (m: Measure) => m.bytes / MiB / (m.ms / 1000)
    for (const mode of MODES) {
      const m = best[mode]!
      console.log(
        `  ${mode.padEnd(16)} ${rate(m).toFixed(0).padStart(6)} MiB/s  ${(m.ms / 1000).toFixed(3)} s  peak RSS ${peak[mode]!.toFixed(0)} MiB  ${m.result.slice(0, 40)}`,
      )
    }
    const sha = rate(best.sha256!)
    console.log(
      `  ratios to sha256: get+sha256 ${(rate(best['get+sha256']!) / sha).toFixed(2)}, ranged+sha256 ${(rate(best['ranged+sha256']!) / sha).toFixed(2)}, ` +
        `get+validate ${(rate(best['get+validate']!) / sha).toFixed(2)}, ranged+validate ${(rate(best['ranged+validate']!) / sha).toFixed(2)}`,
    )
    for (const mode of ['get+sha256', 'ranged+sha256'] as const) {
      if (best[mode]!.result !== best.sha256!.result) throw new Error(`${mode}: not the bytes stored`)
    }
    for (const mode of ['get+validate', 'ranged+validate'] as const) {
      if (!best[mode]!.result.startsWith('valid')) throw new Error(`${mode}: ${best[mode]!.result}`)
    }
  } finally {
    await services.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
