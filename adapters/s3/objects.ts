/**
 * ObjectStore on S3: one bucket per store.
 *
 * `put` streams through `@aws-sdk/lib-storage` (multipart above one part, `queueSize` parts in flight).
 * An aborted or failed put leaves no object: on abort the body stream is failed rather than calling
 * `Upload.abort()`, because `abort()` makes `done()` reject at once while requests already sent carry on (a
 * CompleteMultipartUpload or single PutObject in flight would still create the object after the rejection).
 * Failing the body makes lib-storage wait for its in-flight parts, send AbortMultipartUpload, and only then
 * reject; a put whose last request was already sent completes (and resolves) instead.
 *
 * `get` reads with parallel ranged GETs reassembled in order, in bounded memory (./ranged-get.ts).
 */

import { Readable } from 'node:stream'
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type S3Client,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { nextOrAbort } from '../../core/abort.ts'
import { CopySourceChangedError } from '../../core/errors.ts'
import type { ObjectInfo, ObjectStore } from '../../core/ports.ts'
import { DEFAULT_READ_CONCURRENCY, DEFAULT_READ_PART_BYTES, getRanged } from './ranged-get.ts'

const MiB = 1024 * 1024
const GiB = 1024 * MiB

/** 8 MiB: above S3's 5 MiB minimum part size; 10,000 parts reach 78 GiB. */
export const DEFAULT_PART_SIZE = 8 * MiB
/** CopyObject copies at most 5 GiB; larger objects are copied with UploadPartCopy. */
export const DEFAULT_MULTIPART_COPY_THRESHOLD = 5 * GiB
export const DEFAULT_COPY_PART_SIZE = 512 * MiB
const UPLOAD_QUEUE_SIZE = 4
const COPY_CONCURRENCY = 4

export interface S3ObjectStoreOptions {
  client: S3Client
  bucket: string
  /** Multipart upload part size in bytes (`put` options may override it). Default 8 MiB. */
  partSize?: number
  /** Objects larger than this are copied part by part. Default 5 GiB (CopyObject's limit). */
  multipartCopyThreshold?: number
  /** Range of each UploadPartCopy. Default 512 MiB. */
  copyPartSize?: number
  /** `get` reads the object as ranged GETs of this many bytes (adapters/s3/ranged-get.ts). Default 8 MiB. */
  readPartBytes?: number
  /** Ranged GETs `get` keeps in flight; memory is at most (this + 1) x readPartBytes. Default 8. */
  readConcurrency?: number
}

/** The stores this module made: a server-side copy can only target one of them. */
const s3Stores = new WeakSet<ObjectStore>()

function isNotFound(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
  return err.name === 'NoSuchKey' || err.name === 'NotFound' || status === 404
}

/** S3's answer to a copy whose `x-amz-copy-source-if-match` did not hold. */
function isPreconditionFailed(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode
  return err.name === 'PreconditionFailed' || status === 412
}

