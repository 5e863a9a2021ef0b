/**
 * The whole pipeline: time and worker peak RSS to pin 64 MiB, 256 MiB and 1 GiB UnixFS DAGs from a loopback
 * Helia origin through local mode (API -> SQS -> worker -> S3 multipart -> validator -> promotion), beside
 * bare fetches of the same DAG in the same run:
 *   - Helia's own `pins.add` (its default depth-first walk, one block at a time), and
 *   - a bare parallel fetch: a fresh Helia node walking the DAG with pickup's exportCar to /dev/null.
 * The ratio pipeline / parallel fetch is pickup's overhead (upload, validation, bookkeeping).
 *
 * The worker runs as its own process (`pickup/main.ts`, as in ECS), so its peak RSS (VmHWM) is its own; local
 * mode's process (API, DynamoDB, SQS, S3, validator: persisted on disk, as `npm start` runs) is measured beside
 * it. Both peaks are reset before each pin (/proc/<pid>/clear_refs), so each row's peaks are that pin's.
 * Each size runs with 256 KiB blocks and with 1 MiB blocks (Helia's default chunker, 1024 links per node).
 * The origin and the two comparison nodes keep their blocks on disk (a temporary directory each), so a 4 GiB
 * DAG does not need three times its size in this process's memory.
 *
 *   npm run bench -- pipeline [MiB ...] [--blocks-kib 256,1024] [--no-pins-add | --pipeline-only]
 *     default: 64 256 1024, both block sizes; --no-pins-add leaves out Helia's `pins.add` (the slowest anchor),
 *     keeping the parallel fetch; --pipeline-only leaves out both (for 4 GiB on a loaded machine), keeping as
 *     the anchor local mode's resident memory just before the pin, beside its peak during it.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHeliaBlockSource } from '../adapters/helia/block-source.ts'
import { createHeliaNode, type HeliaNode } from '../adapters/helia/node.ts'
import { exportCar } from '../core/export-car.ts'
import { unixfsFile } from '../test/fixtures/dags.ts'
import { createTestLogger } from '../test/helpers/log.ts'
import { workerProcessEnv } from '../test/helpers/system.ts'
import { startLocalMode } from './lib/local-mode.ts'

const MiB = 1024 * 1024
const args = process.argv.slice(2)
const blocksFlag = args.indexOf('--blocks-kib')
const blockKiBs = blocksFlag >= 0 ? (args.splice(blocksFlag, 2)[1] ?? '').split(',').map(Number) : [256, 1024]
const noPinsAdd = args.indexOf('--no-pins-add')
if (noPinsAdd >= 0) args.splice(noPinsAdd, 1)
const pipelineOnly = args.indexOf('--pipeline-only')
if (pipelineOnly >= 0) args.splice(pipelineOnly, 1)
const sizes = args.map(Number)
const runs = (sizes.length > 0 ? sizes : [64, 256, 1024]).flatMap((mib) =>
  blockKiBs.map((kib) => ({ mib, kib })),
)
const log = createTestLogger()

const local = await startLocalMode({ LOCAL_WORKER: 'none' })
const worker = startWorker(local.endpoints as unknown as Endpoints)
let stopping = false
for (const [name, child] of [
  ['worker', worker],
  ['local mode', local.child],
] as const) {
  child.once('exit', (code, signal) => {
    if (stopping) return
    console.error(`${name} exited (${code ?? signal}) before the benchmark ended`)
    process.exit(1)
  })
}

/** The worker's fetch+upload time of each pin, from its structured log. */
const uploadMs = new Map<string, number>()
let lineBuffer = ''
worker.stdout?.on('data', (d) => {
  lineBuffer += String(d)
  const lines = lineBuffer.split('\n')
  lineBuffer = lines.pop() ?? ''
  for (const line of lines) {
    try {
      const entry = JSON.parse(line) as { msg?: string; cid?: string; ms?: number }
      if (entry.msg === 'fetch done: CAR uploaded' && entry.cid && entry.ms !== undefined)
        uploadMs.set(entry.cid, entry.ms)
    } catch {
      // not a log line
    }
  }
})

let origin: HeliaNode

