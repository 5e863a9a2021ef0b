/**
 * Real kubo daemons for the tests (adapters/kubo/daemon.ts): the binary scripts/install-tools.sh builds from
 * source (or KUBO_BINARY), each daemon on a temporary repo, on loopback, with random ports. `pickupConfig`
 * applies the very script the worker image runs on every start (docker/kubo/001-pickup-config.sh) on top of
 * `ipfs init`, as ECS does, with only its listen addresses overridden.
 *
 * When no kubo binary exists the kubo suites skip (test/global-setup.ts prints one line saying how to build
 * it), except on CI, where global setup fails the run.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CID } from 'multiformats/cid'
import {
  findKuboBinary,
  type KuboDaemon,
  pinnedKuboVersion,
  runIpfs,
  startKuboDaemon,
} from '../../adapters/kubo/daemon.ts'
import { type Block, carBytes } from '../fixtures/dags.ts'

/** The kubo version tools/kubo/go.mod pins, which docker/kubo/Dockerfile ships. */
export const KUBO_VERSION = pinnedKuboVersion()

export const kuboBinary = findKuboBinary()

/** One line for suites that skip: what is missing and how to get it. */
export const KUBO_MISSING = `kubo suites skipped: no kubo binary (npm run tools builds kubo ${KUBO_VERSION} with Go; or set KUBO_BINARY)`

/** Listen addresses for a node sharing the machine with many others: random ports on loopback. */
export const LOOPBACK_ADDRS = {
  KUBO_API_ADDR: '/ip4/127.0.0.1/tcp/0',
  KUBO_GATEWAY_ADDR: '/ip4/127.0.0.1/tcp/0',
  KUBO_SWARM_ADDRS: '["/ip4/127.0.0.1/tcp/0"]',
  // Every origin of a test is on loopback, which the image's dial filters refuse.
  KUBO_ALLOW_PRIVATE_DIALS: 'true',
}

export interface KuboOptions {
  /** Apply docker/kubo/001-pickup-config.sh, as the worker image does (default false: `init --profile=test`). */
  pickupConfig?: boolean
  /** Extra environment for the config script and the daemon. */
  env?: Record<string, string>
  /** `ipfs config --json` settings applied after init (and after the pickup script). */
  config?: Record<string, unknown>
}

export interface KuboNode extends KuboDaemon {
  /** The daemon's swarm addresses, each ending in /p2p/<peer id>. */
  multiaddrs(): Promise<string[]>
  /** Stops the daemon and deletes the repo. */
  stop(): Promise<void>
}

export async function startKubo(opts: KuboOptions = {}): Promise<KuboNode> {
  const binary = kuboBinary
  if (!binary) throw new Error(KUBO_MISSING)
  const repo = await mkdtemp(join(tmpdir(), 'pickup-kubo-'))
  const daemon = await startKuboDaemon({
    binary,
    repo,
    pickupConfig: opts.pickupConfig ?? false,
    env: { ...LOOPBACK_ADDRS, ...opts.env },
    ...(opts.config ? { config: opts.config } : {}),
  })
  return Object.assign(daemon, {
    async multiaddrs() {
      const { ID, Addresses } = JSON.parse(await daemon.cli(['id'])) as {
        ID: string
        Addresses: string[] | null
      }
      return (Addresses ?? []).map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${ID}`))
    },
    async stop() {
      await daemon.kill()
      await rm(repo, { recursive: true, force: true })
    },
  })
}

/** Adds a DAG's blocks to a kubo node, as one CAR through `ipfs dag import` (its root left unpinned). */
export async function importDag(
  node: KuboNode,
  root: CID,
  blocks: Iterable<Block> | AsyncIterable<Block>,
): Promise<void> {
  await node.cli(['dag', 'import', '--pin-roots=false'], { input: await carBytes(root, blocks) })
}

/**
 * Re-verifies a CAR with kubo, independently of pickup: imported offline into a repo of its own (no daemon,
 * so nothing missing can be fetched), its root pinned (kubo walks the whole DAG: it must be complete), then
 * `repo verify` re-hashes every block. Returns kubo's count of the DAG's blocks and the root's CID.
 */
export async function verifyCarWithKubo(
  car: AsyncIterable<Uint8Array>,
  root: CID,
): Promise<{ blocks: number; size: number }> {
  const binary = kuboBinary
  if (!binary) throw new Error(KUBO_MISSING)
  const repo = await mkdtemp(join(tmpdir(), 'pickup-kubo-check-'))
  const env = { ...process.env, IPFS_PATH: repo, IPFS_TELEMETRY: 'off' }
  const ipfs = (args: string[]) => runIpfs(binary, env, args)
  try {
    await ipfs(['init', '--profile=test', '--empty-repo'])
    const importing = spawn(binary, ['dag', 'import', '--pin-roots=true', '--stats', '--enc=json'], {
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let out = ''
    let errOut = ''
    importing.stdout.on('data', (c: Buffer) => {
      out += c.toString()
    })
    importing.stderr.on('data', (c: Buffer) => {
      errOut += c.toString()
    })
    const exited = new Promise<number | null>((resolve) => importing.once('exit', resolve))
    for await (const chunk of car) {
      if (!importing.stdin.write(chunk)) await new Promise((r) => importing.stdin.once('drain', r))
    }
    importing.stdin.end()
    if ((await exited) !== 0) throw new Error(`kubo refused the CAR: ${errOut.trim()}`)
    const lines = out
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { Root?: { Cid: { '/': string }; PinErrorMsg: string } })
    const pinned = lines.find((l) => l.Root)?.Root
    if (!pinned || pinned.PinErrorMsg) throw new Error(`kubo could not pin the root: ${pinned?.PinErrorMsg}`)
    if (pinned.Cid['/'] !== root.toString() && pinned.Cid['/'] !== root.toV1().toString())
      throw new Error(`kubo imported root ${pinned.Cid['/']}, not ${root}`)
    await ipfs(['repo', 'verify'])
    const stat = JSON.parse(
      await ipfs(['dag', 'stat', '--progress=false', '--enc=json', root.toString()]),
    ) as {
      TotalSize: number
      DagStats: Array<{ NumBlocks: number }>
    }
    return { blocks: stat.DagStats[0]?.NumBlocks ?? 0, size: stat.TotalSize }
  } finally {
    await rm(repo, { recursive: true, force: true })
  }
}
