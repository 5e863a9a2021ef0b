/**
 * BlockSource over a kubo node's RPC API. kubo fetches over bitswap itself; the bytes it returns are hashed
 * here again and compared with the CID, so a faulty or hostile RPC endpoint cannot slip a wrong block into
 * a CAR.
 */
import { createHash } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { create } from 'kubo-rpc-client'
import type { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import { BlockHashMismatchError, IpfsUnavailableError, UnsupportedHashError } from '../../core/errors.ts'
import type { BlockSource, Logger } from '../../core/ports.ts'

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000

export interface KuboBlockSourceOptions {
  /** The RPC API, e.g. `http://127.0.0.1:5001`. */
  url: string
  log: Logger
  /** Each `swarm/connect` gives up after this long. Default 10 s. */
  connectTimeoutMs?: number
}

/** Multihash codes pickup can verify, and node:crypto's name for each. */
const NODE_HASHES: ReadonlyMap<number, string> = new Map([
  [0x12, 'sha256'],
  [0x13, 'sha512'],
  [0x14, 'sha3-512'],
  [0x15, 'sha3-384'],
  [0x16, 'sha3-256'],
  [0x17, 'sha3-224'],
])

/** Throws BlockHashMismatchError unless `bytes` hash to the CID's multihash (a truncated one included). */
export function verifyBlock(cid: CID, bytes: Uint8Array): void {
  const { code, digest } = cid.multihash
  let actual: Uint8Array
  if (code === identity.code) {
    actual = bytes
    if (actual.length !== digest.length) throw new BlockHashMismatchError(cid)
  } else {
    const algorithm = NODE_HASHES.get(code)
    if (algorithm === undefined) throw new UnsupportedHashError(code)
    actual = createHash(algorithm).update(bytes).digest()
    if (digest.length > actual.length) throw new BlockHashMismatchError(cid)
  }
  for (let i = 0; i < digest.length; i++) {
    if (actual[i] !== digest[i]) throw new BlockHashMismatchError(cid)
  }
}

export function createKuboBlockSource(opts: KuboBlockSourceOptions): BlockSource {
  const { log } = opts
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  const client = create({ url: opts.url })

  async function connectOne(addr: string, signal: AbortSignal | undefined): Promise<void> {
    const started = Date.now()
    try {
      const timeout = AbortSignal.timeout(connectTimeoutMs)
      await client.swarm.connect(multiaddr(addr), {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      })
      log.debug({ addr, ms: Date.now() - started }, 'kubo connected to origin')
    } catch (err) {
      log.warn(
        { addr, ms: Date.now() - started, err: err instanceof Error ? err.message : String(err) },
        'kubo could not connect to origin',
      )
    }
  }

  return {
    async connect(addrs, connectOpts) {
      await Promise.all(addrs.map((addr) => connectOne(addr, connectOpts?.signal)))
    },

    async get(cid, getOpts) {
      let bytes: Uint8Array
      try {
        bytes = await client.block.get(cid, { signal: getOpts?.signal })
      } catch (err) {
        throw unreachable(err) ?? err
      }
      verifyBlock(cid, bytes)
      return bytes
    },

    async multiaddrs() {
      const { id, addresses } = await client.id().catch((err: unknown) => {
        throw unreachable(err) ?? err
      })
      const peer = id.toString()
      return addresses.map((ma) => {
        const text = ma.toString()
        return text.includes('/p2p/') ? text : `${text}/p2p/${peer}`
      })
    },
  }
}

/** Errors of the HTTP connection to kubo itself (refused, reset, closed mid-answer), as a connection error. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED'])

/** An IpfsUnavailableError when `err` says kubo's RPC API could not be reached or dropped the connection. */
function unreachable(err: unknown): IpfsUnavailableError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && CONNECTION_CODES.has(code))
      return new IpfsUnavailableError(`${code}: ${e.message}`)
  }
  return undefined
}
