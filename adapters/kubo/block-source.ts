/**
 * BlockSource over a kubo node's RPC API. kubo fetches over bitswap itself; the bytes it returns are hashed
 * here again and compared with the CID, so a faulty or hostile RPC endpoint cannot slip a wrong block into
 * a CAR. A block get that goes unanswered is cancelled and issued again (core/reask.ts): kubo then wants it
 * anew, from its connected peers and through a provider lookup.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { create } from 'kubo-rpc-client'
import { IpfsUnavailableError } from '../../core/errors.ts'
import { checkHash, verifyBlock } from '../../core/hash-policy.ts'
import type { BlockSource, Logger } from '../../core/ports.ts'
import { type ReaskingBlockSource, type ReaskOptions, withReasking } from '../../core/reask.ts'

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000

export interface KuboBlockSourceOptions {
  /** The RPC API, e.g. `http://127.0.0.1:5001`. */
  url: string
  log: Logger
  /** Each `swarm/connect` gives up after this long. Default 10 s. */
  connectTimeoutMs?: number
  /** Asking again for unanswered blocks (core/reask.ts); `false` turns it off. */
  reask?: ReaskOptions | false
}

/**
 * Throws unless `bytes` are the block the CID names, under pickup's one hash policy (core/hash-policy.ts):
 * kubo can fetch blocks hashed with functions the validator refuses; those fail here, permanently.
 */
export { verifyBlock } from '../../core/hash-policy.ts'

export function createKuboBlockSource(opts: KuboBlockSourceOptions): ReaskingBlockSource {
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

  const source: BlockSource = {
    async connect(addrs, connectOpts) {
      await Promise.all(addrs.map((addr) => connectOne(addr, connectOpts?.signal)))
    },

    async get(cid, getOpts) {
      // A hash the validator would refuse is refused before kubo spends a fetch on it.
      checkHash(cid)
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
  if (opts.reask === false) return Object.assign(source, { reasks: () => 0 })
  return withReasking(source, { log, ...opts.reask })
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
