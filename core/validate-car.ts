/**
 * The streaming CARv1 validator. It reads a CAR once, front to back, and proves that it holds exactly the
 * complete DAG under the expected root: a well-formed header naming that root alone, every block's bytes
 * matching its CID, every link target present (inline CIDs excepted) and no block unrelated to the root.
 *
 * Memory: the chunks of the section being parsed (at most one block, MAX_BLOCK_SIZE, plus the chunk it ends
 * in), one map entry per distinct block or link target, and a ring of HASH_RING_SLOTS MiB shared with the
 * thread hashing the whole CAR.
 *
 * Speed: each byte is hashed twice (once for its block, once for the CAR's own CID). Block data is hashed in
 * place, without copying, and raw leaves are never decoded; the whole-CAR sha2-256 runs on a worker thread
 * for large CARs, so that the two hashes run in parallel.
 */
import { createHash } from 'node:crypto'
import { Worker } from 'node:worker_threads'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import { concatBytes } from './bytes.ts'
import { CAR_CODEC } from './car-format.ts'
import { UnsupportedCodecError } from './errors.ts'
import { IDENTITY, nodeHashName, SHA2_256, unsupportedHash } from './hash-policy.ts'
import {
  blockKey,
  DEFAULT_MAX_DAG_BLOCKS,
  isInline,
  linksOf,
  MAX_DAG_BLOCKS_CEILING,
  SUPPORTED_CODECS,
} from './links.ts'

/** The largest block data accepted (the CID not included). Sane DAG builders stay at or below 2 MiB. */
export const MAX_BLOCK_SIZE = 8 * 1024 * 1024
/** The longest CID accepted in a block section (a sha2-512 CIDv1 is 68 bytes; inline CIDs are longer). */
export const MAX_CID_SIZE = 1024
/** The longest header accepted: `{ version: 1, roots: [root] }` takes about 60 bytes. */
export const MAX_HEADER_SIZE = 64 * 1024
/**
 * Past this size a worker thread is started to hash the CAR; a CAR that ends before the worker is up is
 * hashed on the calling thread.
 */
export const HASH_WORKER_THRESHOLD = 2 * 1024 * 1024

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

export const CAR_FAULT_CODES = [
  'CAR_HEADER_INVALID',
  'CAR_VERSION_UNSUPPORTED',
  'CAR_ROOTS_INVALID',
  'CAR_ROOT_MISMATCH',
  'CAR_TRUNCATED',
  'CAR_BLOCK_INVALID',
  'CAR_TOO_LARGE',
  'CAR_UNREACHABLE_BLOCK',
  'UNSUPPORTED_HASH',
  'UNSUPPORTED_CODEC',
  'BLOCK_HASH_MISMATCH',
  'BLOCK_DECODE_FAILED',
  'DAG_INCOMPLETE',
  'DAG_TOO_MANY_BLOCKS',
] as const
export type CarFaultCode = (typeof CAR_FAULT_CODES)[number]

/**
 * Faults of the content itself: its hash functions, codecs, block encodings and size are the same in every
 * fetch of the DAG, so a CAR refused for one of them fails its pin at once instead of being fetched again.
 * The other faults can come of a faulty upload, worker or peer, and are retried.
 */
