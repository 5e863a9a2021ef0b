/**
 * A CAR's block set, tallied cheaply: its root, the number of blocks, their data bytes and an order-free
 * fingerprint of their CIDs (the sum of each digest's first 8 bytes, mod 2^64). Reads only the framing and
 * the CIDs, never hashes the data, so checking a strategy's CAR costs the process that streams it next to
 * nothing. Two CARs with the same tally hold the same blocks, whatever their order.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { CID } from 'multiformats/cid'
import type { Block } from '../../test/fixtures/dags.ts'

export interface CarTally {
  root: string
  blocks: number
  /** Block data bytes, CIDs and framing excluded. */
  dataBytes: number
  /** The whole CAR's length. */
  carBytes: number
  fingerprint: string
}

const MASK = (1n << 64n) - 1n

function digestPrefix(cid: CID): bigint {
  const d = cid.multihash.digest
  let v = 0n
  for (let i = 0; i < Math.min(8, d.length); i++) v = (v << 8n) | BigInt(d[i]!)
  return v
}

/** The tally a CAR of these blocks under `root` must have. */
export async function tallyBlocks(
  root: CID,
  blocks: Iterable<Block> | AsyncIterable<Block>,
): Promise<Omit<CarTally, 'carBytes'>> {
  let count = 0
  let dataBytes = 0
  let fp = 0n
  for await (const b of blocks) {
    count++
    dataBytes += b.bytes.length
    fp = (fp + digestPrefix(b.cid)) & MASK
  }
  return { root: root.toString(), blocks: count, dataBytes, fingerprint: fp.toString(16) }
}

/** A varint at `off`: [value, length], or undefined when `bytes` end inside it. */
function readVarint(bytes: Uint8Array, off: number): [number, number] | undefined {
  let value = 0
  let shift = 1
  for (let i = off; i < bytes.length && i - off < 9; i++) {
    const b = bytes[i]!
    value += (b & 0x7f) * shift
    if (b < 0x80) return [value, i - off + 1]
    shift *= 128
  }
  return undefined
}

/** Tallies a CARv1 stream. Throws on a malformed one. */
export async function tallyCar(car: AsyncIterable<Uint8Array>): Promise<CarTally> {
  let pending = new Uint8Array(0)
  let skip = 0
  let root: string | undefined
  let blocks = 0
  let dataBytes = 0
  let carBytes = 0
  let fp = 0n

  /** Parses one section from the start of `p`: bytes consumed and data bytes still to skip, or undefined. */
  const parseOne = (p: Uint8Array): { consumed: number; skip: number } | undefined => {
    const v = readVarint(p, 0)
    if (!v) return undefined
    const [length, vlen] = v
    const end = vlen + length
    if (root === undefined) {
      if (p.length < end) return undefined
      const header = dagCbor.decode(p.subarray(vlen, end)) as { version: number; roots: CID[] }
      if (header.version !== 1 || header.roots.length !== 1) throw new Error('not a one-root CARv1')
      root = header.roots[0]!.toString()
      return { consumed: end, skip: 0 }
    }
    if (p.length < Math.min(end, vlen + 128)) return undefined
    const section = p.subarray(vlen, Math.min(end, p.length))
    const [cid, rest] = CID.decodeFirst(section)
    const cidLength = section.length - rest.length
    blocks++
    dataBytes += length - cidLength
    fp = (fp + digestPrefix(cid)) & MASK
    return p.length >= end ? { consumed: end, skip: 0 } : { consumed: p.length, skip: end - p.length }
  }

  for await (const chunk of car) {
    carBytes += chunk.length
    let off = 0
    while (off < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - off)
        skip -= n
        off += n
        continue
      }
      const n = Math.min(256, chunk.length - off)
      const next = new Uint8Array(pending.length + n)
      next.set(pending, 0)
      next.set(chunk.subarray(off, off + n), pending.length)
      pending = next
      off += n
      for (;;) {
        const r = parseOne(pending)
        if (!r) break
        pending = pending.subarray(r.consumed)
        if (r.skip > 0) {
          skip = r.skip
          break
        }
      }
    }
  }
  if (skip > 0 || pending.length > 0 || root === undefined) throw new Error('the CAR ends inside a section')
  return { root, blocks, dataBytes, carBytes, fingerprint: fp.toString(16) }
}
