/**
 * Real kubo daemons for the tests: the binary scripts/install-tools.sh builds from source (or KUBO_BINARY),
 * each daemon on a temporary repo, on loopback, with random ports. `pickupConfig` applies the very script the
 * worker image runs on every start (docker/kubo/001-pickup-config.sh) on top of `ipfs init`, as ECS does,
 * with only its listen addresses overridden.
 *
 * When no kubo binary exists the kubo suites skip (test/global-setup.ts prints one line saying how to build
 * it), except on CI, where global setup fails the run.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { homedir, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import type { CID } from 'multiformats/cid'
import { type Block, carBytes } from '../fixtures/dags.ts'

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '../..')

/** The kubo version tools/kubo/go.mod pins, which docker/kubo/Dockerfile ships. */
export const KUBO_VERSION = (() => {
  const gomod = readFileSync(join(ROOT, 'tools/kubo/go.mod'), 'utf8')
  const version = /github\.com\/ipfs\/kubo (v\S+)/.exec(gomod)?.[1]
  if (!version) throw new Error('tools/kubo/go.mod does not require github.com/ipfs/kubo')
  return version
})()

/** KUBO_BINARY, or the binary scripts/install-tools.sh built; undefined when neither exists. */
export function findKubo(): string | undefined {
  if (process.env.KUBO_BINARY) return process.env.KUBO_BINARY
  const tools = process.env.PICKUP_TOOLS_DIR ?? join(homedir(), '.cache/pickup/tools')
  const built = join(tools, `kubo-${KUBO_VERSION}`, 'ipfs')
  return existsSync(built) ? built : undefined
}

export const kuboBinary = findKubo()

/** One line for suites that skip: what is missing and how to get it. */
export const KUBO_MISSING = `kubo suites skipped: no kubo binary (npm run tools builds kubo ${KUBO_VERSION} with Go; or set KUBO_BINARY)`

export interface KuboOptions {
  /** Apply docker/kubo/001-pickup-config.sh, as the worker image does (default false: `init --profile=test`). */
  pickupConfig?: boolean
  /** Extra environment for the config script and the daemon. */
  env?: Record<string, string>
  /** `ipfs config --json` settings applied after init (and after the pickup script). */
  config?: Record<string, unknown>
}

export interface KuboNode {
  /** The repo (IPFS_PATH). */
  repo: string
  /** The RPC API, `http://127.0.0.1:<port>`. */
  url: string
  peerId: string
  /** The daemon's swarm addresses, each ending in /p2p/<peer id>. */
  multiaddrs(): Promise<string[]>
  /** Runs the `ipfs` CLI against this node (its repo, so its running daemon). Rejects on a non-zero exit. */
  cli(args: string[], opts?: { input?: Uint8Array | string; timeoutMs?: number }): Promise<string>
  /** The daemon process (undefined while stopped). */
  readonly process: ChildProcess | undefined
  /** Kills the daemon with `signal` and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts the daemon again on the same repo and the same RPC port. */
  restart(): Promise<void>
  /** Stops the daemon and deletes the repo. */
  stop(): Promise<void>
}

export async function startKubo(opts: KuboOptions = {}): Promise<KuboNode> {
  const binary = kuboBinary
  if (!binary) throw new Error(KUBO_MISSING)
  const repo = await mkdtemp(join(tmpdir(), 'pickup-kubo-'))
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    IPFS_PATH: repo,
    // The config script calls `ipfs`: this one.
    PATH: `${dirname(binary)}:${process.env.PATH ?? ''}`,
    // kubo's own telemetry and update checks have nothing to reach here.
    IPFS_TELEMETRY: 'off',
    ...opts.env,
  }
  const ipfs = async (args: string[], input?: Uint8Array | string, timeoutMs = 60_000): Promise<string> => {
    const child = run(binary, args, {
      env,
      maxBuffer: 256 * 1024 * 1024,
      timeout: timeoutMs,
      encoding: 'utf8',
    })
    if (input !== undefined) child.child.stdin?.end(input)
    try {
      return (await child).stdout
    } catch (err) {
      const e = err as { stderr?: string; message: string }
      throw new Error(`ipfs ${args.join(' ')}: ${e.stderr?.trim() || e.message}`)
    }
  }

  await ipfs(['init', '--profile=test', '--empty-repo'])
  if (opts.pickupConfig) {
    await run('sh', [join(ROOT, 'docker/kubo/001-pickup-config.sh')], {
      env: {
        ...env,
        // Tests run many nodes on one machine: random ports on loopback, instead of the task's fixed ones.
        KUBO_API_ADDR: '/ip4/127.0.0.1/tcp/0',
        KUBO_GATEWAY_ADDR: '/ip4/127.0.0.1/tcp/0',
        KUBO_SWARM_ADDRS: '["/ip4/127.0.0.1/tcp/0"]',
        ...opts.env,
      },
    })
  }
  for (const [key, value] of Object.entries(opts.config ?? {})) {
    await ipfs(['config', '--json', key, JSON.stringify(value)])
  }

  let daemon: ChildProcess | undefined
  let url = ''
  const startDaemon = async (): Promise<void> => {
    await rm(join(repo, 'api'), { force: true })
    const child = spawn(binary, ['daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    daemon = child
    let output = ''
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString()
        if (output.includes('Daemon is ready')) resolve()
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', onData)
      child.once('exit', (code, signal) =>
        reject(new Error(`kubo exited (${code ?? signal}) before it was ready:\n${output}`)),
      )
    })
    await Promise.race([
      ready,
      sleep(60_000).then(() => {
        throw new Error(`kubo was not ready within 60 s:\n${output}`)
      }),
    ])
    // Keep draining its output so the pipe never fills.
    child.stdout?.resume()
    child.stderr?.resume()
    const api = (await readFile(join(repo, 'api'), 'utf8')).trim()
    const [, , host, , port] = api.split('/')
    url = `http://${host}:${port}`
  }
  await startDaemon()
  const id = JSON.parse(await ipfs(['id'])) as { ID: string }

  const node: KuboNode = {
    repo,
    get url() {
      return url
    },
    peerId: id.ID,
    async multiaddrs() {
      const { ID, Addresses } = JSON.parse(await ipfs(['id'])) as { ID: string; Addresses: string[] | null }
      return (Addresses ?? []).map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${ID}`))
    },
    cli: (args, o) => ipfs(args, o?.input, o?.timeoutMs),
    get process() {
      return daemon
    },
    async kill(signal = 'SIGTERM') {
      const child = daemon
      if (!child || child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill(signal)
      await exited
      daemon = undefined
    },
    async restart() {
      await node.kill()
      // The same RPC port, so a sidecar configured with it finds the node again.
      const port = new URL(url).port
      await ipfs(['config', 'Addresses.API', `/ip4/127.0.0.1/tcp/${port}`])
      await startDaemon()
    },
    async stop() {
      await node.kill()
      await rm(repo, { recursive: true, force: true })
    },
  }
  return node
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
  const ipfs = async (args: string[]) => {
    try {
      return (await run(binary, args, { env, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' })).stdout
    } catch (err) {
      const e = err as { stderr?: string; message: string }
      throw new Error(`ipfs ${args.join(' ')}: ${e.stderr?.trim() || e.message}`)
    }
  }
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
