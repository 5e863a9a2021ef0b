/**
 * How the sidecar should fetch a DAG through kubo. The same UnixFS DAGs (test/fixtures/dags.ts `unixfsFile`,
 * 256 KiB raw leaves) are served by a kubo origin and by a Helia origin, each in its own process, and fetched by
 * a fresh worker kubo (empty repo, configured by docker/kubo/001-pickup-config.sh, routing off, connected
 * to the origin only by `swarm connect`) for each run, with one of these strategies:
 *
 *   walk-rpc-client  (a) the parallel walk as it was: exportCar over the kubo BlockSource with its gets
 *                   through kubo-rpc-client (block/get per block, every block re-hashed by the sidecar), the
 *                   CAR consumed and counted
 *   walk        (a') the same walk over the kubo BlockSource as it is now (node:http keep-alive gets)
 *   pin-export  (b) pin/add --progress (kubo's own parallel fetch), then dag/export (a streamed CAR)
 *   export      (c) dag/export alone (kubo fetches while exporting)
 *   pin         (d) pin/add alone: the anchor (the original pickup's mechanism; no CAR)
 *   prefetch-walk (e) the walk (a') with the BlockSource's prefetch: kubo's `refs -r --unique` of the root
 *                   beside the walk (kubo fetches the DAG in one session), cancelled when the walk ends
 *   prefetch-export (f) dag/export with the same `refs -r --unique` prefetch beside it (a bench-only sketch)
 *
 * The sidecar's part runs in a child process of its own (bench/lib/kubo-fetch-sidecar.ts), so its CPU time
 * (process.cpuUsage) and peak RSS (resourceUsage().maxRSS) are its own; kubo's CPU is read from
 * /proc/<pid>/stat (utime + stime) right before and after, its repo growth from `repo/stat`. Every CAR is
 * checked against the DAG: root, block count, data bytes and a fingerprint of the CID set.
 *
 * Runs are interleaved (strategies in a rotating order, origins alternating) and repeated; the table shows
 * medians. The anchor (d) runs in the same rounds, so "x (d)" compares figures taken under the same load.
 *
 *   npm run bench -- kubo-fetch [MiB ...]           default: 64 256 1024
 *   BENCH_REPEATS=2  BENCH_STRATEGIES=walk-rpc-client,walk,pin-export,export,pin,prefetch-walk
 *   FETCH_CONCURRENCY=32
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { carFromBlocks, type StreamedDag, unixfsFile } from '../test/fixtures/dags.ts'
import { KUBO_VERSION, type KuboNode, kuboBinary, startKubo } from '../test/helpers/kubo.ts'
import { type CarTally, tallyBlocks } from './lib/car-tally.ts'
import type { SidecarArgs, SidecarResult, Strategy } from './lib/kubo-fetch-sidecar.ts'
import { cpuSeconds } from './lib/proc.ts'

const MiB = 1024 * 1024
const sizes = process.argv.slice(2).map(Number)
const runs = sizes.length > 0 ? sizes : [64, 256, 1024]
const repeats = Number(process.env.BENCH_REPEATS ?? 2)
const concurrency = Number(process.env.FETCH_CONCURRENCY ?? 32)
const strategies = (
  process.env.BENCH_STRATEGIES ?? 'walk-rpc-client,walk,pin-export,export,pin,prefetch-walk'
).split(',') as Strategy[]
const SIDECAR = join(import.meta.dirname, 'lib/kubo-fetch-sidecar.ts')
const HELIA_ORIGIN = join(import.meta.dirname, 'lib/helia-origin.ts')
const NODE_ARGS = ['--disable-warning=ExperimentalWarning']

const LABELS: Record<Strategy, string> = {
  'walk-rpc-client': '(a) parallel walk, block/get (kubo-rpc-client)',
  walk: "(a') parallel walk, block/get (node:http keep-alive)",
  'pin-export': '(b) pin add, then dag export',
  export: '(c) dag export alone',
  pin: '(d) pin add alone (anchor)',
  'prefetch-walk': "(e) walk (a') beside kubo's refs -r prefetch",
  'prefetch-export': "(f) dag export beside kubo's refs -r prefetch",
}

if (!kuboBinary) throw new Error('no kubo binary: npm run tools (or set KUBO_BINARY)')

interface Origin {
  name: 'kubo' | 'helia'
  addrs: string[]
  stop(): Promise<void>
}

interface Measurement {
  ms: number
  kuboCpuSeconds: number
  sidecar: SidecarResult
  repoGrowthBytes: number
  kuboPeakRssKiB: number
}

/** Whatever is running, stopped on Ctrl-C too: kubo daemons (and their repos) and child processes. */
const running = new Set<() => Promise<void>>()
async function track<T>(stop: () => Promise<void>, body: () => Promise<T>): Promise<T> {
  running.add(stop)
  try {
    return await body()
  } finally {
    running.delete(stop)
    await stop()
  }
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    await Promise.allSettled([...running].map((stop) => stop()))
    process.exit(130)
  })
}

