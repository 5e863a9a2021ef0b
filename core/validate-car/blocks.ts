/**
 * Block verification: a section's CID must use an accepted hash (the hash policy shared with the worker),
 * a codec whose links pickup follows, and announce at most MAX_BLOCK_SIZE bytes; its bytes must hash to it;
 * its links are decoded (raw leaves never are). Each check throws a Fault naming the block and its offset.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { concatBytes } from '../bytes.ts'
import { UnsupportedCodecError } from '../errors.ts'
import { blockDigest, digestMatches, IDENTITY, unsupportedHash } from '../hash-policy.ts'
import { linksOf, SUPPORTED_CODECS } from '../links.ts'
import { Fault, hex, message } from './faults.ts'

/** The largest block data accepted (the CID not included). Sane DAG builders stay at or below 2 MiB. */
export const MAX_BLOCK_SIZE = 8 * 1024 * 1024

const NO_LINKS: readonly CID[] = []

/** The checks of a section's CID and declared size, before its data is read. */
export function checkSection(cid: CID, dataLength: number, at: number): void {
  const hashWhy = unsupportedHash(cid.multihash.code, cid.multihash.digest.length)
  if (hashWhy) throw new Fault('UNSUPPORTED_HASH', `block ${cid} at offset ${at}: ${hashWhy}`, at)
  if (!SUPPORTED_CODECS.has(cid.code)) {
    throw new Fault(
      'UNSUPPORTED_CODEC',
      `block ${cid} at offset ${at}: ${new UnsupportedCodecError(cid.code).message}`,
      at,
    )
  }
  if (dataLength > MAX_BLOCK_SIZE) {
    throw new Fault(
      'CAR_BLOCK_INVALID',
      `block ${cid} at offset ${at} has ${dataLength} bytes, over the limit of ${MAX_BLOCK_SIZE}`,
      at,
    )
  }
}

/** Throws BLOCK_HASH_MISMATCH unless the block's bytes (`parts`, `n` in all) hash to its CID. */
export function verifyBlockHash(cid: CID, parts: readonly Uint8Array[], n: number, at: number): void {
  const actual = blockDigest(cid.multihash.code, parts, n)
  if (digestMatches(cid, actual)) return
  const what =
    cid.multihash.code === IDENTITY
      ? 'differ from the data inlined in its CID'
      : `hash to ${hex(actual)}, not to the CID's ${hex(cid.multihash.digest)}`
  throw new Fault('BLOCK_HASH_MISMATCH', `block ${cid} at offset ${at}: its ${n} bytes ${what}`, at)
}

/** The CIDs a verified block links to; a raw block is not decoded. */
export function blockLinks(cid: CID, parts: readonly Uint8Array[], n: number, at: number): readonly CID[] {
  if (cid.code === raw.code) return NO_LINKS
  try {
    return linksOf(cid, concatBytes(parts, n))
  } catch (err) {
    if (err instanceof UnsupportedCodecError) {
      throw new Fault('UNSUPPORTED_CODEC', `block ${cid} at offset ${at}: ${err.message}`, at)
    }
    throw new Fault(
      'BLOCK_DECODE_FAILED',
      `block ${cid} at offset ${at} does not decode as ${codecName(cid.code)}: ${message(err)}`,
      at,
    )
  }
}

/** The CIDs an inline CID's data (its digest) links to; `at` is the offset of what linked to it. */
export function inlineLinks(target: CID, at: number): CID[] {
  if (!SUPPORTED_CODECS.has(target.code)) {
    throw new Fault(
      'UNSUPPORTED_CODEC',
      `inline CID ${target} linked at offset ${at}: ${new UnsupportedCodecError(target.code).message}`,
      at,
    )
  }
  try {
    return linksOf(target, target.multihash.digest)
  } catch (err) {
    throw new Fault(
      'BLOCK_DECODE_FAILED',
      `inline CID ${target} linked at offset ${at} does not decode as ${codecName(target.code)}: ${message(err)}`,
      at,
    )
  }
}

function codecName(code: number): string {
  switch (code) {
    case dagPb.code:
      return 'dag-pb'
    case dagCbor.code:
      return 'dag-cbor'
    case 0x0129:
      return 'dag-json'
    default:
      return `codec 0x${code.toString(16)}`
  }
}
