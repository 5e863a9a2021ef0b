/**
 * What a token's URI points at. On chain a token holds only a string; the same content is written in many
 * ways (`ipfs://<cid>/1.json`, `ipfs://ipfs/<cid>`, a gateway URL of either style, a bare CID, a `data:` URI
 * with the JSON inline, `ar://`, a plain web URL). Resolution turns each into one of four kinds:
 *
 * - `ipfs`: content addressed. `cid` is pickup's content key (CIDv1 base32), `path` the UnixFS path inside
 *   it ('' for the root itself). Tokens whose files live in one directory resolve to the same `cid` with
 *   different paths: the root is pinned once.
 * - `data`: the bytes are in the URI; nothing to fetch.
 * - `web`: fetched over HTTP(S) and imported by pickup (`ar://` through an Arweave gateway).
 * - `unsupported`: nothing pickup can archive (`ipns://`, an unknown scheme, an empty string), with why.
 *
 * Pure functions: no I/O.
 */
import { CID } from 'multiformats/cid'
import { normalizeCid, parseCid } from '../cid.ts'

export type ResolvedUri =
  | { kind: 'ipfs'; uri: string; cid: string; path: string }
  | { kind: 'data'; uri: string; mediaType: string; bytes: Uint8Array }
  | { kind: 'web'; uri: string; url: string; via?: 'arweave' }
  | { kind: 'unsupported'; uri: string; reason: string }

export interface ResolveOptions {
  /** Where `ar://<id>` is fetched from: `<arweaveGateway>/<id>`. */
  arweaveGateway?: string
}

const DEFAULT_ARWEAVE_GATEWAY = 'https://arweave.net'

/** Longest URI resolved; longer ones (other than `data:`) are refused rather than parsed. */
const MAX_URI_LENGTH = 8192

