/**
 * `npm start` on a data directory left behind by a pickup that was killed, with IPFS_API_URL pointing at a
 * kubo that is not running yet:
 * - the dead process's lock is taken over; files an older pickup wrote readable by others become 0600; a
 *   port of the previous run (kept in endpoints.json) that another program took meanwhile is replaced;
 * - "does not answer" is said before "pickup is running"; /healthz is 503 and `pickup stats` shows the worker
 *   not ready, with the reason; a pin waits queued;
 * - once the node answers (a stand-in of kubo's RPC `/api/v0/id` that starts answering when the test says, so
 *   the test runs without a kubo binary; test/kubo/ runs real ones), it says so, /healthz is 200 and stats
 *   shows it ready.
 */
import { spawn } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createNetServer, type Server as NetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runPickup } from '../cli/helpers.ts'
import { apiOf, freePort, interrupt, localEnv, plainLines, run, type Started } from './helpers.ts'

/** A valid Ed25519 peer ID, as a real kubo reports it. */
const PEER_ID = '12D3KooWCefdcKWbE2sZFKWJ5HpxPLYDWnSteLL6sYkjtjYEwcyM'

const CID = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'

let root: string
let dir: string
let kuboPort: number
let takenPort: NetServer
let deadPid: number
let pickup: Started
let api: string
let kubo: Server | undefined

/** The pid of a process that has exited (its lock is stale). */
async function pidOfExitedProcess(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await new Promise((resolve) => child.on('exit', resolve))
  if (child.pid === undefined) throw new Error('no pid')
  return child.pid
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pickup-start-ipfs-'))
  dir = join(root, 'data')
  await mkdir(dir, { mode: 0o755 })
  await chmod(dir, 0o755)
  // Another program holds the port the previous run's DynamoDB had.
  takenPort = createNetServer()
  await new Promise<void>((resolve) => takenPort.listen(0, '127.0.0.1', resolve))
  const address = takenPort.address()
  const dynamodbPort = typeof address === 'object' && address ? address.port : 0
  // What a killed older pickup left: a lock, endpoints and token readable by anyone.
  deadPid = await pidOfExitedProcess()
  await writeFile(join(dir, 'pickup.lock'), JSON.stringify({ pid: deadPid, api: 'http://127.0.0.1:1' }))
  await writeFile(
    join(dir, 'endpoints.json'),
    JSON.stringify({ aws: { dynamodb: `http://127.0.0.1:${dynamodbPort}`, sqs: 'http://127.0.0.1:0' } }),
    { mode: 0o644 },
  )
  await writeFile(join(dir, 'cluster-token'), 'cGlja3VwOm9sZA==\n', { mode: 0o644 })
  await chmod(join(dir, 'endpoints.json'), 0o644)
  await chmod(join(dir, 'cluster-token'), 0o644)

  kuboPort = await freePort()
  pickup = run(
    localEnv({
      PICKUP_DATA_DIR: dir,
      IPFS_API_URL: `http://127.0.0.1:${kuboPort}`,
      IPFS_RETRY_INTERVAL_MS: '200',
    }),
  )
  await pickup.printed('pickup is running')
  api = apiOf(pickup.stdout)
})

afterAll(async () => {
  if (pickup && pickup.child.exitCode === null) await interrupt(pickup)
  await new Promise<void>((resolve) => (kubo ? kubo.close(() => resolve()) : resolve()))
  await new Promise<void>((resolve) => (takenPort ? takenPort.close(() => resolve()) : resolve()))
  if (root) await rm(root, { recursive: true, force: true })
})

