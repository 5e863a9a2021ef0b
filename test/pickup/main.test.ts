/**
 * The sidecar's entry point (`pickup/main.ts`) run as a process, as in its ECS task: against local mode's
 * embedded services, with HEALTH_PORT set and ECS_AGENT_URI pointing at a node:http stand-in of the ECS
 * agent's task-protection endpoint (the real agent exists only inside an ECS task). Without kubo the worker
 * uses an embedded Helia node, so kubo's GC is not exercised here (see test/adapters/kubo-gc.test.ts). And the
 * same entry as local mode runs it, over an IPC channel (pickup/parent-channel.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { contentKey } from '../../core/cid.ts'
import { unixfsFile } from '../fixtures/dags.ts'
import { startTestSystem, type TestSystem, WORKER_STDIO, workerProcessEnv } from '../helpers/system.ts'
import { freePort, waitFor } from '../helpers/wait.ts'

let t: TestSystem
let agent: Server
const protections: boolean[] = []
let child: ChildProcess | undefined

beforeAll(async () => {
  t = await startTestSystem({}, { worker: 'none' })
  agent = createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => {
      raw += c.toString()
    })
    req.on('end', () => {
      const { ProtectionEnabled } = JSON.parse(raw) as { ProtectionEnabled: boolean }
      if (req.method === 'PUT' && req.url === '/v4/agent/task-protection/v1/state')
        protections.push(ProtectionEnabled)
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ protection: { ProtectionEnabled, TaskArn: 'arn:aws:ecs:::task/c/1' } }))
    })
  })
  await new Promise<void>((resolve) => agent.listen(0, '127.0.0.1', resolve))
})

afterAll(async () => {
  child?.kill('SIGKILL')
  await new Promise<void>((resolve) => agent?.close(() => resolve()))
  await t?.stop()
})

describe('the worker sidecar in an ECS-like task', () => {
  it('answers its health check, protects its task while it holds a job, and stops on SIGTERM', async () => {
    const healthPort = await freePort()
    child = spawn(process.execPath, ['pickup/main.ts'], {
      env: workerProcessEnv(t.system.services, {
        VISIBILITY_TIMEOUT_SECONDS: '10',
        UPLOAD_PART_BYTES: String(5 * 1024 * 1024),
        HEALTH_PORT: String(healthPort),
        ECS_AGENT_URI: `http://127.0.0.1:${(agent.address() as AddressInfo).port}/v4/agent`,
      }),
      stdio: WORKER_STDIO,
    })

    const health = await waitFor('a healthy worker', async () => {
      const res = await fetch(`http://127.0.0.1:${healthPort}/health`)
      return res.status === 200 ? ((await res.json()) as Record<string, unknown>) : undefined
    })
    expect(health).toMatchObject({ ok: true, looping: true, ipfsAnswers: true, inFlight: 0 })
    expect((await fetch(`http://127.0.0.1:${healthPort}/nope`)).status).toBe(404)

    const file = await unixfsFile(2 * 1024 * 1024, { seed: 'sidecar' })
    await t.addToOrigin(file.blocks)
    const cid = contentKey(file.root)
    const res = await t.api(`/pins/${cid}?origins=${encodeURIComponent(t.originAddrs().join(','))}`, {
      method: 'POST',
    })
    expect(res.status).toBe(200)
    await t.waitForPin(cid, 'pinned', 60_000)
    // Protected when the job arrived, unprotected when it was done.
    await waitFor('protection lifted', async () => (protections.at(-1) === false ? true : undefined))
    expect(protections).toEqual([true, false])

    const exited = new Promise<number | null>((resolve) => child!.once('exit', resolve))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  })

  it('run by local mode over IPC: reports its status and metric lines there, and exits, search and all, when the channel closes', async () => {
    const proc = spawn(process.execPath, ['pickup/main.ts'], {
      // A grace period the test would not outlast: closing the channel must not wait for the search.
      env: workerProcessEnv(t.system.services, { SHUTDOWN_GRACE_MS: '600000', LOG_LEVEL: 'info' }),
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    })
    child = proc
    let stdout = ''
    proc.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString()
    })
    const messages: Array<{ type: string; [k: string]: unknown }> = []
    proc.on('message', (m) => messages.push(m as (typeof messages)[number]))
    const report = await waitFor('its first report', async () =>
      messages.find((m) => m.type === 'worker-status'),
    )
    expect(report).toMatchObject({ status: { ready: true }, peerId: expect.stringMatching(/^12D3KooW/) })
    expect(report.multiaddrs).toEqual(
      expect.arrayContaining([expect.stringContaining(`/p2p/${report.peerId}`)]),
    )
    // Its gauges come over the channel, not on stdout as in ECS.
    await waitFor('a metric line', async () => messages.find((m) => m.type === 'metric-line'))
    expect(stdout).not.toContain('"_aws"')

    // Content no peer has: the worker searches for it until the channel closes.
    const cid = contentKey((await unixfsFile(1024, { seed: `nobody serves ${Math.random()}` })).root)
    expect((await t.api(`/pins/${cid}`, { method: 'POST' })).status).toBe(200)
    await t.waitForPin(cid, 'pinning', 30_000)
    const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve))
    proc.disconnect()
    expect(await exited).toBe(1)
    expect(stdout).toContain('local mode went away: exiting')
  })
})
