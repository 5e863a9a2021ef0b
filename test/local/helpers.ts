/**
 * Running `npm start`'s entry (local/start.js, what the `start` script runs) as a person would: a child
 * process with its own data directory and free ports, its stdout and stderr collected, its exit awaited.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'

export const repo = join(import.meta.dirname, '../..')
export const entry = join(repo, 'local/start.js')

export interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface Started {
  child: ChildProcess
  readonly stdout: string
  readonly stderr: string
  /** Resolves when stdout contains `text` (rejects if the process exits first, with what it printed). */
  printed(text: string | RegExp): Promise<void>
  exited: Promise<Exit>
}

/**
 * Local mode's environment for a test: offline, loopback only, any free port. `PORT`, `PICKUP_DATA_DIR` and
 * the rest can be overridden; a value of `undefined` removes the variable.
 */
export function localEnv(overrides: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PORT: '0',
    IPFS_PUBLIC_NETWORK: 'false',
    RECONCILE_INTERVAL_MS: '3600000',
  }
  delete env.IPFS_API_URL
  delete env.CLUSTER_BASIC_AUTH_TOKEN
  for (const [k, v] of Object.entries(overrides)) {
    if (v === undefined) delete env[k]
    else env[k] = v
  }
  return env
}

/** Spawns `command args` (default: this Node on local/start.js) and collects its output. */
export function run(
  env: NodeJS.ProcessEnv,
  opts: { command?: string; args?: string[]; cwd?: string } = {},
): Started {
  const child = spawn(opts.command ?? process.execPath, opts.args ?? [entry], {
    cwd: opts.cwd ?? repo,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  const waiters = new Set<() => void>()
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString()
    for (const w of waiters) w()
  })
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  const exited = new Promise<Exit>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return {
    child,
    get stdout() {
      return stdout
    },
    get stderr() {
      return stderr
    },
    printed(text) {
      const found = () => (typeof text === 'string' ? stdout.includes(text) : text.test(stdout))
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (found()) {
            waiters.delete(check)
            resolve()
          }
        }
        waiters.add(check)
        check()
        void exited.then((e) => {
          if (!found()) {
            reject(
              new Error(
                `exited (${e.code ?? e.signal}) before printing ${text}\nstdout:\n${e.stdout}\nstderr:\n${e.stderr}`,
              ),
            )
          }
        })
      })
    },
    exited,
  }
}

/** Stops a started pickup as Ctrl-C does and returns how it ended. */
export async function interrupt(started: Started): Promise<Exit> {
  started.child.kill('SIGINT')
  return started.exited
}

/** A port nothing listens on (free a moment ago). */
export async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const address = s.address()
  const port = typeof address === 'object' && address ? address.port : 0
  await new Promise<void>((resolve) => s.close(() => resolve()))
  return port
}

/** The API URL from the "pickup is running" block. */
export function apiOf(stdout: string): string {
  const m = /API: +(http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)
  if (!m?.[1]) throw new Error(`no API line in:\n${stdout}`)
  return m[1]
}

/** The lines a person reads: without the JSON log lines. */
export function plainLines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'))
}
