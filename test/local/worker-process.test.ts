/**
 * `npm start`'s worker runs as a process of its own (`pickup/main.ts`, the entry ECS runs;
 * local/worker-process.ts), beside local mode's embedded services:
 * - it pins content from the origin a request names, and its metric lines reach `pickup stats`;
 * - killed, it is said on stdout, another is started (same peer id, new addresses in endpoints.json), /healthz
 *   is ready again and the next pin is pinned;
 * - local mode killed outright (no chance to stop its worker), the worker exits too, without waiting for the
 *   jobs it holds (their messages come back when their visibility ends).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHeliaNode, type HeliaNode } from '../../adapters/helia/node.ts'
import { contentKey } from '../../core/cid.ts'
import { pickup } from '../cli/helpers.ts'
import { type Dag, rawBlock } from '../fixtures/dags.ts'
import { childPids } from '../helpers/proc.ts'
import { waitFor } from '../helpers/wait.ts'
import { apiOf, interrupt, localEnv, run, type Started } from './helpers.ts'

let dir: string
let local: Started
let api: string
let authorization: string
let origin: HeliaNode

/** The one child of local mode: its worker. */
async function workerPid(): Promise<number> {
  const children = childPids(local.child.pid)
  expect(children).toHaveLength(1)
  const cmdline = (await readFile(`/proc/${children[0]}/cmdline`, 'utf8')).split('\0')
  expect(cmdline).toContain(join(import.meta.dirname, '../../pickup/main.ts'))
  return children[0]!
}

const alive = (pid: number) =>
  readFile(`/proc/${pid}/stat`, 'utf8').then(
    // A zombie (state Z) has exited: only its parent has not reaped it yet.
    (stat) => !/^\d+ \(.*\) Z /.test(stat),
    () => false,
  )

/** Polls `check` until it holds. */
const until = (check: () => Promise<boolean>, what: string) =>
  waitFor(what, async () => ((await check()) ? true : undefined), 60_000)

/** Pins the DAG through the cluster API with the origin named, and waits until it is pinned. */
async function pinFromOrigin(dag: Dag): Promise<void> {
  for (const b of dag.blocks) await origin.blockstore.put(b.cid, b.bytes)
  const origins = origin.libp2p.getMultiaddrs().map((a) => a.toString())
  const cid = contentKey(dag.root)
  const res = await fetch(`${api}/pins/${cid}?origins=${encodeURIComponent(origins.join(','))}`, {
    method: 'POST',
    headers: { authorization },
  })
  expect(res.status).toBe(200)
  await until(async () => {
    const shown = await pickup(dir, ['pin', 'show', cid])
    return /^Status +pinned$/m.test(shown.stdout)
  }, `${cid} is pinned`)
}

beforeAll(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'pickup-worker-process-')), 'data')
  origin = await createHeliaNode({ allowPrivateDials: true })
  // A worker killed while long-polling may have messages handed to its dead receives, as in SQS: they come
  // back when their visibility ends, 10 s here.
  // A grace period no test waits out: a worker that waited for its jobs once local mode is gone would outlive
  // the last case.
  local = run(
    localEnv({ PICKUP_DATA_DIR: dir, VISIBILITY_TIMEOUT_SECONDS: '10', SHUTDOWN_GRACE_MS: '600000' }),
  )
  await local.printed('pickup is running')
  api = apiOf(local.stdout)
  const m = /Authorization: +(Basic \S+)/.exec(local.stdout)
  authorization = m?.[1] ?? ''
})

afterAll(async () => {
  if (local && local.child.exitCode === null && local.child.signalCode === null) await interrupt(local)
  await origin?.stop()
  if (dir) await rm(join(dir, '..'), { recursive: true, force: true })
})

describe("npm start's worker, a process of its own", () => {
  it('pins content from a named origin; its metric lines reach pickup stats', async () => {
    await workerPid()
    await pinFromOrigin(rawBlock(50_000, 'worker process 1'))
    const stats = await pickup(dir, ['stats', '--json'])
    expect(stats.code, stats.stderr).toBe(0)
    const lastHour = (
      JSON.parse(stats.stdout) as { lastHour: { jobs: { finished: number }; pinsStored: number } }
    ).lastHour
    // Jobs are counted by the worker (its stdout), pins stored by the validator (local mode's own process).
    expect(lastHour.jobs.finished).toBe(1)
    expect(lastHour.pinsStored).toBe(1)
  })

  it('killed, is said to be gone, started again, and pins the next request', async () => {
    const first = await workerPid()
    const addresses = async () =>
      (JSON.parse(await readFile(join(dir, 'endpoints.json'), 'utf8')) as { ipfs: string[] }).ipfs
    const before = await addresses()
    process.kill(first, 'SIGKILL')
    await local.printed(
      /The worker takes no jobs \(the worker process exited \(SIGKILL\); another starts in 1 s\)/,
    )
    await local.printed(
      /exited \(SIGKILL\)[\s\S]*The embedded IPFS node answers now: the worker takes jobs\./,
    )
    const second = await workerPid()
    expect(second).not.toBe(first)
    const health = await fetch(`${api}/healthz`)
    expect(await health.json()).toEqual({ ok: true, worker: { ready: true } })
    // Its embedded node keeps its peer id (its key is in the data directory) on a new port.
    await until(async () => (await addresses())[0] !== before[0], 'endpoints.json has the new address')
    const peer = (a: string) => a.slice(a.lastIndexOf('/p2p/'))
    expect((await addresses()).map(peer)).toEqual(before.map(peer))
    await pinFromOrigin(rawBlock(50_000, 'worker process 2'))
  })

  it('exits when local mode is killed outright, searching jobs and all', async () => {
    const worker = await workerPid()
    // Content no peer has: its job searches until local mode is gone.
    const cid = contentKey(rawBlock(64, `nobody serves ${Math.random()}`).root)
    const res = await fetch(`${api}/pins/${cid}`, { method: 'POST', headers: { authorization } })
    expect(res.status).toBe(200)
    await until(
      async () => /^Status +pinning \(attempt/m.test((await pickup(dir, ['pin', 'show', cid])).stdout),
      `${cid} is searching`,
    )
    local.child.kill('SIGKILL')
    await local.exited
    await until(async () => !(await alive(worker)), 'the worker has exited')
  })
})