export const PERMANENT_CAR_FAULTS: ReadonlySet<CarFaultCode> = new Set<CarFaultCode>([
  'UNSUPPORTED_HASH',
  'UNSUPPORTED_CODEC',
  'BLOCK_DECODE_FAILED',
  'CAR_TOO_LARGE',
  'DAG_TOO_MANY_BLOCKS',
])

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
  const parser = new CarParser(
    opts.root,
    Math.min(opts.maxBlocks ?? DEFAULT_MAX_DAG_BLOCKS, MAX_DAG_BLOCKS_CEILING),
  )
  const hasher = new CarHasher()
  const it = body[Symbol.asyncIterator]()
  let exhausted = false
  try {
    for (;;) {
      const r = signal ? await nextOrAbort(it, signal) : await it.next()
      if (r.done) {
        exhausted = true
        break
      }
      const chunk = r.value
      if (chunk.length === 0) continue
      if (maxBytes !== undefined && parser.total + chunk.length > maxBytes) {
        // Parse up to the limit first, so that a fault before it is reported whatever the chunking.
        parser.push(chunk.subarray(0, Math.max(0, maxBytes - parser.total)))
        throw new Fault(
          'CAR_TOO_LARGE',
          `the CAR is larger than the limit of ${maxBytes} bytes`,
          maxBytes + 1,
        )
      }
      const wait = hasher.update(chunk)
      if (wait) await wait
      parser.push(chunk)
    }
    parser.end()
    const digest = await hasher.digest()
    signal?.throwIfAborted()
    return {
      valid: true,
      carCid: CID.createV1(CAR_CODEC, Digest.create(SHA2_256, digest)),
      bytes: parser.total,
      blocks: parser.blocks,
    }
  } catch (err) {
    if (err instanceof Fault) return { valid: false, code: err.code, reason: err.message, bytes: err.at }
    throw err
  } finally {
    hasher.close()
    if (!exhausted) await release(it, signal?.aborted === true)
  }
}

/** A verdict of invalidity, thrown inside the parser and turned into a CarVerdict by validateCar. */
class Fault extends Error {
  readonly code: CarFaultCode
  readonly at: number
  constructor(code: CarFaultCode, reason: string, at: number) {
    super(reason)
    this.code = code
    this.at = at
  }
}

