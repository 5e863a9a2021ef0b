/**
 * Enumeration against a real EVM node (anvil, Cancun) running OpenZeppelin 5 contracts compiled here. The one
 * stand-in is a proxy in front of anvil that behaves like a hosted provider's limits, which anvil does not
 * have: it refuses eth_getLogs ranges wider than a few blocks (with Alchemy's message) and answers HTTP 429
 * to every third request.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SELECTORS } from '../../adapters/evm/abi.ts'
import {
  createEvmEnumerator,
  detectStandard,
  type EnumeratedToken,
  type EnumerationCheckpoint,
  enumerateTokens,
  NotAnNftContractError,
} from '../../adapters/evm/enumerate.ts'
import { createJsonRpc, type JsonRpc, RpcUnavailableError } from '../../adapters/evm/rpc.ts'
import { createMemoryCollectionStore } from '../../adapters/memory/collections.ts'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import { addCollection, enumerateCollection } from '../../core/collections/archive.ts'
import { type Anvil, compileNftContracts, startAnvil } from '../helpers/evm.ts'

let anvil: Anvil
let contracts: ReturnType<typeof compileNftContracts>

beforeAll(async () => {
  contracts = compileNftContracts()
  anvil = await startAnvil()
})
afterAll(async () => {
  await anvil?.stop()
})

async function collect(
  rpc: JsonRpc,
  address: string,
  opts: {
    pageSize?: number
    checkpoint?: EnumerationCheckpoint
    initialSpan?: number
    maxLogsPerRange?: number
    stopAfter?: number
  } = {},
) {
  const tokens: EnumeratedToken[] = []
  const checkpoints: EnumerationCheckpoint[] = []
  const pages: EnumeratedToken[][] = []
  for await (const page of enumerateTokens({ rpc, address, ...opts })) {
    tokens.push(...page.tokens)
    checkpoints.push(page.checkpoint)
    pages.push(page.tokens)
    if (pages.length === opts.stopAfter) break
  }
  return { tokens, checkpoints, pages }
}

describe('EVM enumeration on anvil', () => {
  it("the ABI selectors are the ones solc computes for OpenZeppelin's contracts", () => {
    const e = contracts.Enumerable721.methods
    expect(`0x${e['supportsInterface(bytes4)']}`).toBe(SELECTORS.supportsInterface)
    expect(`0x${e['totalSupply()']}`).toBe(SELECTORS.totalSupply)
    expect(`0x${e['tokenByIndex(uint256)']}`).toBe(SELECTORS.tokenByIndex)
    expect(`0x${e['tokenURI(uint256)']}`).toBe(SELECTORS.tokenURI)
    expect(`0x${contracts.Multi1155.methods['uri(uint256)']}`).toBe(SELECTORS.uri)
  })

  it('an enumerable ERC-721: every token by index, in pages, resumable from any checkpoint', async () => {
    const base = 'ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi/'
    const address = await anvil.deploy(contracts.Enumerable721, [{ string: base }])
    await anvil.send(contracts.Enumerable721, address, 'mint(uint256,uint256)', [
      { uint256: 1n },
      { uint256: 20n },
    ])
    await anvil.send(contracts.Enumerable721, address, 'mint(uint256,uint256)', [
      { uint256: 100n },
      { uint256: 5n },
    ])
    expect(await detectStandard(anvil.rpc, address)).toEqual({ standard: 'erc721', enumerable: true })

    const all = await collect(anvil.rpc, address, { pageSize: 10 })
    const ids = [...Array.from({ length: 20 }, (_, i) => String(i + 1)), '100', '101', '102', '103', '104']
    expect(all.tokens.map((t) => t.tokenId)).toEqual(ids)
    expect(all.tokens.map((t) => t.uri)).toEqual(ids.map((id) => `${base}${id}`))
    expect(all.checkpoints.map((c) => c.method === 'index' && c.next)).toEqual(['10', '20', '25'])

    // Stopped after the first page (a Lambda timing out), resumed from its checkpoint: the rest, nothing twice.
    const first = await collect(anvil.rpc, address, { pageSize: 10, stopAfter: 1 })
    const rest = await collect(anvil.rpc, address, { pageSize: 10, checkpoint: first.checkpoints[0] })
    expect([...first.tokens, ...rest.tokens].map((t) => t.tokenId)).toEqual(ids)
  })

  it('a non-enumerable ERC-721: mint logs in ranges that adapt to a provider refusing wide ones, through rate limits', async () => {
    const address = await anvil.deploy(contracts.Plain721)
    const uris = new Map<string, string>()
    for (let i = 1; i <= 12; i++) {
      const uri = i % 3 === 0 ? `data:application/json,{"name":"${i}"}` : `https://example.com/meta/${i}.json`
      uris.set(String(i * 7), uri)
      await anvil.send(contracts.Plain721, address, 'mint(uint256,string)', [
        { uint256: BigInt(i * 7) },
        { string: uri },
      ])
      await anvil.mine(i % 4) // gaps of empty blocks between mints
    }
    const provider = await startLimitedProvider(anvil.url, { maxLogRange: 4, every429: 3 })
    try {
      const rpc = createJsonRpc({ url: provider.url, backoffMs: 1, maxBackoffMs: 5 })
      expect(await detectStandard(rpc, address)).toEqual({ standard: 'erc721', enumerable: false })
      const all = await collect(rpc, address, { pageSize: 5, initialSpan: 64 })
      expect(new Map(all.tokens.map((t) => [t.tokenId, t.uri]))).toEqual(uris)
      expect(all.tokens).toHaveLength(12)
      // The limits were hit, and worked around.
      expect(provider.refusedRanges).toBeGreaterThan(0)
      expect(provider.rateLimited).toBeGreaterThan(0)
      const last = all.checkpoints.at(-1)
      expect(last?.method === 'logs' && BigInt(last.fromBlock) > BigInt(last.toBlock)).toBe(true)
      expect(last?.method === 'logs' && last.maxSpan).toBeLessThanOrEqual(4)

      // Resumed from a checkpoint in the middle: the tokens after it, none lost.
      const mid = all.checkpoints[Math.floor(all.checkpoints.length / 2)]
      const rest = await collect(rpc, address, { checkpoint: mid })
      const before = new Set(
        all.tokens.slice(0, all.tokens.length - rest.tokens.length).map((t) => t.tokenId),
      )
      for (const id of uris.keys())
        expect(before.has(id) || rest.tokens.some((t) => t.tokenId === id)).toBe(true)
    } finally {
      await provider.close()
    }
  })

  it('an ERC-1155: TransferSingle and TransferBatch mints, uri(id) with {id} substituted, each id once', async () => {
    const address = await anvil.deploy(contracts.Multi1155, [{ string: 'ipfs://bafyroot/{id}.json' }])
    await anvil.send(contracts.Multi1155, address, 'mint(uint256,uint256)', [
      { uint256: 1n },
      { uint256: 5n },
    ])
    await anvil.send(contracts.Multi1155, address, 'mint(uint256,uint256)', [
      { uint256: 1n },
      { uint256: 3n },
    ])
    await anvil.send(contracts.Multi1155, address, 'mintRange(uint256,uint256)', [
      { uint256: 10n },
      { uint256: 4n },
    ])
    expect(await detectStandard(anvil.rpc, address)).toEqual({ standard: 'erc1155', enumerable: false })
    const all = await collect(anvil.rpc, address)
    expect(all.tokens.map((t) => t.tokenId)).toEqual(['1', '10', '11', '12', '13'])
    expect(all.tokens[1]?.uri).toBe(`ipfs://bafyroot/${'a'.padStart(64, '0')}.json`)
    // One 10,000-block range held every log; past the budget of logs a range may hold, the next is halved.
    const last = (r: typeof all) => r.checkpoints.at(-1) as Extract<EnumerationCheckpoint, { method: 'logs' }>
    expect(last(all)).toMatchObject({ span: 10_000, maxSpan: 10_000 })
    const dense = await collect(anvil.rpc, address, { maxLogsPerRange: 4 })
    expect(dense.tokens).toEqual(all.tokens)
    expect(last(dense)).toMatchObject({ span: 5_000, maxSpan: 10_000 })
  })

  it('a finished checkpoint continues to the chain as it is now: the tokens minted since, nothing when none were', async () => {
    const enumerable = await anvil.deploy(contracts.Enumerable721, [{ string: 'ipfs://bafyroot/' }])
    const plain = await anvil.deploy(contracts.Plain721)
    const multi = await anvil.deploy(contracts.Multi1155, [{ string: 'ipfs://bafyroot/{id}.json' }])
    const mint = {
      enumerable: (first: bigint, count: bigint) =>
        anvil.send(contracts.Enumerable721, enumerable, 'mint(uint256,uint256)', [
          { uint256: first },
          { uint256: count },
        ]),
      plain: (id: bigint) =>
        anvil.send(contracts.Plain721, plain, 'mint(uint256,string)', [
          { uint256: id },
          { string: `ipfs://bafyroot/${id}` },
        ]),
      multi: (first: bigint, count: bigint) =>
        anvil.send(contracts.Multi1155, multi, 'mintRange(uint256,uint256)', [
          { uint256: first },
          { uint256: count },
        ]),
    }
    await mint.enumerable(1n, 3n)
    await mint.plain(1n)
    await mint.multi(1n, 2n)
    const finished: Record<keyof typeof mint, EnumerationCheckpoint | undefined> = {
      enumerable: (await collect(anvil.rpc, enumerable)).checkpoints.at(-1),
      plain: (await collect(anvil.rpc, plain)).checkpoints.at(-1),
      multi: (await collect(anvil.rpc, multi)).checkpoints.at(-1),
    }
    expect(finished.enumerable).toMatchObject({ method: 'index', total: '3', next: '3' })
    // Nothing minted since: no page (not even an empty one), for each method.
    for (const [key, address] of [
      ['enumerable', enumerable],
      ['plain', plain],
      ['multi', multi],
    ] as const)
      expect((await collect(anvil.rpc, address, { checkpoint: finished[key] })).pages).toEqual([])

    await mint.enumerable(50n, 2n)
    await mint.plain(9n)
    await anvil.mine(3)
    await mint.plain(10n)
    await mint.multi(7n, 1n)
    const more = await collect(anvil.rpc, enumerable, { checkpoint: finished.enumerable })
    expect(more.tokens.map((t) => t.tokenId)).toEqual(['50', '51'])
    expect(more.checkpoints.at(-1)).toMatchObject({ total: '5', next: '5' })
    const plainMore = await collect(anvil.rpc, plain, { checkpoint: finished.plain })
    expect(plainMore.tokens.map((t) => [t.tokenId, t.uri])).toEqual([
      ['9', 'ipfs://bafyroot/9'],
      ['10', 'ipfs://bafyroot/10'],
    ])
    const multiMore = await collect(anvil.rpc, multi, { checkpoint: finished.multi })
    expect(multiMore.tokens.map((t) => t.tokenId)).toEqual(['7'])
    // And from there, nothing again.
    expect((await collect(anvil.rpc, plain, { checkpoint: plainMore.checkpoints.at(-1) })).tokens).toEqual([])
  })

  it('through the archiving core: tokens stored, one request per root, data: metadata read on the spot', async () => {
    const address = await anvil.deploy(contracts.Plain721)
    const dir = 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
    const data = `data:application/json,${encodeURIComponent(JSON.stringify({ image: `ipfs://${dir}` }))}`
    const uris = [`ipfs://${dir}/1.json`, `https://gw.example/ipfs/${dir}/2.json`, data, 'ftp://nowhere/4']
    for (const [i, uri] of uris.entries())
      await anvil.send(contracts.Plain721, address, 'mint(uint256,string)', [
        { uint256: BigInt(i + 1) },
        { string: uri },
      ])
    const pins = createMemoryPinStore()
    const ctx = {
      collections: createMemoryCollectionStore(),
      requests: createMemoryRequestStore(),
      pins,
      queue: createMemoryJobQueue(),
      clock: { now: () => Date.now() },
    }
    const sent: string[] = []
    const { record } = await addCollection(
      { user: 'alice', chainId: 31337, address },
      { ...ctx, chains: new Set([31337]), jobs: { send: async (j) => void sent.push(j.collectionId) } },
    )
    expect(sent).toEqual([record.id])
    const enumerator = createEvmEnumerator({ chains: new Map([[31337, anvil.url]]), pageSize: 3 })
    expect(await enumerateCollection({ collectionId: record.id }, { ...ctx, enumerator })).toEqual({
      finished: true,
      tokens: 4,
    })
    expect(await ctx.collections.get(record.id)).toMatchObject({ status: 'archiving', standard: 'erc721' })
    const { tokens } = await ctx.collections.listTokens(record.id, { limit: 10 })
    expect(tokens.map((t) => [t.tokenId, t.metadata.kind, t.metadata.status, t.metadata.path])).toEqual([
      ['1', 'ipfs', 'pending', '1.json'],
      ['2', 'ipfs', 'pending', '2.json'],
      ['3', 'data', 'archived', undefined],
      ['4', 'unsupported', 'failed', undefined],
    ])
    expect(tokens[2]?.media).toMatchObject([{ field: 'image', cid: dir, status: 'pending' }])
    // Three tokens point into one root: one request for it.
    const owned = await ctx.requests.listByOwner(`collection:${record.id}`, { limit: 10 })
    expect(owned.requests.map((r) => r.cid)).toEqual([dir])
  })

  it('refuses what is not an NFT contract', async () => {
    await expect(detectStandard(anvil.rpc, anvil.account)).rejects.toBeInstanceOf(NotAnNftContractError)
  })

  it('gives up with a clear error on a provider that only ever rate-limits', async () => {
    const provider = await startLimitedProvider(anvil.url, { maxLogRange: 4, every429: 1 })
    try {
      const rpc = createJsonRpc({ url: provider.url, retries: 3, backoffMs: 1, maxBackoffMs: 2 })
      await expect(rpc.call('eth_blockNumber', [])).rejects.toBeInstanceOf(RpcUnavailableError)
      expect(provider.rateLimited).toBe(4)
    } finally {
      await provider.close()
    }
  })
})

async function startLimitedProvider(target: string, limits: { maxLogRange: number; every429: number }) {
  let requests = 0
  const state = { refusedRanges: 0, rateLimited: 0 }
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks).toString()
    if (++requests % limits.every429 === 0) {
      state.rateLimited++
      res.writeHead(429, { 'content-type': 'application/json' })
      res.end(
        '{"jsonrpc":"2.0","id":null,"error":{"code":429,"message":"Your app has exceeded its compute units per second capacity"}}',
      )
      return
    }
    const parsed = JSON.parse(body) as {
      id: unknown
      method: string
      params: Array<{ fromBlock: string; toBlock: string }>
    }
    if (!Array.isArray(parsed) && parsed.method === 'eth_getLogs') {
      const f = parsed.params[0]
      if (f !== undefined && Number(BigInt(f.toBlock) - BigInt(f.fromBlock)) + 1 > limits.maxLogRange) {
        state.refusedRanges++
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id: parsed.id,
            error: {
              code: -32600,
              message: `Log response size exceeded. You can make eth_getLogs requests with up to a ${limits.maxLogRange} block range and no limit on the response size`,
            },
          }),
        )
        return
      }
    }
    const upstream = await fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    })
    res.writeHead(upstream.status, { 'content-type': 'application/json' })
    res.end(await upstream.text())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get refusedRanges() {
      return state.refusedRanges
    },
    get rateLimited() {
      return state.rateLimited
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
