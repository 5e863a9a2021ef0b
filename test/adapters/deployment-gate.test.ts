/**
 * The deployment gate (adapters/ecs/deployment-gate.ts) around a real pin worker loop (core/pin-worker.ts)
 * and the in-memory queue, against stand-ins of what only exists inside an ECS task: the task metadata
 * endpoint (`GET $ECS_CONTAINER_METADATA_URI_V4/task`) and the ECS API, reached through the real AWS SDK
 * client (`DescribeServices` over ECS's JSON protocol). Both are node:http servers on loopback that record
 * every call; the test switches the service's primary deployment as a deployment would.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ECSClient } from '@aws-sdk/client-ecs'
import { afterEach, describe, expect, it } from 'vitest'
import { createDeploymentGate, describePrimaryTaskDefinition } from '../../adapters/ecs/deployment-gate.ts'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import type { FetchOutcome } from '../../core/fetch-pin.ts'
import { createPinWorker } from '../../core/pin-worker.ts'
import { createTestLogger } from '../helpers/log.ts'

const CLUSTER = 'arn:aws:ecs:us-east-1:123456789012:cluster/production-pickup-Cluster'
const SERVICE = 'production-pickup-workers'
const taskDefinitionArn = (revision: number) =>
  `arn:aws:ecs:us-east-1:123456789012:task-definition/productionpickupWorkerStackWorkerTask:${revision}`

interface Ecs {
  metadataUri: string
  client: ECSClient
  /** The revision of the service's PRIMARY deployment; the task runs revision 5. */
  primaryRevision: number
  /** Answer DescribeServices with a server error. */
  broken: boolean
  describeCalls: Array<{ cluster: string; services: string[] }>
}

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()))
})

async function listen(server: Server): Promise<string> {
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

async function startEcs(): Promise<Ecs> {
  const ecs = { primaryRevision: 5, broken: false, describeCalls: [] } as unknown as Ecs
  const metadata = createServer((req, res) => {
    if (req.url !== '/v4/abc/task') {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(
      JSON.stringify({
        Cluster: CLUSTER,
        TaskARN: 'arn:aws:ecs:us-east-1:123456789012:task/production-pickup-Cluster/0123456789abcdef',
        Family: 'productionpickupWorkerStackWorkerTask',
        Revision: '5',
        DesiredStatus: 'RUNNING',
        KnownStatus: 'RUNNING',
        LaunchType: 'FARGATE',
      }),
    )
  })
  ecs.metadataUri = `${await listen(metadata)}/v4/abc`

  const api = createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => {
      raw += c.toString()
    })
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '')
      if (target !== 'AmazonEC2ContainerServiceV20141113.DescribeServices') {
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.1' })
        res.end(JSON.stringify({ __type: 'InvalidParameterException', message: target }))
        return
      }
      const input = JSON.parse(raw) as { cluster: string; services: string[] }
      ecs.describeCalls.push(input)
      if (ecs.broken) {
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.1' })
        res.end(JSON.stringify({ __type: 'ServerException', message: 'stand-in broke' }))
        return
      }
      const deployments = [
        { id: 'ecs-svc/new', status: 'PRIMARY', taskDefinition: taskDefinitionArn(ecs.primaryRevision) },
        ...(ecs.primaryRevision !== 5
          ? [{ id: 'ecs-svc/old', status: 'ACTIVE', taskDefinition: taskDefinitionArn(5) }]
          : []),
      ]
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' })
      res.end(
        JSON.stringify({
          services: [{ serviceName: SERVICE, clusterArn: CLUSTER, deployments }],
          failures: [],
        }),
      )
    })
  })
  ecs.client = new ECSClient({
    endpoint: await listen(api),
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    maxAttempts: 1,
  })
  return ecs
}

