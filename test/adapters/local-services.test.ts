import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb'
import {
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import { GetTopicAttributesCommand } from '@aws-sdk/client-sns'
import { DeleteMessageCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import type { S3Event } from 'aws-lambda'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createS3ObjectStore } from '../../adapters/s3/objects.ts'
import { createSqsCollectionJobRetries, createSqsCollectionJobs } from '../../adapters/sqs/collection-jobs.ts'
import { createSqsJobQueue } from '../../adapters/sqs/queue.ts'
import { COLLECTION_JOB_TIMEOUT_SECONDS, collectionJobsQueue } from '../../adapters/sqs/queues.ts'
import {
  DYNALITE_VERSION,
  FAUXQS_VERSION,
  installedVersion,
  loadFauxqsInternals,
} from '../../local/emulators.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createTestLogger } from '../helpers/log.ts'
import { collect, sleep } from './harness.ts'

const MiB = 1024 * 1024

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  return Buffer.concat(await collect(body))
}

/** Collects the events of a bucket; `next(n)` waits for the nth. */
function eventLog(services: Services, bucket: string) {
  const records: S3Event['Records'] = []
  const unsubscribe = services.onObjectCreated(bucket, async (event) => {
    records.push(...event.Records)
  })
  return {
    records,
    unsubscribe,
    async next(count: number, timeoutMs = 3000) {
      const deadline = Date.now() + timeoutMs
      while (records.length < count && Date.now() < deadline) await sleep(10)
      return records.slice(0, count)
    },
  }
}

