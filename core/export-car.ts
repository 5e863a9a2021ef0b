/**
 * Streams a whole DAG as a CARv1: the header naming `root`, then every block of the DAG exactly once, in the
 * order the blocks arrive. The walk is breadth-first and parallel: up to `concurrency` gets are in flight, and
 * each block's links are queued as soon as it arrives, so the fetch is bound by bandwidth, not by one round
 * trip per block as a depth-first export is.
 *
 * Memory is bounded: fetched-but-unwritten blocks plus gets in flight never exceed `concurrency`, so a
 * consumer that stops pulling stops the fetching too; the set of block keys seen and the queue of CIDs found
 * but not yet fetched (~140 bytes per block together) hold at most `maxBlocks` entries, whatever the DAG's
 * shape: a DAG with more distinct blocks (link targets included) fails with DagTooLargeError as soon as its
 * links are decoded, before its bytes are fetched.
 */
import { setMaxListeners } from 'node:events'
import { CID } from 'multiformats/cid'
import { encodeBlockPrefix, encodeCarHeader } from './car-format.ts'
import { CarTooLargeError, DagTooLargeError, UnsupportedCodecError } from './errors.ts'
import { checkHash } from './hash-policy.ts'
import { blockKey, DEFAULT_MAX_DAG_BLOCKS, isInline, linksOf, SUPPORTED_CODECS } from './links.ts'
import type { BlockSource } from './ports.ts'

export const DEFAULT_EXPORT_CONCURRENCY = 32

export interface ExportProgress {
  /** CAR bytes handed to the consumer so far, the header included. */
  bytes: number
  /** Blocks handed to the consumer so far. */
  blocks: number
}

export interface ExportCarOptions {
  /** Gets in flight at most; also the bound on fetched-but-unwritten blocks. Default 32. */
  concurrency?: number
  /** The CAR may be at most this many bytes: past it the export throws CarTooLargeError. */
  maxBytes: number
  /**
   * The DAG may have at most this many distinct blocks, link targets included (default
   * DEFAULT_MAX_DAG_BLOCKS): past it the export throws DagTooLargeError.
   */
  maxBlocks?: number
  /** Aborting cancels the gets in flight and makes the export throw the signal's reason. */
  signal?: AbortSignal
  /** Called each time a block is handed to the consumer. */
  onProgress?: (progress: ExportProgress) => void
}

interface ReadyBlock {
  prefix: Uint8Array
  data: Uint8Array
}

/**
 * The CAR of the DAG under `root`, as a stream of chunks (each block is two chunks: its frame and its data,
 * never copied). Throws CarTooLargeError, UnsupportedCodecError, the signal's reason or the first error of
 * `source.get`; on any of these the other gets in flight are cancelled. Stopping the iteration early cancels
 * them too, but an async generator's `return()` waits for a pending `next()`, which waits for a block: to
 * stop an export that is stuck on a get (a stall timeout), abort `signal`, which wakes it at once.
 */
export async function* exportCar(
  root: CID,
  source: BlockSource,
  opts: ExportCarOptions,
): AsyncGenerator<Uint8Array, void, undefined> {
  const concurrency = Math.max(1, Math.floor(opts.concurrency ?? DEFAULT_EXPORT_CONCURRENCY))
  const { maxBytes, signal, onProgress } = opts
  const maxBlocks = opts.maxBlocks ?? DEFAULT_MAX_DAG_BLOCKS
  signal?.throwIfAborted()

  const controller = new AbortController()
  setMaxListeners(Number.POSITIVE_INFINITY, controller.signal)
  const seen = new Set<string>()
  const pending = new CidQueue()
  const ready = new Fifo<ReadyBlock>()
  let active = 0
  /** Bytes of the CAR once every block fetched so far is written. */
  let committedBytes = 0
  let failure: { error: unknown } | undefined
  let wakeUp: (() => void) | undefined

  const wake = (): void => {
    const resolve = wakeUp
    wakeUp = undefined
    resolve?.()
  }

  const fail = (error: unknown): void => {
    if (failure) return
    failure = { error }
    controller.abort(error)
    wake()
  }

  /** Queues a CID unless seen; inline CIDs are not fetched, but the links inside them are followed. */
  const enqueue = (cid: CID): void => {
    checkFetchable(cid)
    const key = blockKey(cid)
    if (seen.has(key)) return
    if (seen.size >= maxBlocks) throw new DagTooLargeError(maxBlocks)
    seen.add(key)
    if (isInline(cid)) {
      for (const link of linksOf(cid, cid.multihash.digest)) enqueue(link)
      return
    }
    pending.push(cid)
  }

  const onBlock = (cid: CID, data: Uint8Array): void => {
    active--
    if (failure) return
    try {
      for (const link of linksOf(cid, data)) enqueue(link)
      const prefix = encodeBlockPrefix(cid, data.length)
      committedBytes += prefix.length + data.length
      if (committedBytes > maxBytes) throw new CarTooLargeError(maxBytes)
      ready.push({ prefix, data })
    } catch (err) {
      fail(err)
      return
    }
    pump()
    wake()
  }

  const onError = (err: unknown): void => {
    active--
    fail(err)
  }

  /** Starts gets while there is room: gets in flight plus blocks waiting to be written stay <= concurrency. */
  const pump = (): void => {
    while (!failure && active + ready.length < concurrency && pending.length > 0) {
      const cid = pending.shift()
      active++
      let got: Promise<Uint8Array>
      try {
        got = source.get(cid, { signal: controller.signal })
      } catch (err) {
        onError(err)
        return
      }
      got.then((data) => onBlock(cid, data), onError)
    }
  }

  const onAbort = (): void => fail(signal?.reason)
  signal?.addEventListener('abort', onAbort, { once: true })

  try {
    const header = encodeCarHeader(root)
    committedBytes = header.length
    if (committedBytes > maxBytes) throw new CarTooLargeError(maxBytes)
    enqueue(root)
    pump()

    let bytes = header.length
    let blocks = 0
    yield header

    for (;;) {
      if (failure) throw failure.error
      const block = ready.shift()
      if (block) {
        // A slot is free again: refill it before handing the block over, so fetching overlaps the consumer.
        pump()
        bytes += block.prefix.length + block.data.length
        blocks++
        onProgress?.({ bytes, blocks })
        yield block.prefix
        yield block.data
        continue
      }
      if (active === 0 && pending.length === 0) return
      await new Promise<void>((resolve) => {
        wakeUp = resolve
      })
    }
  } finally {
    signal?.removeEventListener('abort', onAbort)
    // Finished, failed or abandoned by the consumer: start nothing more and cancel whatever is in flight.
    fail(new DOMException('the CAR export ended', 'AbortError'))
  }
}