/** S3 compares ETags with or without their quotes. */
const unquote = (etag: string) => etag.replace(/"/g, '')

/** S3 CopySource: `bucket/key`, URL-encoded except for the slashes. */
function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`
}

/** Yields the source's chunks until the signal aborts, then throws its reason (even mid-await). */
async function* untilAborted(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  counter: { bytes: number },
): AsyncGenerator<Uint8Array> {
  const it = source[Symbol.asyncIterator]()
  let done = false
  try {
    for (;;) {
      signal?.throwIfAborted()
      const next = await nextOrAbort(it, signal)
      if (next.done) {
        done = true
        return
      }
      counter.bytes += next.value.byteLength
      yield next.value
    }
  } finally {
    if (!done) void Promise.resolve(it.return?.()).catch(() => {})
  }
}

export function createS3ObjectStore(options: S3ObjectStoreOptions): ObjectStore {
  const { client, bucket } = options
  const defaultPartSize = options.partSize ?? DEFAULT_PART_SIZE
  const multipartCopyThreshold = options.multipartCopyThreshold ?? DEFAULT_MULTIPART_COPY_THRESHOLD
  const copyPartSize = options.copyPartSize ?? DEFAULT_COPY_PART_SIZE
  const readPartBytes = options.readPartBytes ?? DEFAULT_READ_PART_BYTES
  const readConcurrency = options.readConcurrency ?? DEFAULT_READ_CONCURRENCY

  async function head(
    key: string,
  ): Promise<(ObjectInfo & { contentType?: string; etag?: string }) | undefined> {
    try {
      const res = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
      return {
        size: res.ContentLength ?? 0,
        metadata: res.Metadata ?? {},
        ...(res.ContentType ? { contentType: res.ContentType } : {}),
        ...(res.ETag ? { etag: res.ETag } : {}),
      }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async function multipartCopy(
    key: string,
    destBucket: string,
    destKey: string,
    size: number,
    ifMatch: string | undefined,
  ) {
    const source = await head(key)
    if (!source) throw new Error(`copy source s3://${bucket}/${key} does not exist`)
    // The metadata copied must be the validated object's too; every part below is conditional on it as well.
    if (ifMatch !== undefined && unquote(source.etag ?? '') !== unquote(ifMatch)) {
      throw new CopySourceChangedError(key)
    }
    const { UploadId: uploadId } = await client.send(
      new CreateMultipartUploadCommand({
        Bucket: destBucket,
        Key: destKey,
        Metadata: source.metadata,
        ...(source.contentType ? { ContentType: source.contentType } : {}),
      }),
    )
    if (!uploadId) throw new Error('CreateMultipartUpload returned no UploadId')
    try {
      const ranges: { partNumber: number; start: number; end: number }[] = []
      for (let start = 0, partNumber = 1; start < size; start += copyPartSize, partNumber++) {
        ranges.push({ partNumber, start, end: Math.min(size, start + copyPartSize) - 1 })
      }
      const parts: { PartNumber: number; ETag: string }[] = []
      let next = 0
      const copier = async () => {
        for (let range = ranges[next++]; range !== undefined; range = ranges[next++]) {
          const res = await client.send(
            new UploadPartCopyCommand({
              Bucket: destBucket,
              Key: destKey,
              UploadId: uploadId,
              PartNumber: range.partNumber,
              CopySource: copySource(bucket, key),
              CopySourceRange: `bytes=${range.start}-${range.end}`,
              ...(ifMatch !== undefined ? { CopySourceIfMatch: ifMatch } : {}),
            }),
          )
          const etag = res.CopyPartResult?.ETag
          if (!etag) throw new Error(`UploadPartCopy of part ${range.partNumber} returned no ETag`)
          parts.push({ PartNumber: range.partNumber, ETag: etag })
        }
      }
      await Promise.all(Array.from({ length: Math.min(COPY_CONCURRENCY, ranges.length) }, copier))
      parts.sort((a, b) => a.PartNumber - b.PartNumber)
      await client.send(
        new CompleteMultipartUploadCommand({
          Bucket: destBucket,
          Key: destKey,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
        }),
      )
    } catch (err) {
      await client
        .send(new AbortMultipartUploadCommand({ Bucket: destBucket, Key: destKey, UploadId: uploadId }))
        .catch(() => {})
      if (isPreconditionFailed(err)) throw new CopySourceChangedError(key)
      throw err
    }
  }

  const store: ObjectStore = {
    bucket,

    async put(key, body, opts) {
      opts?.signal?.throwIfAborted()
      const counter = { bytes: 0 }
      const upload = new Upload({
        client,
        params: {
          Bucket: bucket,
          Key: key,
          Body: Readable.from(untilAborted(body, opts?.signal, counter)),
          ...(opts?.metadata ? { Metadata: opts.metadata } : {}),
        },
        partSize: opts?.partSize ?? defaultPartSize,
        queueSize: UPLOAD_QUEUE_SIZE,
        leavePartsOnError: false,
      })
      try {
        await upload.done()
      } catch (err) {
        opts?.signal?.throwIfAborted()
        throw err
      }
      return { bytes: counter.bytes }
    },

    async get(key, opts) {
      return getRanged(client, bucket, key, {
        partBytes: readPartBytes,
        concurrency: readConcurrency,
        ...(opts?.signal ? { signal: opts.signal } : {}),
      })
    },

    async head(key) {
      const info = await head(key)
      return info ? { size: info.size, metadata: info.metadata } : undefined
    },

    async delete(key) {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))
    },

    async copyTo(key, dest, destKey, opts) {
      if (!s3Stores.has(dest)) {
        throw new TypeError('copyTo: the destination must be an S3 object store (of the same account)')
      }
      let size = opts?.size
      if (size === undefined) {
        const info = await head(key)
        if (!info) throw new Error(`copy source s3://${bucket}/${key} does not exist`)
        size = info.size
      }
      const ifMatch = opts?.ifMatch
      if (size <= multipartCopyThreshold) {
        try {
          await client.send(
            new CopyObjectCommand({
              Bucket: dest.bucket,
              Key: destKey,
              CopySource: copySource(bucket, key),
              MetadataDirective: 'COPY',
              ...(ifMatch !== undefined ? { CopySourceIfMatch: ifMatch } : {}),
            }),
          )
        } catch (err) {
          if (isPreconditionFailed(err)) throw new CopySourceChangedError(key)
          throw err
        }
      } else {
        await multipartCopy(key, dest.bucket, destKey, size, ifMatch)
      }
    },

    async *list(prefix) {
      let token: string | undefined
      do {
        const res = await client.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            ...(prefix ? { Prefix: prefix } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        )
        for (const o of res.Contents ?? []) {
          if (o.Key !== undefined) yield { key: o.Key, size: o.Size ?? 0 }
        }
        token = res.IsTruncated ? res.NextContinuationToken : undefined
      } while (token)
    },
  }
  s3Stores.add(store)
  return store
}