describe('local services (in memory)', () => {
  let services: Services
  const logged: Array<{ level: string; msg?: string; obj: object }> = []
  beforeAll(async () => {
    services = await startServices({ eventRetryDelaysMs: [20, 20], log: createTestLogger(logged) })
  })
  afterAll(async () => {
    await services?.stop()
  })

  it('listen on 127.0.0.1 only and create every resource from the definitions', async () => {
    const { endpoints, names, clients } = services
    for (const url of [endpoints.dynamodb, endpoints.sqs, endpoints.s3, endpoints.sns]) {
      expect(new URL(url).hostname).toBe('127.0.0.1')
    }
    expect(names).toMatchObject({
      pinsTable: 'pickup-local-pins',
      workersTable: 'pickup-local-workers',
      requestsTable: 'pickup-local-requests',
      tokensTable: 'pickup-local-tokens',
      tempBucket: 'pickup-local-temp',
      destinationBucket: 'pickup-local-cars',
    })
    const { Table: pins } = await clients.dynamodb.send(
      new DescribeTableCommand({ TableName: names.pinsTable }),
    )
    expect(pins?.GlobalSecondaryIndexes?.map((g) => g.IndexName).sort()).toEqual([
      'status-updated',
      'unreferenced-since',
    ])
    const { Table: requests } = await clients.dynamodb.send(
      new DescribeTableCommand({ TableName: names.requestsTable }),
    )
    expect(requests?.GlobalSecondaryIndexes?.map((g) => g.IndexName).sort()).toEqual([
      'cid',
      'owner-cid-created',
      'owner-created',
      'owner-created-keys',
      'owner-name-created',
      'pending-created',
    ])
    const { Table: tokens } = await clients.dynamodb.send(
      new DescribeTableCommand({ TableName: names.tokensTable }),
    )
    expect(tokens?.GlobalSecondaryIndexes?.map((g) => g.IndexName)).toEqual(['user-created'])

    const { Attributes: queue } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: names.pinQueueUrl, AttributeNames: ['All'] }),
    )
    expect(queue?.VisibilityTimeout).toBe('300')
    expect(JSON.parse(queue?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: names.deadLetterQueueArn,
      maxReceiveCount: 3,
    })
    const { Attributes: dlq } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: names.deadLetterQueueUrl, AttributeNames: ['All'] }),
    )
    expect(dlq?.MessageRetentionPeriod).toBe(String(14 * 24 * 3600))
    const { Attributes: failed } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: names.failedJobsQueueUrl, AttributeNames: ['All'] }),
    )
    expect(names.failedJobsQueueUrl).toMatch(/\/pickup-local-pin-failed$/)
    expect(failed?.MessageRetentionPeriod).toBe(String(14 * 24 * 3600))
    expect(failed?.RedrivePolicy).toBeUndefined()
    expect(failed?.QueueArn).toBe(names.failedJobsQueueArn)
    // Collection jobs: a visibility timeout six times the job's timeout, and a dead-letter queue, as deployed.
    const { Attributes: collectionJobs } = await clients.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: names.collectionJobsQueueUrl, AttributeNames: ['All'] }),
    )
    expect(names.collectionJobsQueueUrl).toMatch(/\/pickup-local-collection-jobs$/)
    expect(collectionJobs?.VisibilityTimeout).toBe(String(6 * COLLECTION_JOB_TIMEOUT_SECONDS))
    expect(JSON.parse(collectionJobs?.RedrivePolicy ?? '{}')).toEqual({
      deadLetterTargetArn: names.collectionDeadLetterQueueArn,
      maxReceiveCount: collectionJobsQueue.deadLetter.maxReceiveCount,
    })
    const { Attributes: collectionDlq } = await clients.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: names.collectionDeadLetterQueueUrl,
        AttributeNames: ['All'],
      }),
    )
    expect(names.collectionDeadLetterQueueUrl).toMatch(/\/pickup-local-collection-dlq$/)
    expect(collectionDlq?.MessageRetentionPeriod).toBe(String(14 * 24 * 3600))
    expect(collectionDlq?.RedrivePolicy).toBeUndefined()
    await clients.sns.send(new GetTopicAttributesCommand({ TopicArn: names.carStoredTopicArn }))
    await clients.s3.send(new HeadBucketCommand({ Bucket: names.tempBucket }))
    await clients.s3.send(new HeadBucketCommand({ Bucket: names.destinationBucket }))
  })

  it("give a second set of clients with connection pools of their own, to the same resources (the worker's)", async () => {
    const own = services.newClients()
    for (const name of ['dynamodb', 'sqs', 's3', 'sns'] as const)
      expect(own[name]).not.toBe(services.clients[name])
    const table = await own.dynamodb.send(new DescribeTableCommand({ TableName: services.names.pinsTable }))
    expect(table.Table?.TableStatus).toBe('ACTIVE')
    const queue = await own.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: services.names.pinQueueUrl, AttributeNames: ['QueueArn'] }),
    )
    expect(queue.Attributes?.QueueArn).toBe(services.names.pinQueueArn)
  })

  it("bring a failed collection job back after its backoff, not after the queue's 30-minute visibility", async () => {
    const { clients, names } = services
    const jobs = createSqsCollectionJobs({ client: clients.sqs, queueUrl: names.collectionJobsQueueUrl })
    const retries = createSqsCollectionJobRetries({
      client: clients.sqs,
      queueUrl: names.collectionJobsQueueUrl,
    })
    const receive = async () =>
      (
        await clients.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: names.collectionJobsQueueUrl,
            MaxNumberOfMessages: 1,
            WaitTimeSeconds: 0,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        )
      ).Messages ?? []
    await jobs.send({ collectionId: 'retried', step: 'enumerate' })
    const [first] = await receive()
    expect(first?.Body).toContain('retried')
    expect(await receive()).toEqual([]) // held for the visibility timeout (1800 s)
    await retries.retryAfter(first!.ReceiptHandle!, 1)
    let again: typeof first
    for (let i = 0; i < 50 && !again; i++) {
      await sleep(100)
      ;[again] = await receive()
    }
    expect(again?.MessageId).toBe(first?.MessageId)
    expect(again?.Attributes?.ApproximateReceiveCount).toBe('2')
    await clients.sqs.send(
      new DeleteMessageCommand({
        QueueUrl: names.collectionJobsQueueUrl,
        ReceiptHandle: again!.ReceiptHandle!,
      }),
    )
  })

  it('fire ObjectCreated events for PutObject, multipart completion and copies', async () => {
    const { clients, names } = services
    const events = eventLog(services, names.tempBucket)
    const destEvents = eventLog(services, names.destinationBucket)
    try {
      const temp = createS3ObjectStore({ client: clients.s3, bucket: names.tempBucket, partSize: 5 * MiB })
      const dest = createS3ObjectStore({ client: clients.s3, bucket: names.destinationBucket })

      await temp.put('bafysmall/att1.car', once(new Uint8Array(100)))
      const [put] = await events.next(1)
      expect(put).toMatchObject({
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventName: 'ObjectCreated:Put',
        s3: {
          bucket: { name: names.tempBucket, arn: `arn:aws:s3:::${names.tempBucket}` },
          object: { key: 'bafysmall/att1.car', size: 100, eTag: expect.stringMatching(/^[0-9a-f]{32}$/) },
        },
      })

      const big = new Uint8Array(6 * MiB + 1).fill(1)
      await temp.put('bafybig/att1.car', once(big))
      const [, multipart] = await events.next(2)
      // One event for the whole upload, none for its parts.
      expect(multipart).toMatchObject({
        eventName: 'ObjectCreated:CompleteMultipartUpload',
        s3: { object: { key: 'bafybig/att1.car', size: big.length, eTag: expect.stringMatching(/-2$/) } },
      })

      await temp.copyTo('bafysmall/att1.car', dest, 'bagcar/bagcar.car')
      const [copy] = await destEvents.next(1)
      expect(copy).toMatchObject({
        eventName: 'ObjectCreated:Copy',
        s3: { object: { key: 'bagcar/bagcar.car' } },
      })

      await temp.put('dir/a b+c.car', once(new Uint8Array(1)))
      const [, , special] = await events.next(3)
      expect(special?.s3.object.key).toBe('dir/a+b%2Bc.car')

      // Reads, deletes and failed writes fire nothing.
      await temp.get('bafysmall/att1.car')
      await temp.delete('bafysmall/att1.car')
      await expect(
        clients.s3.send(new PutObjectCommand({ Bucket: 'pickup-local-nope', Key: 'k', Body: 'x' })),
      ).rejects.toThrow()
      await sleep(100)
      expect(events.records).toHaveLength(3)
      expect(destEvents.records).toHaveLength(1)
      // Sequencers grow.
      const seq = events.records.map((r) => r.s3.object.sequencer)
      expect([...seq].sort()).toEqual(seq)
    } finally {
      events.unsubscribe()
      destEvents.unsubscribe()
    }
  })

  it('retry a failing delivery twice, then report it', async () => {
    const { clients, names } = services
    const calls: string[] = []
    const off = services.onObjectCreated(names.destinationBucket, async (event) => {
      const key = event.Records[0]!.s3.object.key
      calls.push(key)
      if (key === 'always-fails' || calls.filter((k) => k === key).length < 3) throw new Error(`nope ${key}`)
    })
    try {
      const dest = createS3ObjectStore({ client: clients.s3, bucket: names.destinationBucket })
      await dest.put('fails-twice', once(new Uint8Array(1)))
      await dest.put('always-fails', once(new Uint8Array(1)))
      await sleep(300)
      expect(calls.filter((k) => k === 'fails-twice')).toHaveLength(3)
      expect(calls.filter((k) => k === 'always-fails')).toHaveLength(3)
      expect(logged.filter((l) => l.level === 'error')).toEqual([
        {
          level: 'error',
          msg: 'S3 event delivery failed',
          obj: expect.objectContaining({ key: 'always-fails', attempts: 3 }),
        },
      ])
    } finally {
      off()
    }
    // Unsubscribed: no more calls.
    await createS3ObjectStore({ client: clients.s3, bucket: names.destinationBucket }).put(
      'after',
      once(new Uint8Array(1)),
    )
    await sleep(100)
    expect(calls).not.toContain('after')
  })
})

