/**
 * A throwaway IPFS peer for trying pickup offline: imports a file into an embedded Helia node (UnixFS, 256 KiB
 * chunks, CIDv1), prints its CID and the node's multiaddrs, and serves it over bitswap until Ctrl-C.
 *
 *   npm run serve-file -- <path>
 */
import { createReadStream } from 'node:fs'
import { unixfs } from '@helia/unixfs'
import { createHeliaNode } from '../adapters/helia/node.ts'

const path = process.argv[2]
if (!path) {
  console.error('usage: npm run serve-file -- <path>')
  process.exit(2)
}
const helia = await createHeliaNode({ allowPrivateDials: true })
const cid = await unixfs(helia).addByteStream(createReadStream(path), { cidVersion: 1, rawLeaves: true })
const addrs = helia.libp2p.getMultiaddrs().map(String)
console.log(`CID:     ${cid}`)
console.log(`origins: ${addrs.join(',')}`)
console.log('serving; Ctrl-C to stop')
process.once('SIGINT', async () => {
  await helia.stop()
  process.exit(0)
})
