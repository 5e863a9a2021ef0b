import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { BlockDecodeError, UnsupportedCodecError } from './errors.ts'

/** Plain JSON and CBOR: data only, never links. */
const JSON_CODE = 0x0200
const CBOR_CODE = 0x51

/** The codecs whose links pickup follows. A DAG using any other cannot be shown complete, so it is refused. */
export const SUPPORTED_CODECS: ReadonlySet<number> = new Set([
  dagPb.code,
  raw.code,
  dagCbor.code,
  dagJson.code,
  JSON_CODE,
  CBOR_CODE,
])

/**
 * The default budget of distinct blocks (link targets included) per DAG, for the worker's walk and the
 * validator alike: 2,000,000. Each costs the worker ~140 bytes (its key in the set of blocks seen, and its
 * CID while it waits to be fetched) and the validator ~150 bytes: ~280 MB per job at most, whatever the DAG's
 * shape. Far above real DAGs of MAX_CAR_BYTES (31 GiB in 256 KiB leaves is ~127,000 blocks).
 */
export const DEFAULT_MAX_DAG_BLOCKS = 2_000_000
/** The highest budget accepted: below 2^24, the most entries a V8 Map or Set holds (the validator's map). */
export const MAX_DAG_BLOCKS_CEILING = 16_000_000

/** Identity CIDs carry their data inline: nothing to fetch or store. */
export function isInline(cid: CID): boolean {
  return cid.multihash.code === identity.code
}

/** The CIDs a block links to, in the order they appear. Throws UnsupportedCodecError or BlockDecodeError. */
export function linksOf(cid: CID, bytes: Uint8Array): CID[] {
  if (!SUPPORTED_CODECS.has(cid.code)) throw new UnsupportedCodecError(cid.code)
  try {
    return decodeLinks(cid, bytes)
  } catch (err) {
    throw new BlockDecodeError(cid, err instanceof Error ? err.message : String(err))
  }
}

function decodeLinks(cid: CID, bytes: Uint8Array): CID[] {
  switch (cid.code) {
    case raw.code:
    case JSON_CODE:
    case CBOR_CODE:
      return []
    case dagPb.code:
      return dagPb.decode(bytes).Links.map((l) => l.Hash)
    case dagCbor.code:
      return collectCids(dagCbor.decode(bytes), [], 0)
    case dagJson.code:
      return collectCids(dagJson.decode(bytes), [], 0)
    default:
      throw new UnsupportedCodecError(cid.code)
  }
}

/** Deeper nesting than any real DAG uses; past it a block is refused rather than overflowing the stack. */
const MAX_NESTING = 256

function collectCids(value: unknown, out: CID[], depth: number): CID[] {
  if (value === null || typeof value !== 'object') return out
  if (depth > MAX_NESTING) throw new Error(`nested deeper than ${MAX_NESTING} levels`)
  const asCid = CID.asCID(value)
  if (asCid) {
    out.push(asCid)
    return out
  }
  if (value instanceof Uint8Array) return out
  if (Array.isArray(value)) {
    for (const v of value) collectCids(v, out, depth + 1)
    return out
  }
  for (const v of Object.values(value)) collectCids(v, out, depth + 1)
  return out
}

/**
 * A compact key for a block: its codec and multihash. CIDv0 and CIDv1 of the same dag-pb block share a key.
 */
export function blockKey(cid: CID): string {
  return `${cid.code.toString(36)}:${Buffer.from(cid.multihash.bytes).toString('base64')}`
}