describe('local S3 (files on disk)', () => {
  let services: Services
  beforeAll(async () => {
    services = await startServices()
  })
  afterAll(async () => {
    await services?.stop()
  })

  it('answers ranges, and refuses what S3 refuses with its error codes, never a 500', async () => {
    const { clients, names, endpoints } = services
    const Bucket = names.tempBucket
    const body = Buffer.from('0123456789')
    await clients.s3.send(new PutObjectCommand({ Bucket, Key: 'r/ten', Body: body }))
    const range = async (Range: string) => {
      const res = await clients.s3.send(new GetObjectCommand({ Bucket, Key: 'r/ten', Range }))
      return { text: await res.Body?.transformToString(), contentRange: res.ContentRange }
    }
    expect(await range('bytes=2-4')).toEqual({ text: '234', contentRange: 'bytes 2-4/10' })
    expect(await range('bytes=7-')).toEqual({ text: '789', contentRange: 'bytes 7-9/10' })
    expect(await range('bytes=-2')).toEqual({ text: '89', contentRange: 'bytes 8-9/10' })
    expect(await range('bytes=8-100')).toEqual({ text: '89', contentRange: 'bytes 8-9/10' })
    await expect(range('bytes=10-12')).rejects.toMatchObject({ name: 'InvalidRange' })
    await expect(
      clients.s3.send(new GetObjectCommand({ Bucket, Key: 'r/ten', IfMatch: '"0000"' })),
    ).rejects.toMatchObject({ $metadata: { httpStatusCode: 412 } })
    await expect(clients.s3.send(new GetObjectCommand({ Bucket, Key: 'r/none' }))).rejects.toMatchObject({
      name: 'NoSuchKey',
    })

    // Every part but the last is at least 5 MiB, and the parts named must be those uploaded.
    const { UploadId } = await clients.s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'r/mp' }))
    const parts = []
    for (const PartNumber of [1, 2]) {
      const { ETag } = await clients.s3.send(
        new UploadPartCommand({ Bucket, Key: 'r/mp', UploadId, PartNumber, Body: Buffer.alloc(10) }),
      )
      parts.push({ PartNumber, ETag })
    }
    const complete = (Parts: { PartNumber: number; ETag?: string }[]) =>
      clients.s3.send(
        new CompleteMultipartUploadCommand({ Bucket, Key: 'r/mp', UploadId, MultipartUpload: { Parts } }),
      )
    await expect(complete(parts)).rejects.toMatchObject({ name: 'EntityTooSmall' })
    await expect(complete([{ PartNumber: 1, ETag: '"0000"' }])).rejects.toMatchObject({ name: 'InvalidPart' })
    await expect(complete([...parts].reverse())).rejects.toMatchObject({ name: 'InvalidPartOrder' })
    await complete(parts.slice(0, 1))
    const head = await clients.s3.send(new GetObjectCommand({ Bucket, Key: 'r/mp' }))
    expect(head).toMatchObject({ ContentLength: 10, ETag: expect.stringMatching(/-1"$/) })
    await head.Body?.transformToByteArray()
    await expect(complete(parts)).rejects.toMatchObject({ name: 'NoSuchUpload' })

    // Dot segments and empty segments are part of a key, not a path to resolve.
    for (const Key of ['r/../dots/./k', 'r//double', 'r/..']) {
      await clients.s3.send(new PutObjectCommand({ Bucket, Key, Body: Key }))
    }
    for (const Key of ['r/../dots/./k', 'r//double', 'r/..']) {
      const res = await clients.s3.send(new GetObjectCommand({ Bucket, Key }))
      expect(await res.Body?.transformToString()).toBe(Key)
    }
    // A copy onto itself replaces the metadata and keeps the bytes.
    await clients.s3.send(
      new CopyObjectCommand({
        Bucket,
        Key: 'r/ten',
        CopySource: `${Bucket}/r/ten`,
        MetadataDirective: 'REPLACE',
        Metadata: { changed: 'yes' },
      }),
    )
    const copied = await clients.s3.send(new GetObjectCommand({ Bucket, Key: 'r/ten' }))
    expect(copied.Metadata).toEqual({ changed: 'yes' })
    expect(await copied.Body?.transformToString()).toBe('0123456789')

    // aws-chunked bodies (the SDK's default checksums) are refused in so many words.
    const chunked = await fetch(`${endpoints.s3}/${Bucket}/r/chunked`, {
      method: 'PUT',
      headers: { 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' },
      body: 'x',
    })
    expect(chunked.status).toBe(501)
    expect(await chunked.text()).toContain('<Code>NotImplemented</Code>')
  })

  it('keeps SQS and SNS requests for fauxqs on the same port', () => {
    // Covered end to end by every queue test; here, that the endpoints are one.
    expect(services.endpoints.s3).toBe(services.endpoints.sqs)
    expect(services.endpoints.s3).toBe(services.endpoints.sns)
  })
})

describe('the emulators local mode embeds', () => {
  it('are the exact versions their glue (local/emulators.ts) is written against, pinned in package.json', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    // An exact pin: a range would let a fresh install take a release the glue was not checked against.
    expect(pkg.dependencies.fauxqs).toBe(FAUXQS_VERSION)
    expect(pkg.dependencies.dynalite).toBe(DYNALITE_VERSION)
    expect(installedVersion('fauxqs')).toBe(FAUXQS_VERSION)
    expect(installedVersion('dynalite')).toBe(DYNALITE_VERSION)
    // The private modules are where the glue looks for them, with the methods it calls.
    const internals = await loadFauxqsInternals()
    const { sqs } = internals.createStores()
    expect(typeof sqs.allQueues).toBe('function')
  })
})

