/**
 * An NFT collection being archived, and its tokens. A collection belongs to one user (owner `psa:<user>`), is
 * one per (owner, chain, contract) and pins what its tokens point at as ordinary requests owned by
 * `collection:<id>`: one request per distinct root CID, however many tokens have files inside it.
 */
import { createHash } from 'node:crypto'
import { base32 } from 'multiformats/bases/base32'
import type { PinRequest } from '../ports.ts'
import type { EnumerationCheckpoint, Standard } from './enumeration.ts'

export const COLLECTION_STATUSES = ['enumerating', 'archiving', 'done', 'failed'] as const
export type CollectionStatus = (typeof COLLECTION_STATUSES)[number]

/** A failed delivery of a collection job: step, `CODE: message` (at most 500 chars), when, receive count. */
export interface JobFailure {
  step: string
  error: string
  /** Epoch ms. */
  at: number
  receives: number
}

export interface CollectionRecord {
  id: string
  owner: string
  chainId: number
  /** The contract, 0x-prefixed, lower case. */
  address: string
  name?: string
  /** Keep watching for new mints once enumerated. */
  follow: boolean
  /** Known once enumeration has detected it. */
  standard?: Standard
  status: CollectionStatus
  /** Why the collection failed (`CODE: message`). */
  error?: string
  /** Where enumeration resumes. */
  checkpoint?: EnumerationCheckpoint
  /**
   * Following: when the follow tick last looked at the collection (epoch ms); the tick takes those never
   * checked first, then the longest unchecked.
   */
  followChecked?: number
  /**
   * A tombstone: when `DELETE` began releasing the collection's requests. A step that made a request checks it
   * afterwards and releases what it made (core/collections/archive.ts, `pinRoots`).
   */
  deleting?: number
  /**
   * The one job of the collection's chain that may run (core/collections/jobs.ts): a job with this id runs, one
   * naming it as `prev` claims its place, any other is stale and dropped. Absent on records older than it.
   */
  jobId?: string
  /** The counts a `GET` answers, recounted by the archiving steps (see `CollectionSummary`). */
  summary?: StoredSummary
  /**
   * The last failure of a job of the collection's chain (kept, with its time, after later jobs succeed: the
   * operator sees the last one there was). Written alone, never changing `updated`.
   */
  lastJobFailure?: JobFailure
  /** Epoch ms. */
  created: number
  updated: number
}

/**
 * - `pending`: its content is being archived (a pin queued or pinning, metadata not read yet).
 * - `archived`: stored as a verified CAR (or, for `data:`, held in the record itself).
 * - `failed`: it could not be archived; `error` says why (unreachable, unsupported URI, invalid JSON).
 */
export const REF_STATUSES = ['pending', 'archived', 'failed'] as const
export type RefStatus = (typeof REF_STATUSES)[number]

/** One URI a token points at (its metadata, or a media file) and what became of it. */
export interface ContentRef {
  uri: string
  /** How the URI resolved (core/collections/resolve.ts). */
  kind: 'ipfs' | 'data' | 'web' | 'unsupported'
  /** The content's root (CIDv1), for `ipfs` and for archived `web` content. */
  cid?: string
  /** Inside `cid`; '' for the root itself. */
  path?: string
  /**
   * `chain`: the CID is the one the token's URI names. `pickup`: pickup computed it by importing web-hosted
   * bytes (UnixFS, CIDv1, raw leaves): the chain names only a URL.
   */
  cidSource?: 'chain' | 'pickup'
  /**
   * For web content: the URL fetched (`ar://` through its gateway), once archived the one the bytes came from
   * after redirects.
   */
  url?: string
  /** For web content: when pickup fetched it (epoch ms). */
  fetched?: number
  /** For web content: fetches that failed so far (a transient failure is tried again on a later pass). */
  attempts?: number
  status: RefStatus
  error?: string
}

export interface MediaEntry extends ContentRef {
  /** Where in the metadata the URI was (`image`, `properties.files[0].uri`). */
  field: string
}

export const TOKEN_STATUSES = ['archived', 'incomplete', 'failed'] as const
export type TokenStatus = (typeof TOKEN_STATUSES)[number]

export interface CollectionToken {
  collectionId: string
  /** Decimal. */
  tokenId: string
  /** As the contract returns it; absent when it could not be read (see `metadata.error`). */
  tokenURI?: string
  metadata: ContentRef
  /** Known once the metadata is read. */
  media: MediaEntry[]
  updated: number
}