function nextOrAbort<T>(it: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  signal.throwIfAborted()
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    it.next().then(
      (r) => {
        signal.removeEventListener('abort', onAbort)
        resolve(r)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/** Ends the body early. After an abort a `next()` may still be pending, so `return()` is not awaited. */
async function release(it: AsyncIterator<unknown>, aborted: boolean): Promise<void> {
  try {
    const done = it.return?.()
    if (!done) return
    if (aborted) done.catch(() => {})
    else await done.catch(() => {})
  } catch {
    // a body that cannot be released has nothing more to give
  }
}

// ---------------------------------------------------------------- chunks

/** The unparsed bytes: the chunks as they came, never joined unless a small read straddles two of them. */
class ChunkQueue {
  private chunks: Uint8Array[] = []
  private head = 0
  /** Offset of the first unread byte in chunks[head]. */
  private offset = 0
  /** Bytes available. */
  length = 0

  push(chunk: Uint8Array): void {
    if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
    this.chunks.push(chunk)
    this.length += chunk.length
  }

  /** The first `n` (<= length) bytes, contiguous: a view when they lie in one chunk, else a copy. */
  peek(n: number): Uint8Array {
    const first = this.chunks[this.head]!
    if (first.length - this.offset >= n) return first.subarray(this.offset, this.offset + n)
    const out = new Uint8Array(n)
    let filled = 0
    let off = this.offset
    for (let i = this.head; filled < n; i++) {
      const c = this.chunks[i]!
      const take = Math.min(c.length - off, n - filled)
      out.set(c.subarray(off, off + take), filled)
      filled += take
      off = 0
    }
    return out
  }

  /** The first `n` (<= length) bytes as views into the chunks, without copying. */
  views(n: number): Uint8Array[] {
    const out: Uint8Array[] = []
    let off = this.offset
    for (let i = this.head; n > 0; i++) {
      const c = this.chunks[i]!
      const take = Math.min(c.length - off, n)
      out.push(c.subarray(off, off + take))
      n -= take
      off = 0
    }
    return out
  }

  skip(n: number): void {
    this.length -= n
    while (n > 0) {
      const c = this.chunks[this.head]!
      const left = c.length - this.offset
      if (n < left) {
        this.offset += n
        return
      }
      n -= left
      this.chunks[this.head] = EMPTY
      this.head++
      this.offset = 0
    }
    if (this.head === this.chunks.length) {
      this.chunks = []
      this.head = 0
    }
  }
}

const EMPTY = new Uint8Array(0)

// ---------------------------------------------------------------- varints

/** A minimal unsigned LEB128 varint of at most `maxLength` bytes at the start of `bytes`. */
type VarintRead =
  | { kind: 'ok'; value: number; length: number }
  | { kind: 'more' }
  | { kind: 'bad'; why: string }

function readVarint(bytes: Uint8Array, start: number, maxLength: number): VarintRead {
  let value = 0
  let scale = 1
  for (let i = 0; i < maxLength; i++) {
    if (start + i >= bytes.length) return { kind: 'more' }
    const b = bytes[start + i]!
    value += (b & 0x7f) * scale
    if (b < 0x80) {
      if (b === 0 && i > 0) return { kind: 'bad', why: 'a varint that is not minimally encoded' }
      if (value > Number.MAX_SAFE_INTEGER) return { kind: 'bad', why: 'a varint too large' }
      return { kind: 'ok', value, length: i + 1 }
    }
    scale *= 128
  }
  return { kind: 'bad', why: `a varint longer than ${maxLength} bytes` }
}

// ---------------------------------------------------------------- CIDs

type CidRead =
  | { kind: 'ok'; length: number; code: number; hashCode: number; digestLength: number }
  | { kind: 'more' }
  | { kind: 'bad'; why: string }

/** Parses the shape of a binary CID at the start of `bytes` without building it. */
function readCidShape(bytes: Uint8Array): CidRead {
  if (bytes.length === 0) return { kind: 'more' }
  if (bytes[0] === SHA2_256) {
    // CIDv0: a bare sha2-256 multihash of a dag-pb block.
    if (bytes.length < 2) return { kind: 'more' }
    if (bytes[1] !== 32) return { kind: 'bad', why: `CIDv0 with a digest length of ${bytes[1]}, not 32` }
    return { kind: 'ok', length: 34, code: dagPb.code, hashCode: SHA2_256, digestLength: 32 }
  }
  if (bytes[0] !== 1) return { kind: 'bad', why: `no CID: first byte 0x${hex(bytes.subarray(0, 1))}` }
  let pos = 1
  const fields: number[] = []
  for (const name of ['codec', 'multihash code', 'digest length']) {
    const v = readVarint(bytes, pos, 8)
    if (v.kind === 'more') return v
    if (v.kind === 'bad') return { kind: 'bad', why: `CID with ${v.why} as its ${name}` }
    fields.push(v.value)
    pos += v.length
  }
  const [code, hashCode, digestLength] = fields as [number, number, number]
  return { kind: 'ok', length: pos + digestLength, code, hashCode, digestLength }
}

// ---------------------------------------------------------------- parsing

const PRESENT = 1
const LINKED = 2
const INLINE = 4
/** Map values: `offset * FLAGS + flags`, the offset being that of the block's first section. */
const FLAGS = 8

type State = 'headerLength' | 'header' | 'sectionLength' | 'sectionCid' | 'sectionData'

class CarParser {
  private readonly expectedRoot: CID
  private readonly q = new ChunkQueue()
  private state: State = 'headerLength'
  /** Absolute offset of the first byte in `q`. */
  private pos = 0
  /** Start of the header's or the current section's varint. */
  private start = 0
  /** Declared length of the header or the current section (after its varint). */
  private declared = 0
  /** Absolute offset where the header's or the current section's body begins (after its varint). */
  private bodyStart = 0
  private cid: CID | undefined
  private dataLength = 0
  private rootKey = ''
  private rootInline = false
  private readonly dag = new Map<string, number>()
  private readonly maxBlocks: number
  total = 0
  blocks = 0

  constructor(expectedRoot: CID, maxBlocks: number) {
    this.expectedRoot = expectedRoot
    this.maxBlocks = maxBlocks
  }

  /** Before a new key goes into `dag`: the budget of distinct blocks (link targets included). */
  private budget(at: number): void {
    if (this.dag.size >= this.maxBlocks) {
      throw new Fault(
        'DAG_TOO_MANY_BLOCKS',
        `the DAG has more than ${this.maxBlocks} blocks (distinct blocks and link targets, found by offset ${at}): over MAX_DAG_BLOCKS`,
        at,
      )
    }
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.q.push(chunk)
    this.total += chunk.length
    while (this.step()) {}
  }

  end(): void {
    while (this.step()) {}
    if (this.state !== 'sectionLength' || this.q.length > 0) this.truncated()
    this.checkDag()
  }

  private consume(n: number): void {
    this.q.skip(n)
    this.pos += n
  }

  /** Advances by one element if its bytes are all here. False when more bytes are needed. */
  private step(): boolean {
    switch (this.state) {
      case 'headerLength':
        return this.headerLength()
      case 'header':
        return this.header()
      case 'sectionLength':
        return this.sectionLength()
      case 'sectionCid':
        return this.sectionCid()
      case 'sectionData':
        return this.sectionData()
    }
  }

  private headerLength(): boolean {
    if (this.q.length === 0) return false
    const v = readVarint(this.q.peek(Math.min(this.q.length, 8)), 0, 8)
    if (v.kind === 'more') return false
    if (v.kind === 'bad') throw new Fault('CAR_HEADER_INVALID', `the header length is ${v.why}`, 0)
    if (v.value === 0) throw new Fault('CAR_HEADER_INVALID', 'the header length is zero', 0)
    if (v.value > MAX_HEADER_SIZE) {
      throw new Fault(
        'CAR_HEADER_INVALID',
        `the header length of ${v.value} bytes is over the limit of ${MAX_HEADER_SIZE}: not a CARv1`,
        0,
      )
    }
    this.declared = v.value
    this.consume(v.length)
    this.bodyStart = this.pos
    this.state = 'header'
    return true
  }

  private header(): boolean {
    if (this.q.length === 0) return false
    const first = this.q.peek(1)[0]!
    if (first >> 5 !== 5) {
      throw new Fault(
        'CAR_HEADER_INVALID',
        `the header at offset ${this.bodyStart} is not a dag-cbor map (first byte 0x${first.toString(16)})`,
        0,
      )
    }
    if (this.q.length < this.declared) return false
    let header: unknown
    try {
      header = dagCbor.decode(this.q.peek(this.declared))
    } catch (err) {
      throw new Fault('CAR_HEADER_INVALID', `the header is not valid dag-cbor: ${message(err)}`, 0)
    }
    this.checkHeader(header)
    this.consume(this.declared)
    this.state = 'sectionLength'
    return true
  }

  private checkHeader(header: unknown): void {
    if (typeof header !== 'object' || header === null || Array.isArray(header) || CID.asCID(header)) {
      throw new Fault('CAR_HEADER_INVALID', 'the header is not a map', 0)
    }
    const h = header as Record<string, unknown>
    if (!('version' in h)) throw new Fault('CAR_HEADER_INVALID', 'the header has no version', 0)
    if (h.version !== 1) {
      const v = typeof h.version === 'number' ? String(h.version) : JSON.stringify(String(h.version))
      throw new Fault(
        'CAR_VERSION_UNSUPPORTED',
        h.version === 2 ? 'CARv2 is not supported: only CARv1' : `CAR version ${v} is not supported: only 1`,
        0,
      )
    }
    const extra = Object.keys(h).filter((k) => k !== 'version' && k !== 'roots')
    if (extra.length > 0) {
      throw new Fault('CAR_HEADER_INVALID', `the header has unexpected keys: ${extra.join(', ')}`, 0)
    }
    const roots = h.roots
    if (!Array.isArray(roots)) throw new Fault('CAR_HEADER_INVALID', 'the header has no roots list', 0)
    const cids = roots.map((r) => CID.asCID(r))
    if (cids.some((c) => !c)) throw new Fault('CAR_HEADER_INVALID', 'a root in the header is not a CID', 0)
    if (cids.length !== 1) {
      throw new Fault(
        'CAR_ROOTS_INVALID',
        `the header names ${cids.length} roots, not exactly one${cids.length ? `: ${cids.join(', ')}` : ''}`,
        0,
      )
    }
    const root = cids[0]!
    if (!root.toV1().equals(this.expectedRoot.toV1())) {
      throw new Fault('CAR_ROOT_MISMATCH', `the header's root is ${root}, not ${this.expectedRoot}`, 0)
    }
    this.rootKey = blockKey(root)
    if (isInline(root)) {
      // The root's data is its CID: it needs no block, but what it links to does.
      this.rootInline = true
      this.linkTo(root, 0)
    }
  }

  private sectionLength(): boolean {
    if (this.q.length === 0) return false
    this.start = this.pos
    const v = readVarint(this.q.peek(Math.min(this.q.length, 8)), 0, 8)
    if (v.kind === 'more') return false
    if (v.kind === 'bad') {
      throw new Fault(
        'CAR_BLOCK_INVALID',
        `the section at offset ${this.start} has ${v.why} as its length`,
        this.start,
      )
    }
    if (v.value === 0) {
      throw new Fault(
        'CAR_BLOCK_INVALID',
        `the section at offset ${this.start} has a length of zero`,
        this.start,
      )
    }
    if (v.value > MAX_BLOCK_SIZE + MAX_CID_SIZE) {
      throw new Fault(
        'CAR_BLOCK_INVALID',
        `the section at offset ${this.start} declares ${v.value} bytes, over the limit of ${MAX_BLOCK_SIZE} bytes of block data`,
        this.start,
      )
    }
    this.declared = v.value
    this.consume(v.length)
    this.bodyStart = this.pos
    this.state = 'sectionCid'
    return true
  }

  private sectionCid(): boolean {
    if (this.q.length === 0) return false
    const window = Math.min(this.declared, MAX_CID_SIZE)
    const bytes = this.q.peek(Math.min(this.q.length, window))
    const shape = readCidShape(bytes)
    const at = `the section at offset ${this.start}`
    if (shape.kind === 'bad')
      throw new Fault('CAR_BLOCK_INVALID', `${at} starts with ${shape.why}`, this.start)
    if (shape.kind === 'more') {
      if (bytes.length < window) return false
      throw new Fault(
        'CAR_BLOCK_INVALID',
        `${at} declares ${this.declared} bytes, too few to hold a CID`,
        this.start,
      )
    }
    if (shape.length > MAX_CID_SIZE) {
      throw new Fault(
        'CAR_BLOCK_INVALID',
        `${at} has a CID of ${shape.length} bytes, over the limit of ${MAX_CID_SIZE}`,
        this.start,
      )
    }
    if (shape.length > this.declared) {
      throw new Fault(
        'CAR_BLOCK_INVALID',
        `${at} declares ${this.declared} bytes but its CID alone takes ${shape.length}`,
        this.start,
      )
    }
    if (bytes.length < shape.length) return false
    let cid: CID
    try {
      cid = CID.decode(bytes.slice(0, shape.length))
    } catch (err) {
      throw new Fault('CAR_BLOCK_INVALID', `${at} has a malformed CID: ${message(err)}`, this.start)
    }
    const dataLength = this.declared - shape.length
    const hashWhy = unsupportedHash(shape.hashCode, shape.digestLength)
    if (hashWhy)
      throw new Fault('UNSUPPORTED_HASH', `block ${cid} at offset ${this.start}: ${hashWhy}`, this.start)
    if (!SUPPORTED_CODECS.has(shape.code)) {
      throw new Fault(
        'UNSUPPORTED_CODEC',
        `block ${cid} at offset ${this.start}: ${new UnsupportedCodecError(shape.code).message}`,
        this.start,
      )
    }
    if (dataLength > MAX_BLOCK_SIZE) {
      throw new Fault(
        'CAR_BLOCK_INVALID',
        `block ${cid} at offset ${this.start} has ${dataLength} bytes, over the limit of ${MAX_BLOCK_SIZE}`,
        this.start,
      )
    }
    this.cid = cid
    this.dataLength = dataLength
    this.consume(shape.length)
    this.state = 'sectionData'
    return true
  }

  private sectionData(): boolean {
    const n = this.dataLength
    if (this.q.length < n) return false
    const cid = this.cid!
    const parts = this.q.views(n)
    this.verifyHash(cid, parts, n)
    const key = blockKey(cid)
    const seen = this.dag.get(key) ?? 0
    if (((seen % FLAGS) & PRESENT) === 0) {
      if (seen === 0) this.budget(this.start)
      // A repeated block was verified above; its links are those of its first copy.
      this.dag.set(key, (seen % FLAGS) + this.start * FLAGS + PRESENT)
      this.blocks++
      if (cid.code !== raw.code) {
        for (const link of this.decodeLinks(cid, concatBytes(parts, n))) this.linkTo(link, this.start)
      }
    }
    this.consume(n)
    this.cid = undefined
    this.state = 'sectionLength'
    return true
  }

  private verifyHash(cid: CID, parts: readonly Uint8Array[], n: number): void {
    const mh = cid.multihash
    let actual: Uint8Array
    if (mh.code === IDENTITY) {
      actual = concatBytes(parts, n)
    } else {
      const h = createHash(nodeHashName(mh.code))
      for (const p of parts) h.update(p)
      actual = h.digest()
    }
    if (!bytesEqual(actual, mh.digest)) {
      const what =
        mh.code === IDENTITY
          ? 'differ from the data inlined in its CID'
          : `hash to ${hex(actual)}, not to the CID's ${hex(mh.digest)}`
      throw new Fault(
        'BLOCK_HASH_MISMATCH',
        `block ${cid} at offset ${this.start}: its ${n} bytes ${what}`,
        this.start,
      )
    }
  }

  private decodeLinks(cid: CID, bytes: Uint8Array): CID[] {
    try {
      return linksOf(cid, bytes)
    } catch (err) {
      if (err instanceof UnsupportedCodecError) {
        throw new Fault(
          'UNSUPPORTED_CODEC',
          `block ${cid} at offset ${this.start}: ${err.message}`,
          this.start,
        )
      }
      throw new Fault(
        'BLOCK_DECODE_FAILED',
        `block ${cid} at offset ${this.start} does not decode as ${codecName(cid.code)}: ${message(err)}`,
        this.start,
      )
    }
  }

  /** Records a link; an inline target's own links are followed at once (its data is in the CID). */
  private linkTo(target: CID, at: number): void {
    const key = blockKey(target)
    // Arithmetic, not bitwise: the offset in the value may exceed 32 bits.
    const seen = this.dag.get(key) ?? 0
    if ((seen % FLAGS) & LINKED) return
    if (seen === 0) this.budget(at)
    if (!isInline(target)) {
      this.dag.set(key, seen + LINKED)
      return
    }
    this.dag.set(key, seen + LINKED + INLINE)
    if (!SUPPORTED_CODECS.has(target.code)) {
      throw new Fault(
        'UNSUPPORTED_CODEC',
        `inline CID ${target} linked at offset ${at}: ${new UnsupportedCodecError(target.code).message}`,
        at,
      )
    }
    let links: CID[]
    try {
      links = linksOf(target, target.multihash.digest)
    } catch (err) {
      throw new Fault(
        'BLOCK_DECODE_FAILED',
        `inline CID ${target} linked at offset ${at} does not decode as ${codecName(target.code)}: ${message(err)}`,
        at,
      )
    }
    for (const link of links) this.linkTo(link, at)
  }

  private truncated(): never {
    const end = this.total
    const ends = `the CAR ends at offset ${end}`
    switch (this.state) {
      case 'headerLength':
        throw new Fault(
          'CAR_TRUNCATED',
          end === 0 ? 'the CAR is empty' : `${ends} inside its header length`,
          end,
        )
      case 'header':
        throw new Fault(
          'CAR_TRUNCATED',
          `${ends} inside its header, which declares ${this.declared} bytes from offset ${this.bodyStart}`,
          end,
        )
      case 'sectionLength':
        throw new Fault(
          'CAR_TRUNCATED',
          `${ends} inside the length of the section at offset ${this.pos}`,
          end,
        )
      case 'sectionCid':
        throw new Fault(
          'CAR_TRUNCATED',
          `${ends} inside the CID of the section at offset ${this.start}, which declares ${this.declared} bytes`,
          end,
        )
      case 'sectionData':
        throw new Fault(
          'CAR_TRUNCATED',
          `${ends} inside block ${this.cid} at offset ${this.start}: ${end - this.pos} of its ${this.dataLength} bytes are present`,
          end,
        )
    }
  }

  /** The whole-DAG checks: the root and every link target present, every other block linked. */
  private checkDag(): void {
    const end = this.total
    let missing = 0
    let firstMissing: string | undefined
    const rootFlags = this.dag.get(this.rootKey) ?? 0
    const rootMissing = !this.rootInline && (rootFlags & PRESENT) === 0
    if (rootMissing) missing++
    let unreachable = 0
    let firstUnreachable: { key: string; offset: number } | undefined
    for (const [key, value] of this.dag) {
      const flags = value % FLAGS
      if ((flags & (PRESENT | INLINE)) === 0) {
        if (key === this.rootKey) continue
        missing++
        firstMissing ??= key
      } else if ((flags & (PRESENT | LINKED)) === PRESENT && key !== this.rootKey) {
        unreachable++
        firstUnreachable ??= { key, offset: Math.floor(value / FLAGS) }
      }
    }
    if (missing > 0) {
      const others = rootMissing ? missing - 1 : missing
      const first = rootMissing
        ? `the root block ${this.expectedRoot} is not in the CAR`
        : `block ${cidFromKey(firstMissing!)} is linked but not in the CAR`
      const rest = rootMissing
        ? others > 0
          ? ` (nor ${others} linked block${others === 1 ? '' : 's'}, e.g. ${cidFromKey(firstMissing!)})`
          : ''
        : ` (${missing} linked block${missing === 1 ? ' is' : 's are'} missing)`
      throw new Fault('DAG_INCOMPLETE', `the DAG is incomplete: ${first}${rest}`, end)
    }
    if (firstUnreachable) {
      throw new Fault(
        'CAR_UNREACHABLE_BLOCK',
        `block ${cidFromKey(firstUnreachable.key)} at offset ${firstUnreachable.offset} is not linked from the root's DAG` +
          (unreachable > 1 ? ` (nor are ${unreachable - 1} other blocks)` : ''),
        end,
      )
    }
  }
}

/** The CIDv1 a block key stands for, to name a block in a reason. */
function cidFromKey(key: string): CID {
  const sep = key.indexOf(':')
  const code = Number.parseInt(key.slice(0, sep), 36)
  return CID.createV1(code, Digest.decode(Buffer.from(key.slice(sep + 1), 'base64')))
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

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

// ---------------------------------------------------------------- the CAR's own hash

/** The ring of buffers shared with the hashing thread: HASH_RING_SLOTS slots of SLOT_SIZE bytes. */
const SLOT_SIZE = 1024 * 1024
export const HASH_RING_SLOTS = 16
/** Control words (Int32): slots written, slots hashed, events (bumped on every write and at the end), end. */
const WRITTEN = 0
const READ = 1
const EVENTS = 2
const FINAL = 3
/** Who hashes: UNDECIDED until the worker claims the ring on starting, or this thread at the end. */
const OWNER = 4
const UNDECIDED = 0
const WORKER = 1
const CALLER = 2

type WaitAsync = (
  a: Int32Array,
  index: number,
  value: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> }
/** ES2024, in Node since 16; the project's lib is ES2023. */
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync

/**
 * Runs in the hashing thread. Claims the ring (unless the caller already hashed it all), hashes the slots in
 * order as they are written, blocking on EVENTS while there is nothing to do, and posts the digest once the
 * end is marked and every slot is hashed.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const { createHash } = require('node:crypto')
const { data, ctrl, lengths, slotSize, slots } = workerData
if (Atomics.compareExchange(ctrl, ${OWNER}, ${UNDECIDED}, ${WORKER}) === ${UNDECIDED}) {
  const hash = createHash('sha256')
  let read = 0
  for (;;) {
    const events = Atomics.load(ctrl, ${EVENTS})
    const written = Atomics.load(ctrl, ${WRITTEN})
    while (read !== written) {
      const at = (read % slots) * slotSize
      hash.update(data.subarray(at, at + lengths[read % slots]))
      read++
      Atomics.store(ctrl, ${READ}, read)
      Atomics.notify(ctrl, ${READ})
    }
    // The end is marked after the last write: once it is seen, WRITTEN is final.
    if (Atomics.load(ctrl, ${FINAL}) === 1 && read === Atomics.load(ctrl, ${WRITTEN})) break
    Atomics.wait(ctrl, ${EVENTS}, events)
  }
  parentPort.postMessage(hash.digest())
}
`

/**
 * sha2-256 of the whole CAR. Bytes are copied into a ring of slots in shared memory (one copy, no more).
 * Past HASH_WORKER_THRESHOLD bytes a worker thread starts, claims the ring and hashes the slots while this
 * thread goes on parsing; a writer that gets a full ring ahead of it waits for a slot. A CAR that ends before
 * the worker claims the ring (or before there is any) is hashed from the ring on this thread: it cannot have
 * wrapped around, since nothing was read from it.
 */
class CarHasher {
  private data: Uint8Array | undefined
  private readonly ctrl = new Int32Array(new SharedArrayBuffer(4 * 5))
  private readonly lengths = new Int32Array(new SharedArrayBuffer(4 * HASH_RING_SLOTS))
  private written = 0
  private used = 0
  private worker: Worker | undefined
  private failure: Error | undefined
  private digestWaiter: { resolve: (d: Uint8Array) => void; reject: (e: Error) => void } | undefined
  private closed = false

  /** Returns a promise only when the ring is full: the caller must await it before the next update. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    this.data ??= new Uint8Array(new SharedArrayBuffer(SLOT_SIZE * HASH_RING_SLOTS))
    let off = 0
    while (off < chunk.length) {
      if (this.written - Atomics.load(this.ctrl, READ) === HASH_RING_SLOTS) {
        const rest = chunk.subarray(off)
        return this.waitForSlot().then(() => this.update(rest))
      }
      const take = Math.min(SLOT_SIZE - this.used, chunk.length - off)
      this.data.set(chunk.subarray(off, off + take), (this.written % HASH_RING_SLOTS) * SLOT_SIZE + this.used)
      this.used += take
      off += take
      if (this.used === SLOT_SIZE) this.publish()
    }
    return undefined
  }

  private publish(): void {
    this.lengths[this.written % HASH_RING_SLOTS] = this.used
    this.written++
    this.used = 0
    Atomics.store(this.ctrl, WRITTEN, this.written)
    if (!this.worker && this.written * SLOT_SIZE > HASH_WORKER_THRESHOLD) this.startWorker()
    this.signal()
  }

  private signal(): void {
    Atomics.add(this.ctrl, EVENTS, 1)
    Atomics.notify(this.ctrl, EVENTS)
  }

  private async waitForSlot(): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure
      const read = Atomics.load(this.ctrl, READ)
      if (this.written - read < HASH_RING_SLOTS) return
      const w = waitAsync(this.ctrl, READ, read)
      if (w.async) await w.value
    }
  }

  private startWorker(): void {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        data: this.data,
        ctrl: this.ctrl,
        lengths: this.lengths,
        slotSize: SLOT_SIZE,
        slots: HASH_RING_SLOTS,
      },
    })
    worker.unref()
    worker.on('message', (m: unknown) => {
      if (m instanceof Uint8Array) this.digestWaiter?.resolve(m)
    })
    worker.on('error', (err) => this.fail(err))
    // It exits with 0 after posting the digest (which may not have been delivered yet) or, having lost the
    // ring to this thread, without doing anything.
    worker.on('exit', (code) => {
      if (code !== 0) this.fail(new Error(`the CAR hashing thread exited (code ${code})`))
    })
    this.worker = worker
  }

  private fail(err: Error): void {
    if (this.closed) return
    this.failure ??= err
    this.digestWaiter?.reject(this.failure)
    // Wakes a writer waiting for a slot, which then sees the failure.
    Atomics.notify(this.ctrl, READ)
  }

  async digest(): Promise<Uint8Array> {
    if (this.used > 0) this.publish()
    if (Atomics.compareExchange(this.ctrl, OWNER, UNDECIDED, CALLER) === UNDECIDED) {
      // Nothing was read, so the ring holds every slot from the first.
      const h = createHash('sha256')
      for (let i = 0; i < this.written; i++) {
        h.update(this.data!.subarray(i * SLOT_SIZE, i * SLOT_SIZE + this.lengths[i]!))
      }
      return h.digest()
    }
    if (this.failure) throw this.failure
    const done = new Promise<Uint8Array>((resolve, reject) => {
      this.digestWaiter = { resolve, reject }
    })
    Atomics.store(this.ctrl, FINAL, 1)
    this.signal()
    return done
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    void this.worker?.terminate()
  }
}