describe('local services with a data directory', () => {
  let dataDir: string
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'pickup-services-'))
  })
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true })
  })

  it('survive a stop and a start: pin records, queued jobs and objects', async () => {
    const lines: Array<{ level: string; msg?: string; obj: object }> = []
    const first = await startServices({ dataDir, log: createTestLogger(lines) })
    const body = new Uint8Array(6 * MiB + 5).map((_, i) => i % 251)
    let jobId: string
    const ports = {
      dynamodb: Number(new URL(first.endpoints.dynamodb).port),
      fauxqs: Number(new URL(first.endpoints.sqs).port),
    }
    try {
      const pins = createDynamoPinStore({ client: first.clients.dynamodb, tableName: first.names.pinsTable })
      await pins.request('bafypersist', ['/ip4/1.2.3.4/tcp/1'], 1000)
      const queue = createSqsJobQueue({ client: first.clients.sqs, queueUrl: first.names.pinQueueUrl })
      await queue.send({ cid: 'bafypersist', origins: ['/ip4/1.2.3.4/tcp/1'] })
      const temp = createS3ObjectStore({
        client: first.clients.s3,
        bucket: first.names.tempBucket,
        partSize: 5 * MiB,
      })
      await temp.put('bafypersist/att1.car', once(body), { metadata: { cid: 'bafypersist' } })
      await temp.put('bafypersist/small.car', once(new Uint8Array([1, 2, 3])))
      // Peek at the job, then put it back, so a delivery is on record too.
      const [peeked] = await queue.receive({ max: 1, waitSeconds: 1 })
      jobId = peeked!.id
      await queue.release(peeked!.receipt, 0)
    } finally {
      await first.stop()
    }

    // Same ports: a restarted local mode keeps its endpoints.
    const second = await startServices({ dataDir, ports, pinQueueVisibilityTimeoutSeconds: 60 })
    try {
      expect(second.endpoints).toEqual(first.endpoints)
      expect(second.names).toEqual(first.names)
      const pins = createDynamoPinStore({
        client: second.clients.dynamodb,
        tableName: second.names.pinsTable,
      })
      expect(await pins.get('bafypersist')).toMatchObject({
        status: 'queued',
        origins: ['/ip4/1.2.3.4/tcp/1'],
      })
      const queue = createSqsJobQueue({ client: second.clients.sqs, queueUrl: second.names.pinQueueUrl })
      const [job] = await queue.receive({ max: 10, waitSeconds: 2 })
      expect(job).toMatchObject({ id: jobId, receiveCount: 2, job: { cid: 'bafypersist' } })
      const temp = createS3ObjectStore({ client: second.clients.s3, bucket: second.names.tempBucket })
      const got = await temp.get('bafypersist/att1.car')
      expect(got?.metadata).toEqual({ cid: 'bafypersist' })
      expect(Buffer.compare(await readAll(got!.body), Buffer.from(body))).toBe(0)
      expect(await collect(temp.list('bafypersist/'))).toEqual([
        { key: 'bafypersist/att1.car', size: body.length },
        { key: 'bafypersist/small.car', size: 3 },
      ])
      // Changed options are applied to the existing queue.
      const { Attributes } = await second.clients.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: second.names.pinQueueUrl,
          AttributeNames: ['VisibilityTimeout'],
        }),
      )
      expect(Attributes?.VisibilityTimeout).toBe('60')
    } finally {
      await second.stop()
    }
  })

  it('load the objects of a data directory written by an earlier local mode (fauxqs file layout)', async () => {
    // The layout fauxqs 2.4's file persistence wrote under <dataDir>/s3, as local mode kept objects before.
    const dir = await mkdtemp(join(tmpdir(), 'pickup-services-old-'))
    try {
      const bucket = join(dir, 's3', 'buckets', 'pickup-local-cars')
      await mkdir(join(bucket, 'objects', 'bagold'), { recursive: true })
      await writeFile(
        join(bucket, '.bucket.json'),
        JSON.stringify({ name: 'pickup-local-cars', creationDate: '2026-01-01T00:00:00.000Z' }),
      )
      await writeFile(join(bucket, 'objects', 'bagold', 'bagold.car.data'), 'old car')
      await writeFile(
        join(bucket, 'objects', 'bagold', 'bagold.car.meta.json'),
        JSON.stringify({
          key: 'bagold/bagold.car',
          contentType: 'application/octet-stream',
          contentLength: 7,
          etag: '"0b8e7a5c1e7d2c4b8e1f9a2c3d4e5f60"',
          lastModified: '2026-01-01T00:00:00.000Z',
          metadata: { cid: 'bafyold' },
        }),
      )
      // Two uploads never completed nor aborted (a worker killed mid-upload): one begun two days ago, one now.
      const upload = async (id: string, initiated: Date) => {
        await mkdir(join(dir, 's3', '_multipart', id, 'parts'), { recursive: true })
        await writeFile(
          join(dir, 's3', '_multipart', id, '.upload.json'),
          JSON.stringify({ uploadId: id, bucket: 'pickup-local-temp', key: 'k', metadata: {}, initiated }),
        )
      }
      const stale = '00000000-0000-4000-8000-000000000001'
      const fresh = '00000000-0000-4000-8000-000000000002'
      await upload(stale, new Date(Date.now() - 2 * 24 * 3600 * 1000))
      await upload(fresh, new Date())
      const services = await startServices({ dataDir: dir })
      try {
        // As the temporary bucket's lifecycle rule does in AWS, an upload is given up a day after it began.
        expect(existsSync(join(dir, 's3', '_multipart', stale))).toBe(false)
        expect(existsSync(join(dir, 's3', '_multipart', fresh))).toBe(true)
        const cars = createS3ObjectStore({
          client: services.clients.s3,
          bucket: services.names.destinationBucket,
        })
        const got = await cars.get('bagold/bagold.car')
        expect(got?.metadata).toEqual({ cid: 'bafyold' })
        expect((await readAll(got!.body)).toString()).toBe('old car')
      } finally {
        await services.stop()
      }
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
