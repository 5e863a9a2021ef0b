/**
 * Web-hosted token content (a plain `https://` URL, `ar://` through its gateway): the chain names only a URL,
 * so pickup fetches it, imports the bytes as a UnixFS file (CIDv1, raw leaves) and stores that DAG as a CAR
 * through the same validator as a worker's CAR. The CID is pickup's, not the chain's: the token's record says
 * so (`cidSource: 'pickup'`, with the URL and when it was fetched).
 *
 * The pin protocol is the worker's (core/fetch-pin.ts): the pin is requested (an ordinary pin owned by
 * `collection:<id>`, shared with any other request for the same content), *claimed* by an attempt, and the
 * CAR uploaded to the temporary bucket under `<cid>/<attempt>.car`, the pin leased to the attempt while the
 * validator checks it; the validator promotes the CAR and marks the pin pinned, or retries or fails it. No
 * job is sent to the pin queue for it: nothing on the IPFS network serves bytes pickup has just imported.
 * The token's reference records the CID only once the CAR is uploaded, so a crash before then makes the
 * next pass import the URL again (the pin it requested is still claimable).
 */
import { CID } from 'multiformats/cid'
import { CodedError, describeError } from '../errors.ts'
import { exportCar } from '../export-car.ts'
import { tempCarKey } from '../pin.ts'
import type { Clock, Logger, ObjectStore, PinStore, RequestStore } from '../ports.ts'
import { type CollectionRecord, collectionOwner, rootRequest, rootRequestId } from './model.ts'
import type { CollectionStore } from './ports.ts'

/** A web fetch or import that failed: `code` goes into the token's record (`CODE: message`). */
export class WebContentError extends CodedError {}

/** One URL's bytes imported as a UnixFS file, its blocks held (on disk) until `close`. */
export interface WebImport {
  /** The file's root: CIDv1 base32, raw leaves. */
  cid: string
  /** The URL the bytes came from, after redirects. */
  url: string
  /** Bytes of the file. */
  bytes: number
  /** The imported blocks, by CID. */
  get(cid: CID, opts?: { signal?: AbortSignal }): Promise<Uint8Array>
  /** Drops the imported blocks. */
  close(): Promise<void>
}

/** Fetches a URL (under the adapter's limits and address policy) and imports it. Throws WebContentError. */
export interface WebImporter {
  import(url: string, opts: { maxBytes: number; signal?: AbortSignal }): Promise<WebImport>
}

export interface WebArchiveLimits {
  /** Largest file fetched; a larger one is reported per token as WEB_TOO_LARGE. */
  maxBytes: number
  /** The CAR may be at most this many bytes (the validator's MAX_CAR_BYTES). */
  maxCarBytes: number
  /** How long the claim lasts while the CAR is made and uploaded. */
  leaseMs: number
  /** After the upload, how long the pin stays leased to this attempt while the validator checks the CAR. */
  validationLeaseMs: number
  partBytes: number
}

export interface WebArchiveContext {
  collections: CollectionStore
  requests: RequestStore
  pins: PinStore
  temp: ObjectStore
  clock: Clock
  log: Logger
  importer: WebImporter
  newId: () => string
  limits: WebArchiveLimits
}

/** What archiving web content needs beside the collection's own ports. */
export type WebArchivePorts = Pick<WebArchiveContext, 'importer' | 'temp' | 'newId' | 'limits' | 'log'>

export interface WebArchived {
  cid: string
  url: string
  /** Epoch ms. */
  fetched: number
  bytes: number
}

/**
 * Fetches and imports `url`, requests its root for the collection and, unless it is stored or being stored
 * already, uploads its CAR for the validator. Throws WebContentError (the token's reference fails with it);
 * anything else is unexpected (the job is retried).
 */
