/**
 * NFT collections end to end through local mode: contracts compiled from OpenZeppelin 5 sources and deployed
 * on a real EVM node (anvil), token files in UnixFS directories on an origin Helia node that local mode's
 * node is connected to, the Collections API, the collection-jobs queue and its consumer, the real worker,
 * validator and dead-letter consumer; then `pickup collection` (add, show, tokens, export from the stored CARs
 * into a directory, rm) against the same local mode. Web-hosted metadata and media come from a local HTTP
 * server (local mode's web fetches may reach loopback; the refusing setting is test/adapters/web-fetch.test.ts's).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unixfs } from '@helia/unixfs'
import { MemoryBlockstore } from 'blockstore-core/memory'
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
/** The web server of web-hosted token content: path → bytes; every path asked for, in order. */
let web: Server
let webUrl: string
const webFiles = new Map<string, Uint8Array>()
const webAsked: string[] = []

beforeAll(async () => {
  contracts = compileNftContracts()
  anvil = await startAnvil()
  t = await startTestSystem(
    {
      // Unserved CIDs fail after one short stall; archiving looks again every second.
      FETCH_CHUNK_TIMEOUT_MS: '1500',
      MAX_ATTEMPTS: '1',
      COLLECTION_ADVANCE_DELAY_SECONDS: '1',
      // The follow test drives the tick itself: the timer's first tick is after the file has run.
      COLLECTION_FOLLOW_INTERVAL_MS: '3600000',
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
  web = createServer((req, res) => {
    const path = req.url ?? '/'
    webAsked.push(path)
    if (path.startsWith('/moved/')) {
      res.writeHead(302, { location: path.slice('/moved'.length) }).end()
      return
    }
    const body = webFiles.get(path)
    if (!body) res.writeHead(404).end('not found')
    else res.writeHead(200, { 'content-length': body.byteLength }).end(body)
  })
  await new Promise<void>((ok) => web.listen(0, '127.0.0.1', ok))
  webUrl = `http://127.0.0.1:${(web.address() as AddressInfo).port}`
}, 60_000)
afterAll(async () => {
  if (web) await new Promise((ok) => web.close(ok))
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

async function post(address: string, extra: { follow?: boolean } = {}): Promise<CollectionJson> {
  const res = await fetch(`${t.system.url}/collections`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ chainId: CHAIN, address, ...extra }),
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

  it("an ERC-1155 whose uri(id) holds {id}, minted by TransferSingle and TransferBatch: each token's file found by the substitution in one shared root, the missing one reported, exported", async () => {
    // EIP-1155's substitution: the id as 64 lowercase hex digits, no 0x (0xabc and 10..12 need the case).
    const hex = (id: bigint) => id.toString(16).padStart(64, '0')
    const ids = [0xabcn, 10n, 11n, 12n] // 0xabc alone, 10..12 in one batch
    const images = Object.fromEntries(
      ids.slice(0, 3).map((id) => [`${id}.png`, pseudoRandomBytes(3_000 + Number(id), `erc1155-${id}`)]),
    ) as Record<string, Uint8Array>
    const img = await unixfsDirectory(images)
    const imgRoot = img.root.toV1().toString()
    // Token 12's file is not in the directory: its metadata cannot be found, whatever peer serves the root.
    const metaFiles = Object.fromEntries(
      ids
        .slice(0, 3)
        .map((id) => [
          `${hex(id)}.json`,
          new TextEncoder().encode(
            JSON.stringify({ name: `multi ${id}`, image: `ipfs://${imgRoot}/${id}.png` }),
          ),
        ]),
    ) as Record<string, Uint8Array>
    const meta = await unixfsDirectory(metaFiles)
    const metaRoot = meta.root.toV1().toString()
    await t.addToOrigin([...img.blocks, ...meta.blocks])

    const address = await anvil.deploy(contracts.Multi1155, [{ string: `ipfs://${metaRoot}/{id}.json` }])
    await anvil.send(contracts.Multi1155, address, 'mint(uint256,uint256)', [
      { uint256: 0xabcn },
      { uint256: 5n },
    ])
    await anvil.send(contracts.Multi1155, address, 'mintRange(uint256,uint256)', [
      { uint256: 10n },
      { uint256: 3n },
    ])

    const posted = await post(address)
    const done = await waitForStatus(posted.id, 'done')
    expect(done.standard).toBe('erc1155')
    expect(done.tokens).toEqual({ total: 4, archived: 3, incomplete: 0, failed: 1 })
    // Seven files of four tokens under two roots: one pin each.
    expect(done.cids).toEqual({ total: 2, pinned: 2, queued: 0, pinning: 0, failed: 0 })
    const owned = await t.requests.listByOwner(collectionOwner(posted.id), { limit: 100 })
    expect(owned.requests.map((r) => r.cid).sort()).toEqual([imgRoot, metaRoot].sort())

    type Ref = Record<string, unknown>
    const tokens = await get<{
      results: Array<{ tokenId: string; tokenURI: string; metadata: Ref; media: Ref[] }>
    }>(`/collections/${posted.id}/tokens`)
    expect(tokens.results.map((r) => [r.tokenId, r.tokenURI])).toEqual(
      ['10', '11', '12', '2748'].map((id) => [id, `ipfs://${metaRoot}/${hex(BigInt(id))}.json`]),
    )
    const missing = tokens.results.find((r) => r.tokenId === '12')
    expect(missing?.metadata).toEqual(
      expect.objectContaining({
        cid: metaRoot,
        path: `${hex(12n)}.json`,
        status: 'failed',
        error: `PATH_NOT_FOUND: no "${hex(12n)}.json" under ${metaRoot}`,
      }),
    )
    expect(missing?.media).toEqual([])

    const out = await mkdtemp(join(tmpdir(), 'pickup-collection-1155-export-'))
    try {
      // On a terminal: a bar redrawn in place on stderr, one step per token, ending at the stored total.
      const exported = await pickup(cliDir, ['collection', 'export', posted.id, '-o', out], {
        tty: { stdin: false, stdout: true, stderr: true },
      })
      expect(exported.code).toBe(0)
      const draws = exported.stderr.split('\r\x1b[2K')
      expect(draws[0]).toBe('')
      expect(draws[1]).toMatch(/^\[#{8}-{22}\] export: 1\/4 25%, \d+\/s$/)
      expect(draws.at(-1)).toMatch(/^\[#{30}\] export: 4\/4 100%, \d+\/s\n$/)
      expect(exported.stdout).toBe(
        `Exported 6 files of 4 tokens to ${out} (1 tokens not wholly archived: see manifest.json).\n`,
      )
      // With --json: what was written, and nothing on stderr.
      const json = await pickup(cliDir, ['collection', 'export', posted.id, '-o', out, '--json'], {
        tty: { stdin: false, stdout: true, stderr: true },
      })
      expect(json).toMatchObject({ code: 0, stderr: '' })
      expect(JSON.parse(json.stdout)).toEqual({
        output: out,
        manifest: join(out, 'manifest.json'),
        collection: expect.objectContaining({ id: posted.id, standard: 'erc1155' }),
        files: 6,
        tokens: 4,
        incomplete: 1,
      })
      const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Manifest
      expect(manifest.collection).toMatchObject({ standard: 'erc1155', address })
      expect(manifest.files).toBe(6)
      for (const id of ids.slice(0, 3)) {
        const entry = manifest.tokens.find((x) => x.tokenId === id.toString())
        expect(entry?.metadata).toMatchObject({ cid: metaRoot, path: `${hex(id)}.json`, status: 'archived' })
        expect(entry?.metadata.carCid).toEqual(expect.any(String))
        expect(new Uint8Array(await readFile(join(out, entry?.metadata.file ?? '')))).toEqual(
          metaFiles[`${hex(id)}.json`],
        )
        expect(entry?.media[0]).toMatchObject({ cid: imgRoot, path: `${id}.png`, status: 'archived' })
        expect(new Uint8Array(await readFile(join(out, entry?.media[0]?.file ?? '')))).toEqual(
          images[`${id}.png`],
        )
      }
      expect(manifest.tokens.find((x) => x.tokenId === '12')?.metadata).toMatchObject({
        status: 'failed',
        error: missing?.metadata.error,
      })
    } finally {
      await rm(out, { recursive: true, force: true })
    }
  }, 60_000)

  it('a plain ERC-721 with per-token URIs mixing a gateway URL, data: JSON, web-hosted metadata and media and a CID no peer serves: the web files archived as pickup-made CIDs through the validator, and exported', async () => {
    const png = pseudoRandomBytes(2_500_000, 'web-image-2') // three 1 MiB chunks: a DAG, not one block
    const webMeta = new TextEncoder().encode(
      JSON.stringify({ name: 'web 3', image: `${webUrl}/moved/img/3.png` }),
    )
    const png3 = pseudoRandomBytes(5_000, 'web-image-3')
    webFiles.set('/img/2.png', png)
    webFiles.set('/meta/3.json', webMeta)
    webFiles.set('/img/3.png', png3)
    const gwImage = pseudoRandomBytes(3_000, 'gateway-image')
    const images = await unixfsDirectory({ 'image.png': gwImage })
    const imagesRoot = images.root.toV1().toString()
    const dir = await unixfsDirectory({
      'meta.json': new TextEncoder().encode(
        JSON.stringify({ name: 'gw 1', image: `ipfs://${imagesRoot}/image.png` }),
      ),
    })
    const dirRoot = dir.root.toV1().toString()
    await t.addToOrigin([...dir.blocks, ...images.blocks])
    const lost = rawBlock(96, 'collection-web-test-nowhere').root.toV1().toString()
    const json = (o: object) =>
      `data:application/json;base64,${Buffer.from(JSON.stringify(o)).toString('base64')}`
    const uris: Record<string, string> = {
      '1': `https://gw.example/ipfs/${dirRoot}/meta.json`,
      '2': json({ name: 'on chain 2', image: `${webUrl}/img/2.png` }),
      '3': `${webUrl}/meta/3.json`,
      '4': json({ name: 'lost 4', image: `ipfs://${lost}`, animation_url: `${webUrl}/missing.mp4` }),
    }
    const address = await anvil.deploy(contracts.Plain721)
    for (const [id, uri] of Object.entries(uris))
      await anvil.send(contracts.Plain721, address, 'mint(uint256,string)', [
        { uint256: BigInt(id) },
        { string: uri },
      ])

    // The CIDs a UnixFS import with the same settings gives (CIDv1, raw leaves): pickup's, not the chain's.
    const fs = unixfs({ blockstore: new MemoryBlockstore() })
    const cidOf = async (bytes: Uint8Array) => (await fs.addBytes(bytes)).toString()
    const [png2Cid, meta3Cid, png3Cid] = await Promise.all([cidOf(png), cidOf(webMeta), cidOf(png3)])

    const posted = await post(address)
    const done = await waitForStatus(posted.id, 'done')
    expect(done.tokens).toEqual({ total: 4, archived: 3, incomplete: 1, failed: 0 })
    // Two directories, three web files, the lost CID; the missing web file made no pin.
    expect(done.cids).toEqual({ total: 6, pinned: 5, queued: 0, pinning: 0, failed: 1 })
    for (const cid of [png2Cid, meta3Cid, png3Cid]) {
      const pin = await t.pins.get(cid)
      expect(pin).toMatchObject({
        status: 'pinned',
        attempts: 1,
        car: expect.objectContaining({ cid: expect.any(String) }),
      })
    }
    const owned = await t.requests.listByOwner(collectionOwner(posted.id), { limit: 100 })
    expect(owned.requests.map((r) => r.cid).sort()).toEqual(
      [dirRoot, imagesRoot, png2Cid, meta3Cid, png3Cid, lost].sort(),
    )

    type Ref = Record<string, unknown>
    const tokens = await get<{ results: Array<{ tokenId: string; metadata: Ref; media: Ref[] }> }>(
      `/collections/${posted.id}/tokens`,
    )
    const byId = new Map(tokens.results.map((r) => [r.tokenId, r]))
    expect(byId.get('1')?.media).toEqual([
      expect.objectContaining({
        kind: 'ipfs',
        cid: imagesRoot,
        path: 'image.png',
        cidSource: 'chain',
        status: 'archived',
      }),
    ])
    const webRef = (url: string, cid: string) =>
      expect.objectContaining({
        kind: 'web',
        cid,
        path: '',
        cidSource: 'pickup',
        url,
        fetched: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        status: 'archived',
      })
    expect(byId.get('2')?.media).toEqual([webRef(`${webUrl}/img/2.png`, png2Cid)])
    expect(byId.get('3')?.metadata).toEqual(webRef(`${webUrl}/meta/3.json`, meta3Cid))
    // Fetched through the redirect: the URL recorded is the one the bytes came from.
    expect(byId.get('3')?.media).toEqual([webRef(`${webUrl}/img/3.png`, png3Cid)])
    expect(byId.get('4')?.media).toEqual([
      expect.objectContaining({
        field: 'image',
        cid: lost,
        status: 'failed',
        error: expect.stringMatching(/^FETCH_STALLED: /),
      }),
      expect.objectContaining({
        field: 'animation_url',
        status: 'failed',
        error: expect.stringMatching(/^WEB_HTTP_ERROR: HTTP 404 /),
      }),
    ])
    // Each web file was fetched once.
    expect(webAsked.filter((p) => p === '/img/2.png')).toHaveLength(1)

    // Exported from the stored CARs: the web files equal the originals, the manifest names their URLs.
    const out = await mkdtemp(join(tmpdir(), 'pickup-collection-web-export-'))
    try {
      const exported = await pickup(cliDir, ['collection', 'export', posted.id, '-o', out])
      expect(exported.code).toBe(0)
      const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as Manifest
      const entry = (id: string) => manifest.tokens.find((x) => x.tokenId === id)
      const two = entry('2')?.media[0]
      expect(two).toMatchObject({
        url: `${webUrl}/img/2.png`,
        cid: png2Cid,
        cidSource: 'pickup',
        file: '2/image.png',
      })
      expect(new Uint8Array(await readFile(join(out, two?.file ?? '')))).toEqual(png)
      expect(entry('3')?.metadata).toMatchObject({
        url: `${webUrl}/meta/3.json`,
        cid: meta3Cid,
        cidSource: 'pickup',
      })
      expect(new Uint8Array(await readFile(join(out, entry('3')?.metadata.file ?? '')))).toEqual(webMeta)
      expect(new Uint8Array(await readFile(join(out, entry('3')?.media[0]?.file ?? '')))).toEqual(png3)
      expect(new Uint8Array(await readFile(join(out, entry('1')?.media[0]?.file ?? '')))).toEqual(gwImage)
      expect(entry('4')?.media[1]).toMatchObject({ uri: `${webUrl}/missing.mp4`, status: 'failed' })
    } finally {
      await rm(out, { recursive: true, force: true })
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

  it('a followed collection: tokens minted after it was done are found by the follow tick and archived like the first', async () => {
    const image = (seed: string) => rawBlock(500, seed)
    const first = image('followed-1')
    const later = [image('followed-2'), image('followed-3')]
    await t.addToOrigin([first, ...later].flatMap((d) => d.blocks))
    const onChain = (id: number, img: ReturnType<typeof image>) =>
      `data:application/json,${encodeURIComponent(JSON.stringify({ name: `${id}`, image: `ipfs://${img.root.toV1()}` }))}`
    const mint = (id: number, img: ReturnType<typeof image>) =>
      anvil.send(contracts.Plain721, address, 'mint(uint256,string)', [
        { uint256: BigInt(id) },
        { string: onChain(id, img) },
      ])
    const address = await anvil.deploy(contracts.Plain721)
    await mint(1, first)

    const posted = await post(address, { follow: true })
    expect(posted).toMatchObject({ status: 'enumerating', follow: true })
    const done = await waitForStatus(posted.id, 'done')
    expect(done.tokens).toEqual({ total: 1, archived: 1, incomplete: 0, failed: 0 })

    // Minted since, in two blocks; the tick (driven here rather than waiting for its timer) sends it to
    // enumerate from the block after the last one read.
    await mint(2, later[0] as ReturnType<typeof image>)
    await anvil.mine(2)
    await mint(3, later[1] as ReturnType<typeof image>)
    expect((await t.system.followCollections()).enumerating).toEqual([posted.id])
    const again = await waitForStatus(posted.id, 'done')
    expect(again.tokens).toEqual({ total: 3, archived: 3, incomplete: 0, failed: 0 })
    expect(again.cids).toEqual({ total: 3, pinned: 3, queued: 0, pinning: 0, failed: 0 })
    for (const img of later) expect((await t.pins.get(img.root.toV1().toString()))?.status).toBe('pinned')
    const tokens = await get<{ results: Array<{ tokenId: string; media: Array<{ status: string }> }> }>(
      `/collections/${posted.id}/tokens`,
    )
    expect(tokens.results.map((r) => [r.tokenId, r.media.map((m) => m.status)])).toEqual([
      ['1', ['archived']],
      ['2', ['archived']],
      ['3', ['archived']],
    ])
  }, 60_000)
})
