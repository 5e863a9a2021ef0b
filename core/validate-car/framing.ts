/**
 * CAR framing: CARv1's varint-prefixed header and sections, parsed as the bytes arrive. It checks the form
 * (lengths, limits, a dag-cbor header of version 1 with a list of CIDs as roots, a CID at the start of each
 * section) and hands the roots, each section's CID and each block's data to a CarSections; what they must be
 * is for the other parts of the validator to say.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import { SHA2_256 } from '../hash-policy.ts'
import { MAX_BLOCK_SIZE } from './blocks.ts'
import { ChunkQueue } from './chunks.ts'
import { Fault, hex, message } from './faults.ts'

/** The longest CID accepted in a block section (a sha2-512 CIDv1 is 68 bytes; inline CIDs are longer). */
export const MAX_CID_SIZE = 1024
/** The longest header accepted: `{ version: 1, roots: [root] }` takes about 60 bytes. */
export const MAX_HEADER_SIZE = 64 * 1024

/** What the framing finds, in the order of the CAR. Each may throw a Fault. */
export interface CarSections {
  /** The header's roots, once the header is a well-formed CARv1 header. */
  roots(roots: readonly CID[]): void
  /** A section's CID, before its data is read: a block refused here is never buffered. */
  section(cid: CID, dataLength: number, offset: number): void
  /** A block's data as views into the chunks, `length` bytes in all; `offset` is its section's. */
  block(cid: CID, parts: readonly Uint8Array[], length: number, offset: number): void
}

type State = 'headerLength' | 'header' | 'sectionLength' | 'sectionCid' | 'sectionData'

export class CarFraming {
  private readonly sink: CarSections
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
  /** Bytes pushed. */
  total = 0

  constructor(sink: CarSections) {
    this.sink = sink
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    this.q.push(chunk)
    this.total += chunk.length
    while (this.step()) {}
  }

  /** At the end of the bytes: throws CAR_TRUNCATED unless the last section is complete. */
  end(): void {
    while (this.step()) {}
    if (this.state !== 'sectionLength' || this.q.length > 0) this.truncated()
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
    this.sink.roots(cids as CID[])
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
    this.sink.section(cid, dataLength, this.start)
    this.cid = cid
    this.dataLength = dataLength
    this.consume(shape.length)
    this.state = 'sectionData'
    return true
  }

  private sectionData(): boolean {
    const n = this.dataLength
    if (this.q.length < n) return false
    this.sink.block(this.cid!, this.q.views(n), n, this.start)
    this.consume(n)
    this.cid = undefined
    this.state = 'sectionLength'
    return true
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
}

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
