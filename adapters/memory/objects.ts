/**
 * In-memory ObjectStore with S3's semantics (adapters/s3/objects.ts): an object appears only once its whole
 * body was read (an aborted or failed put leaves nothing, and never replaces an existing object), metadata
 * keys are lowercased as S3 does, and `list` is in key order. Bodies are copied in and out.
 */

import { createHash } from 'node:crypto'
import { nextOrAbort } from '../../core/abort.ts'
import { concatBytes } from '../../core/bytes.ts'
import { CopySourceChangedError } from '../../core/errors.ts'
import type { ObjectStore, PutOptions } from '../../core/ports.ts'

interface StoredObject {
  data: Uint8Array
  metadata: Record<string, string>
  /** The body's MD5, quoted, as S3 gives a single-part object. */
  etag: string
}

function newEtag(data: Uint8Array): string {
  return `"${createHash('md5').update(data).digest('hex')}"`
}

/** S3 compares ETags with or without their quotes. */
const unquote = (etag: string) => etag.replace(/"/g, '')

/** The largest chunk `get` yields. */
const GET_CHUNK_BYTES = 1024 * 1024

const backends = new WeakMap<ObjectStore, Map<string, StoredObject>>()

function lowercaseKeys(metadata: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(metadata ?? {}).map(([k, v]) => [k.toLowerCase(), v]))
}

/** Reads the whole body, rejecting as soon as the signal aborts (even while the source is waiting). */
async function readAll(
  body: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  signal?.throwIfAborted()
  const it = body[Symbol.asyncIterator]()
  const chunks: Uint8Array[] = []
  let length = 0
  let finished = false
  try {
    for (;;) {
      const next = await nextOrAbort(it, signal)
      if (next.done) break
      chunks.push(next.value.slice())
      length += next.value.byteLength
    }
    finished = true
  } finally {
    if (!finished) void Promise.resolve(it.return?.()).catch(() => {})
  }
  return concatBytes(chunks, length)
}

async function* chunksOf(data: Uint8Array, signal: AbortSignal | undefined): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < data.byteLength; offset += GET_CHUNK_BYTES) {
    signal?.throwIfAborted()
    yield data.slice(offset, offset + GET_CHUNK_BYTES)
  }
}

export function createMemoryObjectStore({ bucket }: { bucket: string }): ObjectStore {
  const objects = new Map<string, StoredObject>()

  const store: ObjectStore = {
    bucket,

    async put(key, body, opts?: PutOptions) {
      const data = await readAll(body, opts?.signal)
      objects.set(key, { data, metadata: lowercaseKeys(opts?.metadata), etag: newEtag(data) })
      return { bytes: data.byteLength }
    },

    async get(key, opts) {
      opts?.signal?.throwIfAborted()
      const o = objects.get(key)
      if (!o) return undefined
      return {
        size: o.data.byteLength,
        metadata: { ...o.metadata },
        etag: o.etag,
        body: chunksOf(o.data, opts?.signal),
      }
    },

    async head(key) {
      const o = objects.get(key)
      return o && { size: o.data.byteLength, metadata: { ...o.metadata } }
    },

    async delete(key) {
      objects.delete(key)
    },

    async copyTo(key, dest, destKey, opts) {
      const target = backends.get(dest)
      if (!target) throw new TypeError('copyTo: the destination must be an in-memory object store')
      const o = objects.get(key)
      if (!o) throw new Error(`copy source memory://${bucket}/${key} does not exist`)
      if (opts?.ifMatch !== undefined && unquote(opts.ifMatch) !== unquote(o.etag)) {
        throw new CopySourceChangedError(key)
      }
      const data = o.data.slice()
      target.set(destKey, { data, metadata: { ...o.metadata }, etag: newEtag(data) })
    },

    async *list(prefix) {
      const keys = [...objects.keys()].filter((k) => !prefix || k.startsWith(prefix)).sort()
      for (const key of keys) {
        const o = objects.get(key)
        if (o) yield { key, size: o.data.byteLength }
      }
    },
  }
  backends.set(store, objects)
  return store
}
