/**
 * Local mode's S3: an S3-compatible HTTP handler (path-style requests) that streams every body to and from
 * files, so its memory stays flat whatever the size of the objects (a 20 GiB CAR needs 20 GiB of disk, not of
 * memory). It serves what pickup's S3 adapters and tests send through the AWS SDK: CreateBucket, HeadBucket,
 * DeleteBucket, ListBuckets, ListObjectsV2, PutObject, GetObject (Range, If-Match), HeadObject, DeleteObject,
 * CopyObject and UploadPartCopy (with `x-amz-copy-source-if-match`, answered 412 PreconditionFailed as S3
 * does), CreateMultipartUpload, UploadPart, CompleteMultipartUpload and AbortMultipartUpload. Bodies must be
 * sent plain (pickup's clients compute checksums only where S3 requires them, `S3_CHECKSUMS`): `aws-chunked`
 * uploads are answered 501 NotImplemented. Signatures are not checked (the server listens on 127.0.0.1).
 *
 * On disk (the layout fauxqs's file persistence used, so data directories written by earlier versions of
 * local mode load as they are): `<dir>/buckets/<bucket>/.bucket.json`, and per object
 * `<dir>/buckets/<bucket>/objects/<key>.data` beside `<key>.meta.json` (the key, size, ETag, content type,
 * user metadata). Uploads in progress live under `<dir>/_multipart/<uploadId>/` (removed at start a day after
 * they began, if neither completed nor aborted). The object index (keys and
 * their metadata, not their bytes) is kept in memory, loaded from the `.meta.json` files at start.
 *
 * Consistency: a body is written to a temporary file, then renamed into place and its metadata and index
 * entry replaced in one synchronous step, so a reader sees the old object or the new one, never a mix; a
 * GET opens the file in the same step as it checks the ETag, and an open file keeps its bytes even if the
 * object is replaced meanwhile. A CopyObject is a hard link to the source's file (objects are never written in
 * place), so copying a CAR to the destination bucket costs no bytes.
 *
 * Successful PutObject, CopyObject and CompleteMultipartUpload responses are reported to `onObjectCreated`
 * once the response is sent, for local mode's S3 bucket notifications (./services.ts).
 */

import { createHash, randomUUID } from 'node:crypto'
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { rm } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { dirname, join, relative, sep } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'

const MiB = 1024 * 1024
/** S3's minimum size of every part but the last. */
const MIN_PART_BYTES = 5 * MiB
/** S3's maximum size of a single PUT or part. */
const MAX_PUT_BYTES = 5 * 1024 * MiB
const MAX_KEYS = 1000
const ABANDONED_UPLOAD_MS = 24 * 3600 * 1000

export interface ObjectCreated {
  eventName: 'ObjectCreated:Put' | 'ObjectCreated:Copy' | 'ObjectCreated:CompleteMultipartUpload'
  bucket: string
  key: string
  size: number
  /** Unquoted. */
  etag: string
  requestId: string
  sourceIp: string
}

export interface S3ServerOptions {
  /** Where objects live; created if absent. */
  dir: string
  region: string
  onObjectCreated?: (event: ObjectCreated) => void
}

export interface S3Server {
  /** Whether the request is one for this server (not SQS's JSON protocol or SNS's query protocol). */
  accepts(req: IncomingMessage): boolean
  handle(req: IncomingMessage, res: ServerResponse): void
}

interface ObjectMeta {
  key: string
  contentType?: string
  contentLength: number
  /** Quoted, as S3 sends it. */
  etag: string
  lastModified: string
  metadata: Record<string, string>
}

interface StoredObject extends ObjectMeta {
  /** The data file, relative to the bucket's objects directory. */
  file: string
}

interface UploadMeta {
  uploadId: string
  bucket: string
  key: string
  contentType?: string
  metadata: Record<string, string>
  initiated: string
}

interface PartMeta {
  partNumber: number
  etag: string
  size: number
  lastModified: string
}

class S3Error extends Error {
  readonly status: number
  readonly code: string
  readonly extra: Record<string, string>
  constructor(status: number, code: string, message: string, extra: Record<string, string> = {}) {
    super(message)
    this.status = status
    this.code = code
    this.extra = extra
  }
}

const noSuchBucket = (bucket: string) =>
  new S3Error(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: bucket })
