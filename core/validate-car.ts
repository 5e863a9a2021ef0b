/**
 * The streaming CARv1 validator. It reads a CAR once, front to back, and proves that it holds exactly the
 * complete DAG under the expected root: a well-formed header naming that root alone, every block's bytes
 * matching its CID, every link target present (inline CIDs excepted) and no block unrelated to the root.
 *
 * Its parts, under ./validate-car/: chunks.ts (reading the body, the queue of unparsed chunks), framing.ts
 * (CARv1's header and sections), blocks.ts (each block's CID, size, hash and links), dag.ts (the DAG's
 * completeness), car-hash.ts (the whole-CAR sha2-256), faults.ts (the fault codes). validateCar below wires
 * them: a new rule goes into the part it concerns, with its code in faults.ts.
 *
 * Memory: the chunks of the section being parsed (at most one block, MAX_BLOCK_SIZE, plus the chunk it ends
 * in), one map entry per distinct block or link target, and a ring of HASH_RING_SLOTS MiB shared with the
 * thread hashing the whole CAR.
 *
 * Speed: each byte is hashed twice (once for its block, once for the CAR's own CID). Block data is hashed in
 * place, without copying, and raw leaves are never decoded; the whole-CAR sha2-256 runs on a worker thread
 * for large CARs, so that the two hashes run in parallel.
 */
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import { CAR_CODEC } from './car-format.ts'
import { SHA2_256 } from './hash-policy.ts'
import { DEFAULT_MAX_DAG_BLOCKS, MAX_DAG_BLOCKS_CEILING } from './links.ts'
import { blockLinks, checkSection, verifyBlockHash } from './validate-car/blocks.ts'
import { CarHasher } from './validate-car/car-hash.ts'
import { BodyReader } from './validate-car/chunks.ts'
import { DagLedger } from './validate-car/dag.ts'
import { type CarFaultCode, Fault } from './validate-car/faults.ts'
import { CarFraming } from './validate-car/framing.ts'

export { MAX_BLOCK_SIZE } from './validate-car/blocks.ts'
export { HASH_RING_SLOTS, HASH_WORKER_THRESHOLD } from './validate-car/car-hash.ts'
export { CAR_FAULT_CODES, type CarFaultCode, PERMANENT_CAR_FAULTS } from './validate-car/faults.ts'
export { MAX_CID_SIZE, MAX_HEADER_SIZE } from './validate-car/framing.ts'

export type CarVerdict =
  /** `bytes`: the CAR's length; `blocks`: distinct blocks (a repeated block counts once). */
  | { valid: true; carCid: CID; bytes: number; blocks: number }
  /**
   * `code`: stable (see CarFaultCode); `reason`: names the block and the offset. `bytes`: the offset the
   * fault is reported at (the start of the offending header or section; the CAR's length when it ends early
   * or fails a whole-DAG check; maxBytes + 1 for CAR_TOO_LARGE). It does not depend on how the body is
   * chunked: the same CAR always gets the same verdict.
   */
  | { valid: false; code: CarFaultCode; reason: string; bytes: number }

export interface ValidateCarOptions {
  /** The expected root. A CIDv0 and the CIDv1 of the same dag-pb block are the same root. */
  root: CID
  /** Reading stops as soon as the CAR is longer than this. */
  maxBytes?: number
  /**
   * The most distinct blocks (link targets included) the CAR's DAG may have, default DEFAULT_MAX_DAG_BLOCKS,
   * at most MAX_DAG_BLOCKS_CEILING: it bounds the validator's memory (~150 bytes each).
   */
  maxBlocks?: number
  signal?: AbortSignal
}

/**
 * Validates a CARv1 read from `body`, which is consumed once and released (its iterator's `return()`) if
 * the verdict comes before its end. Throws only for `signal`'s reason, an error of `body` itself, or an
 * internal failure (the hashing thread dying); a bad CAR is a verdict, never an exception.
 */
export async function validateCar(
  body: AsyncIterable<Uint8Array>,
  opts: ValidateCarOptions,
): Promise<CarVerdict> {
  const { signal, maxBytes } = opts
  signal?.throwIfAborted()
  const dag = new DagLedger(
    opts.root,
    Math.min(opts.maxBlocks ?? DEFAULT_MAX_DAG_BLOCKS, MAX_DAG_BLOCKS_CEILING),
  )
  const framing = new CarFraming({
    roots: (roots) => dag.roots(roots),
    section: checkSection,
    block(cid, parts, n, at) {
      verifyBlockHash(cid, parts, n, at)
      if (dag.addBlock(cid, at)) for (const link of blockLinks(cid, parts, n, at)) dag.link(link, at)
    },
  })
  const hasher = new CarHasher()
  const reader = new BodyReader(body, signal)
  try {
    for (let chunk = await reader.next(); chunk; chunk = await reader.next()) {
      if (chunk.length === 0) continue
      if (maxBytes !== undefined && framing.total + chunk.length > maxBytes) {
        // Parse up to the limit first, so that a fault before it is reported whatever the chunking.
        framing.push(chunk.subarray(0, Math.max(0, maxBytes - framing.total)))
        throw new Fault(
          'CAR_TOO_LARGE',
          `the CAR is larger than the limit of ${maxBytes} bytes`,
          maxBytes + 1,
        )
      }
      const wait = hasher.update(chunk)
      if (wait) await wait
      framing.push(chunk)
    }
    framing.end()
    dag.check(framing.total)
    const digest = await hasher.digest()
    signal?.throwIfAborted()
    const carCid = CID.createV1(CAR_CODEC, Digest.create(SHA2_256, digest))
    return { valid: true, carCid, bytes: framing.total, blocks: dag.blocks }
  } catch (err) {
    if (err instanceof Fault) return { valid: false, code: err.code, reason: err.message, bytes: err.at }
    throw err
  } finally {
    hasher.close()
    await reader.close()
  }
}
