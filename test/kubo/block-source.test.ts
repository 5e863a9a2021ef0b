/**
 * The kubo BlockSource (adapters/kubo/block-source.ts) against a real kubo daemon (test/helpers/kubo.ts):
 * gets, verification, cancellation, connects and addresses.
 *
 * What a real kubo never does (answer a block/get with bytes that do not match the CID, or serve a hash pickup
 * cannot check) is played by a stand-in: a node:http server answering kubo's RPC endpoints the way kubo does
 * (POST only, `arg=` query parameters, raw bytes or kubo's JSON shapes, kubo's error JSON with a 500), so the
 * adapter's own defences against a faulty or hostile RPC endpoint are tested too.
 */
import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CarBlockIterator } from '@ipld/car'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { create as createKuboClient } from 'kubo-rpc-client'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import * as Digest from 'multiformats/hashes/digest'
import type { MultihashHasher } from 'multiformats/hashes/interface'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKuboBlockSource, verifyBlock } from '../../adapters/kubo/block-source.ts'
import { BlockHashMismatchError, UnsupportedHashError } from '../../core/errors.ts'
import { exportCar } from '../../core/export-car.ts'
import { blockKey } from '../../core/links.ts'
import { KUBO_VERSION, kuboBinary, startKubo } from '../helpers/kubo.ts'
import { createTestLogger } from '../helpers/log.ts'

/** A kubo the suite can talk to: its RPC URL, a way to add a block to it, and how to stop it. */
interface KuboUnderTest {
  url: string
  real: boolean
  put(cid: CID, bytes: Uint8Array): Promise<void>
  stop(): Promise<void>
}

// ------------------------------------------------------------------ the stand-in

interface Reply {
  status: number
  headers: Record<string, string>
  body: string | Uint8Array
}

/** A valid Ed25519 peer ID and public key, as a real kubo reports them. */
const STAND_IN_PEER_ID = '12D3KooWCefdcKWbE2sZFKWJ5HpxPLYDWnSteLL6sYkjtjYEwcyM'
const STAND_IN_PUBLIC_KEY = 'CAESICVzM6GKEf2Op0Znp4U5dgHfZ3k4cJ+ctSuXQf2qS2Zl'

interface StandIn extends KuboUnderTest {
  /** Blocks by `blockKey`; a test may store wrong bytes under a key to play a faulty kubo. */
  blocks: Map<string, Uint8Array>
  requests: Array<{ method: string; path: string; args: string[] }>
  /** swarm/connect succeeds for these addresses only. */
  reachable: Set<string>
  /** swarm/connect to these addresses never answers (a dial kubo keeps trying). */
  hanging: Set<string>
  /** Resolves when the client closes, unanswered, a request that waits (a hanging dial, a missing block). */
  abandoned(arg: string): Promise<void>
  /** block/get answers these blocks with kubo's error JSON and this message. */
  errors: Map<string, string>
}