/**
 * `archived`: metadata and every media file archived. `failed`: the metadata could not be archived (nothing
 * more can be found). `incomplete`: anything else (still pending, or some media failed).
 */
export function tokenStatus(token: Pick<CollectionToken, 'metadata' | 'media'>): TokenStatus {
  if (token.metadata.status === 'failed') return 'failed'
  if (token.metadata.status === 'archived' && token.media.every((m) => m.status === 'archived'))
    return 'archived'
  return 'incomplete'
}

/**
 * A collection's counts: its tokens by status, and its root CIDs by their pins' status.
 */
export interface CollectionSummary {
  tokens: { total: number; archived: number; incomplete: number; failed: number }
  cids: { total: number; pinned: number; queued: number; pinning: number; failed: number }
}

/** The counts as stored on the record: `asOf` is when the count began (a later count replaces an earlier one). */
export interface StoredSummary extends CollectionSummary {
  asOf: number
}

export function emptySummary(): CollectionSummary {
  return {
    tokens: { total: 0, archived: 0, incomplete: 0, failed: 0 },
    cids: { total: 0, pinned: 0, queued: 0, pinning: 0, failed: 0 },
  }
}

/** A root CID the collection pins, and the request that holds it. */
export interface CollectionRoot {
  cid: string
  requestid: string
}

export function collectionOwner(collectionId: string): string {
  return `collection:${collectionId}`
}

/**
 * The collection's id: derived from (owner, chain, contract), so that posting the same collection again finds
 * the existing one with a conditional write, no separate uniqueness item. 26 base32 characters.
 */
export function collectionId(owner: string, chainId: number, address: string): string {
  const digest = createHash('sha256').update(`${owner}\n${chainId}\n${address.toLowerCase()}`).digest()
  return base32.baseEncode(digest.subarray(0, 16))
}

/**
 * The requestid of the collection's request for a root: `<26 base32>-<content key>` like every request (so a
 * status lookup finds the pin from the id), derived rather than random, so a page enumerated again after a
 * crash puts the same request, not a second one.
 */
export function rootRequestId(collectionId: string, cid: string): string {
  const digest = createHash('sha256').update(`${collectionId}\n${cid}`).digest()
  return `${base32.baseEncode(digest.subarray(0, 16))}-${cid}`
}

/**
 * The request a collection makes for one of its roots: owned by the collection and named after it, with the
 * collection in its meta (and `extraMeta`, such as the URL web content came from), no origins.
 */
export function rootRequest(
  c: CollectionRecord,
  root: CollectionRoot,
  opts: { created: number; pinned: boolean; extraMeta?: Record<string, string> },
): PinRequest {
  return {
    requestid: root.requestid,
    owner: collectionOwner(c.id),
    cid: root.cid,
    sourceCid: root.cid,
    name: c.name ?? `collection ${c.chainId}:${c.address}`,
    meta: { collection: c.id, chainId: String(c.chainId), address: c.address, ...opts.extraMeta },
    origins: [],
    created: opts.created,
    knownPinned: opts.pinned,
  }
}

export const MAX_TOKEN_ID_DIGITS = 78 // 2^256 - 1 has 78 decimal digits

/** Token ids sort numerically as fixed-width strings. */
export function tokenSortKey(tokenId: string): string {
  return tokenId.padStart(MAX_TOKEN_ID_DIGITS, '0')
}

/** A job failure as the APIs and `pickup` print it in JSON: `at` in ISO 8601. */
export function jobFailureJson(f: JobFailure) {
  return { step: f.step, error: f.error, at: new Date(f.at).toISOString(), receives: f.receives }
}

/** A collection record as both the Collections API and `pickup collection --json` show it: times in ISO 8601. */
export function collectionRecordJson(r: CollectionRecord) {
  return {
    id: r.id,
    chainId: r.chainId,
    address: r.address,
    ...(r.name !== undefined ? { name: r.name } : {}),
    follow: r.follow,
    ...(r.standard !== undefined ? { standard: r.standard } : {}),
    status: r.status,
    ...(r.error !== undefined ? { error: r.error } : {}),
    ...(r.lastJobFailure !== undefined ? { lastJobFailure: jobFailureJson(r.lastJobFailure) } : {}),
    created: new Date(r.created).toISOString(),
    updated: new Date(r.updated).toISOString(),
  }
}
