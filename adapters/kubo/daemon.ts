/**
 * Starts a kubo daemon the way the worker's ECS task does: `ipfs init` on a repo of its own (once), then the
 * very script the kubo image runs on every start (docker/kubo/001-pickup-config.sh), then `ipfs daemon`
 * (without --enable-gc: the worker collects between jobs). Local mode uses it when IPFS_NODE=kubo; the test
 * suite uses it for worker and origin nodes.
 *
 * The binary is KUBO_BINARY, or the one scripts/install-tools.sh built (`npm run tools`) at the version
 * tools/kubo/go.mod pins.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { readFile, rm } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOT = resolve(import.meta.dirname, '../..')

/** The script the kubo image runs on every start. */
export const KUBO_CONFIG_SCRIPT = join(ROOT, 'docker/kubo/001-pickup-config.sh')

/** The kubo version tools/kubo/go.mod pins, and docker/kubo/Dockerfile ships. */
export function pinnedKuboVersion(): string {
  const gomod = readFileSync(join(ROOT, 'tools/kubo/go.mod'), 'utf8')
  const version = /github\.com\/ipfs\/kubo (v\S+)/.exec(gomod)?.[1]
  if (!version) throw new Error('tools/kubo/go.mod does not require github.com/ipfs/kubo')
  return version
}

/** KUBO_BINARY, or the binary `npm run tools` built; undefined when neither exists. */
export function findKuboBinary(env: Record<string, string | undefined> = process.env): string | undefined {
  if (env.KUBO_BINARY) return env.KUBO_BINARY
  const tools = env.PICKUP_TOOLS_DIR ?? join(homedir(), '.cache/pickup/tools')
  const built = join(tools, `kubo-${pinnedKuboVersion()}`, 'ipfs')
  return existsSync(built) ? built : undefined
}

export interface KuboDaemonOptions {
  binary: string
  /** IPFS_PATH. Initialised when it holds no repo yet; kept otherwise (a restart keeps its blocks). */
  repo: string
  /**
   * `ipfs init` profiles. Default `test` (loopback, no bootstrap peers); ECS uses `server`; null: kubo's
   * defaults (public bootstrap peers).
   */
  profile?: string | null
  /** Run docker/kubo/001-pickup-config.sh after init, as the image does on every start. Default true. */
  pickupConfig?: boolean
  /** Environment for the config script and the daemon: KUBO_API_ADDR, KUBO_SWARM_ADDRS, ... */
  env?: Record<string, string>
  /** `ipfs config --json` settings applied last. */
  config?: Record<string, unknown>
  /** How long to wait for "Daemon is ready". Default 60 s. */
  readyTimeoutMs?: number
}

export interface KuboDaemon {
  /** The RPC API, `http://127.0.0.1:<port>`. */
  readonly url: string
  readonly peerId: string
  readonly repo: string
  /** The daemon process; undefined while stopped. */
  readonly process: ChildProcess | undefined
  /** Runs the `ipfs` CLI on this repo (so against the running daemon). Rejects on a non-zero exit. */
  cli(args: string[], opts?: { input?: Uint8Array | string; timeoutMs?: number }): Promise<string>
  /** Kills the daemon with `signal` and waits for it to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** Starts the daemon again on the same repo and the same RPC port. */
  restart(): Promise<void>
}

/** Runs the `ipfs` CLI with `env` (IPFS_PATH chooses the repo); its stdout, or an error carrying its stderr. */
export async function runIpfs(
  binary: string,
  env: NodeJS.ProcessEnv,
  args: string[],
  opts: { input?: Uint8Array | string | undefined; timeoutMs?: number | undefined } = {},
): Promise<string> {
  const child = run(binary, args, {
    env,
    maxBuffer: 256 * 1024 * 1024,
    timeout: opts.timeoutMs ?? 60_000,
    encoding: 'utf8',
  })
  if (opts.input !== undefined) child.child.stdin?.end(opts.input)
  try {
    return (await child).stdout
  } catch (err) {
    const e = err as { stderr?: string; message: string }
    throw new Error(`ipfs ${args.join(' ')}: ${e.stderr?.trim() || e.message}`)
  }
}

export async function startKuboDaemon(opts: KuboDaemonOptions): Promise<KuboDaemon> {
  const { binary, repo } = opts
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    IPFS_PATH: repo,
    // The config script calls `ipfs`: this one.
    PATH: `${dirname(binary)}:${process.env.PATH ?? ''}`,
    IPFS_TELEMETRY: 'off',
    ...opts.env,
  }
  const cli = (args: string[], input?: Uint8Array | string, timeoutMs?: number): Promise<string> =>
    runIpfs(binary, env, args, { input, timeoutMs })

  if (!existsSync(join(repo, 'config'))) {
    const profile = opts.profile === undefined ? 'test' : opts.profile
    await cli(['init', ...(profile ? [`--profile=${profile}`] : []), '--empty-repo'])
  }
  if (opts.pickupConfig ?? true) await run('sh', [KUBO_CONFIG_SCRIPT], { env })
  for (const [key, value] of Object.entries(opts.config ?? {})) {
    await cli(['config', '--json', key, JSON.stringify(value)])
  }

  let daemon: ChildProcess | undefined
  let url = ''
  const startDaemon = async (): Promise<void> => {
    await rm(join(repo, 'api'), { force: true })
    const child = spawn(binary, ['daemon'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    daemon = child
    let output = ''
    let timer: NodeJS.Timeout | undefined
    try {
      await new Promise<void>((resolve, reject) => {
        const onData = (chunk: Buffer) => {
          output += chunk.toString()
          if (output.includes('Daemon is ready')) resolve()
        }
        child.stdout?.on('data', onData)
        child.stderr?.on('data', onData)
        child.once('error', reject)
        child.once('exit', (code, signal) =>
          reject(new Error(`kubo exited (${code ?? signal}) before it was ready:\n${output.trim()}`)),
        )
        timer = setTimeout(
          () =>
            reject(new Error(`kubo was not ready within ${opts.readyTimeoutMs ?? 60_000} ms:\n${output}`)),
          opts.readyTimeoutMs ?? 60_000,
        )
      })
    } catch (err) {
      child.kill('SIGKILL')
      throw err
    } finally {
      clearTimeout(timer)
    }
    // Keep draining its output so the pipes never fill.
    child.stdout?.resume()
    child.stderr?.resume()
    const api = (await readFile(join(repo, 'api'), 'utf8')).trim()
    const [, , host, , port] = api.split('/')
    url = `http://${host}:${port}`
  }
  await startDaemon()
  const { ID: peerId } = JSON.parse(await cli(['id'])) as { ID: string }

  const node: KuboDaemon = {
    get url() {
      return url
    },
    peerId,
    repo,
    get process() {
      return daemon
    },
    cli: (args, o) => cli(args, o?.input, o?.timeoutMs),
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
      await cli(['config', 'Addresses.API', `/ip4/127.0.0.1/tcp/${new URL(url).port}`])
      await startDaemon()
    },
  }
  return node
}