async function startStandIn(): Promise<StandIn> {
  const blocks = new Map<string, Uint8Array>()
  const requests: StandIn['requests'] = []
  const reachable = new Set<string>()
  const errors = new Map<string, string>()
  const hanging = new Set<string>()
  const abandonedWaits = new Map<string, () => void>()
  const abandonedArgs = new Map<string, Promise<void>>()
  const abandoned = (arg: string): Promise<void> => {
    let p = abandonedArgs.get(arg)
    if (!p) {
      p = new Promise<void>((resolve) => abandonedWaits.set(arg, resolve))
      abandonedArgs.set(arg, p)
    }
    return p
  }

  /** kubo's error shape: 500 with `{ Message, Code: 0, Type: 'error' }`. */
  const kuboError = (message: string): Reply => ({
    status: 500,
    headers: { 'Content-Type': 'application/json', Vary: 'Origin' },
    body: `${JSON.stringify({ Message: message, Code: 0, Type: 'error' })}\n`,
  })
  const kuboJson = (value: unknown): Reply => ({
    status: 200,
    headers: { 'Content-Type': 'application/json', Trailer: 'X-Stream-Error', Vary: 'Origin' },
    body: `${JSON.stringify(value)}\n`,
  })

  const route = (method: string | undefined, path: string, args: string[]): Reply | 'wait' => {
    // kubo's RPC refuses anything but POST.
    if (method !== 'POST') {
      return {
        status: 405,
        headers: { 'Content-Type': 'text/plain; charset=utf-8' },
        body: '405 - Method Not Allowed\n',
      }
    }
    switch (path) {
      case '/api/v0/block/get': {
        const arg = args[0]
        if (arg === undefined) return kuboError('argument "cid" is required')
        let cid: CID
        try {
          cid = CID.parse(arg)
        } catch {
          return kuboError(`invalid path "${arg}": invalid cid: illegal base32 data at input byte 0`)
        }
        const failure = errors.get(blockKey(cid))
        if (failure) return kuboError(failure)
        const bytes = blocks.get(blockKey(cid))
        // An online kubo looks for a block it lacks until it finds it or the request goes away.
        if (!bytes) return 'wait'
        return {
          status: 200,
          headers: {
            'Content-Type': 'text/plain',
            Trailer: 'X-Stream-Error',
            Vary: 'Origin',
            'X-Stream-Output': '1',
          },
          body: bytes,
        }
      }
      case '/api/v0/swarm/connect': {
        const arg = args[0]
        if (arg === undefined) return kuboError('argument "address" is required')
        const peer = arg.split('/p2p/')[1]
        if (!peer) return kuboError(`invalid peer address: ${arg}: no p2p component`)
        if (hanging.has(arg)) return 'wait'
        if (!reachable.has(arg)) return kuboError(`connect ${peer} failure: failed to dial: all dials failed`)
        return kuboJson({ Strings: [`connect ${peer} success`] })
      }
      case '/api/v0/id':
        return kuboJson({
          ID: STAND_IN_PEER_ID,
          PublicKey: STAND_IN_PUBLIC_KEY,
          Addresses: [
            `/ip4/127.0.0.1/tcp/4001/p2p/${STAND_IN_PEER_ID}`,
            `/ip4/127.0.0.1/udp/4001/quic-v1/p2p/${STAND_IN_PEER_ID}`,
            `/ip6/::1/tcp/4001/p2p/${STAND_IN_PEER_ID}`,
          ],
          AgentVersion: 'kubo/0.32.1/',
          Protocols: ['/ipfs/bitswap/1.2.0', '/ipfs/id/1.0.0', '/ipfs/kad/1.0.0'],
        })
      default:
        return {
          status: 404,
          headers: { 'Content-Type': 'text/plain; charset=utf-8' },
          body: '404 page not found\n',
        }
    }
  }

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://stand-in')
    const args = url.searchParams.getAll('arg')
    requests.push({ method: req.method ?? '', path: url.pathname, args })
    const reply = route(req.method, url.pathname, args)
    if (reply === 'wait') {
      req.on('close', () => {
        res.destroy()
        for (const arg of args) {
          void abandoned(arg)
          abandonedWaits.get(arg)?.()
        }
      })
      return
    }
    res.writeHead(reply.status, reply.headers)
    res.end(reply.body)
  }

  const server: Server = createServer(handle)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    real: false,
    blocks,
    requests,
    reachable,
    errors,
    hanging,
    abandoned,
    async put(cid, bytes) {
      blocks.set(blockKey(cid), bytes)
    },
    async stop() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

// ------------------------------------------------------------------ a real kubo

async function startRealKubo(): Promise<KuboUnderTest> {
  const node = await startKubo()
  const client = createKuboClient({ url: node.url })
  return {
    url: node.url,
    real: true,
    async put(cid, bytes) {
      const put = await client.block.put(bytes, {
        format: cid.code === raw.code ? 'raw' : cid.code === dagPb.code ? 'dag-pb' : 'dag-cbor',
        mhtype: cid.multihash.code === sha512.code ? 'sha2-512' : 'sha2-256',
        version: cid.version,
      })
      expect(put.multihash.bytes).toEqual(cid.multihash.bytes)
    },
    stop: () => node.stop(),
  }
}

// ------------------------------------------------------------------ the suite

describe.skipIf(!kuboBinary)(`kubo BlockSource against a real kubo ${KUBO_VERSION}`, () => {
  sharedCases(startRealKubo)
})

describe('kubo BlockSource against a STAND-IN of the RPC API, playing what a real kubo never does', () => {
  sharedCases(startStandIn)
})