describe('npm start after a killed pickup, with an IPFS node that does not answer', () => {
  it('takes over the stale lock', async () => {
    const lock = JSON.parse(await readFile(join(dir, 'pickup.lock'), 'utf8')) as { pid: number; api: string }
    expect(lock).toEqual(expect.objectContaining({ pid: pickup.child.pid, api }))
    expect(lock.pid).not.toBe(deadPid)
  })

  it('makes the data directory 0700 and the credentials 0600, keeping the token', async () => {
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await stat(join(dir, 'endpoints.json'))).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'cluster-token'))).mode & 0o777).toBe(0o600)
    expect(pickup.stdout).toContain('Authorization: Basic cGlja3VwOm9sZA==')
  })

  it('takes a new port for a service whose previous port another program holds', async () => {
    const endpoints = JSON.parse(await readFile(join(dir, 'endpoints.json'), 'utf8')) as {
      aws: { dynamodb: string }
    }
    const address = takenPort.address()
    const held = typeof address === 'object' && address ? address.port : 0
    expect(new URL(endpoints.aws.dynamodb).port).not.toBe(String(held))
  })

  it('says the node does not answer before "pickup is running", and what to do', () => {
    const lines = plainLines(pickup.stdout)
    const running = lines.findIndex((l) => l.startsWith('pickup is running'))
    const notice = lines.findIndex((l) => l.includes('does not answer'))
    expect(notice).toBeGreaterThanOrEqual(0)
    expect(notice).toBeLessThan(running)
    expect(lines[notice]).toMatch(
      new RegExp(
        `^The IPFS node at http://127\\.0\\.0\\.1:${kuboPort} does not answer \\(.*ECONNREFUSED.*\\): pins wait in the queue until it does\\.`,
      ),
    )
    expect(lines[notice]).toContain('unset IPFS_API_URL')
    expect(lines.find((l) => l.includes('IPFS node: '))).toContain('(not answering yet)')
  })

  it('accepts a pin, which waits in the queue: no job is taken while the node does not answer', async () => {
    const { clusterAuthorization } = JSON.parse(await readFile(join(dir, 'endpoints.json'), 'utf8')) as {
      clusterAuthorization: string
    }
    const res = await fetch(`${api}/pins/${CID}`, {
      method: 'POST',
      headers: { Authorization: clusterAuthorization },
    })
    expect(res.status).toBe(200)
    const shown = await runPickup(dir, ['pin', 'show', CID])
    expect(shown.stdout).toMatch(/^Status +queued$/m)
    expect(shown.stdout).toMatch(/^Attempts +0$/m)
  })

  it('/healthz and pickup stats show the worker not ready, and why', async () => {
    const health = await fetch(`${api}/healthz`)
    expect(health.status).toBe(503)
    expect(await health.json()).toEqual({
      ok: false,
      worker: {
        ready: false,
        problem: expect.stringMatching(/^the IPFS node does not answer: .*ECONNREFUSED/),
        ipfsError: expect.any(String),
      },
    })
    const stats = await runPickup(dir, ['stats'])
    expect(stats.code, stats.stderr).toBe(0)
    expect(stats.stdout).toMatch(/^Workers +1 live, 0 ready \(pins wait until one is\)$/m)
    expect(stats.stdout).toMatch(/^Pin queue +1 waiting, 0 in flight, 0 delayed$/m)
    expect(stats.stdout).toMatch(
      /^ {2}[0-9a-f-]{36} not ready: the IPFS node does not answer: .*ECONNREFUSED/m,
    )
  })

  it('once the node answers, says so; /healthz is 200 and stats shows the worker ready', async () => {
    // A stand-in of kubo's RPC id endpoint, on the port IPFS_API_URL names.
    kubo = createHttpServer((req, res) => {
      if (req.method === 'POST' && req.url?.startsWith('/api/v0/id')) {
        res.writeHead(200, { 'Content-Type': 'application/json' })
        res.end(
          JSON.stringify({
            ID: PEER_ID,
            Addresses: [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER_ID}`],
            AgentVersion: 'kubo/0.43.1/',
            Protocols: ['/ipfs/bitswap/1.2.0'],
          }),
        )
        return
      }
      res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => kubo?.listen(kuboPort, '127.0.0.1', resolve))
    await pickup.printed(`The IPFS node at http://127.0.0.1:${kuboPort} answers now: the worker takes jobs.`)
    const health = await fetch(`${api}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ ok: true, worker: { ready: true } })
    const stats = await runPickup(dir, ['stats'])
    expect(stats.stdout).toMatch(/^Workers +1 live, 1 ready$/m)
    expect(stats.stdout).not.toContain('not ready')
  })
})
