/**
 * BlockSource over a kubo node's RPC API. kubo fetches over bitswap itself; the bytes it returns are hashed
 * here again and compared with the CID, so a faulty or hostile RPC endpoint cannot slip a wrong block into
 * a CAR. A block get that goes unanswered is cancelled and issued again (core/reask.ts): kubo then wants it
 * anew, from its connected peers and through a provider lookup.
 */
import { createHash } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { create } from 'kubo-rpc-client'
import type { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import { BlockHashMismatchError, UnsupportedHashError } from '../../core/errors.ts'
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
      const bytes = await client.block.get(cid, { signal: getOpts?.signal })
      verifyBlock(cid, bytes)
      return bytes
    },

    async multiaddrs() {
      const { id, addresses } = await client.id()
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
