/**
 * Parallel ranged GETs against the local S3 (fauxqs, real Range and If-Match handling through the AWS SDK).
 * The order ranges complete in, a dropped connection and request counting are arranged with SDK middleware
 * on the test's own client (the requests still go to fauxqs): no timing is involved.
 */
import { createHash } from 'node:crypto'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { S3_CHECKSUMS } from '../../adapters/aws-clients.ts'
import { createS3ObjectStore } from '../../adapters/s3/objects.ts'
import { getRanged, ObjectChangedError } from '../../adapters/s3/ranged-get.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createRandomBucket } from './harness.ts'

const MiB = 1024 * 1024

let services: Services
let bucket: string
beforeAll(async () => {
  services = await startServices()
  bucket = await createRandomBucket(services)
})
afterAll(async () => {
  await services?.stop()
})

function bytesOf(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size)
  let state = seed >>> 0
  for (let i = 0; i < size; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    out[i] = state >>> 24
  }
  return out
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

async function put(key: string, body: Uint8Array): Promise<void> {
  await services.clients.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const c of body) chunks.push(c)
  return Buffer.concat(chunks)
}

interface Observed {
  client: S3Client
  /** Range header of every GetObject sent, in order. */
  ranges: string[]
  /** GetObject responses received (body not necessarily read). */
  answered: number
}

/** A client of the same fauxqs, whose GetObject requests pass through `hook` first. */
function observedClient(hook?: (range: string, attempt: number) => Promise<void> | void): Observed {
  const e = services.endpoints
  const client = new S3Client({
    endpoint: e.s3,
    region: e.region,
    credentials: services.credentials,
    forcePathStyle: true,
    ...S3_CHECKSUMS,
  })
  const observed: Observed = { client, ranges: [], answered: 0 }
  const attempts = new Map<string, number>()
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'GetObjectCommand') return next(args)
      const range = (args.input as { Range?: string }).Range ?? ''
      observed.ranges.push(range)
      const attempt = (attempts.get(range) ?? 0) + 1
      attempts.set(range, attempt)
      await hook?.(range, attempt)
      const res = await next(args)
      observed.answered++
      return res
    },
    { step: 'initialize', name: 'observeRanges' },
  )
  return observed
}

describe('ranged GET', () => {
  it('reads an object of many ranges byte-exact, sizes not a multiple of the range included', async () => {
    for (const size of [0, 1, MiB - 1, MiB, 5 * MiB + 12_345]) {
      const body = bytesOf(size, size)
      const key = `exact/${size}`
      await put(key, body)
      const o = observedClient()
      const got = await getRanged(o.client, bucket, key, { partBytes: MiB, concurrency: 3 })
      expect(got?.size).toBe(size)
      expect(sha(await readAll(got!.body)), String(size)).toBe(sha(body))
      expect(o.ranges).toHaveLength(Math.ceil(size / MiB))
    }
  })

  it('yields ranges in order even when later ones complete first', async () => {
    const body = bytesOf(4 * MiB, 7)
    await put('order', body)
    // The first range is answered only once the three after it have been.
    let release: () => void = () => {}
    const othersDone = new Promise<void>((r) => {
      release = r
    })
    const o = observedClient(async (range) => {
      if (range === `bytes=0-${MiB - 1}`) await othersDone
    })
    let answered = 0
    o.client.middlewareStack.add(
      (next) => async (args) => {
        const res = await next(args)
        if (++answered >= 3) release()
        return res
      },
      { step: 'finalizeRequest', name: 'countAnswers' },
    )
    const got = await getRanged(o.client, bucket, 'order', { partBytes: MiB, concurrency: 4 })
    expect(sha(await readAll(got!.body))).toBe(sha(body))
  })

  it('keeps at most `concurrency` ranges ahead of the consumer: memory does not grow with the object', async () => {
    const body = bytesOf(10 * MiB, 3)
    await put('bounded', body)
    const o = observedClient()
    const got = await getRanged(o.client, bucket, 'bounded', { partBytes: MiB, concurrency: 3 })
    const it = got!.body[Symbol.asyncIterator]()
    await it.next()
    // The consumer holds the first range: wait for the ranges in flight to be answered, then give a
    // reader that does not stop there every chance to send more.
    const turn = () => new Promise((r) => setImmediate(r))
    while (o.answered < 4) await turn()
    for (let i = 0; i < 20; i++) await turn()
    // The range being consumed, and `concurrency` more.
    expect(o.ranges.length).toBe(1 + 3)
    await it.return?.(undefined)
  })

  it('retries a range whose connection failed, without yielding a byte twice', async () => {
    const body = bytesOf(3 * MiB + 5, 11)
    await put('retry', body)
    const second = `bytes=${MiB}-${2 * MiB - 1}`
    const o = observedClient((range, attempt) => {
      if (range === second && attempt === 1) {
        throw Object.assign(new Error('socket hang up (stand-in for a dropped connection)'), {
          code: 'ECONNRESET',
        })
      }
    })
    const got = await getRanged(o.client, bucket, 'retry', { partBytes: MiB, concurrency: 2 })
    expect(sha(await readAll(got!.body))).toBe(sha(body))
    expect(o.ranges.filter((r) => r === second).length).toBeGreaterThanOrEqual(2)
  })

  it('fails with ObjectChangedError when the object is replaced mid-read', async () => {
    await put('changed', bytesOf(6 * MiB, 1))
    const o = observedClient()
    const got = await getRanged(o.client, bucket, 'changed', { partBytes: MiB, concurrency: 1 })
    const it = got!.body[Symbol.asyncIterator]()
    await it.next()
    await put('changed', bytesOf(6 * MiB, 2))
    await expect(
      (async () => {
        for (let r = await it.next(); !r.done; r = await it.next()) {}
      })(),
    ).rejects.toBeInstanceOf(ObjectChangedError)
  })

  it('answers undefined for a missing object', async () => {
    expect(await getRanged(observedClient().client, bucket, 'missing')).toBeUndefined()
  })

  it('an abort mid-read rejects with the reason', async () => {
    await put('abort', bytesOf(4 * MiB, 5))
    const ac = new AbortController()
    const got = await getRanged(observedClient().client, bucket, 'abort', {
      partBytes: MiB,
      concurrency: 2,
      signal: ac.signal,
    })
    const it = got!.body[Symbol.asyncIterator]()
    await it.next()
    const reason = new Error('stop')
    ac.abort(reason)
    await expect(
      (async () => {
        for (let r = await it.next(); !r.done; r = await it.next()) {}
      })(),
    ).rejects.toBe(reason)
  })

  it('is how the S3 object store reads', async () => {
    const body = bytesOf(3 * MiB, 9)
    await put('store', body)
    const o = observedClient()
    const store = createS3ObjectStore({ client: o.client, bucket, readPartBytes: MiB, readConcurrency: 2 })
    const got = await store.get('store')
    expect(sha(await readAll(got!.body))).toBe(sha(body))
    expect(o.ranges).toEqual([
      `bytes=0-${MiB - 1}`,
      `bytes=${MiB}-${2 * MiB - 1}`,
      `bytes=${2 * MiB}-${3 * MiB - 1}`,
    ])
  })
})
