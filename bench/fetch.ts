/**
 * Fetch throughput over loopback: an origin Helia node holds a generated UnixFS DAG of N MiB (256 KiB
 * chunks), and a fresh fetcher node per run streams it with exportCar to nowhere, at several concurrencies.
 * Concurrency 1 is the latency-bound case of a depth-first export (what `@helia/car` does).
 *
 *   npm run bench -- fetch [MiB=64] [concurrency,...=1,8,32,64]
 */
import { randomBytes } from 'node:crypto'
import { unixfs } from '@helia/unixfs'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { createHeliaBlockSource } from '../adapters/helia/block-source.ts'
import { createHeliaNode } from '../adapters/helia/node.ts'
import { exportCar } from '../core/export-car.ts'
import type { Logger } from '../core/ports.ts'

const MiB = 1024 * 1024
const sizeMiB = Number(process.argv[2] ?? 64)
const concurrencies = (process.argv[3] ?? '1,8,32,64').split(',').map(Number)

const log: Logger = {
  info() {},
  warn(obj, msg) {
    console.warn(msg, obj)
  },
  error(obj, msg) {
    console.error(msg, obj)
  },
  debug() {},
  child() {
    return log
  },
}

async function* generate(bytes: number): AsyncGenerator<Uint8Array> {
  for (let left = bytes; left > 0; left -= MiB) yield randomBytes(Math.min(MiB, left))
}

const origin = await createHeliaNode()
const importStarted = performance.now()
const root = await unixfs(origin).addByteStream(generate(sizeMiB * MiB), {
  chunker: fixedSize({ chunkSize: 256 * 1024 }),
  rawLeaves: true,
  cidVersion: 1,
})
console.info(
  `origin: ${sizeMiB} MiB UnixFS file ${root} imported in ${(performance.now() - importStarted).toFixed(0)} ms`,
)
const originAddrs = await createHeliaBlockSource(origin, { log }).multiaddrs()

try {
  for (const concurrency of concurrencies) {
    // A new fetcher each run: a Helia origin will not resend a block to the same peer within 5 s.
    const fetcher = await createHeliaNode()
    try {
      const source = createHeliaBlockSource(fetcher, { log })
      await source.connect(originAddrs)
      const started = performance.now()
      let bytes = 0
      let blocks = 0
      for await (const chunk of exportCar(root, source, {
        concurrency,
        maxBytes: Number.MAX_SAFE_INTEGER,
        onProgress: (p) => {
          blocks = p.blocks
        },
      })) {
        bytes += chunk.length
      }
      const seconds = (performance.now() - started) / 1000
      console.info(
        `concurrency ${String(concurrency).padStart(3)}: ${blocks} blocks, ${(bytes / MiB).toFixed(1)} MiB ` +
          `in ${seconds.toFixed(2)} s = ${(bytes / MiB / seconds).toFixed(1)} MiB/s`,
      )
    } finally {
      await fetcher.stop()
    }
  }
} finally {
  await origin.stop()
}
