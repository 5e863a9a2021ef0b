/**
 * A collection as files: every archived token's metadata and media, unpacked from the stored (verified)
 * CARs, plus `manifest.json` tying each file to its token, URI, CID, path inside the CID and CAR, with what
 * could not be archived and why. Files are named `<tokenId>/metadata.json` and `<tokenId>/<field><ext>`.
 *
 * Memory is bounded by one page of tokens (100) and their pins, whatever the collection's size: the
 * manifest is written as it goes (its opening, each page's token entries appended, then its closing), never
 * held whole, and what the export answers is counts.
 */
import type { Pin } from '../pin.ts'
import type { PinStore } from '../ports.ts'
import type { StoredContentReader } from './archive.ts'
import type { CollectionToken, ContentRef } from './model.ts'
import type { CollectionStore } from './ports.ts'
import { resolveUri } from './resolve.ts'

/** Where export writes (a directory on disk for the CLI). */
export interface ExportSink {
  /** Creates or replaces the file. */
  write(path: string, bytes: Uint8Array): Promise<void>
  /** Adds to the end of a file written before. */
  append(path: string, bytes: Uint8Array): Promise<void>
}

export interface ManifestEntry {
  uri: string
  field?: string
  cid?: string
  cidSource?: 'chain' | 'pickup'
  /** Web content: the URL pickup fetched (after redirects) and when (ISO 8601). Its CID is pickup's. */
  url?: string
  fetched?: string
  path?: string
  carCid?: string
  /** Relative to the export directory; absent when nothing was written. */
  file?: string
  status: ContentRef['status']
  error?: string
}

export interface Manifest {
  collection: { id: string; chainId: number; address: string; standard?: string; name?: string }
  tokens: Array<{ tokenId: string; tokenURI?: string; metadata: ManifestEntry; media: ManifestEntry[] }>
  files: number
}

/** What an export wrote: `manifest.json` holds the rest. */
export interface ExportSummary {
  collection: Manifest['collection']
  files: number
  tokens: number
  /** Tokens not wholly archived (their metadata or a media file failed or is still pending). */
  incomplete: number
}

/** Tokens read (and exported) at a time. */
export const EXPORT_PAGE_TOKENS = 100

/** Largest single file exported. */
export const MAX_EXPORT_FILE_BYTES = 512 * 1024 * 1024

export async function exportCollection(
  input: { collectionId: string; signal?: AbortSignal; onToken?: (exported: number) => void },
  ctx: { collections: CollectionStore; pins: PinStore; reader: StoredContentReader; sink: ExportSink },
): Promise<ExportSummary> {
  const c = await ctx.collections.get(input.collectionId)
  if (!c) throw new Error(`no collection ${input.collectionId}`)
  const collection: Manifest['collection'] = {
    id: c.id,
    chainId: c.chainId,
    address: c.address,
    ...(c.standard ? { standard: c.standard } : {}),
    ...(c.name ? { name: c.name } : {}),
  }
  const summary: ExportSummary = { collection, files: 0, tokens: 0, incomplete: 0 }
  // The manifest's keys in the order a JSON.stringify of a Manifest gives them: collection, tokens, files.
  await ctx.sink.write(MANIFEST, encode(`{\n  "collection": ${indent(collection)},\n  "tokens": [`))
  let cursor: string | undefined
  do {
    const page = await ctx.collections.listTokens(c.id, {
      limit: EXPORT_PAGE_TOKENS,
      ...(cursor ? { cursor } : {}),
    })
    cursor = page.cursor
    const cids = page.tokens.flatMap((t) => [t.metadata, ...t.media]).flatMap((r) => (r.cid ? [r.cid] : []))
    const pins = await ctx.pins.getMany([...new Set(cids)])
    const entries: string[] = []
    for (const token of page.tokens) {
      const entry = await exportToken(token, pins, summary, ctx, input.signal)
      if (entry.metadata.status !== 'archived' || entry.media.some((m) => m.status !== 'archived'))
        summary.incomplete++
      entries.push(`${summary.tokens === 0 ? '' : ','}\n    ${indent(entry, 4)}`)
      summary.tokens++
      input.onToken?.(summary.tokens)
    }
    if (entries.length > 0) await ctx.sink.append(MANIFEST, encode(entries.join('')))
  } while (cursor)
  await ctx.sink.append(
    MANIFEST,
    encode(`${summary.tokens === 0 ? '' : '\n  '}],\n  "files": ${summary.files}\n}\n`),
  )
  return summary
}