function sharedCases(start: () => Promise<KuboUnderTest>): void {
  let kubo: KuboUnderTest
  let standIn: StandIn | undefined

  beforeAll(async () => {
    kubo = await start()
    if (!kubo.real) standIn = kubo as StandIn
  })

  afterAll(async () => {
    await kubo?.stop()
  })

  async function addBlock(code: number, bytes: Uint8Array, hasher: MultihashHasher = sha256): Promise<CID> {
    const cid = CID.createV1(code, await hasher.digest(bytes))
    await kubo.put(cid, bytes)
    return cid
  }

  it('gets a block back byte for byte, verified (raw, dag-cbor, sha2-512, CIDv0)', async () => {
    const source = createKuboBlockSource({ url: kubo.url, log: createTestLogger() })
    const rawBytes = randomBytes(300_000)
    const rawCid = await addBlock(raw.code, rawBytes)
    expect(await source.get(rawCid)).toEqual(new Uint8Array(rawBytes))

    const cborBytes = dagCbor.encode({ leaf: rawCid, n: 1 })
    const cborCid = await addBlock(dagCbor.code, cborBytes)
    expect(await source.get(cborCid)).toEqual(cborBytes)

    const longBytes = randomBytes(1000)
    const longCid = await addBlock(raw.code, longBytes, sha512)
    expect(await source.get(longCid)).toEqual(new Uint8Array(longBytes))

    const pbBytes = dagPb.encode({ Data: new Uint8Array([8, 1]), Links: [] })
    const pbCid = await addBlock(dagPb.code, pbBytes)
    expect(await source.get(pbCid.toV0())).toEqual(pbBytes)

    if (standIn) {
      const gets = standIn.requests.filter((r) => r.path === '/api/v0/block/get')
      expect(gets.map((r) => r.method)).toEqual(['POST', 'POST', 'POST', 'POST'])
      expect(gets.map((r) => r.args)).toEqual([
        [rawCid.toString()],
        [cborCid.toString()],
        [longCid.toString()],
        [pbCid.toV0().toString()],
      ])
    }
  })

  it('an export through it yields a CAR of the DAG', async () => {
    const source = createKuboBlockSource({ url: kubo.url, log: createTestLogger() })
    const leaves = await Promise.all([1, 2, 3].map(() => addBlock(raw.code, randomBytes(50_000))))
    const root = await addBlock(dagCbor.code, dagCbor.encode({ leaves }))
    const car = await CarBlockIterator.fromIterable(
      exportCar(root, source, { maxBytes: 10_000_000, signal: AbortSignal.timeout(10_000) }),
    )
    const cids: string[] = []
    for await (const block of car) {
      verifyBlock(block.cid, block.bytes)
      cids.push(block.cid.toString())
    }
    expect(cids.sort()).toEqual([root, ...leaves].map(String).sort())
  })

  it('a get is cancelled by its signal while kubo is still looking for the block', async () => {
    const source = createKuboBlockSource({ url: kubo.url, log: createTestLogger() })
    const absent = CID.createV1(raw.code, await sha256.digest(randomBytes(64)))
    // Without the cancellation the stand-in (or kubo) would keep looking for ever.
    await expect(source.get(absent, { signal: AbortSignal.timeout(200) })).rejects.toThrow()
  })

  it('connect never throws: failures are logged', async () => {
    const lines: Array<{ level: string; msg?: string; obj: object }> = []
    const source = createKuboBlockSource({
      url: kubo.url,
      log: createTestLogger(lines),
      connectTimeoutMs: 2_000,
    })
    const refused = `/ip4/127.0.0.1/tcp/1/p2p/${STAND_IN_PEER_ID}`
    const noPeer = '/ip4/127.0.0.1/tcp/1'
    await expect(source.connect([refused, noPeer, 'not a multiaddr'])).resolves.toBeUndefined()
    const warned = lines.filter((l) => l.level === 'warn').map((l) => (l.obj as { addr: string }).addr)
    expect(warned.sort()).toEqual([noPeer, refused, 'not a multiaddr'].sort())
  })

  it('connect through an unreachable RPC API does not throw either', async () => {
    const lines: Array<{ level: string; msg?: string; obj: object }> = []
    const source = createKuboBlockSource({ url: 'http://127.0.0.1:1', log: createTestLogger(lines) })
    await source.connect([`/ip4/127.0.0.1/tcp/4001/p2p/${STAND_IN_PEER_ID}`])
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1)
  })

  it('multiaddrs are the node addresses, each with /p2p/', async () => {
    const source = createKuboBlockSource({ url: kubo.url, log: createTestLogger() })
    const addrs = await source.multiaddrs()
    const { id } = await createKuboClient({ url: kubo.url }).id()
    expect(addrs.length).toBeGreaterThan(0)
    for (const addr of addrs) expect(addr).toMatch(new RegExp(`/p2p/${id.toString()}$`))
  })

  describe.runIf(start === startStandIn)('only against the stand-in', () => {
    it('rejects a tampered block from the RPC (hash mismatch)', async () => {
      const source = createKuboBlockSource({ url: kubo.url, log: createTestLogger() })
      const cid = await addBlock(raw.code, randomBytes(1000))
      const tampered = new Uint8Array(standIn!.blocks.get(blockKey(cid))!)
      tampered[10] = (tampered[10]! + 1) % 256
      standIn!.blocks.set(blockKey(cid), tampered)
      await expect(source.get(cid)).rejects.toBeInstanceOf(BlockHashMismatchError)
      // A short answer is as wrong as a flipped byte.
      standIn!.blocks.set(blockKey(cid), tampered.subarray(0, 999))
      await expect(source.get(cid)).rejects.toBeInstanceOf(BlockHashMismatchError)
    })

    it('refuses a hash it cannot verify', async () => {
      const source = createKuboBlockSource({ url: kubo.url, log: createTestLogger() })
      // blake2b-256: kubo supports it, pickup cannot check it.
      const cid = CID.createV1(raw.code, Digest.create(0xb220, randomBytes(32)))
      standIn!.blocks.set(blockKey(cid), randomBytes(10))
      await expect(source.get(cid)).rejects.toBeInstanceOf(UnsupportedHashError)
    })

    it('connect sends each address as arg= in a POST to swarm/connect, in parallel', async () => {
      const source = createKuboBlockSource({ url: kubo.url, log: createTestLogger() })
      const ok = `/ip4/127.0.0.1/tcp/4001/p2p/${STAND_IN_PEER_ID}`
      standIn!.reachable.add(ok)
      const before = standIn!.requests.length
      await source.connect([ok, `/ip4/127.0.0.1/tcp/4002/p2p/${STAND_IN_PEER_ID}`])
      const connects = standIn!.requests.slice(before)
      expect(connects.map((r) => [r.method, r.path])).toEqual([
        ['POST', '/api/v0/swarm/connect'],
        ['POST', '/api/v0/swarm/connect'],
      ])
      expect(connects.flatMap((r) => r.args).sort()).toEqual(
        [ok, `/ip4/127.0.0.1/tcp/4002/p2p/${STAND_IN_PEER_ID}`].sort(),
      )
    })

    it('connect gives up a dial that hangs after connectTimeoutMs, and still does not throw', async () => {
      const lines: Array<{ level: string; msg?: string; obj: object }> = []
      const source = createKuboBlockSource({
        url: kubo.url,
        log: createTestLogger(lines),
        connectTimeoutMs: 200,
      })
      const slow = `/ip4/127.0.0.1/tcp/4003/p2p/${STAND_IN_PEER_ID}`
      standIn!.hanging.add(slow)
      const gaveUp = standIn!.abandoned(slow)
      await source.connect([slow])
      // connect returned on its own timer: the warning says the dial timed out, and the stand-in, which never
      // answers this dial, sees the request closed by the client.
      const warnings = lines
        .filter((l) => l.level === 'warn')
        .map((l) => l.obj as { addr: string; err: string })
      expect(warnings).toEqual([
        expect.objectContaining({ addr: slow, err: expect.stringMatching(/timeout|abort/i) }),
      ])
      await gaveUp
    })

    it("kubo's error JSON becomes the message of the get's error", async () => {
      const source = createKuboBlockSource({ url: kubo.url, log: createTestLogger() })
      const cid = CID.createV1(raw.code, await sha256.digest(randomBytes(10)))
      const message = `block was not found locally (offline): ipld: could not find ${cid}`
      standIn!.errors.set(blockKey(cid), message)
      await expect(source.get(cid)).rejects.toThrow(message)
    })

    it('answers like kubo to what the adapter never sends (a GET, a bad CID)', async () => {
      expect((await fetch(`${kubo.url}/api/v0/id`)).status).toBe(405)
      const res = await fetch(`${kubo.url}/api/v0/block/get?arg=not-a-cid`, { method: 'POST' })
      expect(res.status).toBe(500)
      expect(await res.json()).toMatchObject({ Code: 0, Type: 'error' })
    })
  })
}
