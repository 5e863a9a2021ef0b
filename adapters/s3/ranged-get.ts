/**
 * Reads an S3 object as parallel ranged GETs, reassembled in order.
 *
 * One GetObject stream runs at what one TCP connection gets from S3 (~90 MB/s from a Lambda), far below what
 * the validator's CPU verifies (~1 GB/s, bench/validate-car.ts). Reading `concurrency` ranges of
 * `partBytes` at once makes the consumer, not one connection, the bound:
 *
 * - the object is HEADed once (size, metadata, ETag); every range is then fetched with `If-Match: <ETag>`,
 *   so an object replaced mid-read fails with ObjectChangedError instead of yielding a mix of two objects;
 * - at most `concurrency` ranges are in flight and the consumer is never more than one range behind, so
 *   memory is bounded by (concurrency + 1) x partBytes whatever the object's size (64+8 MiB by default);
 * - each range is buffered whole before it is yielded, so a connection that drops mid-range is retried
 *   (`maxPartAttempts`) without the consumer seeing a byte twice; a range shorter or longer than asked is an
 *   error, never passed on;
 * - the consumer stopping early (return/throw) or the signal aborting cancels every request in flight.
 */
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3'
import type { ObjectInfo } from '../../core/ports.ts'

const MiB = 1024 * 1024

/** 8 MiB per range: S3's own guidance for byte-range fetches (8-16 MiB). */
export const DEFAULT_READ_PART_BYTES = 8 * MiB
/** 8 ranges in flight: 64 MiB buffered at most, several times one stream's throughput. */
export const DEFAULT_READ_CONCURRENCY = 8
/** Attempts per range (a connection reset mid-range, a 5xx the SDK gave up on). */
export const DEFAULT_READ_PART_ATTEMPTS = 3

export interface RangedReadOptions {
  /** Bytes per ranged GET. */
  partBytes?: number
  /** Ranged GETs in flight. */
  concurrency?: number
  /** Attempts per range before the read fails. */
  maxPartAttempts?: number
  signal?: AbortSignal
}

/** The object changed (its ETag) between the HEAD and a ranged GET: the bytes read so far are not one object. */
export class ObjectChangedError extends Error {
  override readonly name = 'ObjectChangedError'
  readonly bucket: string
  readonly key: string
  constructor(bucket: string, key: string) {
    super(`s3://${bucket}/${key} changed while it was being read`)
    this.bucket = bucket
    this.key = key
  }
}

/** A ranged GET answered with other bytes than asked for. */
export class RangeReadError extends Error {
  override readonly name = 'RangeReadError'
}

function statusOf(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode
}

export function isNotFound(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  return err.name === 'NoSuchKey' || err.name === 'NotFound' || statusOf(err) === 404
}

function isPreconditionFailed(err: unknown): boolean {
  return err instanceof Error && (err.name === 'PreconditionFailed' || statusOf(err) === 412)
}

/** HEADs the object, then returns its info and a body read as parallel ranged GETs; undefined if absent. */
export async function getRanged(
  client: S3Client,
  bucket: string,
  key: string,
  opts: RangedReadOptions = {},
): Promise<(ObjectInfo & { etag: string; body: AsyncIterable<Uint8Array> }) | undefined> {
  const partBytes = opts.partBytes ?? DEFAULT_READ_PART_BYTES
  const concurrency = opts.concurrency ?? DEFAULT_READ_CONCURRENCY
  const maxAttempts = opts.maxPartAttempts ?? DEFAULT_READ_PART_ATTEMPTS
  if (!(partBytes >= 1 && concurrency >= 1 && maxAttempts >= 1)) {
    throw new RangeError('partBytes, concurrency and maxPartAttempts must be at least 1')
  }
  let head: { ContentLength?: number; Metadata?: Record<string, string>; ETag?: string }
  try {
    head = await client.send(
      new HeadObjectCommand({ Bucket: bucket, Key: key }),
      opts.signal ? { abortSignal: opts.signal } : {},
    )
  } catch (err) {
    if (isNotFound(err)) return undefined
    opts.signal?.throwIfAborted()
    throw err
  }
  const size = head.ContentLength ?? 0
  const etag = head.ETag
  // Every range is read under If-Match, and the promotion copies under CopySourceIfMatch: both need it.
  if (!etag) throw new Error(`HeadObject of s3://${bucket}/${key} returned no ETag`)

  async function fetchRange(start: number, end: number, signal: AbortSignal): Promise<Uint8Array[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await client.send(
          new GetObjectCommand({
            Bucket: bucket,
            Key: key,
            Range: `bytes=${start}-${end}`,
            IfMatch: etag,
          }),
          { abortSignal: signal },
        )
        const chunks: Uint8Array[] = []
        let bytes = 0
        for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
          chunks.push(chunk)
          bytes += chunk.byteLength
        }
        if (bytes !== end - start + 1) {
          throw new RangeReadError(
            `s3://${bucket}/${key} bytes ${start}-${end}: got ${bytes} bytes, expected ${end - start + 1}`,
          )
        }
        return chunks
      } catch (err) {
        signal.throwIfAborted()
        if (isPreconditionFailed(err)) throw new ObjectChangedError(bucket, key)
        if (isNotFound(err)) throw new ObjectChangedError(bucket, key)
        if (attempt >= maxAttempts) throw err
      }
    }
  }

  async function* body(): AsyncGenerator<Uint8Array> {
    opts.signal?.throwIfAborted()
    const stop = new AbortController()
    const onAbort = () => stop.abort(opts.signal?.reason)
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    const ranges = Math.ceil(size / partBytes)
    const inflight: Promise<Uint8Array[]>[] = []
    let next = 0
    const startNext = () => {
      if (next >= ranges) return
      const start = next++ * partBytes
      const p = fetchRange(start, Math.min(size, start + partBytes) - 1, stop.signal)
      // Handled when its turn comes; until then a rejection must not count as unhandled.
      p.catch(() => {})
      inflight.push(p)
    }
    try {
      for (let i = 0; i < concurrency; i++) startNext()
      while (inflight.length > 0) {
        opts.signal?.throwIfAborted()
        const chunks = await inflight.shift()!
        startNext()
        yield* chunks
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
      stop.abort(new Error('ranged read ended'))
    }
  }

  return { size, metadata: head.Metadata ?? {}, etag, body: body() }
}
