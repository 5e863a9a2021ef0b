/**
 * Delegates: the multiaddrs of pickup's IPFS peers that a client's node should connect to, so the content
 * flows at once instead of waiting for a worker to take the job and find the client. The cluster API puts
 * them in `metadata.delegates`; the Pinning Service API in every PinStatus (1 to 20, each ending in
 * `/p2p/<peer id>`: kubo aborts on anything else, an empty list included).
 *
 * Policy: the live, ready workers' addresses (from the worker registry), only those ending in `/p2p/`, at most
 * MAX_DELEGATES; when no worker is live (scaled to zero, or all restarting), the configured fallback (stable
 * addresses of the service's own peers: `PSA_DELEGATES` in AWS, the embedded node in local mode). The list is
 * cached for `cacheMs`: kubo polls a request every 500 ms and the registry read is a Scan.
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { Clock, WorkerRegistry } from './ports.ts'

export const MAX_DELEGATES = 20

export function isDelegateAddress(addr: string): boolean {
  if (!/\/p2p\/[^/]+$/.test(addr)) return false
  try {
    multiaddr(addr)
    return true
  } catch {
    return false
  }
}

function usable(addrs: readonly string[]): string[] {
  return [...new Set(addrs.filter(isDelegateAddress))].slice(0, MAX_DELEGATES)
}

export interface DelegatesOptions {
  cacheMs: number
  /** Used when no worker is live. */
  fallback?: () => string[] | Promise<string[]>
}

/** The current delegates, possibly none. */
export function createDelegates(
  opts: DelegatesOptions,
  ctx: { workers: WorkerRegistry; clock: Clock },
): () => Promise<string[]> {
  let cached: { at: number; value: Promise<string[]> } | undefined
  async function compute(): Promise<string[]> {
    const live = usable(
      (await ctx.workers.live(ctx.clock.now())).filter((w) => w.ready !== false).flatMap((w) => w.multiaddrs),
    )
    if (live.length > 0) return live
    return usable((await opts.fallback?.()) ?? [])
  }
  return () => {
    const t = ctx.clock.now()
    if (!cached || t - cached.at >= opts.cacheMs) {
      const value = compute()
      cached = { at: t, value }
      // A failure is not cached.
      value.catch(() => {
        if (cached?.value === value) cached = undefined
      })
    }
    return cached.value
  }
}
