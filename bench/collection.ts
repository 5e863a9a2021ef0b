import { createStores } from '../adapters/compose.ts'
import { encodeCall, SELECTORS } from '../adapters/evm/abi.ts'
import { summarizeCollection } from '../core/collections/archive.ts'
import { pseudoRandomBytes, unixfsDirectory } from '../test/fixtures/dags.ts'
import { compileNftContracts, startAnvil } from '../test/helpers/evm.ts'
import { startTestSystem } from '../test/helpers/system.ts'

const total = Number(process.argv[2] ?? 10_000)
const CHAIN = 31337
const MINT_PER_TX = 200 // an enumerable mint costs ~120k gas; anvil's blocks hold 30M

let peakRss = process.memoryUsage().rss
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}, 100)

const contracts = compileNftContracts()
const anvil = await startAnvil()
const t = await startTestSystem(
  { COLLECTION_ADVANCE_DELAY_SECONDS: '1', LOG_LEVEL: 'silent' },
  { chains: new Map([[CHAIN, anvil.url]]) },
)
try {
  await t.system.helia?.libp2p.dial(t.origin.libp2p.getMultiaddrs())
  const image = await unixfsDirectory([['img.png', pseudoRandomBytes(50_000, 'bench-collection-image')]])
  const imageUri = `ipfs://${image.root.toV1()}/img.png`
  const enc = new TextEncoder()
  const meta = await unixfsDirectory(
    Array.from({ length: total }, (_, i): [string, Uint8Array] => [
      String(i + 1),
      enc.encode(JSON.stringify({ name: `token ${i + 1}`, image: imageUri })),
    ]),
  )
  await t.addToOrigin([...image.blocks, ...meta.blocks])
  const address = await anvil.deploy(contracts.Enumerable721, [{ string: `ipfs://${meta.root.toV1()}/` }])
  for (let first = 1; first <= total; first += MINT_PER_TX)
    await anvil.send(contracts.Enumerable721, address, 'mint(uint256,uint256)', [
      { uint256: BigInt(first) },
      { uint256: BigInt(Math.min(MINT_PER_TX, total - first + 1)) },
    ])
  console.log(`${total} tokens minted; metadata directory ${meta.root.toV1()} (${meta.blocks.length} blocks)`)

  // Anchor: every tokenURI read straight from the node, 100 calls per batch.
  const anchorStart = performance.now()
  for (let first = 1; first <= total; first += 100) {
    const calls = Array.from({ length: Math.min(100, total - first + 1) }, (_, i) => ({
      method: 'eth_call',
      params: [
        { to: address, data: encodeCall(SELECTORS.tokenURI, [{ uint256: BigInt(first + i) }]) },
        'latest',
      ],
    }))
    await anvil.rpc.batch(calls)
  }
  const anchorSeconds = (performance.now() - anchorStart) / 1000

  const auth = { authorization: `Bearer ${await t.createPsaToken('bench')}` }
  const started = performance.now()
  const res = await fetch(`${t.system.url}/collections`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ chainId: CHAIN, address }),
  })
  const { id } = (await res.json()) as { id: string }
  let enumeratedSeconds: number | undefined
  type Collection = { status: string; tokens: Record<string, number>; cids: Record<string, number> }
  let last: Collection
  for (;;) {
    last = (await (await fetch(`${t.system.url}/collections/${id}`, { headers: auth })).json()) as Collection
    if (enumeratedSeconds === undefined && last.status !== 'enumerating')
      enumeratedSeconds = (performance.now() - started) / 1000
    if (last.status === 'done' || last.status === 'failed') break
    await new Promise((r) => setTimeout(r, 500))
  }
  const doneSeconds = (performance.now() - started) / 1000
  console.log(
    `collection ${last.status}: tokens ${JSON.stringify(last.tokens)}, cids ${JSON.stringify(last.cids)}`,
  )
  // GET /collections/{id} answers the counts stored on the record, beside counting every token and root
  // (what it did before, and what `pickup collection show` does), in the same run.
  const reads = 10
  const getStart = performance.now()
  for (let i = 0; i < reads; i++)
    await (await fetch(`${t.system.url}/collections/${id}`, { headers: auth })).json()
  const getMs = (performance.now() - getStart) / reads
  const { clients, names } = t.system.services
  const collections = createStores(clients, (name) => names[name]).collections()
  const countStart = performance.now()
  for (let i = 0; i < reads; i++) await summarizeCollection(id, { collections, pins: t.pins })
  const countMs = (performance.now() - countStart) / reads
  console.table([
    { what: 'anchor: counting every token and root (the old GET)', 'ms per read': countMs.toFixed(1) },
    { what: 'GET /collections/{id} (stored counts)', 'ms per read': getMs.toFixed(1) },
  ])
  console.table([
    {
      what: 'anchor: tokenURI read from anvil (batches of 100)',
      seconds: anchorSeconds.toFixed(2),
      'tokens/s': (total / anchorSeconds).toFixed(0),
    },
    {
      what: 'collection enumerated (POST to archiving)',
      seconds: (enumeratedSeconds ?? doneSeconds).toFixed(2),
      'tokens/s': (total / (enumeratedSeconds ?? doneSeconds)).toFixed(0),
    },
    {
      what: 'collection done (metadata read, media pinned)',
      seconds: doneSeconds.toFixed(2),
      'tokens/s': (total / doneSeconds).toFixed(0),
    },
  ])
  console.log(
    `peak RSS of this process (local mode, origin, the test's own content): ${(peakRss / 2 ** 20).toFixed(0)} MiB`,
  )
} finally {
  clearInterval(sampler)
  await t.stop()
  await anvil.stop()
}
