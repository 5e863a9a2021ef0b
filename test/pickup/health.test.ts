/**
 * The sidecar's health endpoint and receive-loop watch (pickup/health.ts), over real HTTP on 127.0.0.1.
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { JobQueue } from '../../core/ports.ts'
import { createLoopWatch, type HealthServer, startHealthServer } from '../../pickup/health.ts'

const servers: HealthServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

async function start(check: Parameters<typeof startHealthServer>[0]['check'], timeoutMs?: number) {
  const server = await startHealthServer({ port: 0, check, ...(timeoutMs ? { timeoutMs } : {}) })
  servers.push(server)
  return (path = '/health') => fetch(`http://127.0.0.1:${server.port}${path}`)
}

describe('health endpoint', () => {
  it('answers 200 with the report when the check passes, 503 when it fails', async () => {
    let ok = true
    const get = await start(async () => ({ ok, looping: ok }))
    const good = await get()
    expect(good.status).toBe(200)
    expect(await good.json()).toEqual({ ok: true, looping: true })
    ok = false
    expect((await get()).status).toBe(503)
  })

  it('fails a check that throws or hangs', async () => {
    const throwing = await start(async () => {
      throw new Error('kubo is gone')
    })
    const res = await throwing()
    expect(res.status).toBe(503)
    expect(await res.json()).toEqual({ ok: false, error: 'kubo is gone' })
    const hanging = await start(() => new Promise(() => {}), 50)
    expect((await hanging()).status).toBe(503)
  })

  it('serves only GET /health', async () => {
    const get = await start(async () => ({ ok: true }))
    expect((await get('/')).status).toBe(404)
    expect((await get('/health?verbose=1')).status).toBe(200)
  })
})

describe('receive loop watch', () => {
  const queue: JobQueue = {
    send: async () => {},
    receive: async () => [],
    extend: async () => {},
    extendMany: async () => [],
    release: async () => {},
    delete: async () => {},
  }

  it('is alive while the loop receives, dead when it stops, unless the worker is full or intake is paused', async () => {
    let now = 0
    const watch = createLoopWatch(queue, { staleMs: 1000, clock: { now: () => now } })
    await watch.queue.receive({ max: 1, waitSeconds: 0 })
    now = 900
    expect(watch.alive({ full: false })).toBe(true)
    now = 1500
    expect(watch.alive({ full: false })).toBe(false)
    expect(watch.alive({ full: true })).toBe(true)
    expect(watch.alive({ full: false, paused: true })).toBe(true)
    await watch.queue.receive({ max: 1, waitSeconds: 0 })
    expect(watch.alive({ full: false })).toBe(true)
  })
})