const noSuchKey = (key: string) =>
  new S3Error(404, 'NoSuchKey', 'The specified key does not exist.', { Key: key })
const noSuchUpload = (id: string) =>
  new S3Error(404, 'NoSuchUpload', 'The specified upload does not exist.', { UploadId: id })
const preconditionFailed = (condition: string) =>
  new S3Error(412, 'PreconditionFailed', 'At least one of the pre-conditions you specified did not hold', {
    Condition: condition,
  })

function xmlEscape(s: string): string {
  return s.replace(
    /[<>&'"]/g,
    (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', "'": 'apos', '"': 'quot' }[c]};`,
  )
}

function xmlUnescape(s: string): string {
  return s.replace(
    /&(lt|gt|amp|apos|quot);/g,
    (_, e: string) => ({ lt: '<', gt: '>', amp: '&', apos: "'", quot: '"' })[e] ?? '',
  )
}

const unquote = (etag: string) => etag.trim().replace(/"/g, '')

/** A key as a relative path: `/` separates directories; unsafe characters and dot segments are %-encoded. */
function keyToPath(key: string): string {
  return key
    .split('/')
    .map((segment) => {
      let s = ''
      for (const c of segment) {
        s +=
          c.charCodeAt(0) < 0x20 || '<>:"|?*\\%'.includes(c)
            ? `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`
            : c
      }
      return s === '' || s === '.' || s === '..' ? `%2e${s}` : s
    })
    .join(sep)
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/

function userMetadata(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-amz-meta-') && typeof value === 'string') out[name.slice(11)] = value
  }
  return out
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

/** `bytes=a-b`, `bytes=a-` or `bytes=-n` against an object of `size` bytes; undefined: the whole object. */
function parseRange(range: string | undefined, size: number): { start: number; end: number } | undefined {
  if (range === undefined) return undefined
  const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim())
  if (!m || (m[1] === '' && m[2] === '')) return undefined // S3 ignores a range it cannot parse.
  let start: number
  let end: number
  if (m[1] === '') {
    const suffix = Number(m[2])
    if (suffix === 0) throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable')
    start = Math.max(0, size - suffix)
    end = size - 1
  } else {
    start = Number(m[1])
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1)
    if (m[2] !== '' && Number(m[2]) < start) return undefined
  }
  if (start >= size)
    throw new S3Error(416, 'InvalidRange', 'The requested range is not satisfiable', {
      ActualObjectSize: String(size),
    })
  return { start, end }
}

/** Streams the request body into `file`; answers its MD5 and length. Fails if the body ends short. */
async function receiveBody(req: IncomingMessage, file: string): Promise<{ md5: Buffer; size: number }> {
  const hash = createHash('md5')
  let size = 0
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk)
      size += chunk.byteLength
      if (size > MAX_PUT_BYTES)
        done(new S3Error(400, 'EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size'))
      else done(null, chunk)
    },
  })
  await pipeline(req, tap, createWriteStream(file))
  const declared = header(req, 'content-length')
  if (declared !== undefined && Number(declared) !== size) {
    throw new S3Error(
      400,
      'IncompleteBody',
      'You did not provide the number of bytes specified by the Content-Length HTTP header',
    )
  }
  return { md5: hash.digest(), size }
}

