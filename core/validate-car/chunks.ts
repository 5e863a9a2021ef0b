/**
 * Chunk reading: the body read one chunk at a time (abortable, and released when the verdict comes before
 * its end), and the queue of unparsed bytes, kept as the chunks came and never joined unless a small read
 * straddles two of them.
 */

/** Reads a body once; `close()` releases it unless it was read to its end. */
export class BodyReader {
  private readonly it: AsyncIterator<Uint8Array>
  private readonly signal: AbortSignal | undefined
  private exhausted = false

  constructor(body: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined) {
    this.it = body[Symbol.asyncIterator]()
    this.signal = signal
  }

  /** The next chunk, or undefined at the end. Rejects with the signal's reason when it is aborted. */
  async next(): Promise<Uint8Array | undefined> {
    const r = this.signal ? await nextOrAbort(this.it, this.signal) : await this.it.next()
    if (r.done) {
      this.exhausted = true
      return undefined
    }
    return r.value
  }

  async close(): Promise<void> {
    if (!this.exhausted) await release(this.it, this.signal?.aborted === true)
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

/** The unparsed bytes: the chunks as they came, never joined unless a small read straddles two of them. */
export class ChunkQueue {
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
