/**
 * The whole-CAR hash: sha2-256 of every byte of the CAR, for the CAR's own CID. Large CARs are hashed on a
 * worker thread, in parallel with the block checks on the calling thread.
 */
import { createHash } from 'node:crypto'
import { Worker } from 'node:worker_threads'

/**
 * Past this size a worker thread is started to hash the CAR; a CAR that ends before the worker is up is
 * hashed on the calling thread.
 */
export const HASH_WORKER_THRESHOLD = 2 * 1024 * 1024

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
export class CarHasher {
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