function peakRssKiB(pid: number): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
}

async function repoSize(node: KuboNode): Promise<number> {
  const res = await fetch(`${node.url}/api/v0/repo/stat?size-only=true`, { method: 'POST' })
  return ((await res.json()) as { RepoSize: number }).RepoSize
}

/** Streams the DAG into a kubo origin as one CAR through `ipfs dag import` (never held whole). */
async function importIntoKubo(node: KuboNode, file: StreamedDag): Promise<void> {
  const child = spawn(kuboBinary!, ['dag', 'import', '--pin-roots=false'], {
    env: { ...process.env, IPFS_PATH: node.repo, IPFS_TELEMETRY: 'off' },
    stdio: ['pipe', 'ignore', 'inherit'],
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  for await (const chunk of carFromBlocks(file.root, file.blocks)) {
    if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r))
  }
  child.stdin.end()
  if ((await exited) !== 0) throw new Error('ipfs dag import failed')
}

async function startKuboOrigin(file: StreamedDag): Promise<Origin> {
  const node = await startKubo()
  running.add(() => node.stop())
  await importIntoKubo(node, file)
  return { name: 'kubo', addrs: await node.multiaddrs(), stop: () => node.stop() }
}

async function startHeliaOrigin(mib: number, seed: string, root: string): Promise<Origin> {
  const child = spawn(process.execPath, [...NODE_ARGS, HELIA_ORIGIN, String(mib), seed], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  running.add(async () => void child.kill())
  const line = await firstLine(child)
  const ready = JSON.parse(line) as { root: string; multiaddrs: string[] }
  if (ready.root !== root) throw new Error(`the Helia origin holds ${ready.root}, not ${root}`)
  return {
    name: 'helia',
    addrs: ready.multiaddrs,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r))
      child.stdin?.end()
      await exited
    },
  }
}

function lineReader(child: ChildProcess): () => Promise<string> {
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`child exited (${code}) before answering`))),
  )
  exited.catch(() => {})
  return async () => {
    const next = await Promise.race([lines.next(), exited])
    if (next.done) throw new Error('child closed its output')
    return next.value
  }
}

function firstLine(child: ChildProcess): Promise<string> {
  return lineReader(child)()
}