/**
 * Throws UnsupportedCodecError, or the hash policy's error, for a block pickup would not store: the validator
 * refuses it, so it is never fetched and the pin fails at once.
 */
export function checkFetchable(cid: CID): void {
  if (!SUPPORTED_CODECS.has(cid.code)) throw new UnsupportedCodecError(cid.code)
  checkHash(cid)
}

/** A FIFO that does not shift arrays: an array and a read index, compacted once half of it is consumed. */
class Fifo<T> {
  #items: T[] = []
  #head = 0

  get length(): number {
    return this.#items.length - this.#head
  }

  push(item: T): void {
    this.#items.push(item)
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const item = this.#items[this.#head]
    this.#items[this.#head] = undefined as T
    this.#head++
    if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return item
  }
}

/**
 * The CIDs found but not fetched yet, as copies of their bytes: a link decoded from a block is a view into
 * that block, and holding it would keep the whole block alive while it waits in the queue. The bytes are
 * packed, length-prefixed, into shared pages (~40 bytes per CID, not the ~300 of one small typed array each);
 * a page is dropped once read. Pages start small and double up to 64 KiB: a job still searching holds one
 * CID, its root, and a worker holds thousands of those (SEARCH_CONCURRENCY).
 */
class CidQueue {
  static readonly FIRST_PAGE = 256
  static readonly PAGE = 64 * 1024
  #pages = new Fifo<Uint8Array>()
  #nextPage = CidQueue.FIRST_PAGE
  /** The page being written (the last of #pages) and its write offset. */
  #tail: Uint8Array | undefined
  #write = 0
  /** The page being read (taken off #pages) and its read offset. */
  #head: Uint8Array | undefined
  #read = 0
  #length = 0

  get length(): number {
    return this.#length
  }

  push(cid: CID): void {
    const bytes = cid.bytes
    // A CID is at most MAX_CID_SIZE bytes (the validator's limit), well under 65,535: two length bytes.
    if (bytes.length > 0xffff) throw new Error(`a CID of ${bytes.length} bytes`)
    const need = 2 + bytes.length
    if (!this.#tail || this.#write + need > this.#tail.length) {
      this.#tail = new Uint8Array(Math.max(this.#nextPage, need))
      this.#nextPage = Math.min(this.#nextPage * 2, CidQueue.PAGE)
      this.#write = 0
      this.#pages.push(this.#tail)
    }
    this.#tail[this.#write] = bytes.length >> 8
    this.#tail[this.#write + 1] = bytes.length & 0xff
    this.#tail.set(bytes, this.#write + 2)
    this.#write += need
    this.#length++
  }

  shift(): CID {
    if (this.#length === 0) throw new Error('CidQueue.shift on an empty queue')
    for (;;) {
      if (
        this.#head &&
        this.#read < this.#head.length &&
        (this.#head !== this.#tail || this.#read < this.#write)
      ) {
        const n = (this.#head[this.#read]! << 8) | this.#head[this.#read + 1]!
        // A page is zero-filled past its last entry: a zero length marks its end.
        if (n > 0) {
          const cid = CID.decode(this.#head.slice(this.#read + 2, this.#read + 2 + n))
          this.#read += 2 + n
          this.#length--
          return cid
        }
      }
      const next = this.#pages.shift()
      if (!next) throw new Error('CidQueue: entries counted but no page left')
      this.#head = next
      this.#read = 0
    }
  }
}
