/**
 * A throwaway IPFS peer for trying pickup offline: imports a file into an embedded Helia node as UnixFS (CIDv1,
 * raw leaves, fixed-size chunks: 1 MiB by default, Helia's own default, or `--chunk-size`), prints its CID, the
 * chunk size and the node's multiaddrs, and serves it over bitswap until Ctrl-C. The blocks are held in
 * memory.
 *
 *   npm run serve-file -- <path> [--chunk-size 256KiB]
 */
import { createReadStream } from 'node:fs'
import { parseArgs } from 'node:util'
import { unixfs } from '@helia/unixfs'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { createHeliaNode } from '../adapters/helia/node.ts'

const USAGE = 'usage: npm run serve-file -- <path> [--chunk-size <bytes, or e.g. 256KiB, 1MiB>]'
const UNITS: Record<string, number> = { '': 1, b: 1, kib: 1024, k: 1024, mib: 1024 ** 2, m: 1024 ** 2 }

function parseSize(text: string): number | undefined {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(text.trim())
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined
  if (!m || unit === undefined) return undefined
  return Number(m[1]) * unit
}

let path: string | undefined
let chunkSize = 1024 * 1024
try {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { 'chunk-size': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help) {
    console.log(USAGE)
    process.exit(0)
  }
  path = positionals[0]
  if (values['chunk-size'] !== undefined) {
    const size = parseSize(values['chunk-size'])
    // Bitswap refuses blocks over 4 MiB (a little less, once framed).
    if (size === undefined || size < 1 || size > 4 * 1024 * 1024 - 4096)
      throw new Error(`--chunk-size must be 1 byte to 4 MiB - 4 KiB, got ${values['chunk-size']}`)
    chunkSize = size
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err))
  console.error(USAGE)
  process.exit(2)
}
if (!path) {
  console.error(USAGE)
  process.exit(2)
}

const helia = await createHeliaNode({ allowPrivateDials: true })
const cid = await unixfs(helia).addByteStream(createReadStream(path), {
  cidVersion: 1,
  rawLeaves: true,
  chunker: fixedSize({ chunkSize }),
})
const addrs = helia.libp2p.getMultiaddrs().map(String)
console.log(`CID:     ${cid}`)
console.log(`chunks:  ${chunkSize} bytes (--chunk-size to change)`)
console.log(`origins: ${addrs.join(',')}`)
console.log('serving; Ctrl-C to stop')
process.once('SIGINT', async () => {
  await helia.stop()
  process.exit(0)
})
