/**
 * validateCar against plain sha2-256 of the same bytes.
 *
 *   npm run bench -- validate-car [sizes...]      sizes in bytes or with K/M/G (binary), default: 256M 1G
 *
 * For each size: generates a UnixFS file (raw leaves of 256 KiB, 174 links per node) as a CAR into a temp
 * file, then reads that file in 1 MiB chunks, in a fresh child process per run so that each peak RSS is its
 * own: once only reading (the I/O floor), once hashing with sha2-256, once through validateCar. Each
 * measurement runs RUNS times (env BENCH_RUNS, default 3); the best time and the highest peak RSS are shown.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import { validateCar } from '../core/validate-car.ts'
import { carFromBlocks, unixfsFile } from '../test/fixtures/dags.ts'
import { parseSize } from './lib/size.ts'

const MiB = 1024 * 1024
const CHUNK = MiB
const RUNS = Number(process.env.BENCH_RUNS ?? 3)

type Mode = 'read' | 'sha256' | 'validate'

interface Measure {
  ms: number
  bytes: number
  maxRssMiB: number
  result: string
}

function fileChunks(path: string): AsyncIterable<Uint8Array> {
  return createReadStream(path, { highWaterMark: CHUNK })
}

/** One measurement, in this (child) process. */
async function child(mode: Mode, path: string, root: string): Promise<Measure> {
  const start = performance.now()
  let bytes = 0
  let result = ''
  if (mode === 'read') {
    for await (const c of fileChunks(path)) bytes += c.length
  } else if (mode === 'sha256') {
    const h = createHash('sha256')
    for await (const c of fileChunks(path)) {
      h.update(c)
      bytes += c.length
    }
    result = h.digest('hex')
  } else {
    const v = await validateCar(fileChunks(path), { root: CID.parse(root) })
    bytes = v.bytes
    result = v.valid ? `valid, ${v.blocks} blocks, ${v.carCid}` : `INVALID ${v.code}: ${v.reason}`
  }
  const ms = performance.now() - start
  return { ms, bytes, maxRssMiB: process.resourceUsage().maxRSS / 1024, result }
}

function runChild(mode: Mode, path: string, root: string): Measure {
  const script = fileURLToPath(import.meta.url)
  const r = spawnSync(process.execPath, [script, '--child', mode, path, root], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`child ${mode} failed: ${r.stderr}`)
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Measure
}

async function generate(size: number, path: string): Promise<{ root: CID; bytes: number; ms: number }> {
  const start = performance.now()
  const dag = await unixfsFile(size, { seed: `bench ${size}` })
  await pipeline(Readable.from(carFromBlocks(dag.root, dag.blocks)), createWriteStream(path))
  return { root: dag.root, bytes: (await stat(path)).size, ms: performance.now() - start }
}

function mibs(m: Measure): number {
  return m.bytes / MiB / (m.ms / 1000)
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  if (args[0] === '--child') {
    const m = await child(args[1] as Mode, args[2]!, args[3]!)
    process.stdout.write(`${JSON.stringify(m)}\n`)
    return
  }
  const sizes = (args.length ? args : ['256M', '1G']).map(parseSize)
  const dir = await mkdtemp(join(tmpdir(), 'pickup-bench-'))
  try {
    for (const size of sizes) {
      const path = join(dir, `${size}.car`)
      const gen = await generate(size, path)
      console.log(
        `\n${(size / MiB).toFixed(0)} MiB file -> CAR of ${gen.bytes} bytes, root ${gen.root} (generated in ${(gen.ms / 1000).toFixed(1)} s)`,
      )
      const best: Partial<Record<Mode, Measure>> = {}
      const peak: Partial<Record<Mode, number>> = {}
      for (let i = 0; i < RUNS; i++) {
        for (const mode of ['read', 'sha256', 'validate'] as const) {
          const m = runChild(mode, path, gen.root.toString())
          if (!best[mode] || m.ms < best[mode].ms) best[mode] = m
          peak[mode] = Math.max(peak[mode] ?? 0, m.maxRssMiB)
        }
      }
      for (const mode of ['read', 'sha256', 'validate'] as const) {
        const m = best[mode]!
        console.log(
          `  ${mode.padEnd(9)} ${mibs(m).toFixed(0).padStart(6)} MiB/s  ${(m.ms / 1000).toFixed(3)} s  peak RSS ${peak[mode]!.toFixed(0)} MiB  ${m.result}`,
        )
      }
      const sha = best.sha256!
      const val = best.validate!
      if (!val.result.startsWith('valid'))
        throw new Error(`the generated CAR did not validate: ${val.result}`)
      const expectedCarCid = `${val.result.split(', ').at(-1)}`
      const shaCid = CID.parse(expectedCarCid).multihash.digest
      if (Buffer.from(shaCid).toString('hex') !== sha.result)
        throw new Error('carCid is not the sha2-256 of the CAR')
      console.log(`  ratio     validateCar / sha256 = ${(mibs(val) / mibs(sha)).toFixed(2)}`)
      await rm(path)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

await main()