export function resolveUri(input: string, opts: ResolveOptions = {}): ResolvedUri {
  const uri = input.trim()
  if (uri.length === 0) return { kind: 'unsupported', uri: input, reason: 'empty URI' }
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(uri)?.[1]?.toLowerCase()
  if (scheme === 'data') return resolveData(uri)
  if (uri.length > MAX_URI_LENGTH)
    return { kind: 'unsupported', uri, reason: `longer than ${MAX_URI_LENGTH} characters` }
  if (scheme === 'ipfs') {
    // ipfs://<cid>/<path>, ipfs://ipfs/<cid>/<path> (a common mistake), ipfs:/<cid>, ipfs:<cid>
    const rest = uri.slice('ipfs:'.length).replace(/^\/+/, '')
    return ipfsPath(uri, rest.replace(/^ipfs\//i, '')) ?? notCid(uri)
  }
  if (scheme === 'ipns')
    return { kind: 'unsupported', uri, reason: 'IPNS names are mutable: nothing fixed to pin' }
  if (scheme === 'ar') {
    const id = uri.slice('ar:'.length).replace(/^\/+/, '')
    if (id.length === 0) return { kind: 'unsupported', uri, reason: 'ar:// without a transaction id' }
    const gateway = (opts.arweaveGateway ?? DEFAULT_ARWEAVE_GATEWAY).replace(/\/+$/, '')
    return { kind: 'web', uri, url: `${gateway}/${id}`, via: 'arweave' }
  }
  if (scheme === 'http' || scheme === 'https') return resolveHttp(uri)
  if (scheme !== undefined) return { kind: 'unsupported', uri, reason: `unsupported scheme ${scheme}:` }
  // A bare CID or path: <cid>, <cid>/<path>, /ipfs/<cid>/<path>
  const bare = uri.replace(/^\/+/, '').replace(/^ipfs\//i, '')
  return ipfsPath(uri, bare) ?? { kind: 'unsupported', uri, reason: 'neither a URL nor a CID' }
}

/**
 * ERC-1155's `{id}`: the token id as 64 lowercase hex digits, no `0x` (EIP-1155, "Metadata"). Every
 * occurrence is replaced.
 */
export function substituteId(uri: string, tokenId: bigint): string {
  if (!uri.includes('{id}')) return uri
  return uri.replaceAll('{id}', tokenId.toString(16).padStart(64, '0'))
}

function resolveHttp(uri: string): ResolvedUri {
  let url: URL
  try {
    url = new URL(uri)
  } catch {
    return { kind: 'unsupported', uri, reason: 'not a valid URL' }
  }
  // Path-style gateway: https://<host>/ipfs/<cid>/<path>
  const pathMatch = /^\/ipfs\/(.+)$/.exec(url.pathname)
  if (pathMatch?.[1] !== undefined) {
    const found = ipfsPath(uri, pathMatch[1])
    if (found !== undefined) return found
  }
  // Subdomain gateway: https://<cid>.ipfs.<host>/<path>
  const labels = url.hostname.split('.')
  if (labels.length >= 3 && labels[1] === 'ipfs' && labels[0] !== undefined) {
    const found = ipfsPath(uri, `${labels[0]}${url.pathname}`)
    if (found !== undefined) return found
  }
  return { kind: 'web', uri, url: url.toString() }
}

/** `<cid>[/<path>]`, the path percent-decoded segment by segment; undefined when it does not start with a CID. */
function ipfsPath(uri: string, text: string): ResolvedUri | undefined {
  const noQuery = text.replace(/[?#].*$/, '')
  const [first = '', ...segments] = noQuery.split('/')
  if (!looksLikeCid(first)) return undefined
  let key: string
  try {
    key = normalizeCid(first).key
  } catch {
    return undefined
  }
  const decoded: string[] = []
  for (const segment of segments) {
    if (segment === '' || segment === '.') continue
    let name: string
    try {
      name = decodeURIComponent(segment)
    } catch {
      name = segment
    }
    if (name === '..') return { kind: 'unsupported', uri, reason: 'a path that climbs out of its root (..)' }
    decoded.push(name)
  }
  return { kind: 'ipfs', uri, cid: key, path: decoded.join('/') }
}

function looksLikeCid(text: string): boolean {
  if (text.length < 8) return false
  try {
    const cid = parseCid(text)
    return cid instanceof CID
  } catch {
    return false
  }
}

function notCid(uri: string): ResolvedUri {
  return { kind: 'unsupported', uri, reason: 'ipfs:// without a valid CID' }
}

/** RFC 2397: `data:[<mediatype>][;base64],<data>`; the data is percent-encoded unless base64. */
function resolveData(uri: string): ResolvedUri {
  const comma = uri.indexOf(',')
  if (comma < 0) return { kind: 'unsupported', uri: clip(uri), reason: 'a data: URI without a comma' }
  const params = uri.slice('data:'.length, comma).split(';')
  const isBase64 = params.some((p) => p.trim().toLowerCase() === 'base64')
  const mediaType = params[0]?.trim() || 'text/plain'
  const payload = uri.slice(comma + 1)
  let bytes: Uint8Array
  if (isBase64) {
    const clean = payload.replace(/\s+/g, '')
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean))
      return { kind: 'unsupported', uri: clip(uri), reason: 'a data: URI whose base64 is not valid' }
    bytes = new Uint8Array(
      Buffer.from(clean, clean.includes('-') || clean.includes('_') ? 'base64url' : 'base64'),
    )
  } else {
    let text: string
    try {
      text = decodeURIComponent(payload)
    } catch {
      // On-chain JSON is often written raw, `%` included: take it as it is.
      text = payload
    }
    bytes = new TextEncoder().encode(text)
  }
  return { kind: 'data', uri: clip(uri), mediaType, bytes }
}

/** data: URIs can be megabytes of SVG; records keep their start. */
function clip(uri: string): string {
  return uri.length > 256 ? `${uri.slice(0, 256)}…` : uri
}

/** A media reference found in metadata: `field` says where (`image`, `properties.files[1].uri`). */
export interface MediaRef {
  field: string
  uri: string
}

/** Fields that hold a URI of the token's media, top level and under `properties` (ERC-1155's convention). */
const MEDIA_FIELDS = ['image', 'image_url', 'animation_url', 'animation', 'audio', 'video'] as const
const FILE_URI_KEYS = ['uri', 'url', 'src', 'cdn_uri'] as const

/**
 * The media URIs in a token's metadata JSON, in a stable order, each with the field it came from. `image_data`
 * (inline SVG) is content, not a reference: it is archived with the metadata itself. Duplicate URIs are
 * listed once (the first field).
 */
export function mediaRefs(metadata: unknown): MediaRef[] {
  const refs: MediaRef[] = []
  const seen = new Set<string>()
  const add = (field: string, value: unknown) => {
    if (typeof value !== 'string') return
    const uri = value.trim()
    if (uri.length === 0 || seen.has(uri)) return
    seen.add(uri)
    refs.push({ field, uri })
  }
  if (!isObject(metadata)) return refs
  for (const field of MEDIA_FIELDS) add(field, metadata[field])
  const properties = metadata.properties
  if (isObject(properties)) {
    for (const field of MEDIA_FIELDS) add(`properties.${field}`, unwrapValue(properties[field]))
    addFiles('properties.files', properties.files, add)
  }
  addFiles('files', metadata.files, add)
  return refs
}

function addFiles(field: string, files: unknown, add: (field: string, value: unknown) => void) {
  if (!Array.isArray(files)) return
  files.forEach((file, i) => {
    if (typeof file === 'string') add(`${field}[${i}]`, file)
    else if (isObject(file)) for (const key of FILE_URI_KEYS) add(`${field}[${i}].${key}`, file[key])
  })
}

/** OpenSea-style properties are sometimes `{ "type": "string", "description": "<uri>" }` or `{ value }`. */
function unwrapValue(value: unknown): unknown {
  if (isObject(value)) return value.value ?? value.description
  return value
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * One pin per distinct root: groups content-addressed references by CID, each with the paths inside it that
 * tokens use. A directory holding every token's file is pinned once, its paths recorded per token.
 */
export function groupByRoot<T extends { cid: string; path: string }>(refs: Iterable<T>): Map<string, T[]> {
  const roots = new Map<string, T[]>()
  for (const ref of refs) {
    const list = roots.get(ref.cid)
    if (list === undefined) roots.set(ref.cid, [ref])
    else list.push(ref)
  }
  return roots
}

/** Parses metadata bytes as JSON; undefined when they are not a JSON object. */
export function parseMetadata(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: false }).decode(bytes))
    return isObject(value) ? value : undefined
  } catch {
    return undefined
  }
}