/** One run: a fresh worker kubo, the sidecar's part of `strategy` in its own process, kubo measured around it. */
async function measure(strategy: Strategy, origin: Origin, root: string): Promise<Measurement> {
  const worker = await startKubo({ pickupConfig: true, config: { 'Routing.Type': 'none' } })
  return track(
    () => worker.stop(),
    async () => {
      const pid = worker.process!.pid!
      const repo0 = await repoSize(worker)
      const args: SidecarArgs = { strategy, api: worker.url, root, origins: origin.addrs, concurrency }
      const child = spawn(process.execPath, [...NODE_ARGS, SIDECAR, JSON.stringify(args)], {
        stdio: ['pipe', 'pipe', 'inherit'],
      })
      running.add(async () => void child.kill())
      const next = lineReader(child)
      if ((await next()) !== 'ready') throw new Error('the sidecar did not get ready')
      const cpu0 = cpuSeconds(pid)
      const t0 = performance.now()
      child.stdin!.write('go\n')
      const sidecar = JSON.parse(await next()) as SidecarResult
      const ms = performance.now() - t0
      const kuboCpuSeconds = cpuSeconds(pid) - cpu0
      const repoGrowthBytes = (await repoSize(worker)) - repo0
      const kuboPeakRssKiB = peakRssKiB(pid)
      child.stdin!.end()
      return { ms, kuboCpuSeconds, sidecar, repoGrowthBytes, kuboPeakRssKiB }
    },
  )
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function checkCar(car: CarTally | undefined, expected: Omit<CarTally, 'carBytes'>): string | undefined {
  if (!car) return undefined
  const wrong: string[] = []
  if (car.root !== expected.root) wrong.push(`root ${car.root}`)
  if (car.blocks !== expected.blocks) wrong.push(`${car.blocks}/${expected.blocks} blocks`)
  if (car.dataBytes !== expected.dataBytes) wrong.push(`${car.dataBytes}/${expected.dataBytes} bytes`)
  if (car.fingerprint !== expected.fingerprint) wrong.push('other CIDs')
  return wrong.length ? wrong.join(', ') : 'ok'
}

const started = new Date()
const load0 = loadavg()[0]!
const results = new Map<string, Measurement[]>()
const checks = new Map<string, string[]>()
const expectedBySize = new Map<number, Omit<CarTally, 'carBytes'>>()
const key = (mib: number, origin: string, strategy: Strategy) => `${mib}|${origin}|${strategy}`

for (const mib of runs) {
  const seed = `bench-${mib}`
  const file = await unixfsFile(mib * MiB, { seed })
  const expected = await tallyBlocks(file.root, file.blocks)
  expectedBySize.set(mib, expected)
  const origins = await Promise.all([
    startKuboOrigin(file),
    startHeliaOrigin(mib, seed, file.root.toString()),
  ])
  try {
    for (let rep = 0; rep < repeats; rep++) {
      for (let o = 0; o < origins.length; o++) {
        const origin = origins[(o + rep) % origins.length]!
        const shift = (rep + o) % strategies.length
        const order = [...strategies.slice(shift), ...strategies.slice(0, shift)]
        for (const strategy of order) {
          const m = await measure(strategy, origin, file.root.toString())
          const k = key(mib, origin.name, strategy)
          results.set(k, [...(results.get(k) ?? []), m])
          const check = checkCar(m.sidecar.car, expected)
          if (check) checks.set(k, [...(checks.get(k) ?? []), check])
          console.error(
            `${mib} MiB from ${origin.name}, ${strategy}: ${(m.ms / 1000).toFixed(2)} s, kubo ${m.kuboCpuSeconds.toFixed(2)} ` +
              `CPU s, sidecar ${m.sidecar.cpuSeconds.toFixed(2)} CPU s, ${(m.sidecar.maxRssKiB / 1024).toFixed(0)} MiB, ` +
              `repo +${(m.repoGrowthBytes / MiB).toFixed(0)} MiB, CAR ${check ?? '-'}`,
          )
        }
      }
    }
  } finally {
    await Promise.all(origins.map((o) => o.stop()))
  }
}

const rows: string[][] = []
for (const mib of runs) {
  for (const originName of ['kubo', 'helia']) {
    const anchor = results.get(key(mib, originName, 'pin'))
    const anchorMs = anchor ? median(anchor.map((m) => m.ms)) : Number.NaN
    for (const strategy of strategies) {
      const ms = results.get(key(mib, originName, strategy))
      if (!ms) continue
      const wall = median(ms.map((m) => m.ms))
      const kuboCpu = median(ms.map((m) => m.kuboCpuSeconds))
      const sidecarCpu = median(ms.map((m) => m.sidecar.cpuSeconds))
      const c = checks.get(key(mib, originName, strategy))
      rows.push([
        `${mib} MiB`,
        originName,
        LABELS[strategy],
        (wall / 1000).toFixed(2),
        (wall / anchorMs).toFixed(2),
        kuboCpu.toFixed(2),
        sidecarCpu.toFixed(2),
        `${((sidecarCpu / kuboCpu) * 100).toFixed(0)}%`,
        (median(ms.map((m) => m.repoGrowthBytes)) / MiB).toFixed(0),
        (Math.max(...ms.map((m) => m.sidecar.maxRssKiB)) / 1024).toFixed(0),
        (Math.max(...ms.map((m) => m.kuboPeakRssKiB)) / 1024).toFixed(0),
        c
          ? c.every((x) => x === 'ok')
            ? `ok (${expectedBySize.get(mib)!.blocks} blocks)`
            : c.join('; ')
          : 'pinned',
      ])
    }
  }
}

const header = [
  'DAG',
  'origin',
  'strategy',
  'wall s',
  'x (d)',
  'kubo CPU s',
  'sidecar CPU s',
  'sidecar / kubo CPU',
  'repo growth MiB',
  'sidecar peak RSS MiB',
  'kubo peak RSS MiB',
  'CAR',
]
console.log(
  `kubo ${KUBO_VERSION}, ${cpus().length} cores shared with other sessions ` +
    `(load average ${load0.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end), ${started.toISOString()}; ` +
    `medians of ${repeats} interleaved runs; FETCH_CONCURRENCY=${concurrency}\n`,
)
console.log(`| ${header.join(' | ')} |`)
console.log(`|${header.map(() => '---').join('|')}|`)
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
