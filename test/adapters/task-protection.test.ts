/**
 * ECS task scale-in protection (adapters/ecs/task-protection.ts) against a stand-in of the ECS agent's
 * endpoint: a node:http server answering `PUT /task-protection/v1/state` as the agent documents it. The real
 * agent only exists inside an ECS task, so it cannot run here; the stand-in records every call.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createTaskProtection } from '../../adapters/ecs/task-protection.ts'
import { createTestLogger } from '../helpers/log.ts'

interface Call {
  method: string
  url: string
  body: { ProtectionEnabled?: boolean; ExpiresInMinutes?: number }
}

interface Agent {
  uri: string
  calls: Call[]
  /** What the next calls answer: the agent's success, its `failure` shape, or an HTTP error. */
  mode: 'ok' | 'failure' | 'error'
  delayMs: number
  close(): Promise<void>
}

const servers: Server[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()))
})

async function startAgent(): Promise<Agent> {
  const agent: Agent = { uri: '', calls: [], mode: 'ok', delayMs: 0, close: async () => {} }
  const server = createServer((req, res) => {
    let raw = ''
    req.on('data', (c: Buffer) => {
      raw += c.toString()
    })
    req.on('end', async () => {
      const body = JSON.parse(raw || '{}') as Call['body']
      agent.calls.push({ method: req.method ?? '', url: req.url ?? '', body })
      if (agent.delayMs) await new Promise((r) => setTimeout(r, agent.delayMs))
      const taskArn = 'arn:aws:ecs:us-east-1:123456789012:task/pickup/0123456789abcdef'
      if (agent.mode === 'error') {
        res.writeHead(500, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { Arn: taskArn, Code: 'ServerException', Message: 'agent broke' } }))
        return
      }
      if (agent.mode === 'failure') {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ failure: { Arn: taskArn, Reason: 'TASK_NOT_VALID', Detail: null } }))
        return
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          protection: {
            ProtectionEnabled: body.ProtectionEnabled,
            ExpirationDate: body.ProtectionEnabled ? new Date(Date.now() + 3_600_000).toISOString() : null,
            TaskArn: taskArn,
          },
        }),
      )
    })
  })
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  agent.uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/abc-agent`
  return agent
}

describe('task protection (against a local stand-in of the ECS agent endpoint)', () => {
  it('protects while busy, with an expiry, and lifts protection when idle', async () => {
    const agent = await startAgent()
    const p = createTaskProtection({ agentUri: agent.uri, log: createTestLogger(), expiresInMinutes: 60 })
    expect(await p.set(true)).toBe(true)
    expect(p.protected).toBe(true)
    expect(await p.set(false)).toBe(true)
    expect(p.protected).toBe(false)
    expect(agent.calls).toEqual([
      {
        method: 'PUT',
        url: '/api/abc-agent/task-protection/v1/state',
        body: { ProtectionEnabled: true, ExpiresInMinutes: 60 },
      },
      { method: 'PUT', url: '/api/abc-agent/task-protection/v1/state', body: { ProtectionEnabled: false } },
    ])
    p.stop()
  })

  it('calls the agent once per change, in order, however often the job count changes', async () => {
    const agent = await startAgent()
    agent.delayMs = 20
    const p = createTaskProtection({ agentUri: agent.uri, log: createTestLogger() })
    // onBusyChange: 1, 2, 3 jobs, then back to 0, then 1 again.
    const results = await Promise.all([p.set(true), p.set(true), p.set(true), p.set(false), p.set(true)])
    expect(results).toEqual([true, true, true, true, true])
    expect(agent.calls.map((c) => c.body.ProtectionEnabled)).toEqual([true, false, true])
    expect(p.protected).toBe(true)
    p.stop()
  })

  it('renews protection while busy, and stops renewing when idle', async () => {
    const agent = await startAgent()
    const p = createTaskProtection({ agentUri: agent.uri, log: createTestLogger(), renewEveryMs: 30 })
    await p.set(true)
    // Renewals keep coming while busy (waited for, not timed: a loaded machine delays timers).
    const renewals = () => agent.calls.filter((c) => c.body.ProtectionEnabled).length
    while (renewals() < 3) await new Promise((r) => setTimeout(r, 10))
    await p.set(false)
    const afterIdle = agent.calls.length
    await new Promise((r) => setTimeout(r, 80))
    expect(agent.calls.length).toBe(afterIdle)
    p.stop()
  })

  it('logs and reports a refusal or an agent error without throwing, and retries on the next change', async () => {
    const agent = await startAgent()
    const lines: Parameters<typeof createTestLogger>[0] = []
    const p = createTaskProtection({ agentUri: agent.uri, log: createTestLogger(lines) })
    agent.mode = 'failure'
    expect(await p.set(true)).toBe(false)
    expect(p.protected).toBe(false)
    agent.mode = 'error'
    expect(await p.set(true)).toBe(false)
    agent.mode = 'ok'
    expect(await p.set(true)).toBe(true)
    expect(agent.calls).toHaveLength(3)
    expect(lines.filter((l) => l.level === 'warn').map((l) => (l.obj as { reason?: string }).reason)).toEqual(
      ['TASK_NOT_VALID', 'agent broke'],
    )
    p.stop()
  })

  it('survives an unreachable agent', async () => {
    const p = createTaskProtection({
      agentUri: 'http://127.0.0.1:9',
      log: createTestLogger(),
      requestTimeoutMs: 1000,
    })
    expect(await p.set(true)).toBe(false)
    p.stop()
  })

  it('refuses an expiry ECS would refuse', () => {
    expect(() =>
      createTaskProtection({ agentUri: 'http://x', log: createTestLogger(), expiresInMinutes: 0 }),
    ).toThrow(RangeError)
    expect(() =>
      createTaskProtection({ agentUri: 'http://x', log: createTestLogger(), expiresInMinutes: 2881 }),
    ).toThrow(RangeError)
  })
})