/** Waits for a condition the system reaches by itself (never for a fixed time). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 5))
}

describe('deployment gate (against stand-ins of the task metadata endpoint and the ECS API)', () => {
  it('an outdated task takes no new job, finishes the one it holds, and takes jobs again after a rollback', async () => {
    const ecs = await startEcs()
    const lines: Parameters<typeof createTestLogger>[0] = []
    const log = createTestLogger(lines)
    const gate = createDeploymentGate({
      metadataUri: ecs.metadataUri,
      serviceName: SERVICE,
      primaryTaskDefinition: describePrimaryTaskDefinition(ecs.client),
      log,
      checkIntervalMs: 0,
    })
    const queue = createMemoryJobQueue()
    const started: string[] = []
    const finished: string[] = []
    const release = new Map<string, () => void>()
    const busy: number[] = []
    const worker = createPinWorker(
      {
        transferSlots: 4,
        searchSlots: 4,
        visibilityTimeoutSeconds: 300,
        fetchTimeoutMs: 60_000,
        waitSeconds: 1,
        retry: { baseDelaySeconds: 0, maxDelaySeconds: 0 },
      },
      {
        queue: gate.gate(queue),
        log,
        onBusyChange: (jobs) => busy.push(jobs),
        run: async (job) => {
          started.push(job.cid)
          await new Promise<void>((resolve) => release.set(job.cid, resolve))
          finished.push(job.cid)
          return { kind: 'already-pinned' } satisfies FetchOutcome
        },
      },
    )
    worker.start()
    try {
      await queue.send({ cid: 'bafy-a', origins: [] })
      await until(() => started.includes('bafy-a'))

      // A deployment of revision 6 starts: this task (revision 5) is no longer primary.
      ecs.primaryRevision = 6
      const callsBefore = ecs.describeCalls.length
      await until(() => gate.draining)
      await queue.send({ cid: 'bafy-b', origins: [] })
      // Several checks later, b has still not been taken.
      await until(() => ecs.describeCalls.length >= callsBefore + 3)
      expect(started).toEqual(['bafy-a'])
      expect(queue.stats().visible).toBe(1)

      // The job it holds finishes: its message is deleted and the worker goes idle (protection is lifted).
      release.get('bafy-a')!()
      await until(() => busy.at(-1) === 0)
      expect(finished).toEqual(['bafy-a'])
      expect(queue.stats()).toEqual({ visible: 1, invisible: 0 })

      // The deployment is rolled back: revision 5 is primary again, and b is taken.
      ecs.primaryRevision = 5
      await until(() => started.includes('bafy-b'))
      release.get('bafy-b')!()
      await until(() => finished.includes('bafy-b'))
    } finally {
      await worker.stop(0)
      gate.stop()
    }
    expect(ecs.describeCalls[0]).toEqual({ cluster: CLUSTER, services: [SERVICE] })
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining([
        'task no longer in the primary deployment: taking no new jobs, finishing those held',
        'task in the primary deployment again: taking jobs',
      ]),
    )
  })

  it('keeps taking jobs when ECS cannot be asked, and logs why', async () => {
    const ecs = await startEcs()
    ecs.broken = true
    const lines: Parameters<typeof createTestLogger>[0] = []
    const gate = createDeploymentGate({
      metadataUri: ecs.metadataUri,
      serviceName: SERVICE,
      primaryTaskDefinition: describePrimaryTaskDefinition(ecs.client),
      log: createTestLogger(lines),
    })
    const queue = createMemoryJobQueue()
    await queue.send({ cid: 'bafy-c', origins: [] })
    const got = await gate.gate(queue).receive({ max: 1, waitSeconds: 0 })
    expect(got.map((m) => m.job.cid)).toEqual(['bafy-c'])
    expect(gate.draining).toBe(false)
    expect(ecs.describeCalls).toHaveLength(1)
    expect(lines.find((l) => l.level === 'warn')?.msg).toBe(
      'deployment check failed: keeping the last answer',
    )
    gate.stop()
  })

  it('asks ECS at most once per interval, however often the worker receives', async () => {
    const ecs = await startEcs()
    let now = 0
    const gate = createDeploymentGate({
      metadataUri: ecs.metadataUri,
      serviceName: SERVICE,
      primaryTaskDefinition: describePrimaryTaskDefinition(ecs.client),
      log: createTestLogger(),
      clock: { now: () => now },
      checkIntervalMs: 60_000,
    })
    const gated = gate.gate(createMemoryJobQueue())
    for (let i = 0; i < 5; i++) await gated.receive({ max: 1, waitSeconds: 0 })
    expect(ecs.describeCalls).toHaveLength(1)
    now += 60_000
    await gated.receive({ max: 1, waitSeconds: 0 })
    expect(ecs.describeCalls).toHaveLength(2)
    gate.stop()
  })
})
