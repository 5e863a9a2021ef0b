/**
 * The deployable code, built the way a deploy builds it, offline:
 * - the Lambda functions by SST itself: `app.finish()` runs SST's deferred tasks, which bundle every
 *   function with SST's Node runtime handler (esbuild, ESM) into the project's artifacts directory, as
 *   `sst deploy` does. Under NODE_ENV=test (vitest) SST skips its AWS calls (bootstrap bucket, sourcemap
 *   upload), so nothing here needs credentials. sst@2.49.8 pins esbuild 0.18, which cannot parse import
 *   attributes (`with { type: 'json' }`, core/version.ts); package.json's `overrides` gives SST the
 *   project's esbuild, and this test checks it does;
 * - the worker, with the esbuild command of the Dockerfile's build stage, run as written there.
 * Each bundle is then loaded by Node 22: with an empty environment it must stop on a ConfigError naming the
 * missing variables (so it loads and composes), and each Lambda bundle, given a complete environment, must
 * export its handler. Then each Lambda bundle is invoked, in its own Node 22 process, with an event of the
 * shape its trigger sends (S3 ObjectCreated, SQS batch, API Gateway v2 HTTP, EventBridge schedule) against
 * the local services (DynamoDB, SQS, S3 and SNS emulators, reached through the SDK's endpoint variables), and
 * the effect is asserted: what deploys is what is tested.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'
import { PutObjectCommand } from '@aws-sdk/client-s3'
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import { Stack } from 'aws-cdk-lib'
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda'
import type { Construct } from 'constructs'
import { useProject } from 'sst/project.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDynamoCollectionStore } from '../../adapters/dynamodb/collections.ts'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createDynamoTokenStore } from '../../adapters/dynamodb/tokens.ts'
import { parseEmfLines } from '../../adapters/metrics/emf.ts'
import { createS3ObjectStore } from '../../adapters/s3/objects.ts'
import { createAccessToken } from '../../core/access-tokens.ts'
import { destinationCarKey, tempCarKey } from '../../core/pin.ts'
import type { PinStore } from '../../core/ports.ts'
import { localAwsEnv } from '../../local/aws-env.ts'
import { type Services, startServices } from '../../local/services.ts'
import { carBytes, carCidOf, rawBlock, unixfsFile } from '../fixtures/dags.ts'
import { concreteEnv, synthesize } from './synth.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const out = mkdtempSync(join(tmpdir(), 'pickup-bundle-'))
afterAll(() => rmSync(out, { recursive: true, force: true }))

/** Loads a bundle in a fresh Node 22 with exactly this environment. */
function load(file: string, env: Record<string, string>, check = '') {
  return spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(pathToFileURL(file).href)}); ${check}`,
    ],
    { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 },
  )
}

const FULL_ENV = {
  AWS_REGION: 'us-east-1',
  PIN_TABLE: 'p',
  WORKER_TABLE: 'w',
  REQUEST_TABLE: 'r',
  TOKEN_TABLE: 'k',
  PIN_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/q',
  FAILED_JOBS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/f',
  TEMP_BUCKET: 't',
  DESTINATION_BUCKET: 'd',
  CAR_STORED_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:t',
  COLLECTION_TABLE: 'c',
  COLLECTION_JOBS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/c',
}
/** What SST sets on every function; a secret's value is used as is unless it is `__FETCH_FROM_SSM__`. */
const SST_ENV = {
  SST_APP: 'pickup',
  SST_STAGE: 'test',
  SST_Secret_value_CLUSTER_BASIC_AUTH_TOKEN: 'token',
  SST_Secret_value_CHAIN_RPC: '{}',
}

interface Built {
  handler: string
  runtime: string
  file: string
  /** The function's environment in the template (references as placeholders). */
  env: Record<string, string>
}
let built: Built[] = []

beforeAll(async () => {
  const s = await synthesize('production')
  await s.app.finish()
  built = Object.values(s.stacks).flatMap((stack) =>
    // SST's Stack lists its own functions (not CDK's framework handlers).
    (stack as unknown as { getAllFunctions(): Construct[] }).getAllFunctions().map((fn) => {
      const cfn = fn.node.defaultChild as CfnFunction
      const handler = cfn.handler ?? ''
      const file = join(
        useProject().paths.artifacts,
        fn.node.addr,
        `${handler.slice(0, handler.lastIndexOf('.'))}.mjs`,
      )
      const resolved = Stack.of(fn).resolve(cfn.environment) as
        | { variables?: Record<string, unknown>; Variables?: Record<string, unknown> }
        | undefined
      const vars = resolved?.variables ?? resolved?.Variables ?? {}
      return { handler, runtime: cfn.runtime ?? '', file, env: concreteEnv(vars) }
    }),
  )
}, 120_000)

describe('Lambda functions, built by SST', () => {
  it('are the seven entry points, on Node 22', () => {
    expect(built.map((b) => b.handler).sort()).toEqual([
      'api/http.handler',
      'api/lambda/collection-follow.handler',
      'api/lambda/collection-jobs.handler',
      'api/lambda/dead-letter.handler',
      'api/lambda/reconcile.handler',
      'api/lambda/sweep-unreferenced.handler',
      'api/lambda/validate-car.handler',
    ])
    for (const b of built) expect(b.runtime, b.handler).toBe('nodejs22.x')
  })

  it("were bundled by the project's esbuild", () => {
    const sstEsbuild = createRequire(fileURLToPath(import.meta.resolve('sst/runtime/handlers/node.js')))(
      'esbuild/package.json',
    ) as { version: string }
    const ours = JSON.parse(readFileSync(join(root, 'node_modules/esbuild/package.json'), 'utf8')) as {
      version: string
    }
    expect(sstEsbuild.version).toBe(ours.version)
  })

  it('load on Node 22: a ConfigError without environment, the handler with one', () => {
    for (const { handler, file } of built) {
      expect(existsSync(file), file).toBe(true)
      const bare = load(file, SST_ENV)
      expect(bare.status, handler).not.toBe(0)
      // Each names a table it needs (the follow tick has only the collections table).
      expect(bare.stderr, handler).toMatch(/invalid configuration:[\s\S]*(PIN_TABLE|COLLECTION_TABLE)/)

      const exportName = handler.slice(handler.lastIndexOf('.') + 1)
      const full = load(file, { ...FULL_ENV, ...SST_ENV }, `process.stdout.write(typeof m.${exportName})`)
      expect(full.stderr, handler).toBe('')
      expect(full.stdout, handler).toBe('function')
    }
  })
})

describe('worker', () => {
  it("bundles with the Dockerfile's esbuild command and loads on Node 22", () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, '')
    const command = /^RUN (\/opt\/esbuild\/node_modules\/\.bin\/esbuild pickup\/main\.ts .*)$/m.exec(
      dockerfile,
    )?.[1]
    expect(command).toBeDefined()
    const outfile = join(out, 'worker.mjs')
    const local = command!
      .replace('/opt/esbuild/node_modules/.bin/esbuild', join(root, 'node_modules/.bin/esbuild'))
      .replace('--outfile=dist/main.mjs', `--outfile=${outfile}`)
    execFileSync('sh', ['-c', `${local} --log-level=error`], { cwd: root, stdio: 'pipe' })

    const bare = load(outfile, {})
    expect(bare.status).not.toBe(0)
    expect(bare.stderr).toMatch(/invalid configuration:[\s\S]*PIN_QUEUE_URL/)
  })
})

describe('Lambda bundles, invoked with events of their triggers against the local services', () => {
  let services: Services
  let pins: PinStore
  const T = Date.now()

  beforeAll(async () => {
    services = await startServices({ prefix: 'bundle' })
    pins = createDynamoPinStore({ client: services.clients.dynamodb, tableName: services.names.pinsTable })
  })
  afterAll(async () => {
    await services?.stop()
  })

  /** The bundle of `handler`, its template environment with the local resources in place of the deployed ones. */
  function bundle(handler: string): { file: string; env: Record<string, string> } {
    const b = built.find((x) => x.handler === handler)
    if (!b) throw new Error(`no bundle for ${handler}`)
    const n = services.names
    const local: Record<string, string> = {
      PIN_TABLE: n.pinsTable,
      WORKER_TABLE: n.workersTable,
      REQUEST_TABLE: n.requestsTable,
      TOKEN_TABLE: n.tokensTable,
      PIN_QUEUE_URL: n.pinQueueUrl,
      FAILED_JOBS_QUEUE_URL: n.failedJobsQueueUrl,
      TEMP_BUCKET: n.tempBucket,
      DESTINATION_BUCKET: n.destinationBucket,
      CAR_STORED_TOPIC_ARN: n.carStoredTopicArn,
      COLLECTION_TABLE: n.collectionsTable,
      COLLECTION_JOBS_QUEUE_URL: n.collectionJobsQueueUrl,
    }
    const env = Object.fromEntries(
      Object.entries(b.env).map(([k, v]) => [k, local[k] ?? v] as [string, string]),
    )
    for (const [k, v] of Object.entries(env)) {
      if (v.startsWith('<')) throw new Error(`${handler}: no local value for ${k}`)
    }
    return { file: b.file, env }
  }

  /** What the last invoked bundle wrote on its output: its metric (EMF) lines among it, as Lambda ships them. */
  let output = ''
  const metricPoints = (name: string) => parseEmfLines(output).filter((p) => p.name === name)

  /** Runs the bundle's exported handler in a fresh Node 22 with the event; resolves what it returned. */
  async function invoke(handler: string, event: unknown, extraEnv: Record<string, string> = {}) {
    const { file, env } = bundle(handler)
    const eventFile = join(out, `event-${Math.random().toString(36).slice(2)}.json`)
    writeFileSync(eventFile, JSON.stringify(event))
    const script =
      `const m = await import(${JSON.stringify(pathToFileURL(file).href)});` +
      `const event = JSON.parse((await import('node:fs')).readFileSync(process.env.PICKUP_TEST_EVENT, 'utf8'));` +
      `const context = { awsRequestId: 'test', functionName: 'test', getRemainingTimeInMillis: () => 60000 };` +
      `let out; try { out = { ok: await m.handler(event, context) ?? null } } catch (err) { out = { error: String(err) } }` +
      `process.stdout.write('\\nRESULT ' + JSON.stringify(out) + '\\n')`
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      env: {
        PATH: process.env.PATH ?? '',
        ...SST_ENV,
        ...env,
        ...localAwsEnv(services),
        LOG_LEVEL: 'silent',
        PICKUP_TEST_EVENT: eventFile,
        // What SSM would answer for the secrets the deployed function fetches at cold start.
        SST_Secret_value_CLUSTER_BASIC_AUTH_TOKEN: SST_ENV.SST_Secret_value_CLUSTER_BASIC_AUTH_TOKEN,
        SST_Secret_value_CHAIN_RPC: SST_ENV.SST_Secret_value_CHAIN_RPC,
        ...extraEnv,
      },
      encoding: 'utf8',
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    })
    output = stdout
    const line = stdout.split('\n').find((l) => l.startsWith('RESULT '))
    if (!line) throw new Error(`no result from ${handler}: ${stdout}`)
    return JSON.parse(line.slice('RESULT '.length)) as { ok?: unknown; error?: string }
  }

  async function queuedCids(queueUrl: string): Promise<string[]> {
    const res = await services.clients.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    )
    return (res.Messages ?? []).map((m) => (JSON.parse(m.Body ?? '{}') as { cid?: string }).cid ?? '')
  }

  const schedule = (ruleId: string) => ({
    version: '0',
    id: 'a1b2c3d4-0000-0000-0000-000000000000',
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: new Date(T).toISOString(),
    region: 'us-east-1',
    resources: [`arn:aws:events:us-east-1:123456789012:rule/${ruleId}`],
    detail: {},
  })

  it('validate-car, on S3 ObjectCreated: a valid CAR is promoted and its pin pinned', async () => {
    const dag = await unixfsFile(3 * 1024 * 1024, { seed: 'bundle' })
    const bytes = await carBytes(dag.root, dag.blocks)
    const cid = dag.root.toString()
    await pins.request(cid, [], T)
    await pins.claim(cid, 'attempt-1', T + 300_000, T)
    const key = tempCarKey(cid, 'attempt-1')
    await services.clients.s3.send(
      new PutObjectCommand({ Bucket: services.names.tempBucket, Key: key, Body: bytes }),
    )
    const event = {
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          awsRegion: 'us-east-1',
          eventTime: new Date(T).toISOString(),
          eventName: 'ObjectCreated:Put',
          userIdentity: { principalId: 'AWS:AROAEXAMPLE:worker' },
          requestParameters: { sourceIPAddress: '10.0.0.1' },
          responseElements: { 'x-amz-request-id': 'R', 'x-amz-id-2': 'I' },
          s3: {
            s3SchemaVersion: '1.0',
            configurationId: 'validator',
            bucket: {
              name: services.names.tempBucket,
              ownerIdentity: { principalId: 'A' },
              arn: `arn:aws:s3:::${services.names.tempBucket}`,
            },
            object: {
              key: encodeURIComponent(key).replace(/%2F/g, '/'),
              size: bytes.length,
              eTag: 'e',
              sequencer: '01',
            },
          },
        },
      ],
    }
    // Ranged reads of 1 MiB, 4 in flight: the CAR is read in several ranges, as a large one would be.
    const result = await invoke('api/lambda/validate-car.handler', event, {
      VALIDATOR_READ_PART_BYTES: String(1024 * 1024),
      VALIDATOR_READ_CONCURRENCY: '4',
    })
    expect(result).toEqual({ ok: null })
    const carCid = carCidOf(bytes).toString()
    const pin = await pins.get(cid)
    expect(pin?.status).toBe('pinned')
    expect(pin?.car).toMatchObject({ cid: carCid, bytes: bytes.length, key: destinationCarKey(carCid) })
    const destination = createS3ObjectStore({
      client: services.clients.s3,
      bucket: services.names.destinationBucket,
    })
    expect((await destination.head(destinationCarKey(carCid)))?.size).toBe(bytes.length)
    const temp = createS3ObjectStore({ client: services.clients.s3, bucket: services.names.tempBucket })
    expect(await temp.head(key)).toBeUndefined()
    // The metrics the deployed function writes, under the namespace the stack gives it.
    expect(metricPoints('PinsStored')).toEqual([
      expect.objectContaining({ namespace: 'pickup/production', unit: 'Count', value: 1, dimensions: {} }),
    ])
    expect(metricPoints('CarBytes').map((p) => p.value)).toEqual([bytes.length])
  })

  it('dead-letter, on an SQS batch: the pin is failed and the job forwarded to the failed-jobs queue', async () => {
    const cid = rawBlock(64, 'dead').root.toString()
    await pins.request(cid, [], T)
    const event = {
      Records: [
        {
          messageId: '059f36b4-87a3-44ab-83d2-661975830a7d',
          receiptHandle: 'AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a',
          body: JSON.stringify({ cid, origins: [] }),
          attributes: {
            ApproximateReceiveCount: '1',
            SentTimestamp: String(T),
            SenderId: 'AIDAIENQZJOLO23YVJ4VO',
            ApproximateFirstReceiveTimestamp: String(T),
          },
          messageAttributes: {},
          md5OfBody: 'e4e68fb7bd0e697a0ae8f1bb342846b3',
          eventSource: 'aws:sqs',
          eventSourceARN: services.names.deadLetterQueueArn,
          awsRegion: 'us-east-1',
        },
      ],
    }
    const result = await invoke('api/lambda/dead-letter.handler', event)
    expect(result).toEqual({ ok: { batchItemFailures: [] } })
    expect((await pins.get(cid))?.status).toBe('failed')
    expect(await queuedCids(services.names.failedJobsQueueUrl)).toEqual([cid])
  })

  it('http, on an API Gateway v2 request: POST /pins/{cid} answers the pin and queues its job', async () => {
    const cid = rawBlock(64, 'http').root.toString()
    const path = `/pins/${cid}`
    const event = {
      version: '2.0',
      routeKey: '$default',
      rawPath: path,
      rawQueryString: 'name=bundle',
      headers: {
        authorization: 'Basic token',
        host: 'abc123.execute-api.us-east-1.amazonaws.com',
        'user-agent': 'ipfs-cluster-client',
        'x-forwarded-proto': 'https',
      },
      queryStringParameters: { name: 'bundle' },
      requestContext: {
        accountId: '123456789012',
        apiId: 'abc123',
        domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
        domainPrefix: 'abc123',
        http: {
          method: 'POST',
          path,
          protocol: 'HTTP/1.1',
          sourceIp: '203.0.113.7',
          userAgent: 'ipfs-cluster-client',
        },
        requestId: 'req-1',
        routeKey: '$default',
        stage: '$default',
        time: '26/Nov/2026:11:00:00 +0000',
        timeEpoch: T,
      },
      isBase64Encoded: false,
    }
    const result = await invoke('api/http.handler', event)
    const response = result.ok as { statusCode: number; body: string }
    expect(response.statusCode).toBe(200)
    expect(JSON.parse(response.body)).toMatchObject({ cid, name: 'bundle' })
    expect((await pins.get(cid))?.status).toBe('queued')
    expect(await queuedCids(services.names.pinQueueUrl)).toEqual([cid])
    expect(metricPoints('PinRequestsAccepted').map((p) => [p.namespace, p.dimensions, p.value])).toEqual([
      ['pickup/production', {}, 1],
      ['pickup/production', { Api: 'cluster' }, 1],
    ])

    const unauthorized = await invoke('api/http.handler', {
      ...event,
      headers: { ...event.headers, authorization: 'Basic nope' },
    })
    expect((unauthorized.ok as { statusCode: number }).statusCode).toBe(401)
    expect(metricPoints('ClientErrors').map((p) => p.dimensions)).toEqual([
      { Api: 'cluster' },
      { Api: 'cluster', Reason: 'UNAUTHORIZED' },
    ])
  })

  it('reconcile, on an EventBridge schedule: a pin queued for hours without a job is enqueued again', async () => {
    const cid = rawBlock(64, 'reconcile').root.toString()
    await pins.request(cid, [], T - 3 * 3600_000)
    const result = await invoke('api/lambda/reconcile.handler', schedule('ReconcileSchedule'))
    expect(result.error).toBeUndefined()
    const pin = await pins.get(cid)
    expect(pin?.status).toBe('queued')
    expect(pin?.error).toMatch(/^RECONCILED: /)
    expect(await queuedCids(services.names.pinQueueUrl)).toEqual([cid])
  })

  it('sweep-unreferenced, on an EventBridge schedule: unwanted content loses its CAR and pin record', async () => {
    const dag = rawBlock(1024, 'sweep')
    const bytes = await carBytes(dag.root, dag.blocks)
    const cid = dag.root.toString()
    const carCid = carCidOf(bytes).toString()
    await pins.request(cid, [], T - 60_000)
    await pins.claim(cid, 'attempt-1', T + 300_000, T - 60_000)
    const car = { cid: carCid, bytes: bytes.length, blocks: 1, key: destinationCarKey(carCid) }
    await pins.markPinned(cid, 'attempt-1', car, T - 50_000)
    await services.clients.s3.send(
      new PutObjectCommand({ Bucket: services.names.destinationBucket, Key: car.key, Body: bytes }),
    )
    // The stack's retention is 7 days; this content has been unwanted for 2 hours, past the 1 hour minimum.
    await pins.markUnreferenced(cid, T - 2 * 60 * 60 * 1000)
    const result = await invoke('api/lambda/sweep-unreferenced.handler', schedule('SweepSchedule'), {
      UNREFERENCED_RETENTION_MS: String(60 * 60 * 1000),
    })
    expect(result.error).toBeUndefined()
    expect(await pins.get(cid)).toBeUndefined()
    const destination = createS3ObjectStore({
      client: services.clients.s3,
      bucket: services.names.destinationBucket,
    })
    expect(await destination.head(car.key)).toBeUndefined()
  })
  it('collections: POST /collections through the HTTP bundle sends the job the consumer bundle runs against the chain', async () => {
    // A JSON-RPC endpoint standing in for a chain: no contract at any address (eth_getCode answers 0x).
    const calls: string[] = []
    const rpc = createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => {
        body += c.toString()
      })
      req.on('end', () => {
        const parsed = JSON.parse(body) as
          | { id: number; method: string }
          | Array<{ id: number; method: string }>
        const answer = (r: { id: number; method: string }) => {
          calls.push(r.method)
          return {
            jsonrpc: '2.0',
            id: r.id,
            result: r.method === 'eth_getCode' ? '0x' : `0x${'0'.repeat(64)}`,
          }
        }
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify(Array.isArray(parsed) ? parsed.map(answer) : answer(parsed)))
      })
    })
    await new Promise<void>((r) => rpc.listen(0, '127.0.0.1', r))
    try {
      const url = `http://127.0.0.1:${(rpc.address() as AddressInfo).port}`
      // The secret as `npx sst secrets set CHAIN_RPC` stores it; each function reads it at cold start.
      const secret = { SST_Secret_value_CHAIN_RPC: JSON.stringify({ '1': url }) }
      const { token } = await createAccessToken(
        { user: 'collector' },
        {
          tokens: createDynamoTokenStore({
            client: services.clients.dynamodb,
            tableName: services.names.tokensTable,
          }),
          clock: { now: () => T },
        },
      )
      const address = `0x${'c0'.repeat(20)}`
      const body = JSON.stringify({ chainId: 1, address })
      const path = '/collections'
      const request = (chainId: number) => ({
        version: '2.0',
        routeKey: '$default',
        rawPath: path,
        rawQueryString: '',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/json',
          host: 'abc123.execute-api.us-east-1.amazonaws.com',
        },
        requestContext: {
          accountId: '123456789012',
          apiId: 'abc123',
          domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
          domainPrefix: 'abc123',
          http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.7', userAgent: 'curl' },
          requestId: 'req-c',
          routeKey: '$default',
          stage: '$default',
          time: '26/Nov/2026:11:00:00 +0000',
          timeEpoch: T,
        },
        body: chainId === 1 ? body : JSON.stringify({ chainId, address }),
        isBase64Encoded: false,
      })
      // A chain the secret does not configure is refused, in the Pinning Service API's error shape.
      const refused = (await invoke('api/http.handler', request(137), secret)).ok as {
        statusCode: number
        body: string
      }
      expect(refused.statusCode).toBe(400)
      expect(JSON.parse(refused.body)).toMatchObject({ error: { reason: expect.any(String) } })

      const accepted = (await invoke('api/http.handler', request(1), secret)).ok as {
        statusCode: number
        body: string
      }
      expect(accepted.statusCode).toBe(202)
      const collection = JSON.parse(accepted.body) as { id: string; status: string }
      expect(collection.status).toBe('enumerating')

      const received = await services.clients.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: services.names.collectionJobsQueueUrl,
          MaxNumberOfMessages: 10,
          WaitTimeSeconds: 0,
        }),
      )
      const messages = received.Messages ?? []
      expect(messages.map((m) => JSON.parse(m.Body ?? '{}'))).toEqual([
        { collectionId: collection.id, step: 'enumerate', id: expect.any(String) },
      ])
      const event = {
        Records: messages.map((m) => ({
          messageId: m.MessageId,
          receiptHandle: m.ReceiptHandle,
          body: m.Body,
          attributes: {
            ApproximateReceiveCount: '1',
            SentTimestamp: String(T),
            SenderId: 'AIDAIENQZJOLO23YVJ4VO',
            ApproximateFirstReceiveTimestamp: String(T),
          },
          messageAttributes: {},
          md5OfBody: m.MD5OfBody,
          eventSource: 'aws:sqs',
          eventSourceARN: services.names.collectionJobsQueueArn,
          awsRegion: 'us-east-1',
        })),
      }
      const result = await invoke('api/lambda/collection-jobs.handler', event, secret)
      // Not an NFT contract is permanent: the job is done (not retried), the collection failed with the reason.
      expect(result).toEqual({ ok: { batchItemFailures: [] } })
      expect(calls).toContain('eth_getCode')
      const stored = await createDynamoCollectionStore({
        client: services.clients.dynamodb,
        tableName: services.names.collectionsTable,
      }).get(collection.id)
      expect(stored).toMatchObject({ status: 'failed', error: expect.stringMatching(/no contract at/) })
      expect(stored?.error).not.toContain(url)
    } finally {
      await new Promise<void>((r) => rpc.close(() => r()))
    }
  })
})
