/**
 * Export's memory against the collection's size: `npm run bench -- collection-export [tokens]` (default
 * 100,000) exports a collection of that many tokens, and of a tenth as many, from the in-memory collection
 * store into a temporary directory, and prints the heap export retained at its largest (sampled after a full
 * GC every 1,000 tokens) beside the anchor measured in the same run: the heap held by the same manifest built
 * whole in memory, as export did before it wrote the manifest page by page.
 *
 * The tokens' metadata is an unsupported URI (failed, with its error): export writes the manifest and no
 * token files, so the figures are those of paging and the manifest, not of file writes (one file at a time).
 * The store's own copy of the tokens is there before the baseline is taken and is not counted. No speed is
 * printed: the time is the in-memory store's (it sorts on every page) and the forced GCs'.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { createDirectorySink } from '../adapters/export-dir.ts'
import { createMemoryCollectionStore } from '../adapters/memory/collections.ts'
import { createMemoryObjectStore } from '../adapters/memory/objects.ts'
import { createMemoryPinStore } from '../adapters/memory/pins.ts'
import { createStoredContentReader } from '../adapters/stored-content.ts'
import { addCollection } from '../core/collections/archive.ts'
import { exportCollection, type Manifest } from '../core/collections/export.ts'
import type { CollectionToken } from '../core/collections/model.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heap = () => {
  gc()
  return process.memoryUsage().heapUsed
}
const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`

const largest = Number(process.argv[2] ?? 100_000)
if (!Number.isSafeInteger(largest) || largest < 10) throw new Error('usage: collection-export [tokens >= 10]')

async function run(total: number) {
  const collections = createMemoryCollectionStore()
  const now = Date.now()
  const { record } = await addCollection(
    { user: 'bench', chainId: 1, address: `0x${total.toString(16).padStart(40, '0')}` },
    { collections, jobs: { send: async () => {} }, chains: new Set([1]), clock: { now: () => now } },
  )
  const token = (i: number): CollectionToken => {
    const uri = `ftp://example.com/collection/metadata/${i}.json`
    return {
      collectionId: record.id,
      tokenId: String(i),
      tokenURI: uri,
      metadata: {
        uri,
        kind: 'unsupported',
        status: 'failed',
        error: 'UNSUPPORTED_URI: ftp: is not archived',
      },
      media: [],
      updated: now,
    }
  }
  for (let first = 0; first < total; first += 1000)
    await collections.putTokens(
      Array.from({ length: Math.min(1000, total - first) }, (_, k) => token(first + k)),
    )

  const dir = await mkdtemp(join(tmpdir(), 'pickup-bench-export-'))
  try {
    const base = heap()
    let peak = 0
    const summary = await exportCollection(
      {
        collectionId: record.id,
        onToken: (n) => {
          if (n % 1000 === 0) peak = Math.max(peak, heap() - base)
        },
      },
      {
        collections,
        pins: createMemoryPinStore(),
        reader: createStoredContentReader({
          destination: createMemoryObjectStore({ bucket: 'none' }),
          maxCarBytes: 1,
        }),
        sink: createDirectorySink(dir),
      },
    )
    if (summary.tokens !== total) throw new Error(`exported ${summary.tokens} of ${total} tokens`)
    const manifestBytes = (await stat(join(dir, 'manifest.json'))).size

    // The anchor: the same manifest's entries held whole, as one array.
    const anchorBase = heap()
    const whole: Manifest['tokens'] = []
    let cursor: string | undefined
    do {
      const page = await collections.listTokens(record.id, { limit: 100, ...(cursor ? { cursor } : {}) })
      cursor = page.cursor
      for (const t of page.tokens)
        whole.push({
          tokenId: t.tokenId,
          ...(t.tokenURI ? { tokenURI: t.tokenURI } : {}),
          metadata: {
            uri: t.metadata.uri,
            status: t.metadata.status,
            ...(t.metadata.error ? { error: t.metadata.error } : {}),
          },
          media: [],
        })
    } while (cursor)
    const anchor = heap() - anchorBase
    if (whole.length !== total) throw new Error('anchor incomplete')
    return { total, peak, anchor, manifestBytes }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

console.log(
  `export memory (heap retained, sampled after a full GC every 1,000 tokens), Node ${process.version}`,
)
for (const total of [Math.floor(largest / 10), largest]) {
  const r = await run(total)
  console.log(
    `${r.total} tokens: export held at most ${mib(r.peak)} (manifest ${mib(r.manifestBytes)}); ` +
      `anchor, the manifest's entries held whole: ${mib(r.anchor)}`,
  )
}
