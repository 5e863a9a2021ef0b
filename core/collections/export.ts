/**
 * A collection as files: every archived token's metadata and media, unpacked from the stored (verified)
 * CARs, plus `manifest.json` tying each file to its token, URI, CID, path inside the CID and CAR, with what
 * could not be archived and why. Files are named `<tokenId>/metadata.json` and `<tokenId>/<field><ext>`.
 */
import type { Pin } from '../pin.ts'
import type { PinStore } from '../ports.ts'
import type { StoredContentReader } from './archive.ts'
import type { CollectionToken, ContentRef } from './model.ts'
import type { CollectionStore } from './ports.ts'
import { resolveUri } from './resolve.ts'

/** Where export writes (a directory on disk for the CLI). */
export interface ExportSink {
  write(path: string, bytes: Uint8Array): Promise<void>
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

/** Largest single file exported. */
export const MAX_EXPORT_FILE_BYTES = 512 * 1024 * 1024

export async function exportCollection(
  input: { collectionId: string; signal?: AbortSignal },
  ctx: { collections: CollectionStore; pins: PinStore; reader: StoredContentReader; sink: ExportSink },
): Promise<Manifest> {
  const c = await ctx.collections.get(input.collectionId)
  if (!c) throw new Error(`no collection ${input.collectionId}`)
  const manifest: Manifest = {
    collection: {
      id: c.id,
      chainId: c.chainId,
      address: c.address,
      ...(c.standard ? { standard: c.standard } : {}),
      ...(c.name ? { name: c.name } : {}),
    },
    tokens: [],
    files: 0,
  }
  let cursor: string | undefined
  do {
    const page = await ctx.collections.listTokens(c.id, { limit: 100, ...(cursor ? { cursor } : {}) })
    cursor = page.cursor
    const cids = page.tokens.flatMap((t) => [t.metadata, ...t.media]).flatMap((r) => (r.cid ? [r.cid] : []))
    const pins = await ctx.pins.getMany([...new Set(cids)])
    for (const token of page.tokens)
      manifest.tokens.push(await exportToken(token, pins, manifest, ctx, input.signal))
  } while (cursor)
  await ctx.sink.write('manifest.json', new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`))
  return manifest
}

async function exportToken(
  token: CollectionToken,
  pins: Map<string, Pin>,
  manifest: Manifest,
  ctx: { reader: StoredContentReader; sink: ExportSink },
  signal: AbortSignal | undefined,
) {
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
    manifest.files++
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
