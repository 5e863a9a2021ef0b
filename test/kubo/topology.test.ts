/**
 * The production worker, on one machine: the ECS task's two containers as two processes. A real kubo daemon
 * configured by the very script the kubo image runs (docker/kubo/001-pickup-config.sh, listen addresses
 * overridden), and the sidecar as its own process (`pickup/main.ts`) driving it through `IPFS_API_URL`, against
 * local mode's embedded services with the validator and the dead-letter consumer as in AWS. Origins are a Helia
 * node and another kubo daemon; routing is off, so content arrives only through the origins a request names.
 *
 * Every stored CAR is re-verified twice, independently of pickup's validator: by @ipld/car against the DAG's
 * blocks, and by kubo (imported offline, root pinned, every block re-hashed).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { contentKey } from '../../core/cid.ts'
import type { Pin } from '../../core/pin.ts'
import { type Block, dagCborDag, rawBlock, type StreamedDag, unixfsFile } from '../fixtures/dags.ts'
import {
  importDag,
  KUBO_VERSION,
  type KuboNode,
  kuboBinary,
  startKubo,
  verifyCarWithKubo,
} from '../helpers/kubo.ts'
import {
  listKeys,
  startTestSystem,
  type TestSystem,
  verifyStoredCar,
  WORKER_STDIO,
  workerProcessEnv,
} from '../helpers/system.ts'
import { freePort, waitFor } from '../helpers/wait.ts'

const MiB = 1024 * 1024

describe.skipIf(!kuboBinary)(
  `the ECS worker topology on one machine: kubo ${KUBO_VERSION} + the sidecar`,
  () => {
    let t: TestSystem
    let worker: KuboNode
    let originKubo: KuboNode
    let sidecar: Sidecar | undefined

    beforeAll(async () => {
      ;[t, worker, originKubo] = await Promise.all([
        // A visibility timeout (and lease) of 30 s: long enough that a loaded machine's timer slop does not let a
        // running job's message reappear, short enough that a killed sidecar's job is taken over within the test.
        startTestSystem({ MAX_ATTEMPTS: '3', VISIBILITY_TIMEOUT_SECONDS: '30' }, { worker: 'none' }),
        startKubo({ pickupConfig: true }),
        startKubo(),
      ])
    })

    afterAll(async () => {
      await sidecar?.kill('SIGKILL')
      await Promise.allSettled([worker?.stop(), originKubo?.stop()])
      await t?.stop()
    })

    interface Sidecar {
      process: ChildProcess
      healthPort: number
      health(): Promise<{ status: number; body: Record<string, unknown> }>
      kill(signal?: NodeJS.Signals): Promise<number | null>
    }

    /** The sidecar as ECS runs it: its own process, kubo at IPFS_API_URL, a health port, GC between jobs. */
    async function startSidecar(env: Record<string, string> = {}): Promise<Sidecar> {
      const healthPort = await freePort()
      const child = spawn(process.execPath, ['pickup/main.ts'], {
        env: workerProcessEnv(t.system.services, {
          IPFS_API_URL: worker.url,
          HEALTH_PORT: String(healthPort),
          VISIBILITY_TIMEOUT_SECONDS: '30',
          PROGRESS_INTERVAL_MS: '200',
          FETCH_CHUNK_TIMEOUT_MS: '4000',
          RETRY_BASE_DELAY_SECONDS: '0',
          UPLOAD_PART_BYTES: String(5 * MiB),
          MAX_ATTEMPTS: '3',
          SHUTDOWN_GRACE_MS: '0',
          LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
          ...env,
        }),
        stdio: WORKER_STDIO,
      })
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
      const s: Sidecar = {
        process: child,
        healthPort,
        async health() {
          const res = await fetch(`http://127.0.0.1:${healthPort}/health`)
          return { status: res.status, body: (await res.json()) as Record<string, unknown> }
        },
        async kill(signal = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal)
          return exited
        },
      }
      await waitFor('a healthy sidecar', async () => ((await s.health()).status === 200 ? true : undefined))
      return s
    }

    async function replaceSidecar(env: Record<string, string> = {}): Promise<Sidecar> {
      await sidecar?.kill('SIGTERM')
      sidecar = await startSidecar(env)
      return sidecar
    }

    async function pin(root: CID, origins: string[]): Promise<string> {
      const cid = contentKey(root)
      const query = origins.length ? `?origins=${encodeURIComponent(origins.join(','))}` : ''
      const res = await t.api(`/pins/${cid}${query}`, { method: 'POST' })
      expect(res.status).toBe(200)
      return cid
    }

    /** The stored CAR, checked by @ipld/car against the blocks and by kubo on its own. */
    async function verifyStored(p: Pin, root: CID, blocks: Iterable<Block> | AsyncIterable<Block>) {
      expect(p.status).toBe('pinned')
      const key = p.car!.key
      const ours = await verifyStoredCar(t.destination, key, root, blocks)
      const object = await t.destination.get(key)
      const kubos = await verifyCarWithKubo(object!.body, root)
      // kubo counts inline (identity) CIDs as blocks of the DAG too; a CAR carries none.
      expect(kubos.blocks).toBeGreaterThanOrEqual(ours.blocks)
      expect(p.car!.blocks).toBe(ours.blocks)
      return ours
    }

    const heliaOrigin = () => t.originAddrs()

    it('the sidecar is healthy only while kubo answers, and announces kubo as the delegate', async () => {
      sidecar = await startSidecar()
      const healthy = await sidecar.health()
      expect(healthy.body).toMatchObject({ ok: true, ipfsAnswers: true, looping: true })

      // Delegates: the worker kubo's own /p2p/ addresses, and a client kubo can connect to them.
      const root = rawBlock(1000, 'delegates')
      await t.addToOrigin(root.blocks)
      const res = await t.api(
        `/pins/${contentKey(root.root)}?origins=${encodeURIComponent(heliaOrigin().join(','))}`,
        {
          method: 'POST',
        },
      )
      const body = (await res.json()) as { metadata: { delegates?: string } }
      const delegates = (body.metadata.delegates ?? '').split(',').filter(Boolean)
      expect(delegates.length).toBeGreaterThan(0)
      for (const d of delegates) expect(d).toMatch(new RegExp(`/p2p/${worker.peerId}$`))
      const tcp = delegates.find((d) => d.includes('/tcp/'))!
      await originKubo.cli(['swarm', 'connect', tcp])
      expect(await originKubo.cli(['swarm', 'peers'])).toContain(worker.peerId)
      await t.waitForPin(contentKey(root.root), 'pinned')

      await worker.kill('SIGKILL')
      await waitFor('an unhealthy sidecar', async () =>
        (await sidecar!.health()).status === 503 ? true : undefined,
      )
      expect((await sidecar.health()).body).toMatchObject({ ok: false, ipfsAnswers: false })
      await worker.restart()
      await waitFor('a healthy sidecar again', async () =>
        (await sidecar!.health()).status === 200 ? true : undefined,
      )
    })

    it('pins a raw block and a dag-cbor DAG from a Helia origin, reached only through origins', async () => {
      const rawDag = rawBlock(100_000, 'topology-raw')
      const cbor = dagCborDag()
      await t.addToOrigin([...rawDag.blocks, ...cbor.blocks])
      // No routing, no connection yet: the worker's kubo can reach the origin only by dialling what we name.
      expect(await worker.cli(['swarm', 'peers'])).not.toContain(t.origin.libp2p.peerId.toString())
      const a = await pin(rawDag.root, heliaOrigin())
      const b = await pin(cbor.root, heliaOrigin())
      await verifyStored(await t.waitForPin(a, 'pinned'), rawDag.root, rawDag.blocks)
      await verifyStored(await t.waitForPin(b, 'pinned'), cbor.root, cbor.blocks)
    })

    it('pins a dag-cbor DAG and 50 MiB of UnixFS (256 KiB chunks) from a kubo origin', {
      timeout: 180_000,
    }, async () => {
      const cbor = dagCborDag()
      // A DAG of its own: the same blocks would already be in the worker's kubo from the Helia origin.
      const file = await unixfsFile(50 * MiB, { seed: 'topology-50', chunkSize: 256 * 1024 })
      await importDag(originKubo, file.root, file.blocks)
      const origins = await originKubo.multiaddrs()
      const cid = await pin(file.root, origins)
      const p = await t.waitForPin(cid, 'pinned', 120_000)
      const { blocks } = await verifyStored(p, file.root, file.blocks)
      expect(blocks).toBeGreaterThan(200)
      expect(p.car!.bytes).toBeGreaterThan(50 * MiB)
      // The dag-cbor fixture is kubo-imported too, and its inline and sha2-512 blocks survive the round trip.
      const repin = await pin(cbor.root, origins)
      await t.waitForPin(repin, 'pinned')
    })

    it('fails content nobody serves after its attempts, through the dead-letter queue, with the reason', {
      timeout: 180_000,
    }, async () => {
      const nobody = rawBlock(2000, 'nobody-serves-this')
      const cid = await pin(nobody.root, [])
      const failed = await t.waitForPin(cid, 'failed', 120_000)
      expect(failed.attempts).toBe(3)
      expect(failed.error).toMatch(/^FETCH_STALLED/)
      expect(await listKeys(t.temp)).toEqual([])
    })

    it('a DAG whose leaf no peer has stalls and fails; one larger than MAX_CAR_BYTES fails at once', {
      timeout: 180_000,
    }, async () => {
      const file = await unixfsFile(3 * MiB, { seed: 'topology-stall' })
      const blocks: Block[] = []
      for await (const b of file.blocks) blocks.push(b)
      // Everything but the first leaf.
      await importDag(originKubo, file.root, blocks.slice(1))
      const stalled = await pin(file.root, await originKubo.multiaddrs())
      const failed = await t.waitForPin(stalled, 'failed', 120_000)
      expect(failed.error).toMatch(/^FETCH_STALLED/)
      expect(failed.attempts).toBe(3)

      await replaceSidecar({ MAX_CAR_BYTES: String(1 * MiB) })
      const big = await unixfsFile(2 * MiB, { seed: 'topology-too-large' })
      await importDag(originKubo, big.root, big.blocks)
      const tooBig = await pin(big.root, await originKubo.multiaddrs())
      const refused = await t.waitForPin(tooBig, 'failed', 60_000)
      expect(refused.error).toMatch(/^CAR_TOO_LARGE/)
      expect(refused.attempts).toBe(1)
      await replaceSidecar()
    })

    it('a sidecar SIGKILLed mid-upload: the next one takes the job over and the pin ends pinned', {
      timeout: 180_000,
    }, async () => {
      const file = await unixfsFile(40 * MiB, { seed: 'topology-sigkill' })
      await importDag(originKubo, file.root, file.blocks)
      const first = await replaceSidecar({ FETCH_CONCURRENCY: '2' })
      const cid = await pin(file.root, await originKubo.multiaddrs())
      await waitFor(
        'progress',
        async () => (((await t.pins.get(cid))?.progress?.bytes ?? 0) > 8 * MiB ? true : undefined),
        90_000,
      )
      await first.kill('SIGKILL')
      sidecar = undefined
      expect((await t.pins.get(cid))?.status).toBe('pinning')
      expect(await listKeys(t.temp)).toEqual([])

      sidecar = await startSidecar()
      const p = await t.waitForPin(cid, 'pinned', 120_000)
      expect(p.attempts).toBe(2)
      await verifyStored(p, file.root, file.blocks)
    })

    it('kubo killed and restarted mid-job: the job fails over to a retry and the pin ends pinned', {
      timeout: 180_000,
    }, async () => {
      const file = await unixfsFile(30 * MiB, { seed: 'topology-kubo-restart' })
      await importDag(originKubo, file.root, file.blocks)
      await replaceSidecar({ FETCH_CONCURRENCY: '2' })
      const cid = await pin(file.root, await originKubo.multiaddrs())
      await waitFor(
        'progress',
        async () => (((await t.pins.get(cid))?.progress?.bytes ?? 0) > 4 * MiB ? true : undefined),
        90_000,
      )
      await worker.kill('SIGKILL')
      await sleep(500)
      await worker.restart()
      const p = await t.waitForPin(cid, 'pinned', 120_000)
      expect(p.attempts).toBeGreaterThanOrEqual(2)
      await verifyStored(p, file.root, file.blocks)
      await replaceSidecar()
    })

    it('two concurrent jobs with repo gc between jobs: both pinned, and the repo shrinks back after', {
      timeout: 180_000,
    }, async () => {
      await replaceSidecar({ KUBO_GC_MIN_INTERVAL_MS: '0' })
      const files: StreamedDag[] = []
      for (const seed of ['gc-a', 'gc-b', 'gc-c']) {
        const f = await unixfsFile(6 * MiB, { seed })
        await importDag(originKubo, f.root, f.blocks)
        files.push(f)
      }
      const origins = await originKubo.multiaddrs()
      // One job alone, so the worker goes idle and collects; then two at once, received while it may be collecting.
      const first = await pin(files[0]!.root, origins)
      await t.waitForPin(first, 'pinned', 60_000)
      const [b, c] = await Promise.all([pin(files[1]!.root, origins), pin(files[2]!.root, origins)])
      const pinned = await Promise.all([t.waitForPin(b, 'pinned', 60_000), t.waitForPin(c, 'pinned', 60_000)])
      await verifyStored(pinned[0], files[1]!.root, files[1]!.blocks)
      await verifyStored(pinned[1], files[2]!.root, files[2]!.blocks)

      // Idle again: GC runs, and none of the fetched blocks stays in the worker's repo. kubo keys its blockstore
      // by multihash: `refs local` lists each block as a CIDv1 with the raw codec.
      const fetched: string[] = []
      for (const f of files)
        for await (const b of f.blocks) fetched.push(CID.createV1(0x55, b.cid.multihash).toString())
      const held = async () => {
        const local = new Set((await worker.cli(['refs', 'local'])).trim().split('\n'))
        return fetched.filter((k) => local.has(k)).length
      }
      await waitFor('the repo collected', async () => ((await held()) === 0 ? true : undefined), 60_000)
    })
  },
)
