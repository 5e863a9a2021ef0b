/**
 * Reads files out of stored CARs (the destination bucket), for archiving (a token's metadata) and export:
 * the CAR is read block by block, each block checked against its CID (core/hash-policy.ts) before it is
 * used, and the UnixFS path resolved with @helia/unixfs offline over those blocks only. The blocks are held
 * in memory while the file is read, so CARs larger than `maxCarBytes` are refused, not read.
 */

import { unixfs } from '@helia/unixfs'
import { CarBlockIterator } from '@ipld/car/iterator'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CID } from 'multiformats/cid'
import { concatBytes } from '../core/bytes.ts'
import type { StoredContentReader } from '../core/collections/archive.ts'
import { CodedError, PickupError } from '../core/errors.ts'
import { verifyBlock } from '../core/hash-policy.ts'
import type { ObjectStore } from '../core/ports.ts'

export class StoredContentError extends CodedError {}

export interface StoredContentReaderOptions {
  destination: ObjectStore
  /** Largest CAR read into memory to resolve a path. */
  maxCarBytes: number
}

export function createStoredContentReader(opts: StoredContentReaderOptions): StoredContentReader {
  // The last CAR read stays in memory: tokens come in id order and usually share a root, so a directory of
  // 10,000 metadata files is read from the bucket once, not once per token.
  let last: { key: string; blockstore: MemoryBlockstore } | undefined

  async function blocksOf(cid: string, key: string, signal?: AbortSignal): Promise<MemoryBlockstore> {
    if (last?.key === key) return last.blockstore
    const object = await opts.destination.get(key, signal ? { signal } : {})
    if (object === undefined) throw new StoredContentError('CAR_MISSING', `no CAR at ${key} for ${cid}`, true)
    const blockstore = new MemoryBlockstore()
    const blocks = await CarBlockIterator.fromIterable(object.body)
    for await (const block of blocks) {
      signal?.throwIfAborted()
      verifyBlock(block.cid, block.bytes)
      await blockstore.put(block.cid, block.bytes)
    }
    last = { key, blockstore }
    return blockstore
  }

  return {
    async readFile(pin, path, { maxBytes, signal }) {
      if (pin.status !== 'pinned' || pin.car === undefined)
        throw new StoredContentError('NOT_STORED', `${pin.cid} is ${pin.status}, not stored`, true)
      if (pin.car.bytes > opts.maxCarBytes)
        throw new StoredContentError(
          'CAR_TOO_LARGE_TO_READ',
          `the CAR of ${pin.cid} is ${pin.car.bytes} bytes, over the ${opts.maxCarBytes} read to find a file in it`,
        )
      const blockstore = await blocksOf(pin.cid, pin.car.key, signal)
      const fs = unixfs({ blockstore })
      const chunks: Uint8Array[] = []
      let total = 0
      try {
        for await (const chunk of fs.cat(CID.parse(pin.cid), {
          path,
          offline: true,
          ...(signal ? { signal } : {}),
        })) {
          total += chunk.length
          if (total > maxBytes)
            throw new StoredContentError(
              'FILE_TOO_LARGE',
              `${pin.cid}/${path} is larger than ${maxBytes} bytes`,
            )
          chunks.push(chunk)
        }
      } catch (err) {
        if (err instanceof PickupError) throw err
        const name = err instanceof Error ? err.name : ''
        if (/NotFound|DoesNotExist/.test(name))
          throw new StoredContentError('PATH_NOT_FOUND', `no ${JSON.stringify(path)} under ${pin.cid}`)
        if (/NotAFile|NotUnixFS/.test(name))
          throw new StoredContentError('NOT_A_FILE', `${pin.cid}/${path} is not a file`)
        throw err
      }
      return concatBytes(chunks, total)
    },
  }
}