const rows: Array<Record<string, string>> = []
try {
  for (const { mib, kib } of runs) {
    const file = await unixfsFile(mib * MiB, {
      seed: `bench-${mib}`,
      chunkSize: kib * 1024,
      maxChildren: 1024,
    })
    // A fresh origin per size, so each DAG's blocks are freed with it.
    const originDir = await mkdtemp(join(tmpdir(), 'pickup-bench-origin-'))
    origin = await createHeliaNode({ allowPrivateDials: true, dataDir: originDir })
    let dagBytes = 0
    for await (const b of file.blocks) {
      await origin.blockstore.put(b.cid, b.bytes)
      dagBytes += b.bytes.length
    }
    const depthFirst =
      noPinsAdd >= 0 || pipelineOnly >= 0 ? Number.NaN : await timed(() => heliaPinsAdd(file.root.toString()))
    const parallel = pipelineOnly >= 0 ? Number.NaN : await timed(() => parallelFetch(file.root.toString()))
    await resetPeakRss(worker)
    await resetPeakRss(local.child)
    const localBefore = await rssKiB(local.child)
    const pipeline = await timed(() => pinThroughPickup(file.root.toString()))
    const rate = (ms: number) => dagBytes / MiB / (ms / 1000)
    const fetchUpload = uploadMs.get(file.root.toV1().toString()) ?? Number.NaN
    rows.push({
      DAG: `${mib} MiB`,
      blocks: `${kib} KiB`,
      'helia pins.add MiB/s': rate(depthFirst).toFixed(1),
      'parallel fetch MiB/s': rate(parallel).toFixed(1),
      'pickup pin MiB/s': rate(pipeline).toFixed(1),
      'pickup / parallel': (parallel / pipeline).toFixed(2),
      'pickup s': (pipeline / 1000).toFixed(2),
      'of which fetch+upload s': (fetchUpload / 1000).toFixed(2),
      'worker peak RSS MiB': ((await peakRssKiB(worker)) / 1024).toFixed(0),
      'local mode RSS before MiB': (localBefore / 1024).toFixed(0),
      'local mode peak RSS MiB': ((await peakRssKiB(local.child)) / 1024).toFixed(0),
    })
    await origin.stop()
    await rm(originDir, { recursive: true, force: true })
  }
} finally {
  stopping = true
  worker.kill('SIGTERM')
  await new Promise((r) => worker.once('exit', r))
  await local.stop()
}
console.table(rows)

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return performance.now() - t0
}

/** A node with an empty on-disk store, connected to the origin; `stop` removes its blocks. */
async function freshNode(): Promise<{ node: HeliaNode; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'pickup-bench-node-'))
  const node = await createHeliaNode({ allowPrivateDials: true, dataDir: dir })
  await node.libp2p.dial(origin.libp2p.getMultiaddrs()[0]!)
  return {
    node,
    async stop() {
      await node.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

async function heliaPinsAdd(cid: string): Promise<void> {
  const { node, stop } = await freshNode()
  try {
    const { CID } = await import('multiformats/cid')
    for await (const _ of node.pins.add(CID.parse(cid))) {
      // each pinned block
    }
  } finally {
    await stop()
  }
}

async function parallelFetch(cid: string): Promise<void> {
  const { node, stop } = await freshNode()
  try {
    const { CID } = await import('multiformats/cid')
    const source = createHeliaBlockSource(node, { log })
    for await (const _ of exportCar(CID.parse(cid), source, { maxBytes: Number.MAX_SAFE_INTEGER })) {
      // discard
    }
  } finally {
    await stop()
  }
}

async function pinThroughPickup(cid: string): Promise<void> {
  const headers = { authorization: local.authorization }
  const originAddrs = origin.libp2p.getMultiaddrs().map(String)
  const res = await fetch(`${local.api}/pins/${cid}?origins=${encodeURIComponent(originAddrs.join(','))}`, {
    method: 'POST',
    headers,
  })
  if (!res.ok) throw new Error(`pin request failed: ${res.status} ${await res.text()}`)
  let failedPolls = 0
  for (;;) {
    let body: { peer_map: Record<string, { status: string; error: string }> }
    try {
      body = (await (await fetch(`${local.api}/pins/${cid}`, { headers })).json()) as typeof body
      failedPolls = 0
    } catch (err) {
      // A status poll that fails (a connection reset on a loaded machine) is tried again; a pin takes minutes.
      if (++failedPolls >= 20) throw err
      console.warn(`status poll failed (${err}); polling again`)
      await new Promise((r) => setTimeout(r, 500))
      continue
    }
    const peer = Object.values(body.peer_map)[0]
    if (peer?.status === 'pinned') return
    if (peer?.status === 'pin_error') throw new Error(`pin failed: ${peer.error}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

interface Endpoints {
  aws: {
    dynamodb: string
    sqs: string
    s3: string
    region: string
    credentials: { accessKeyId: string; secretAccessKey: string }
  }
  resources: { pinsTable: string; workersTable: string; pinQueueUrl: string; tempBucket: string }
}

function startWorker(e: Endpoints): ChildProcess {
  return spawn(process.execPath, ['pickup/main.ts'], {
    env: workerProcessEnv(
      { endpoints: e.aws, credentials: e.aws.credentials, names: e.resources },
      {
        NODE_OPTIONS: process.env.WORKER_NODE_OPTIONS ?? '',
        // Its "fetch done" lines give the fetch+upload phase of each pin.
        LOG_LEVEL: 'info',
        // The default part size, as deployed.
        UPLOAD_PART_BYTES: String(8 * MiB),
      },
    ),
    stdio: ['ignore', 'pipe', 'inherit'],
  })
}

/** Resets the process's peak resident set to its current one (Linux: "5" to clear_refs). */
async function resetPeakRss(child: ChildProcess): Promise<void> {
  await writeFile(`/proc/${child.pid}/clear_refs`, '5').catch((err: unknown) => {
    console.warn(`cannot reset peak RSS (${err}): the row shows the peak since the process started`)
  })
}

/** The process's resident set now (VmRSS), in KiB. */
async function rssKiB(child: ChildProcess): Promise<number> {
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
}

/** The process's peak resident set (VmHWM), in KiB. */
async function peakRssKiB(child: ChildProcess): Promise<number> {
  const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0)
}
