/**
 * The multihashes pickup verifies, one policy for the worker (the kubo adapter's check of what kubo returns,
 * the export's walk of the DAG) and the validator: a block the worker accepts is one the validator accepts,
 * so a DAG the validator would refuse for its hashes is refused by the worker before anything is fetched.
 *
 * Accepted: sha2-256 and sha2-512 with their full digests, and identity (inline data). Refused: every other
 * function (sha3, blake2, ...) and truncated digests, which prove less than their full-length forms. The
 * refusal is permanent: the hashes are part of the content, so no retry can change them.
 *
 * How a block is hashed and compared is here too (blockDigest, digestMatches): the validator hashes a block's
 * parts where they lie, the kubo adapter one array (verifyBlock), by the same code.
 */
import { createHash } from 'node:crypto'
import type { CID } from 'multiformats/cid'
import { concatBytes } from './bytes.ts'
import { BlockHashMismatchError, UnsupportedHashError } from './errors.ts'

export const SHA2_256 = 0x12
export const SHA2_512 = 0x13
export const IDENTITY = 0x00

/** Why pickup cannot verify a multihash, or undefined when it can. */
export function unsupportedHash(code: number, digestLength: number): string | undefined {
  if (code === SHA2_256) return digestLength === 32 ? undefined : `truncated sha2-256 (${digestLength} bytes)`
  if (code === SHA2_512) return digestLength === 64 ? undefined : `truncated sha2-512 (${digestLength} bytes)`
  if (code === IDENTITY) return undefined
  return `unsupported multihash function 0x${code.toString(16)}: only sha2-256, sha2-512 and identity`
}

/** Throws UnsupportedHashError unless the policy accepts the CID's multihash. */
export function checkHash(cid: CID): void {
  const { code, digest } = cid.multihash
  const why = unsupportedHash(code, digest.length)
  if (why !== undefined) throw new UnsupportedHashError(code, `${cid}: ${why}`)
}

/** node:crypto's name for an accepted hash function; identity has none. */
function nodeHashName(code: number): 'sha256' | 'sha512' {
  return code === SHA2_256 ? 'sha256' : 'sha512'
}

/**
 * The digest of a block's bytes, given as parts (views into the chunks they arrived in, hashed in place),
 * under the CID's accepted hash function; for identity, the bytes themselves. Compare it with `digestMatches`.
 */
export function blockDigest(code: number, parts: readonly Uint8Array[], length: number): Uint8Array {
  if (code === IDENTITY) return concatBytes(parts, length)
  const h = createHash(nodeHashName(code))
  for (const p of parts) h.update(p)
  return h.digest()
}

/** Whether `actual` (from blockDigest) is the digest the CID's multihash names. */
export function digestMatches(cid: CID, actual: Uint8Array): boolean {
  const expected = cid.multihash.digest
  if (actual.length !== expected.length) return false
  for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) return false
  return true
}

/**
 * Throws UnsupportedHashError when the policy refuses the CID's multihash, BlockHashMismatchError unless
 * `bytes` hash to it (for identity: unless they are the inlined data).
 */
export function verifyBlock(cid: CID, bytes: Uint8Array): void {
  checkHash(cid)
  if (!digestMatches(cid, blockDigest(cid.multihash.code, [bytes], bytes.length))) {
    throw new BlockHashMismatchError(cid)
  }
}
