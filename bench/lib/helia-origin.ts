/**
 * A Helia origin in a process of its own, holding one generated UnixFS file (test/fixtures/dags.ts
 * `unixfsFile`, 256 KiB raw leaves) in memory. Prints one JSON line `{ root, multiaddrs }` once it serves the
 * DAG, then serves it until stdin closes.
 *
 *   node bench/lib/helia-origin.ts <MiB> <seed>
 */
import { createHeliaNode } from '../../adapters/helia/node.ts'
import { unixfsFile } from '../../test/fixtures/dags.ts'

const MiB = 1024 * 1024
const mib = Number(process.argv[2])
const seed = process.argv[3] ?? `bench-${mib}`

const file = await unixfsFile(mib * MiB, { seed })
const node = await createHeliaNode({ allowPrivateDials: true })
for await (const b of file.blocks) await node.blockstore.put(b.cid, b.bytes)
const multiaddrs = node.libp2p.getMultiaddrs().map(String)
process.stdout.write(`${JSON.stringify({ root: file.root.toString(), multiaddrs })}\n`)

process.stdin.resume()
await new Promise((resolve) => process.stdin.once('end', resolve))
await node.stop()
process.exit(0)
