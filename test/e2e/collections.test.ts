/**
 * NFT collections end to end through local mode: contracts compiled from OpenZeppelin 5 sources and deployed
 * on a real EVM node (anvil), token files in UnixFS directories on an origin Helia node that local mode's
 * node is connected to, the Collections API, the collection-jobs queue and its consumer, the real worker,
 * validator and dead-letter consumer; then `pickup collection` (add, show, tokens, export from the stored CARs
 * into a directory, rm) against the same local mode.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Manifest } from '../../core/collections/export.ts'
import { collectionOwner } from '../../core/collections/model.ts'
import { pickup } from '../cli/helpers.ts'
import { pseudoRandomBytes, rawBlock, unixfsDirectory } from '../fixtures/dags.ts'
import { type Anvil, compileNftContracts, startAnvil } from '../helpers/evm.ts'
import { startTestSystem, type TestSystem, writeEndpointsFile } from '../helpers/system.ts'

const CHAIN = 31337 // anvil's

let anvil: Anvil
let contracts: ReturnType<typeof compileNftContracts>
let t: TestSystem
let auth: Record<string, string>
let exportDir: string | undefined
/** Where `pickup` finds this local mode (its endpoints.json). */
let cliDir: string

beforeAll(async () => {
  contracts = compileNftContracts()
  anvil = await startAnvil()
  t = await startTestSystem(
    {
      // Unserved CIDs fail after one short stall; archiving looks again every second.
      FETCH_CHUNK_TIMEOUT_MS: '1500',
      MAX_ATTEMPTS: '1',
      COLLECTION_ADVANCE_DELAY_SECONDS: '1',
    },
    { chains: new Map([[CHAIN, anvil.url]]) },
  )
  // Collections carry no origins: the content is found through the peers pickup's node is connected to.
  const node = t.system.helia
  if (!node) throw new Error('local mode has no embedded Helia node')
  await node.libp2p.dial(t.origin.libp2p.getMultiaddrs())
  auth = { authorization: `Bearer ${await t.createPsaToken('alice')}` }
  cliDir = await mkdtemp(join(tmpdir(), 'pickup-collection-cli-'))
  await writeEndpointsFile(t.system, cliDir)
}, 60_000)
afterAll(async () => {
  await t?.stop()
  await anvil?.stop()
  if (exportDir) await rm(exportDir, { recursive: true, force: true })
  if (cliDir) await rm(cliDir, { recursive: true, force: true })
})

interface CollectionJson {
  id: string
  status: string
  standard?: string
  error?: string
  tokens: { total: number; archived: number; incomplete: number; failed: number }
  cids: { total: number; pinned: number; queued: number; pinning: number; failed: number }
}

async function post(address: string): Promise<CollectionJson> {
  const res = await fetch(`${t.system.url}/collections`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ chainId: CHAIN, address }),
  })
  expect(res.status).toBe(202)
  return (await res.json()) as CollectionJson
}

async function get<T>(path: string): Promise<T> {
  const res = await fetch(`${t.system.url}${path}`, { headers: auth })
  expect(res.status).toBe(200)
  return (await res.json()) as T
}

