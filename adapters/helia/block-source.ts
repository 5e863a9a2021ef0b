/**
 * BlockSource over an in-process Helia node: blocks come from its blockstore, or from the network over
 * bitswap when missing. Helia verifies every block it fetches against the multihash of the CID it asked
 * for (`getCidBlockVerifierFunction` in helia's storage.ts, run on whatever a block broker returns), so no
 * second hash here; blocks already in the local blockstore are trusted as written.
 *
 * A block that goes unanswered is asked again (core/reask.ts): the get is cancelled and issued anew, after
 * the cancelled one has left Helia's want list (a want still listed there is not sent again), and the
 * origins this source was asked to connect to whose connection dropped are dialled again.
 */
import type { Helia } from '@helia/interface'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import type { Blockstore } from 'interface-blockstore'
import type { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { collectBytes } from '../../core/bytes.ts'
import { UnsupportedHashError } from '../../core/errors.ts'
import { blockKey, isInline, linksOf } from '../../core/links.ts'
import type { BlockSource, Logger } from '../../core/ports.ts'
import { type ReaskingBlockSource, type ReaskOptions, withReasking } from '../../core/reask.ts'

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
  /**
   * Keep the blocks fetched for a pin until the worker releases it (uploaded, or failed for good), so that a
   * retry on this node fetches only what the failed attempt did not: for a node with an on-disk blockstore
   * that holds nothing else (local mode's worker node). `release(root)` then deletes every block of the DAG
   * the node holds. Default false.
   */
  keepUntilReleased?: boolean
  /** Asking again for unanswered blocks (core/reask.ts); `false` turns it off. */
  reask?: ReaskOptions | false
}

/** How long the origins given to `connect` are remembered, to be dialled again when their connection drops. */
const ORIGIN_MEMORY_MS = 60 * 60 * 1000
const MAX_REMEMBERED_ORIGINS = 1000
/** Helia's bitswap sends want-list changes 10 ms after the last one: a cancelled want is gone after that. */
const WANT_LIST_SETTLE_MS = 50
/** Origins are dialled again at most this often, however many blocks are re-asked at once. */
const REDIAL_INTERVAL_MS = 5_000

export function createHeliaBlockSource(
  helia: Helia & { libp2p: Libp2p },
  opts: HeliaBlockSourceOptions,
): ReaskingBlockSource {
  const log = opts.log
  const dialTimeoutMs = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS
  // Deleting through helia.blockstore takes Helia's GC write lock, which waits for every get in flight (they
  // hold read locks while fetching) and stalls new ones: delete from the store under it instead.
  const keep = opts.retainBlocks || opts.keepUntilReleased
  const local = keep ? undefined : unwrap(helia.blockstore)
  const store = unwrap(helia.blockstore)
  if (!keep && !local) {
    log.warn({}, 'the Helia blockstore cannot be unwrapped: fetched blocks will be retained')
  }

  /** Origin multiaddr -> when `connect` was last asked for it. */
  const origins = new Map<string, number>()
  /** Gets cancelled and not yet out of Helia's want list, by block key: a new get of the block waits for it. */
  const settling = new Map<string, Promise<void>>()
  let lastRedial = 0

  function remember(addrs: readonly string[]): void {
    const t = Date.now()
    for (const addr of addrs) {
      origins.delete(addr)
      origins.set(addr, t)
    }
    for (const [addr, at] of origins) {
      if (origins.size <= MAX_REMEMBERED_ORIGINS && t - at < ORIGIN_MEMORY_MS) break
      origins.delete(addr)
    }
  }

  /** Dials again the remembered origins this node has no connection to. */
  async function redial(): Promise<void> {
    const t = Date.now()
    if (t - lastRedial < REDIAL_INTERVAL_MS) return
    lastRedial = t
    const connected = new Set(helia.libp2p.getConnections().map((c) => c.remotePeer.toString()))
    const lost = [...origins.keys()].filter((addr) => {
      const peer = addr.split('/p2p/')[1]
      return peer === undefined || !connected.has(peer)
    })
    if (lost.length > 0) log.info({ origins: lost.length }, 'dialling origins again')
    await Promise.all(lost.map((addr) => dial(addr, undefined)))
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

  const source: BlockSource = {
    async connect(addrs, connectOpts) {
      remember(addrs)
      await Promise.all(addrs.map((addr) => dial(addr, connectOpts?.signal)))
    },

    async get(cid, getOpts) {
      const signal = getOpts?.signal
      const key = Buffer.from(cid.multihash.bytes).toString('base64')
      const earlier = settling.get(key)
      if (earlier) await earlier
      signal?.throwIfAborted()
      const present = local ? await helia.blockstore.has(cid, { signal }) : true
      let bytes: Uint8Array
      const fetching = collectBytes(helia.blockstore.get(cid, { signal }))
      try {
        bytes = await fetching
      } catch (err) {
        if (signal?.aborted && !settling.has(key)) {
          // Out of Helia's want list once its next want-list message went out.
          const settled = new Promise<void>((resolve) => setTimeout(resolve, WANT_LIST_SETTLE_MS)).then(
            () => {
              if (settling.get(key) === settled) settling.delete(key)
            },
          )
          settling.set(key, settled)
        }
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
  if (opts.keepUntilReleased && store) {
    source.release = async (root) => {
      const started = Date.now()
      const queue: CID[] = [root]
      const seen = new Set<string>()
      let dropped = 0
      for (let cid = queue.shift(); cid; cid = queue.shift()) {
        const key = blockKey(cid)
        if (seen.has(key) || isInline(cid)) continue
        seen.add(key)
        // Only what the node holds: a block it never got has no known links, and nothing under it was fetched.
        if (!(await helia.blockstore.has(cid))) continue
        if (cid.code !== raw.code) {
          try {
            queue.push(...linksOf(cid, await collectBytes(helia.blockstore.get(cid, { offline: true }))))
          } catch (err) {
            log.warn({ cid: cid.toString(), err: errorMessage(err) }, 'could not read links of a kept block')
          }
        }
        await store.delete(cid)
        dropped++
      }
      log.info(
        { root: root.toString(), blocks: dropped, ms: Date.now() - started },
        'released the kept blocks',
      )
    }
  }
  if (opts.reask === false) return Object.assign(source, { reasks: () => 0 })
  // Not awaited: a peer that connects again is sent the whole want list, the re-asked want included.
  const onReask = () => {
    redial().catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'could not dial origins again'))
  }
  return withReasking(source, { log, ...opts.reask, onReask })
}

/** Helia's BlockStorage has `unwrap()` (not in its interface): the networked store without the GC lock. */
function unwrap(blockstore: Helia['blockstore']): Pick<Blockstore, 'delete'> | undefined {
  const candidate = (blockstore as { unwrap?: () => Blockstore }).unwrap
  return typeof candidate === 'function' ? candidate.call(blockstore) : undefined
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
