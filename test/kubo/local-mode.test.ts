/**
 * Local mode on kubo: its worker driving an external kubo daemon (IPFS_API_URL), or a kubo daemon local mode
 * starts and configures itself the way the worker's ECS task does (IPFS_NODE=kubo), the worker in local mode's
 * process or in one of its own (as `npm start` runs it). Pins end to end from a
 * Helia origin and from a kubo origin, each stored CAR re-verified by kubo.
 */
import { CID } from 'multiformats/cid'
import { afterAll, describe, expect, it } from 'vitest'
import { contentKey } from '../../core/cid.ts'
import { unixfsFile } from '../fixtures/dags.ts'
import {
  importDag,
  KUBO_VERSION,
  type KuboNode,
  kuboBinary,
  startKubo,
  verifyCarWithKubo,
} from '../helpers/kubo.ts'
import { startTestSystem, type TestSystem, verifyStoredCar } from '../helpers/system.ts'

const MiB = 1024 * 1024
const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
})

async function pinAndVerify(
  t: TestSystem,
  root: CID,
  origins: string[],
  blocks: Parameters<typeof verifyStoredCar>[3],
) {
  const cid = contentKey(root)
  const res = await t.api(`/pins/${cid}?origins=${encodeURIComponent(origins.join(','))}`, { method: 'POST' })
  expect(res.status).toBe(200)
  const pin = await t.waitForPin(cid, 'pinned', 90_000)
  const { blocks: count } = await verifyStoredCar(t.destination, pin.car!.key, root, blocks)
  const object = await t.destination.get(pin.car!.key)
  expect((await verifyCarWithKubo(object!.body, root)).blocks).toBe(count)
}

describe.skipIf(!kuboBinary)(`local mode on kubo ${KUBO_VERSION}`, () => {
  it('with IPFS_API_URL, its worker fetches through that kubo', async () => {
    const external: KuboNode = await startKubo()
    cleanups.push(() => external.stop())
    const t = await startTestSystem({ IPFS_API_URL: external.url })
    cleanups.push(() => t.stop())
    expect(t.system.helia).toBeUndefined()
    expect(t.system.kubo).toBeUndefined()

    const file = await unixfsFile(4 * MiB, { seed: 'local-external-kubo' })
    await t.addToOrigin(file.blocks)
    await pinAndVerify(t, file.root, t.originAddrs(), file.blocks)
    // The blocks came through the external kubo: it holds them now.
    const local = (await external.cli(['refs', 'local'])).split('\n')
    expect(local).toContain(CID.createV1(0x55, file.root.multihash).toString())
  })

  it('with IPFS_NODE=kubo, it starts and configures its own kubo as the ECS task does', async () => {
    const origin = await startKubo()
    cleanups.push(() => origin.stop())
    const t = await startTestSystem({ IPFS_NODE: 'kubo' })
    cleanups.push(() => t.stop())
    const kubo = t.system.kubo!
    expect(kubo).toBeDefined()
    // The image's script ran: providing is off, the swarm listens where IPFS_LISTEN says.
    expect((await kubo.cli(['config', 'Provide.Enabled'])).trim()).toBe('false')
    expect(JSON.parse(await kubo.cli(['config', 'Addresses.Swarm']))).toEqual(['/ip4/127.0.0.1/tcp/0'])

    const file = await unixfsFile(4 * MiB, { seed: 'local-own-kubo' })
    await importDag(origin, file.root, file.blocks)
    await pinAndVerify(t, file.root, await origin.multiaddrs(), file.blocks)
    // Its delegates are its kubo.
    const res = await t.api(`/pins/${contentKey(file.root)}`)
    const body = (await res.json()) as { peer_map: Record<string, unknown> }
    expect(Object.keys(body.peer_map)).toEqual([kubo.peerId])
  })

  it("with IPFS_NODE=kubo and the worker a process of its own (npm start's way), it pins through that kubo", async () => {
    const origin = await startKubo()
    cleanups.push(() => origin.stop())
    const t = await startTestSystem({ IPFS_NODE: 'kubo' }, { worker: 'process' })
    cleanups.push(() => t.stop())
    expect(t.system.worker).toBeUndefined()
    expect(t.system.workerStatus()).toEqual({ ready: true })
    const kubo = t.system.kubo!
    const file = await unixfsFile(2 * MiB, { seed: 'local-own-kubo-worker-process' })
    await importDag(origin, file.root, file.blocks)
    await pinAndVerify(t, file.root, await origin.multiaddrs(), file.blocks)
    // The worker's process drove local mode's kubo: it holds the blocks.
    const local = (await kubo.cli(['refs', 'local'])).split('\n')
    expect(local).toContain(CID.createV1(0x55, file.root.multihash).toString())
  })
})
