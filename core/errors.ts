/**
 * Named domain errors. Each carries a stable `code`; the HTTP layer maps them to responses in one place
 * and the worker uses `retryable` to decide between releasing a job for another attempt and failing it.
 */
export abstract class PickupError extends Error {
  abstract readonly code: string
  /** Whether another attempt at the same work could succeed. */
  readonly retryable: boolean = true
}

/**
 * An error of a family whose code is chosen where it is thrown (a token's record shows it as `CODE: message`):
 * the web fetch's and the stored-content reader's. Not retryable unless said.
 */
export class CodedError extends PickupError {
  readonly code: string
  override readonly retryable: boolean
  constructor(code: string, message: string, retryable = false) {
    super(message)
    this.code = code
    this.retryable = retryable
  }
}

export class InvalidCidError extends PickupError {
  readonly code = 'INVALID_CID'
  override readonly retryable = false
  constructor(input: string, reason?: string) {
    super(`not a valid CID: ${JSON.stringify(input.slice(0, 120))}${reason ? ` (${reason})` : ''}`)
  }
}

export class InvalidInputError extends PickupError {
  readonly code: string
  override readonly retryable = false
  constructor(code: string, message: string) {
    super(message)
    this.code = code
  }
}

/** No access token, or one pickup does not know (Pinning Service API). */
export class UnauthorizedError extends PickupError {
  readonly code = 'UNAUTHORIZED'
  override readonly retryable = false
  constructor(message = 'the access token is missing or invalid') {
    super(message)
  }
}

/** An access token an operator named does not exist (`pickup token revoke`). */
export class TokenNotFoundError extends PickupError {
  readonly code = 'TOKEN_NOT_FOUND'
  override readonly retryable = false
}

/** No collection with this id that the caller may see (another user's is not found either). */
export class CollectionNotFoundError extends PickupError {
  readonly code = 'NOT_FOUND'
  override readonly retryable = false
  constructor() {
    super('no collection with this id')
  }
}

/** No pin request with this requestid for this user (Pinning Service API). */
export class RequestNotFoundError extends PickupError {
  readonly code = 'NOT_FOUND'
  override readonly retryable = false
  constructor() {
    super('no pin request with this requestid')
  }
}

/**
 * A listing read its whole budget without finding one request that matches its filter (statuses, meta or a
 * partial name). Not an empty page: older requests may match, and the client is told where to go on from.
 */
export class ListingTooSparseError extends PickupError {
  readonly code = 'LISTING_TOO_SPARSE'
  override readonly retryable = false
  readonly continueBefore: number | undefined
  constructor(budget: number, before: number | undefined) {
    super(
      `none of the newest ${budget} requests read matches the filter; older ones may` +
        (before === undefined ? '' : `: list again with before=${new Date(before).toISOString()}`),
    )
    this.continueBefore = before
  }
}

/** The DAG is larger than MAX_CAR_BYTES. Retrying cannot help, so the pin fails at once. */
export class CarTooLargeError extends PickupError {
  readonly code = 'CAR_TOO_LARGE'
  override readonly retryable = false
  readonly maxCarBytes: number
  constructor(maxCarBytes: number) {
    super(`the DAG is larger than the limit of ${maxCarBytes} bytes`)
    this.maxCarBytes = maxCarBytes
  }
}

/**
 * The DAG has more distinct blocks (link targets included) than MAX_DAG_BLOCKS, the budget that bounds the
 * memory one job holds whatever the DAG's shape. Retrying cannot help, so the pin fails at once.
 */
export class DagTooLargeError extends PickupError {
  readonly code = 'DAG_TOO_MANY_BLOCKS'
  override readonly retryable = false
  readonly maxBlocks: number
  constructor(maxBlocks: number) {
    super(`the DAG has more than ${maxBlocks} blocks (distinct blocks and link targets): over MAX_DAG_BLOCKS`)
    this.maxBlocks = maxBlocks
  }
}

/** No byte arrived within FETCH_CHUNK_TIMEOUT_MS (the first byte included). */
export class FetchStalledError extends PickupError {
  readonly code = 'FETCH_STALLED'
  readonly chunkTimeoutMs: number
  constructor(chunkTimeoutMs: number) {
    super(`no data received for ${chunkTimeoutMs} ms`)
    this.chunkTimeoutMs = chunkTimeoutMs
  }
}

