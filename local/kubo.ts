/**
 * Local mode's own kubo daemon (IPFS_NODE=kubo): configured by the worker image's script, as in ECS, with its
 * repo under the data directory (blocks survive a restart), its RPC API on a free loopback port and its swarm
 * on IPFS_LISTEN. Offline (IPFS_PUBLIC_NETWORK=false) it has no bootstrap peers and no routing.
 */
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  findKuboBinary,
  type KuboDaemon,
  pinnedKuboVersion,
  startKuboDaemon,
} from '../adapters/kubo/daemon.ts'
import type { LocalConfig } from './config.ts'

export class KuboMissingError extends Error {
  override readonly name = 'KuboMissingError'
  constructor() {
    super(
      `IPFS_NODE=kubo needs a kubo binary: run \`npm run tools\` (builds kubo ${pinnedKuboVersion()} with Go), or set KUBO_BINARY`,
    )
  }
}

export async function startLocalKubo(
  cfg: Pick<LocalConfig, 'IPFS_LISTEN' | 'IPFS_PUBLIC_NETWORK'>,
  dataDir: string | undefined,
): Promise<KuboDaemon> {
  const binary = findKuboBinary()
  if (!binary) throw new KuboMissingError()
  return startKuboDaemon({
    binary,
    repo: dataDir ? join(dataDir, 'kubo') : await mkdtemp(join(tmpdir(), 'pickup-kubo-')),
    profile: cfg.IPFS_PUBLIC_NETWORK ? null : 'test',
    env: {
      KUBO_API_ADDR: '/ip4/127.0.0.1/tcp/0',
      KUBO_GATEWAY_ADDR: '/ip4/127.0.0.1/tcp/0',
      KUBO_SWARM_ADDRS: JSON.stringify(cfg.IPFS_LISTEN.split(',')),
      // Local mode only: origins on loopback and private networks are the point of trying pickup locally.
      KUBO_ALLOW_PRIVATE_DIALS: 'true',
    },
    config: cfg.IPFS_PUBLIC_NETWORK ? {} : { 'Routing.Type': 'none', Bootstrap: [] },
  })
}