export async function archiveWebContent(
  input: {
    collection: CollectionRecord
    url: string
    signal?: AbortSignal
    /** Told the root once it is recorded, before its request is made (a delete racing the import). */
    onRequest?: (root: { cid: string; requestid: string }) => void
  },
  ctx: WebArchiveContext,
): Promise<WebArchived> {
  const c = input.collection
  const signal = input.signal
  const imported = await ctx.importer.import(input.url, {
    maxBytes: ctx.limits.maxBytes,
    ...(signal ? { signal } : {}),
  })
  const fetched = ctx.clock.now()
  const result: WebArchived = { cid: imported.cid, url: imported.url, fetched, bytes: imported.bytes }
  const log = ctx.log.child({ collectionId: c.id, cid: imported.cid, url: imported.url })
  try {
    const { cid } = imported
    const owner = collectionOwner(c.id)
    const requestid = rootRequestId(c.id, cid)
    // The root first: a collection deleted meanwhile finds every request it made through its roots.
    await ctx.collections.putRoots(c.id, [{ cid, requestid }])
    input.onRequest?.({ cid, requestid })
    // Requested, never enqueued: this attempt stores it (a `queued` pin left by a crash here is claimed by
    // the next pass's attempt, or enqueued by the reconciler and failed by the workers, then imported again).
    const { pin } = await ctx.pins.request(cid, [], fetched)
    if (!(await ctx.requests.get(requestid))) {
      const created = await ctx.requests.reserveCreated(owner, ctx.clock.now())
      await ctx.requests.put(
        rootRequest(
          c,
          { cid, requestid },
          { created, pinned: pin.status === 'pinned', extraMeta: { url: imported.url } },
        ),
      )
    }
    if (pin.status === 'pinned') {
      log.info({ bytes: imported.bytes }, 'web content already stored')
      return result
    }
    await uploadCar(imported, ctx, log, signal)
    return result
  } finally {
    await imported.close()
  }
}

/** Claims the pin and uploads the CAR for the validator, as a worker's attempt does. */
async function uploadCar(
  imported: WebImport,
  ctx: WebArchiveContext,
  log: Logger,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { cid } = imported
  const attemptId = ctx.newId()
  const now = ctx.clock.now()
  const claim = await ctx.pins.claim(cid, attemptId, now + ctx.limits.leaseMs, now, {
    bytes: 0,
    blocks: 0,
    phase: 'transferring',
  })
  if (claim.kind === 'pinned') return
  if (claim.kind === 'busy') {
    // Another attempt is storing the same bytes (another collection's, or a retry's): it settles the pin.
    log.info({ attemptId: claim.pin.attemptId }, 'web content being stored by another attempt')
    return
  }
  if (claim.kind !== 'claimed')
    throw new WebContentError('WEB_PIN_UNAVAILABLE', `the pin could not be claimed (${claim.kind})`, true)
  const key = tempCarKey(cid, attemptId)
  let blocks = 0
  try {
    const car = exportCar(
      CID.parse(cid),
      {
        get: (block, o) => imported.get(block, o),
        connect: async () => {},
        multiaddrs: async () => [],
      },
      {
        maxBytes: ctx.limits.maxCarBytes,
        ...(signal ? { signal } : {}),
        onProgress: (p) => {
          blocks = p.blocks
        },
      },
    )
    const { bytes } = await ctx.temp.put(key, car, {
      partSize: ctx.limits.partBytes,
      metadata: { cid, attempt: attemptId },
      ...(signal ? { signal } : {}),
    })
    const t = ctx.clock.now()
    await ctx.pins.heartbeat(
      cid,
      attemptId,
      t + ctx.limits.validationLeaseMs,
      { bytes, blocks, phase: 'transferring' },
      t,
    )
    log.info({ attemptId, bytes, blocks, fileBytes: imported.bytes }, 'web content imported: CAR uploaded')
  } catch (err) {
    const { code, message } = describeError(err)
    await ctx.pins.settle(cid, attemptId, { status: 'failed', error: `${code}: ${message}` }, ctx.clock.now())
    throw err
  }
}