/** The whole fetch took longer than FETCH_TIMEOUT_MS. */
export class FetchTimeoutError extends PickupError {
  readonly code = 'FETCH_TIMEOUT'
  readonly timeoutMs: number
  constructor(timeoutMs: number) {
    super(`the fetch did not finish within ${timeoutMs} ms`)
    this.timeoutMs = timeoutMs
  }
}

/** A block uses a codec pickup cannot follow links through, so it cannot know the DAG is complete. */
export class UnsupportedCodecError extends PickupError {
  readonly code = 'UNSUPPORTED_CODEC'
  override readonly retryable = false
  readonly codec: number
  constructor(codec: number) {
    super(
      `unsupported codec 0x${codec.toString(16)}: pickup follows links of dag-pb, raw, dag-cbor and dag-json`,
    )
    this.codec = codec
  }
}

/** A block is hashed with a function pickup cannot verify. */
export class UnsupportedHashError extends PickupError {
  readonly code = 'UNSUPPORTED_HASH'
  override readonly retryable = false
  readonly hashCode: number
  constructor(hashCode: number, detail?: string) {
    super(detail ?? `unsupported multihash function 0x${hashCode.toString(16)}`)
    this.hashCode = hashCode
  }
}

/** A block's bytes do not hash to its CID: the peer (or the kubo node) sent something else. */
export class BlockHashMismatchError extends PickupError {
  readonly code = 'BLOCK_HASH_MISMATCH'
  readonly cid: string
  constructor(cid: { toString(): string }) {
    super(`the block returned for ${cid} does not match its hash`)
    this.cid = cid.toString()
  }
}

/** A block hashes right but does not decode with its codec: no retry can change its bytes. */
export class BlockDecodeError extends PickupError {
  readonly code = 'BLOCK_DECODE_FAILED'
  override readonly retryable = false
  constructor(cid: { toString(): string }, reason: string) {
    super(`block ${cid} does not decode: ${reason}`)
  }
}

/**
 * The worker's own IPFS node (kubo's RPC API) did not answer: not the content's fault. The job is released for
 * a later attempt, and the worker takes no new job until the node answers again (pickup/ipfs-gate.ts).
 */
export class IpfsUnavailableError extends PickupError {
  readonly code = 'IPFS_UNAVAILABLE'
  constructor(detail: string) {
    super(`the worker's IPFS node does not answer: ${detail}`)
  }
}

/**
 * A server-side copy was refused because its source is no longer the object that was read (its ETag changed):
 * the bytes that would be copied are not the bytes that were verified.
 */
export class CopySourceChangedError extends PickupError {
  readonly code = 'COPY_SOURCE_CHANGED'
  readonly key: string
  constructor(key: string) {
    super(`the object ${key} changed since it was read: not copied`)
    this.key = key
  }
}

/** The worker was asked to stop (SIGTERM) before the job finished; the job is released, not failed. */
export class ShutdownError extends PickupError {
  readonly code = 'SHUTDOWN'
  constructor() {
    super('the worker is shutting down')
  }
}

/**
 * The last request for the content went away while its fetch ran (or before it started): the fetch stops,
 * stores nothing, and the pin records why. Not retried: a new request queues the content again.
 */
export class FetchCancelledError extends PickupError {
  readonly code = 'CANCELLED'
  override readonly retryable = false
  constructor() {
    super('no request wants this content any longer')
  }
}

/** The reason recorded on a pin for any error: stable code first, then the message. */
export function describeError(err: unknown): { code: string; message: string; retryable: boolean } {
  if (err instanceof PickupError) return { code: err.code, message: err.message, retryable: err.retryable }
  if (err instanceof Error) {
    const code = err.name === 'AbortError' ? 'ABORTED' : err.name === 'TimeoutError' ? 'TIMEOUT' : 'INTERNAL'
    return { code, message: err.message, retryable: true }
  }
  return { code: 'INTERNAL', message: String(err), retryable: true }
}
