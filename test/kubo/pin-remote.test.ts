/**
 * kubo as a client of the Pinning Service API: the real `ipfs pin remote` commands, against local mode. The
 * client kubo holds the content; `ipfs pin remote add` names its own addresses as origins and connects to
 * pickup's delegates, then polls until the pin is `pinned`.
 */
import { randomBytes } from 'node:crypto'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KUBO_VERSION, type KuboNode, kuboBinary, startKubo, verifyCarWithKubo } from '../helpers/kubo.ts'
import { startTestSystem, type TestSystem } from '../helpers/system.ts'

interface RemotePin {
  Cid: string
  Name: string
  Status: string
}

describe.skipIf(!kuboBinary)(
  `kubo ${KUBO_VERSION}'s \`ipfs pin remote\` against the Pinning Service API`,
  () => {
    let t: TestSystem
    let client: KuboNode

    beforeAll(async () => {
      ;[t, client] = await Promise.all([startTestSystem(), startKubo()])
      const token = await t.createPsaToken('kubo-user')
      await client.cli(['pin', 'remote', 'service', 'add', 'pickup', t.psaUrl, token])
    })

    afterAll(async () => {
      await client?.stop()
      await t?.stop()
    })

    const ls = async (...args: string[]): Promise<RemotePin[]> => {
      const out = await client.cli(['pin', 'remote', 'ls', '--service=pickup', '--enc=json', ...args])
      return out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as RemotePin)
    }

    it('add waits until pinned; ls finds it by status, name and CID; rm removes it', async () => {
      const cid = (
        await client.cli(['add', '-q', '--cid-version=1', '--chunker=size-262144'], {
          input: randomBytes(3 * 1024 * 1024),
        })
      ).trim()

      // Blocks until pickup reports `pinned` (kubo polls the request's status).
      await client.cli(['pin', 'remote', 'add', '--service=pickup', '--name=hello', cid], {
        timeoutMs: 120_000,
      })

      const pinned = await ls('--status=pinned')
      expect(pinned).toEqual([{ Cid: cid, Name: 'hello', Status: 'pinned' }])
      expect(await ls('--name=hello')).toEqual(pinned)
      expect(await ls(`--cid=${cid}`, '--status=queued,pinning,pinned,failed')).toEqual(pinned)
      expect(await ls('--name=nope', '--status=queued,pinning,pinned,failed')).toEqual([])

      // What pickup stored is the client's DAG, as kubo itself sees it.
      const record = await t.pins.get(CID.parse(cid).toV1().toString())
      const object = await t.destination.get(record!.car!.key)
      const stored = await verifyCarWithKubo(object!.body, CID.parse(cid))
      const local = JSON.parse(await client.cli(['dag', 'stat', '--progress=false', '--enc=json', cid])) as {
        TotalSize: number
      }
      expect(stored.size).toBe(local.TotalSize)

      await client.cli(['pin', 'remote', 'rm', '--service=pickup', '--name=hello', '--status=pinned'])
      expect(await ls('--status=queued,pinning,pinned,failed')).toEqual([])
    })

    it('add --background returns at once; the pin is listed while queued or pinning, then pinned', async () => {
      const cid = (await client.cli(['add', '-q', '--cid-version=1'], { input: randomBytes(200_000) })).trim()
      await client.cli(['pin', 'remote', 'add', '--service=pickup', '--background', '--name=later', cid])
      const early = await ls('--name=later', '--status=queued,pinning,pinned,failed')
      expect(early).toHaveLength(1)
      expect(early[0]!.Cid).toBe(cid)
      const started = Date.now()
      while ((await ls('--name=later'))[0]?.Status !== 'pinned') {
        if (Date.now() - started > 60_000) throw new Error('not pinned within 60 s')
        await new Promise((r) => setTimeout(r, 250))
      }
      // Many pins page through `before`: kubo stops when it has received `count`.
      for (let i = 0; i < 12; i++) {
        const c = (await client.cli(['add', '-q', '--cid-version=1'], { input: randomBytes(1000) })).trim()
        await client.cli(['pin', 'remote', 'add', '--service=pickup', '--background', `--name=many-${i}`, c])
      }
      const all = await ls('--status=queued,pinning,pinned,failed')
      expect(all.filter((p) => p.Name.startsWith('many-'))).toHaveLength(12)
      expect(new Set(all.map((p) => p.Name)).size).toBe(all.length)
    })
  },
)
