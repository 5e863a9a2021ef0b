/**
 * BlockSource over an in-process Helia node: blocks come from its blockstore, or from the network over
 * bitswap when missing. Helia verifies every block it fetches against the multihash of the CID it asked
 * for (`getCidBlockVerifierFunction` in helia's storage.ts, run on whatever a block broker returns), so no
 * second hash here; blocks already in the local blockstore are trusted as written.
 */
import type { Helia } from '@helia/interface'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Blockstore } from 'interface-blockstore'
import { collectBytes } from '../../core/bytes.ts'
import { UnsupportedHashError } from '../../core/errors.ts'
import type { BlockSource, Logger } from '../../core/ports.ts'

export const DEFAULT_DIAL_TIMEOUT_MS = 10_000

export interface HeliaBlockSourceOptions {
  log: Logger
  /** Each dial of `connect` gives up after this long. Default 10 s. */
  dialTimeoutMs?: number
  /**
   * Keep the blocks fetched from the network in the node's blockstore. Default false: a block that was not
   * in the blockstore before the get is deleted from it once returned, so fetching a large DAG does not
   * fill the node's memory (or disk). Blocks the node already held are never deleted.
   */
  retainBlocks?: boolean
}

export function createHeliaBlockSource(
  helia: Helia & { libp2p: Libp2p },
  opts: HeliaBlockSourceOptions,
): BlockSource {
  const log = opts.log
  const dialTimeoutMs = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS
  // Deleting through helia.blockstore takes Helia's GC write lock, which waits for every get in flight (they
  // hold read locks while fetching) and stalls new ones: delete from the store under it instead.
  const local = opts.retainBlocks ? undefined : unwrap(helia.blockstore)
  if (!opts.retainBlocks && !local) {
    log.warn({}, 'the Helia blockstore cannot be unwrapped: fetched blocks will be retained')
  }

  async function dial(addr: string, signal: AbortSignal | undefined): Promise<void> {
    const started = Date.now()
    try {
      const ma = multiaddr(addr)
      const timeout = AbortSignal.timeout(dialTimeoutMs)
      const connection = await helia.libp2p.dial(ma, {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      })
      log.debug({ addr, peer: connection.remotePeer.toString(), ms: Date.now() - started }, 'dialled origin')
    } catch (err) {
      log.warn({ addr, ms: Date.now() - started, err: errorMessage(err) }, 'could not dial origin')
    }
  }

  return {
    async connect(addrs, connectOpts) {
      await Promise.all(addrs.map((addr) => dial(addr, connectOpts?.signal)))
    },

    async get(cid, getOpts) {
      const signal = getOpts?.signal
      const present = local ? await helia.blockstore.has(cid, { signal }) : true
      let bytes: Uint8Array
      try {
        bytes = await collectBytes(helia.blockstore.get(cid, { signal }))
      } catch (err) {
        if (err instanceof Error && err.name === 'UnknownHashAlgorithmError')
          throw new UnsupportedHashError(cid.multihash.code)
        throw err
      }
      if (local && !present) {
        Promise.resolve()
          .then(() => local.delete(cid))
          .catch((err: unknown) => {
            log.warn({ cid: cid.toString(), err: errorMessage(err) }, 'could not drop a fetched block')
          })
      }
      return bytes
    },

    async multiaddrs() {
      const peerId = helia.libp2p.peerId.toString()
      return helia.libp2p.getMultiaddrs().map((ma) => {
        const text = ma.toString()
        return text.includes('/p2p/') ? text : `${text}/p2p/${peerId}`
      })
    },
  }
}

/** Helia's BlockStorage has `unwrap()` (not in its interface): the networked store without the GC lock. */
function unwrap(blockstore: Helia['blockstore']): Pick<Blockstore, 'delete'> | undefined {
  const candidate = (blockstore as { unwrap?: () => Blockstore }).unwrap
  return typeof candidate === 'function' ? candidate.call(blockstore) : undefined
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
