/**
 * `npm start` as a person meets it: a running pickup, and a second start next to it (same data directory:
 * refused naming the holder; same port: refused naming the port and PORT=); what it writes (private files, the
 * lock) and how Ctrl-C ends it. One pickup is started for the whole file; each refusal is a process of its
 * own that exits before any embedded service binds a port.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiOf, interrupt, localEnv, plainLines, repo, run, type Started } from './helpers.ts'

let dir: string
let first: Started
let api: string
const others: string[] = []

beforeAll(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'pickup-start-')), 'data')
  first = run(localEnv({ PICKUP_DATA_DIR: dir }))
  await first.printed('pickup is running')
  api = apiOf(first.stdout)
})

afterAll(async () => {
  if (first && first.child.exitCode === null) await interrupt(first)
  for (const d of [dir, ...others]) if (d) await rm(join(d, '..'), { recursive: true, force: true })
})

describe('npm start', () => {
  it('is what the start script runs', async () => {
    const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as {
      scripts: { start: string }
    }
    expect(pkg.scripts.start).toBe('node local/start.js')
  })

  it('prints where everything is, and is healthy with its worker ready', async () => {
    expect(plainLines(first.stdout)[0]).toBe(`pickup is running (data in ${dir})`)
    expect(first.stdout).not.toContain('does not answer')
    const health = await fetch(`${api}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ ok: true, worker: { ready: true } })
  })

  it('keeps its secrets private: data dir 0700, endpoints.json and cluster-token 0600', async () => {
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await stat(join(dir, 'endpoints.json'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'cluster-token'))).mode & 0o777).toBe(0o600)
    const endpoints = JSON.parse(await readFile(join(dir, 'endpoints.json'), 'utf8')) as { api: string }
    expect(endpoints.api).toBe(api)
  })

  it('locks its data directory with its pid and API URL', async () => {
    const lock = JSON.parse(await readFile(join(dir, 'pickup.lock'), 'utf8')) as { pid: number; api: string }
    expect(lock).toMatchObject({ pid: first.child.pid, api })
  })

  it('a second start on the same data directory is refused, naming the holder and PICKUP_DATA_DIR', async () => {
    const second = await run(localEnv({ PICKUP_DATA_DIR: dir })).exited
    expect(second.code).toBe(1)
    expect(second.stdout).toBe('')
    const lines = plainLines(second.stderr)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(
      `the data directory ${dir} is in use by another pickup (pid ${first.child.pid}, API ${api})`,
    )
    expect(lines[0]).toMatch(/use another directory: PICKUP_DATA_DIR=\S+ npm start/)
    // The running one is untouched: still healthy, still holding the lock.
    expect((await fetch(`${api}/healthz`)).status).toBe(200)
    const lock = JSON.parse(await readFile(join(dir, 'pickup.lock'), 'utf8')) as { pid: number }
    expect(lock.pid).toBe(first.child.pid)
  })

  it('a second start on the port in use is refused, naming the port and PORT=', async () => {
    const port = Number(new URL(api).port)
    const otherDir = join(await mkdtemp(join(tmpdir(), 'pickup-start-port-')), 'data')
    others.push(otherDir)
    const second = await run(localEnv({ PICKUP_DATA_DIR: otherDir, PORT: String(port) })).exited
    expect(second.code).toBe(1)
    const lines = plainLines(second.stderr)
    expect(lines).toEqual([
      `pickup: port ${port} is in use (another pickup, or another program). Start on another port: PORT=${port + 1} npm start`,
    ])
    expect(second.stderr).not.toMatch(/^\s+at /m)
    // It let go of its own data directory.
    await expect(stat(join(otherDir, 'pickup.lock'))).rejects.toThrow(/ENOENT/)
  })

  it('Ctrl-C stops it cleanly and releases the lock', async () => {
    const exit = await interrupt(first)
    expect(exit.code).toBe(0)
    await expect(stat(join(dir, 'pickup.lock'))).rejects.toThrow(/ENOENT/)
  })
})