const MANIFEST = 'manifest.json'
const encoder = new TextEncoder()
const encode = (text: string) => encoder.encode(text)

/** JSON as `JSON.stringify(value, null, 2)` nested `depth` spaces in. */
function indent(value: unknown, depth = 2): string {
  return JSON.stringify(value, null, 2).replaceAll('\n', `\n${' '.repeat(depth)}`)
}

async function exportToken(
  token: CollectionToken,
  pins: Map<string, Pin>,
  counts: { files: number },
  ctx: { reader: StoredContentReader; sink: ExportSink },
  signal: AbortSignal | undefined,
): Promise<Manifest['tokens'][number]> {
  const dir = safeName(token.tokenId)
  const write = async (ref: ContentRef, name: string, field?: string): Promise<ManifestEntry> => {
    const entry: ManifestEntry = {
      uri: ref.uri,
      ...(field ? { field } : {}),
      ...(ref.cid ? { cid: ref.cid } : {}),
      ...(ref.cidSource ? { cidSource: ref.cidSource } : {}),
      ...(ref.url ? { url: ref.url } : {}),
      ...(ref.fetched !== undefined ? { fetched: new Date(ref.fetched).toISOString() } : {}),
      ...(ref.path !== undefined ? { path: ref.path } : {}),
      status: ref.status,
      ...(ref.error ? { error: ref.error } : {}),
    }
    if (ref.status !== 'archived') return entry
    let bytes: Uint8Array | undefined
    if (ref.kind === 'data' && name === 'metadata.json' && token.tokenURI) {
      const r = resolveUri(token.tokenURI)
      if (r.kind === 'data') bytes = r.bytes
    } else if (ref.kind === 'data') {
      const r = resolveUri(ref.uri)
      if (r.kind === 'data' && !ref.uri.endsWith('…')) bytes = r.bytes
    } else if (ref.cid) {
      const pin = pins.get(ref.cid)
      if (!pin?.car)
        return { ...entry, status: 'failed', error: 'NOT_STORED: the pin has no stored CAR any more' }
      entry.carCid = pin.car.cid
      try {
        bytes = await ctx.reader.readFile(pin, ref.path ?? '', {
          maxBytes: MAX_EXPORT_FILE_BYTES,
          ...(signal ? { signal } : {}),
        })
      } catch (err) {
        const code = (err as { code?: unknown }).code
        return {
          ...entry,
          status: 'failed',
          error: `${typeof code === 'string' ? code : 'READ_FAILED'}: ${(err as Error).message}`,
        }
      }
    }
    if (bytes === undefined) return entry
    const file = `${dir}/${name}`
    await ctx.sink.write(file, bytes)
    counts.files++
    return { ...entry, file }
  }
  const metadata = await write(token.metadata, 'metadata.json')
  const media: ManifestEntry[] = []
  for (const m of token.media)
    media.push(await write(m, `${safeName(m.field)}${extensionOf(m.path || m.url || m.uri)}`, m.field))
  return {
    tokenId: token.tokenId,
    ...(token.tokenURI ? { tokenURI: clip(token.tokenURI) } : {}),
    metadata,
    media,
  }
}

function safeName(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || '_'
}

function extensionOf(path: string): string {
  const m = /\.([A-Za-z0-9]{1,8})$/.exec(path.replace(/[?#].*$/, ''))
  return m ? `.${m[1]?.toLowerCase()}` : ''
}

function clip(uri: string): string {
  return uri.length > 1024 ? `${uri.slice(0, 1024)}…` : uri
}
