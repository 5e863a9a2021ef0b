/**
 * The sidecar's part of one fetch strategy of bench/kubo-fetch.ts, in a process of its own so that its CPU
 * time and peak RSS are the sidecar's alone. It connects kubo to the origins (`swarm/connect`, as the worker
 * does), prints `ready`, waits for a line on stdin, runs the strategy, and prints one JSON line: wall time,
 * CPU seconds, peak RSS, and the tally of the CAR it received (consumed and counted, not uploaded).
 *
 *   node bench/lib/kubo-fetch-sidecar.ts '{"strategy":"walk","api":"http://127.0.0.1:5001","root":"bafy...",
 *                                        "origins":["/ip4/..."],"concurrency":32}'
 *
 * Strategies: `walk-rpc-client` (exportCar over the kubo BlockSource as it was, its gets through
 * kubo-rpc-client), `walk` (exportCar over the kubo BlockSource: block/get per block, re-hashed here), `pin-export`
 * (pin/add --progress, then dag/export), `export` (dag/export alone), `pin` (pin/add alone: no CAR), and
 * `prefetch-walk` (the walk over the BlockSource with its prefetch: kubo's `refs -r --unique` of the root
 * running beside the walk), and `prefetch-export` (dag/export with kubo's `refs -r --unique` of the root
 * running beside it). `walk` and `walk-rpc-client` run without the prefetch.
 */
import { createInterface } from 'node:readline'
import { create } from 'kubo-rpc-client'
import { CID } from 'multiformats/cid'
import { createKuboBlockSource, verifyBlock } from '../../adapters/kubo/block-source.ts'
import { exportCar } from '../../core/export-car.ts'
import type { Logger } from '../../core/ports.ts'
import { tallyCar } from './car-tally.ts'

export type Strategy =
  | 'walk-rpc-client'
  | 'walk'
  | 'pin-export'
  | 'export'
  | 'pin'
  | 'prefetch-walk'
  | 'prefetch-export'

export interface SidecarArgs {
  strategy: Strategy
  api: string
  root: string
  origins: string[]
  concurrency: number
}

export interface SidecarResult {
  ms: number
  cpuSeconds: number
  maxRssKiB: number
  /** Progress reports the sidecar received while fetching: blocks (and bytes, where the strategy has them). */
  progressReports: number
  car?: Awaited<ReturnType<typeof tallyCar>>
}

const args = JSON.parse(process.argv[2] ?? '{}') as SidecarArgs
const log: Logger = {
  info() {},
  debug() {},
  warn(obj, msg) {
    process.stderr.write(`${msg} ${JSON.stringify(obj)}\n`)
  },
  error(obj, msg) {
    process.stderr.write(`${msg} ${JSON.stringify(obj)}\n`)
  },
  child() {
    return log
  },
}

// Without re-asking: on loopback nothing goes unanswered, and the prefetch recognises a walk by the signal its
// gets share, which re-asking replaces with one per get.
const source = createKuboBlockSource({
  url: args.api,
  log,
  prefetch: args.strategy === 'prefetch-walk',
  reask: false,
})
await source.connect(args.origins)
process.stdout.write('ready\n')
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
await lines.next()

let progressReports = 0

/** POST to kubo's RPC API; the response, checked. */
async function rpc(path: string, signal?: AbortSignal): Promise<Response> {
  const res = await fetch(`${args.api}/api/v0/${path}`, { method: 'POST', signal: signal ?? null })
  if (!res.ok) throw new Error(`kubo ${path}: HTTP ${res.status} ${await res.text()}`)
  return res
}

/** pin/add, reading its newline-delimited answer ({"Progress":n} lines with --progress, then {"Pins"}). */
async function pinAdd(progress: boolean): Promise<void> {
  const res = await rpc(`pin/add?arg=${args.root}&progress=${progress}`)
  const decoder = new TextDecoder()
  let rest = ''
  let pinned = false
  const line = (l: string) => {
    if (!l.trim()) return
    const entry = JSON.parse(l) as { Progress?: number; Pins?: string[]; Message?: string }
    if (entry.Message) throw new Error(`pin/add: ${entry.Message}`)
    if (entry.Progress !== undefined) progressReports++
    if (entry.Pins) pinned = true
  }
  for await (const chunk of res.body ?? []) {
    rest += decoder.decode(chunk as Uint8Array, { stream: true })
    const parts = rest.split('\n')
    rest = parts.pop() ?? ''
    for (const l of parts) line(l)
  }
  line(rest)
  if (!pinned) throw new Error('pin/add ended without pinning')
}

async function* dagExport(): AsyncGenerator<Uint8Array> {
  const res = await rpc(`dag/export?arg=${args.root}`)
  for await (const chunk of res.body ?? []) yield chunk as Uint8Array
  // kubo reports an error after the body has started in the X-Stream-Error trailer.
  const trailer = res.headers.get('x-stream-error')
  if (trailer) throw new Error(`dag/export: ${trailer}`)
}

/** The BlockSource before its gets left kubo-rpc-client: the same, but `block.get` of kubo-rpc-client. */
const client = create({ url: args.api })
const rpcClientSource = {
  ...source,
  async get(cid: CID, o?: { signal?: AbortSignal }) {
    const bytes = await client.block.get(cid, { signal: o?.signal })
    verifyBlock(cid, bytes)
    return bytes
  },
}

function walk(through = source): AsyncGenerator<Uint8Array> {
  return exportCar(CID.parse(args.root), through, {
    concurrency: args.concurrency,
    maxBytes: Number.MAX_SAFE_INTEGER,
    onProgress: () => {
      progressReports++
    },
  })
}

const cpu0 = process.cpuUsage()
const t0 = performance.now()
let car: SidecarResult['car']
switch (args.strategy) {
  case 'walk-rpc-client':
    car = await tallyCar(walk(rpcClientSource))
    break
  case 'walk':
    car = await tallyCar(walk())
    break
  case 'pin-export':
    await pinAdd(true)
    car = await tallyCar(dagExport())
    break
  case 'export':
    car = await tallyCar(dagExport())
    break
  case 'pin':
    await pinAdd(false)
    break
  case 'prefetch-walk':
    car = await tallyCar(walk())
    break
  case 'prefetch-export': {
    const prefetch = new AbortController()
    const prefetching = rpc(`refs?arg=${args.root}&recursive=true&unique=true`, prefetch.signal)
      .then(async (res) => {
        for await (const _ of res.body ?? []) progressReports++
      })
      .catch(() => {})
    try {
      car = await tallyCar(dagExport())
    } finally {
      prefetch.abort()
      await prefetching
    }
    break
  }
}
const ms = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
const result: SidecarResult = {
  ms,
  cpuSeconds: (cpu.user + cpu.system) / 1e6,
  maxRssKiB: process.resourceUsage().maxRSS,
  progressReports,
  ...(car ? { car } : {}),
}
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exit(0)