async function waitForStatus(id: string, status: string, timeoutMs = 45_000): Promise<CollectionJson> {
  const started = Date.now()
  for (;;) {
    const c = await get<CollectionJson>(`/collections/${id}`)
    if (c.status === status) return c
    if (Date.now() - started > timeoutMs)
      throw new Error(`collection ${id} is ${c.status}, not ${status}: ${JSON.stringify(c)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

describe('NFT collections through local mode', () => {
  it('an enumerable ERC-721 over a directory CID: one pin per shared root, unserved media reported, exported files equal the originals', async () => {
    const images = {
      'img/1.png': pseudoRandomBytes(300_000, 'nft-1'),
      'img/2.png': pseudoRandomBytes(40_000, 'nft-2'),
      'img/3.png': pseudoRandomBytes(2_000, 'nft-3'),
    }
    const img = await unixfsDirectory(images)
    const imgRoot = img.root.toV1().toString()
    const lost = rawBlock(64, 'collection-media-nowhere').root.toV1().toString() // on no peer
    const metadata = (id: number, image: string) =>
      new TextEncoder().encode(JSON.stringify({ name: `token ${id}`, image }))
    const metaFiles = {
      '1': metadata(1, `ipfs://${imgRoot}/img/1.png`),
      '2': metadata(2, `ipfs://${imgRoot}/img/2.png`),
      '3': metadata(3, `ipfs://${imgRoot}/img/3.png`),
      '4': metadata(4, `ipfs://${lost}`),
    }
    const meta = await unixfsDirectory(metaFiles)
    const metaRoot = meta.root.toV1().toString()
    await t.addToOrigin([...img.blocks, ...meta.blocks])

    const address = await anvil.deploy(contracts.Enumerable721, [{ string: `ipfs://${metaRoot}/` }])
    await anvil.send(contracts.Enumerable721, address, 'mint(uint256,uint256)', [
      { uint256: 1n },
      { uint256: 4n },
    ])

    const posted = await post(address)
    expect(posted.status).toBe('enumerating')
    const done = await waitForStatus(posted.id, 'done')
    expect(done.standard).toBe('erc721')
    expect(done.tokens).toEqual({ total: 4, archived: 3, incomplete: 1, failed: 0 })
    // Three roots for four tokens' eight files: the metadata directory, the image directory, the lost CID.
    expect(done.cids).toEqual({ total: 3, pinned: 2, queued: 0, pinning: 0, failed: 1 })

    // One request per root, owned by the collection, and the pins the pipeline stored.
    const owned = await t.requests.listByOwner(collectionOwner(posted.id), { limit: 100 })
    expect(owned.requests.map((r) => r.cid).sort()).toEqual([imgRoot, lost, metaRoot].sort())
    expect((await t.pins.get(metaRoot))?.status).toBe('pinned')
    expect((await t.pins.get(imgRoot))?.status).toBe('pinned')

    const incomplete = await get<{
      results: Array<{ tokenId: string; metadata: { status: string }; media: Array<Record<string, unknown>> }>
    }>(`/collections/${posted.id}/tokens?status=incomplete`)
    expect(incomplete.results.map((r) => r.tokenId)).toEqual(['4'])
    expect(incomplete.results[0]?.metadata.status).toBe('archived')
    expect(incomplete.results[0]?.media).toEqual([
      expect.objectContaining({
        field: 'image',
        cid: lost,
        status: 'failed',
        error: expect.stringMatching(/^FETCH_STALLED: /),
      }),
    ])

    // The operator's view, and export from the stored CARs through `pickup collection`: the originals.
    const shown = await pickup(cliDir, ['collection', 'show', posted.id, '--json'])
    expect(shown.code).toBe(0)
    expect(JSON.parse(shown.stdout)).toMatchObject({ status: 'done', tokens: done.tokens, cids: done.cids })
    const listed = await pickup(cliDir, ['collection', 'tokens', posted.id, '--status', 'incomplete'])
    expect(listed.stdout).toMatch(/^4\s+incomplete\s+ipfs:\/\/\S+\s+0\/1 archived\s+FETCH_STALLED: /m)
    exportDir = await mkdtemp(join(tmpdir(), 'pickup-collection-export-'))
    const exported = await pickup(cliDir, ['collection', 'export', posted.id, '-o', exportDir])
    expect(exported).toMatchObject({ code: 0, stderr: expect.stringContaining('export') })
    expect(exported.stdout).toBe(
      `Exported 7 files of 4 tokens to ${exportDir} (1 tokens not wholly archived: see manifest.json).\n`,
    )
    const manifest = JSON.parse(await readFile(join(exportDir, 'manifest.json'), 'utf8')) as Manifest
    expect(manifest.files).toBe(7) // four metadata files, three images
    expect(manifest.tokens.map((x) => x.tokenId)).toEqual(['1', '2', '3', '4'])
    for (const token of manifest.tokens) {
      const id = token.tokenId as keyof typeof metaFiles
      expect(token.metadata.file).toBeDefined()
      expect(new Uint8Array(await readFile(join(exportDir, token.metadata.file ?? '')))).toEqual(
        metaFiles[id],
      )
      const image = token.media[0]
      if (id === '4') {
        expect(image).toMatchObject({ status: 'failed', cid: lost })
        expect(image?.file).toBeUndefined()
        continue
      }
      expect(image?.path).toBe(`img/${id}.png`)
      expect(new Uint8Array(await readFile(join(exportDir, image?.file ?? '')))).toEqual(
        images[`img/${id}.png` as keyof typeof images],
      )
    }
  }, 60_000)

  it("a plain ERC-721 (mint logs) whose metadata CID no peer serves, added and removed with `pickup collection`: the token failed with the pin's error", async () => {
    const lostMeta = rawBlock(80, 'collection-metadata-nowhere').root.toV1().toString()
    const address = await anvil.deploy(contracts.Plain721)
    await anvil.send(contracts.Plain721, address, 'mint(uint256,string)', [
      { uint256: 7n },
      { string: `ipfs://${lostMeta}` },
    ])
    const added = await pickup(cliDir, [
      'collection',
      'add',
      String(CHAIN),
      address,
      '--user',
      'alice',
      '--json',
    ])
    expect(added.code).toBe(0)
    const posted = JSON.parse(added.stdout) as CollectionJson & { created: boolean }
    expect(posted).toMatchObject({ status: 'enumerating', owner: 'psa:alice', created: true })
    const done = await waitForStatus(posted.id, 'done')
    expect(done.tokens).toEqual({ total: 1, archived: 0, incomplete: 0, failed: 1 })
    expect(done.cids).toMatchObject({ total: 1, failed: 1 })
    const failed = await get<{ results: Array<{ tokenId: string; metadata: Record<string, unknown> }> }>(
      `/collections/${posted.id}/tokens?status=failed`,
    )
    expect(failed.results).toEqual([
      expect.objectContaining({
        tokenId: '7',
        metadata: expect.objectContaining({
          cid: lostMeta,
          status: 'failed',
          error: expect.stringMatching(/^FETCH_STALLED: /),
        }),
      }),
    ])

    // Removed: its requests are gone, and so is the collection.
    const removed = await pickup(cliDir, ['collection', 'rm', posted.id])
    expect(removed).toMatchObject({
      code: 0,
      stdout: `Deleted collection ${posted.id} and its pin requests.\n`,
    })
    expect((await t.requests.listByOwner(collectionOwner(posted.id), { limit: 10 })).requests).toEqual([])
    const gone = await fetch(`${t.system.url}/collections/${posted.id}`, { headers: auth })
    expect(gone.status).toBe(404)
    expect((await pickup(cliDir, ['collection', 'show', posted.id])).stderr).toBe(
      `pickup: no collection ${posted.id}\n`,
    )
  }, 60_000)
})
