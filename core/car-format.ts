/**
 * CARv1 framing: a varint-prefixed dag-cbor header `{ version: 1, roots }`, then for each block a varint of
 * (CID bytes + data) followed by the CID bytes and the data. Written by hand so the worker can emit blocks in
 * the order they arrive from the network without an intermediate writer.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { varint } from 'multiformats'
import type { CID } from 'multiformats/cid'

export const CAR_CODEC = 0x0202

export function encodeCarHeader(root: CID): Uint8Array {
  const header = dagCbor.encode({ version: 1, roots: [root] })
  const prefix = varint.encodeTo(header.length, new Uint8Array(varint.encodingLength(header.length)))
  const out = new Uint8Array(prefix.length + header.length)
  out.set(prefix, 0)
  out.set(header, prefix.length)
  return out
}

/** The frame of one block: the varint length and the CID bytes, to be followed by the block's data. */
export function encodeBlockPrefix(cid: CID, dataLength: number): Uint8Array {
  const cidBytes = cid.bytes
  const length = cidBytes.length + dataLength
  const lengthBytes = varint.encodingLength(length)
  const out = new Uint8Array(lengthBytes + cidBytes.length)
  varint.encodeTo(length, out, 0)
  out.set(cidBytes, lengthBytes)
  return out
}
