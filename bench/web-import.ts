/**
 * Archiving a web-hosted file (core/collections/web.ts's fetch, UnixFS import on disk and CAR export) against
 * a plain download of the same bytes from the same server, in the same run.
 *
 *   npm run bench -- web-import [sizes...]      sizes in bytes or with K/M/G (binary), default: 256M
 *
 * A local HTTP server (this process) streams pseudo-random bytes generated 1 MiB at a time (never held
 * whole). Each measurement runs in a fresh child process so that its peak RSS is its own:
 * - `download`: the guarded GET (adapters/web/guarded-http.ts), every chunk sha2-256 hashed: the anchor;
 * - `archive`: the importer (adapters/web/importer.ts: the guarded GET into @helia/unixfs over a blockstore
 *   in a temporary directory), then the CAR a worker's attempt would upload (core/export-car.ts over the
 *   imported blocks), hashed as it streams, as the upload to the temporary bucket would read it.
 * Prints MiB/s of the file and peak RSS of each.
 */
import { execFile } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { CID } from 'multiformats/cid'
import { guardedGet } from '../adapters/web/guarded-http.ts'
import { createWebImporter } from '../adapters/web/importer.ts'
import { exportCar } from '../core/export-car.ts'
import { pseudoRandomBytes } from '../test/fixtures/dags.ts'
import { parseSize } from './lib/size.ts'

const MiB = 1024 * 1024
const RUNS = Number(process.env.BENCH_RUNS ?? 2)

type Mode = 'download' | 'archive'

interface Measure {
  ms: number
  bytes: number
  carBytes: number
  maxRssMiB: number
  result: string
}

async function child(mode: Mode, url: string, size: number): Promise<Measure> {
  const start = performance.now()
  const limits = { allowPrivate: true, timeoutMs: 30 * 60_000, maxRedirects: 0 }
  const h = createHash('sha256')
  let bytes = 0
  let carBytes = 0
  let result: string
  if (mode === 'download') {
    const res = await guardedGet(url, { ...limits, maxBytes: size })
    for await (const c of res.body) {
      h.update(c)
      bytes += c.byteLength
    }
    result = h.digest('hex').slice(0, 16)
  } else {
    const imported = await createWebImporter(limits).import(url, { maxBytes: size })
    try {
      bytes = imported.bytes
      const car = exportCar(
        CID.parse(imported.cid),
        { get: (cid, o) => imported.get(cid, o), connect: async () => {}, multiaddrs: async () => [] },
        { maxBytes: 2 * size + MiB },
      )
      for await (const c of car) {
        h.update(c)
        carBytes += c.byteLength
      }
      result = imported.cid
    } finally {
      await imported.close()
    }
  }
  const ms = performance.now() - start
  return { ms, bytes, carBytes, maxRssMiB: process.resourceUsage().maxRSS / 1024, result }
}

function runChild(mode: Mode, url: string, size: number): Promise<Measure> {
  // Asynchronously: this process serves the bytes meanwhile.
  return new Promise((resolve, reject) => {
    const script = fileURLToPath(import.meta.url)
    execFile(
      process.execPath,
      [script, '--child', mode, url, String(size)],
      { maxBuffer: 1 << 20 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`child ${mode} failed: ${stderr}`))
        else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!) as Measure)
      },
    )
  })
}

async function main(sizes: number[]) {
  const server = createServer((req, res) => {
    const size = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('size'))
    res.writeHead(200, { 'content-length': size })
    let i = 0
    const more = () => {
      while (i * MiB < size) {
        const n = Math.min(MiB, size - i * MiB)
        const ok = res.write(pseudoRandomBytes(n, 'web-import bench', i++))
        if (!ok) return void res.once('drain', more)
      }
      res.end()
    }
    more()
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/file`
  console.log(`web import, best of ${RUNS} runs each (MiB/s of the file; peak RSS of the process)`)
  console.log(
    '| file | download + sha256 | archive (import on disk + CAR) | ratio | peak RSS (download / archive) |',
  )
  console.log('|---|---|---|---|---|')
  for (const size of sizes) {
    const best: Partial<Record<Mode, Measure>> = {}
    let rss: Record<Mode, number> = { download: 0, archive: 0 }
    for (let r = 0; r < RUNS; r++)
      for (const mode of ['download', 'archive'] as const) {
        const m = await runChild(mode, `${base}?size=${size}`, size)
        if (m.bytes !== size) throw new Error(`${mode}: ${m.bytes} bytes, not ${size}`)
        if (!best[mode] || m.ms < best[mode].ms) best[mode] = m
        rss = { ...rss, [mode]: Math.max(rss[mode], m.maxRssMiB) }
      }
    const rate = (m: Measure) => (m.bytes / MiB / (m.ms / 1000)).toFixed(0)
    const d = best.download!
    const a = best.archive!
    console.log(
      `| ${size / MiB} MiB | ${rate(d)} MiB/s | ${rate(a)} MiB/s (CAR ${(a.carBytes / MiB).toFixed(1)} MiB) | ${(d.ms / a.ms).toFixed(2)} | ${rss.download.toFixed(0)} / ${rss.archive.toFixed(0)} MiB |`,
    )
  }
  server.close()
}

const argv = process.argv.slice(2)
if (argv[0] === '--child') {
  const m = await child(argv[1] as Mode, argv[2]!, Number(argv[3]))
  console.log(JSON.stringify(m))
} else {
  await main((argv.length ? argv : ['256M']).map(parseSize))
}