export function createS3Server(options: S3ServerOptions): S3Server {
  const { dir, region } = options
  const bucketsDir = join(dir, 'buckets')
  const multipartDir = join(dir, '_multipart')
  const tmpDir = join(dir, '_tmp')
  mkdirSync(bucketsDir, { recursive: true })
  mkdirSync(multipartDir, { recursive: true })
  // Left by a body that was being received when the process stopped.
  rmSync(tmpDir, { recursive: true, force: true })
  mkdirSync(tmpDir, { recursive: true })

  // Uploads nobody completed or aborted (a worker killed mid-upload) are removed a day after they began, as the
  // temporary bucket's lifecycle rule aborts them in AWS.
  for (const id of readdirSync(multipartDir)) {
    const file = join(multipartDir, id, '.upload.json')
    let initiated = 0
    try {
      initiated = Date.parse((JSON.parse(readFileSync(file, 'utf8')) as UploadMeta).initiated) || 0
    } catch {}
    if (Date.now() - initiated > ABANDONED_UPLOAD_MS)
      rmSync(join(multipartDir, id), { recursive: true, force: true })
  }

  const buckets = new Map<string, { created: string; objects: Map<string, StoredObject> }>()
  const objectsDir = (bucket: string) => join(bucketsDir, bucket, 'objects')

  // ------------------------------------------------------------ load

  for (const name of readdirSync(bucketsDir)) {
    const bucketFile = join(bucketsDir, name, '.bucket.json')
    if (!existsSync(bucketFile)) continue
    const info = JSON.parse(readFileSync(bucketFile, 'utf8')) as { creationDate?: string }
    const objects = new Map<string, StoredObject>()
    const root = objectsDir(name)
    const walk = (d: string) => {
      if (!existsSync(d)) return
      for (const entry of readdirSync(d, { withFileTypes: true })) {
        const path = join(d, entry.name)
        if (entry.isDirectory()) walk(path)
        else if (entry.name.endsWith('.meta.json')) {
          const meta = JSON.parse(readFileSync(path, 'utf8')) as ObjectMeta
          const data = `${path.slice(0, -'.meta.json'.length)}.data`
          if (existsSync(data))
            objects.set(meta.key, { ...meta, metadata: meta.metadata ?? {}, file: relative(root, data) })
        }
      }
    }
    walk(root)
    buckets.set(name, { created: info.creationDate ?? new Date().toISOString(), objects })
  }

  const tmpFile = () => join(tmpDir, randomUUID())
  const bucketOf = (name: string) => {
    const b = buckets.get(name)
    if (!b) throw noSuchBucket(name)
    return b
  }
  const objectOf = (bucket: string, key: string) => {
    const o = bucketOf(bucket).objects.get(key)
    if (!o) throw noSuchKey(key)
    return o
  }
  const dataPath = (bucket: string, o: StoredObject) => join(objectsDir(bucket), o.file)

  /** Moves `tmp` into place as the object and records it: synchronous, so no request sees a mix. */
  function commit(bucket: string, meta: ObjectMeta, tmp: string): StoredObject {
    const b = bucketOf(bucket)
    const rel = keyToPath(meta.key)
    const data = join(objectsDir(bucket), `${rel}.data`)
    mkdirSync(dirname(data), { recursive: true })
    renameSync(tmp, data)
    writeFileSync(join(objectsDir(bucket), `${rel}.meta.json`), JSON.stringify(meta))
    const stored = { ...meta, file: `${rel}.data` }
    b.objects.set(meta.key, stored)
    return stored
  }

  function removeObject(bucket: string, key: string): void {
    const b = buckets.get(bucket)
    const o = b?.objects.get(key)
    if (!b || !o) return
    b.objects.delete(key)
    const data = dataPath(bucket, o)
    try {
      unlinkSync(`${data.slice(0, -'.data'.length)}.meta.json`)
    } catch {}
    discard(data)
    // Empty directories left by the key's prefix.
    for (let d = dirname(data); d.startsWith(objectsDir(bucket) + sep); d = dirname(d)) {
      try {
        rmdirSync(d)
      } catch {
        break // Not empty (or gone).
      }
    }
  }

  /**
   * Takes a file or directory out of the tree at once and deletes it in the background: freeing a CAR's
   * gigabytes can take seconds, which must not hold up the requests in between. Whatever a stop interrupts is
   * in `_tmp`, emptied at start.
   */
  function discard(path: string): void {
    const trash = tmpFile()
    try {
      renameSync(path, trash)
    } catch {
      return // Already gone.
    }
    void rm(trash, { recursive: true, force: true }).catch(() => {})
  }

  const uploadDir = (id: string) => {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw noSuchUpload(id)
    return join(multipartDir, id)
  }
  function uploadOf(bucket: string, key: string, id: string): UploadMeta {
    const file = join(uploadDir(id), '.upload.json')
    if (!existsSync(file)) throw noSuchUpload(id)
    const upload = JSON.parse(readFileSync(file, 'utf8')) as UploadMeta
    if (upload.bucket !== bucket || upload.key !== key) throw noSuchUpload(id)
    return upload
  }

  /** The source of a copy, opened (so later replacements do not change what is read), If-Match checked. */
  function openCopySource(req: IncomingMessage): {
    bucket: string
    key: string
    object: StoredObject
    fd: number
  } {
    const raw =
      decodeURIComponent(header(req, 'x-amz-copy-source') ?? '')
        .replace(/^\//, '')
        .split('?')[0] ?? ''
    const slash = raw.indexOf('/')
    if (slash < 1)
      throw new S3Error(
        400,
        'InvalidArgument',
        'Copy Source must mention the source bucket and key: sourcebucket/sourcekey',
      )
    const bucket = raw.slice(0, slash)
    const key = raw.slice(slash + 1)
    const object = objectOf(bucket, key)
    const ifMatch = header(req, 'x-amz-copy-source-if-match')
    if (ifMatch !== undefined && ifMatch.trim() !== '*' && unquote(ifMatch) !== unquote(object.etag)) {
      throw preconditionFailed('x-amz-copy-source-If-Match')
    }
    return { bucket, key, object, fd: openSync(dataPath(bucket, object), 'r') }
  }

  // ------------------------------------------------------------ responses

  function sendXml(res: ServerResponse, status: number, body: string): void {
    const buf = Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${body}`)
    res.writeHead(status, { 'content-type': 'application/xml', 'content-length': buf.byteLength })
    res.end(buf)
  }

  function sendError(req: IncomingMessage, res: ServerResponse, err: S3Error, requestId: string): void {
    if (res.headersSent) {
      res.destroy(err)
      return
    }
    if (req.method === 'HEAD') {
      res.writeHead(err.status, { 'x-amz-error-code': err.code })
      res.end()
      return
    }
    const extra = Object.entries(err.extra)
      .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
      .join('')
    sendXml(
      res,
      err.status,
      `<Error><Code>${err.code}</Code><Message>${xmlEscape(err.message)}</Message>${extra}` +
        `<Resource>${xmlEscape(req.url ?? '')}</Resource><RequestId>${requestId}</RequestId></Error>`,
    )
  }

  function objectHeaders(o: ObjectMeta): Record<string, string | number> {
    const h: Record<string, string | number> = {
      etag: o.etag,
      'last-modified': new Date(o.lastModified).toUTCString(),
      'accept-ranges': 'bytes',
      'content-type': o.contentType ?? 'binary/octet-stream',
    }
    for (const [k, v] of Object.entries(o.metadata)) h[`x-amz-meta-${k}`] = v
    return h
  }

  // ------------------------------------------------------------ operations

  function listObjectsV2(res: ServerResponse, bucket: string, q: URLSearchParams): void {
    const b = bucketOf(bucket)
    const prefix = q.get('prefix') ?? ''
    const maxKeys = Math.min(MAX_KEYS, Math.max(0, Number(q.get('max-keys') ?? MAX_KEYS) || 0))
    const token = q.get('continuation-token')
    const after =
      token !== null ? Buffer.from(token, 'base64url').toString('utf8') : (q.get('start-after') ?? '')
    const keys = [...b.objects.keys()].filter((k) => k.startsWith(prefix) && k > after).sort()
    const page = keys.slice(0, maxKeys)
    const truncated = keys.length > page.length
    const contents = page
      .map((k) => {
        const o = b.objects.get(k)!
        return (
          `<Contents><Key>${xmlEscape(k)}</Key><LastModified>${new Date(o.lastModified).toISOString()}</LastModified>` +
          `<ETag>${xmlEscape(o.etag)}</ETag><Size>${o.contentLength}</Size><StorageClass>STANDARD</StorageClass></Contents>`
        )
      })
      .join('')
    const next = truncated
      ? `<NextContinuationToken>${Buffer.from(page.at(-1)!).toString('base64url')}</NextContinuationToken>`
      : ''
    sendXml(
      res,
      200,
      `<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>${xmlEscape(bucket)}</Name>` +
        `<Prefix>${xmlEscape(prefix)}</Prefix><KeyCount>${page.length}</KeyCount><MaxKeys>${maxKeys}</MaxKeys>` +
        `<IsTruncated>${truncated}</IsTruncated>${token !== null ? `<ContinuationToken>${xmlEscape(token)}</ContinuationToken>` : ''}` +
        `${next}${contents}</ListBucketResult>`,
    )
  }

  function getObject(req: IncomingMessage, res: ServerResponse, bucket: string, key: string): void {
    const o = objectOf(bucket, key)
    const ifMatch = header(req, 'if-match')
    if (ifMatch !== undefined && ifMatch.trim() !== '*' && unquote(ifMatch) !== unquote(o.etag)) {
      throw preconditionFailed('If-Match')
    }
    const range = parseRange(header(req, 'range'), o.contentLength)
    const headers = objectHeaders(o)
    const status = range ? 206 : 200
    const start = range?.start ?? 0
    const end = range?.end ?? o.contentLength - 1
    if (range) headers['content-range'] = `bytes ${start}-${end}/${o.contentLength}`
    headers['content-length'] = end - start + 1
    if (req.method === 'HEAD') {
      res.writeHead(status, headers)
      res.end()
      return
    }
    // Opened now, in the same step as the checks above: the bytes read are those of the ETag sent.
    const fd = openSync(dataPath(bucket, o), 'r')
    res.writeHead(status, headers)
    if (end < start) {
      closeSync(fd)
      res.end()
      return
    }
    const stream = createReadStream('', { fd, start, end, highWaterMark: 256 * 1024 })
    pipeline(stream, res).catch(() => {}) // A client that goes away ends the read.
  }

  async function putObject(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    created: (e: Omit<ObjectCreated, 'requestId' | 'sourceIp'>) => void,
  ) {
    bucketOf(bucket)
    const tmp = tmpFile()
    try {
      const { md5, size } = await receiveBody(req, tmp)
      const meta: ObjectMeta = {
        key,
        contentLength: size,
        etag: `"${md5.toString('hex')}"`,
        lastModified: new Date().toISOString(),
        metadata: userMetadata(req),
        ...(header(req, 'content-type') ? { contentType: header(req, 'content-type') } : {}),
      }
      commit(bucket, meta, tmp)
      res.writeHead(200, { etag: meta.etag, 'content-length': 0 })
      res.end()
      created({ eventName: 'ObjectCreated:Put', bucket, key, size, etag: unquote(meta.etag) })
    } finally {
      void rm(tmp, { force: true }).catch(() => {})
    }
  }

  function copyObject(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    created: (e: Omit<ObjectCreated, 'requestId' | 'sourceIp'>) => void,
  ) {
    bucketOf(bucket)
    const source = openCopySource(req)
    closeSync(source.fd)
    const replace = header(req, 'x-amz-metadata-directive') === 'REPLACE'
    const meta: ObjectMeta = {
      key,
      contentLength: source.object.contentLength,
      etag: source.object.etag,
      lastModified: new Date().toISOString(),
      metadata: replace ? userMetadata(req) : { ...source.object.metadata },
      ...((replace ? header(req, 'content-type') : source.object.contentType) !== undefined
        ? { contentType: replace ? header(req, 'content-type') : source.object.contentType }
        : {}),
    }
    // Objects are never written in place: a second link to the source's file is a copy.
    const tmp = tmpFile()
    linkSync(dataPath(source.bucket, source.object), tmp)
    try {
      commit(bucket, meta, tmp)
    } finally {
      // Left when the copy is onto itself (renaming a link onto the same file does nothing).
      void rm(tmp, { force: true }).catch(() => {})
    }
    sendXml(
      res,
      200,
      `<CopyObjectResult><LastModified>${meta.lastModified}</LastModified><ETag>${xmlEscape(meta.etag)}</ETag></CopyObjectResult>`,
    )
    created({
      eventName: 'ObjectCreated:Copy',
      bucket,
      key,
      size: meta.contentLength,
      etag: unquote(meta.etag),
    })
    // Drain whatever body the client sent.
    req.resume()
  }

  function createMultipartUpload(req: IncomingMessage, res: ServerResponse, bucket: string, key: string) {
    bucketOf(bucket)
    const uploadId = randomUUID()
    const upload: UploadMeta = {
      uploadId,
      bucket,
      key,
      metadata: userMetadata(req),
      initiated: new Date().toISOString(),
      ...(header(req, 'content-type') ? { contentType: header(req, 'content-type') } : {}),
    }
    mkdirSync(join(multipartDir, uploadId, 'parts'), { recursive: true })
    writeFileSync(join(multipartDir, uploadId, '.upload.json'), JSON.stringify(upload))
    sendXml(
      res,
      200,
      `<InitiateMultipartUploadResult><Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key>` +
        `<UploadId>${uploadId}</UploadId></InitiateMultipartUploadResult>`,
    )
    req.resume()
  }

  function partNumberOf(q: URLSearchParams): number {
    const n = Number(q.get('partNumber'))
    if (!Number.isInteger(n) || n < 1 || n > 10000) {
      throw new S3Error(
        400,
        'InvalidArgument',
        'Part number must be an integer between 1 and 10000, inclusive',
      )
    }
    return n
  }

  function commitPart(id: string, partNumber: number, tmp: string, md5: Buffer, size: number): PartMeta {
    const parts = join(uploadDir(id), 'parts')
    const part: PartMeta = {
      partNumber,
      etag: `"${md5.toString('hex')}"`,
      size,
      lastModified: new Date().toISOString(),
    }
    renameSync(tmp, join(parts, `${partNumber}.data`))
    writeFileSync(join(parts, `${partNumber}.meta.json`), JSON.stringify(part))
    return part
  }

  async function uploadPart(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    q: URLSearchParams,
  ) {
    const id = q.get('uploadId') ?? ''
    uploadOf(bucket, key, id)
    const partNumber = partNumberOf(q)
    const tmp = tmpFile()
    try {
      const { md5, size } = await receiveBody(req, tmp)
      uploadOf(bucket, key, id) // Not aborted meanwhile.
      const part = commitPart(id, partNumber, tmp, md5, size)
      res.writeHead(200, { etag: part.etag, 'content-length': 0 })
      res.end()
    } finally {
      void rm(tmp, { force: true }).catch(() => {})
    }
  }

  async function uploadPartCopy(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    q: URLSearchParams,
  ) {
    const id = q.get('uploadId') ?? ''
    uploadOf(bucket, key, id)
    const partNumber = partNumberOf(q)
    const source = openCopySource(req)
    const tmp = tmpFile()
    try {
      const size = source.object.contentLength
      const rangeHeader = header(req, 'x-amz-copy-source-range')
      const m = rangeHeader !== undefined ? /^bytes=(\d+)-(\d+)$/.exec(rangeHeader) : null
      if (rangeHeader !== undefined && (!m || Number(m[2]) < Number(m[1]) || Number(m[2]) >= size)) {
        throw new S3Error(
          400,
          'InvalidArgument',
          'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy',
        )
      }
      const start = m ? Number(m[1]) : 0
      const end = m ? Number(m[2]) : size - 1
      const hash = createHash('md5')
      let copied = 0
      const tap = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk)
          copied += chunk.byteLength
          done(null, chunk)
        },
      })
      const read =
        end >= start
          ? createReadStream('', { fd: source.fd, start, end, highWaterMark: 1024 * 1024 })
          : Readable.from([])
      await pipeline(read, tap, createWriteStream(tmp))
      uploadOf(bucket, key, id)
      const part = commitPart(id, partNumber, tmp, hash.digest(), copied)
      sendXml(
        res,
        200,
        `<CopyPartResult><LastModified>${part.lastModified}</LastModified><ETag>${xmlEscape(part.etag)}</ETag></CopyPartResult>`,
      )
      req.resume()
    } finally {
      try {
        closeSync(source.fd)
      } catch {}
      void rm(tmp, { force: true }).catch(() => {})
    }
  }

  async function readText(req: IncomingMessage): Promise<string> {
    const chunks: Buffer[] = []
    let bytes = 0
    for await (const chunk of req as AsyncIterable<Buffer>) {
      bytes += chunk.byteLength
      if (bytes > MiB) throw new S3Error(400, 'MalformedXML', 'The XML you provided was too large')
      chunks.push(chunk)
    }
    return Buffer.concat(chunks).toString('utf8')
  }

  async function completeMultipartUpload(
    req: IncomingMessage,
    res: ServerResponse,
    bucket: string,
    key: string,
    q: URLSearchParams,
    created: (e: Omit<ObjectCreated, 'requestId' | 'sourceIp'>) => void,
  ) {
    const id = q.get('uploadId') ?? ''
    const upload = uploadOf(bucket, key, id)
    const xml = await readText(req)
    const requested = [...xml.matchAll(/<Part>([\s\S]*?)<\/Part>/g)].map((m) => ({
      partNumber: Number(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/.exec(m[1] ?? '')?.[1]),
      etag: unquote(xmlUnescape(/<ETag>([\s\S]*?)<\/ETag>/.exec(m[1] ?? '')?.[1] ?? '')),
    }))
    if (requested.length === 0)
      throw new S3Error(
        400,
        'MalformedXML',
        'The XML you provided was not well-formed or did not validate against our published schema',
      )
    const partsDir = join(uploadDir(id), 'parts')
    const parts: PartMeta[] = []
    for (const [i, r] of requested.entries()) {
      if (i > 0 && r.partNumber <= requested[i - 1]!.partNumber) {
        throw new S3Error(
          400,
          'InvalidPartOrder',
          'The list of parts was not in ascending order. The parts list must be specified in order by part number.',
        )
      }
    }
    for (const [i, r] of requested.entries()) {
      const metaFile = join(partsDir, `${r.partNumber}.meta.json`)
      const part = existsSync(metaFile) ? (JSON.parse(readFileSync(metaFile, 'utf8')) as PartMeta) : undefined
      if (!part || unquote(part.etag) !== r.etag) {
        throw new S3Error(
          400,
          'InvalidPart',
          "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not have matched the part's entity tag.",
        )
      }
      if (i < requested.length - 1 && part.size < MIN_PART_BYTES) {
        throw new S3Error(
          400,
          'EntityTooSmall',
          'Your proposed upload is smaller than the minimum allowed object size.',
        )
      }
      parts.push(part)
    }
    const tmp = tmpFile()
    try {
      const out = createWriteStream(tmp)
      const md5s: Buffer[] = []
      let size = 0
      await pipeline(async function* () {
        for (const part of parts) {
          md5s.push(Buffer.from(unquote(part.etag), 'hex'))
          size += part.size
          yield* createReadStream(join(partsDir, `${part.partNumber}.data`), { highWaterMark: 1024 * 1024 })
        }
      }, out)
      uploadOf(bucket, key, id) // Not aborted meanwhile.
      const etag = `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${parts.length}"`
      const meta: ObjectMeta = {
        key,
        contentLength: size,
        etag,
        lastModified: new Date().toISOString(),
        metadata: upload.metadata ?? {},
        ...(upload.contentType ? { contentType: upload.contentType } : {}),
      }
      commit(bucket, meta, tmp)
      discard(uploadDir(id))
      sendXml(
        res,
        200,
        `<CompleteMultipartUploadResult><Location>/${xmlEscape(bucket)}/${xmlEscape(key)}</Location>` +
          `<Bucket>${xmlEscape(bucket)}</Bucket><Key>${xmlEscape(key)}</Key><ETag>${xmlEscape(etag)}</ETag>` +
          '</CompleteMultipartUploadResult>',
      )
      created({ eventName: 'ObjectCreated:CompleteMultipartUpload', bucket, key, size, etag: unquote(etag) })
    } finally {
      void rm(tmp, { force: true }).catch(() => {})
    }
  }

  // ------------------------------------------------------------ routing

  async function route(req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    // The path as sent: a URL parser would resolve `.` and `..` segments, which are part of an S3 key.
    const target = req.url ?? '/'
    const queryAt = target.indexOf('?')
    const q = new URLSearchParams(queryAt < 0 ? '' : target.slice(queryAt + 1))
    const [rawBucket = '', ...rest] = (queryAt < 0 ? target : target.slice(0, queryAt)).slice(1).split('/')
    let bucket: string
    let key: string
    try {
      bucket = decodeURIComponent(rawBucket)
      key = rest.map(decodeURIComponent).join('/')
    } catch {
      throw new S3Error(400, 'InvalidURI', "Couldn't parse the specified URI.")
    }
    const method = req.method ?? 'GET'
    const created = (e: Omit<ObjectCreated, 'requestId' | 'sourceIp'>) => {
      const event = { ...e, requestId, sourceIp: req.socket.remoteAddress ?? '127.0.0.1' }
      res.once('finish', () => options.onObjectCreated?.(event))
    }
    if ((header(req, 'x-amz-content-sha256') ?? '').startsWith('STREAMING-')) {
      throw new S3Error(
        501,
        'NotImplemented',
        "aws-chunked uploads are not supported by local mode's S3; send plain bodies (requestChecksumCalculation: WHEN_REQUIRED)",
      )
    }

    if (bucket === '') {
      if (method !== 'GET')
        throw new S3Error(
          405,
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
        )
      const list = [...buckets.entries()]
        .map(
          ([n, b]) =>
            `<Bucket><Name>${xmlEscape(n)}</Name><CreationDate>${b.created}</CreationDate></Bucket>`,
        )
        .join('')
      sendXml(
        res,
        200,
        `<ListAllMyBucketsResult><Owner><ID>pickup-local</ID></Owner><Buckets>${list}</Buckets></ListAllMyBucketsResult>`,
      )
      return
    }

    if (key === '') {
      switch (method) {
        case 'PUT': {
          req.resume()
          if (!BUCKET_NAME.test(bucket))
            throw new S3Error(400, 'InvalidBucketName', 'The specified bucket is not valid.', {
              BucketName: bucket,
            })
          if (buckets.has(bucket))
            throw new S3Error(
              409,
              'BucketAlreadyOwnedByYou',
              'Your previous request to create the named bucket succeeded and you already own it.',
              { BucketName: bucket },
            )
          const created = new Date().toISOString()
          mkdirSync(objectsDir(bucket), { recursive: true })
          writeFileSync(
            join(bucketsDir, bucket, '.bucket.json'),
            JSON.stringify({ name: bucket, creationDate: created }),
          )
          buckets.set(bucket, { created, objects: new Map() })
          res.writeHead(200, { location: `/${bucket}`, 'content-length': 0 })
          res.end()
          return
        }
        case 'HEAD':
          bucketOf(bucket)
          res.writeHead(200, { 'x-amz-bucket-region': region })
          res.end()
          return
        case 'GET':
          if (q.has('location')) {
            bucketOf(bucket)
            sendXml(
              res,
              200,
              `<LocationConstraint>${region === 'us-east-1' ? '' : region}</LocationConstraint>`,
            )
            return
          }
          listObjectsV2(res, bucket, q)
          return
        case 'DELETE':
          if (bucketOf(bucket).objects.size > 0)
            throw new S3Error(409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty', {
              BucketName: bucket,
            })
          buckets.delete(bucket)
          rmSync(join(bucketsDir, bucket), { recursive: true, force: true })
          res.writeHead(204)
          res.end()
          return
        default:
          throw new S3Error(
            501,
            'NotImplemented',
            `${method} on a bucket is not implemented by local mode's S3`,
          )
      }
    }

    switch (method) {
      case 'GET':
      case 'HEAD':
        getObject(req, res, bucket, key)
        return
      case 'PUT':
        if (header(req, 'x-amz-copy-source') !== undefined) {
          if (q.has('uploadId')) await uploadPartCopy(req, res, bucket, key, q)
          else copyObject(req, res, bucket, key, created)
        } else if (q.has('uploadId')) await uploadPart(req, res, bucket, key, q)
        else await putObject(req, res, bucket, key, created)
        return
      case 'POST':
        if (q.has('uploads')) createMultipartUpload(req, res, bucket, key)
        else if (q.has('uploadId')) await completeMultipartUpload(req, res, bucket, key, q, created)
        else throw new S3Error(501, 'NotImplemented', "This POST is not implemented by local mode's S3")
        return
      case 'DELETE':
        req.resume()
        if (q.has('uploadId')) {
          uploadOf(bucket, key, q.get('uploadId') ?? '')
          discard(uploadDir(q.get('uploadId') ?? ''))
        } else {
          bucketOf(bucket)
          removeObject(bucket, key)
        }
        res.writeHead(204)
        res.end()
        return
      default:
        throw new S3Error(
          405,
          'MethodNotAllowed',
          'The specified method is not allowed against this resource.',
        )
    }
  }

  let requests = 0
  return {
    accepts(req) {
      const type = header(req, 'content-type') ?? ''
      return (
        header(req, 'x-amz-target') === undefined &&
        !type.includes('x-www-form-urlencoded') &&
        !type.includes('x-amz-json') &&
        !(req.url ?? '').startsWith('/_')
      )
    },
    handle(req, res) {
      const requestId =
        `${Date.now().toString(16)}${(++requests).toString(16).padStart(8, '0')}`.toUpperCase()
      res.setHeader('x-amz-request-id', requestId)
      res.setHeader('x-amz-id-2', requestId)
      route(req, res, requestId).catch((err: unknown) => {
        if (!(err instanceof S3Error)) {
          const cause = err instanceof Error ? err.message : String(err)
          err = new S3Error(500, 'InternalError', `We encountered an internal error: ${cause}`)
        }
        // What is left of the body is not read: close the connection after the answer.
        if (!req.readableEnded) res.setHeader('connection', 'close')
        sendError(req, res, err as S3Error, requestId)
      })
    },
  }
}
