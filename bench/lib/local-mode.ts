/**
 * Runs local mode (`local/main.ts`, what `npm start` runs) in a child process with its own data directory,
 * so a benchmark's load generator does not share a thread with the server it measures.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface LocalMode {
  api: string
  authorization: string
  endpoints: Record<string, unknown>
  dataDir: string
  child: ChildProcess
  stop(): Promise<void>
}

export async function startLocalMode(env: Record<string, string> = {}): Promise<LocalMode> {
  const dataDir = await mkdtemp(join(tmpdir(), 'pickup-bench-'))
  // LOCAL_CPU_PROF=<dir>: local mode writes a V8 CPU profile there when it stops (open it in Chrome's DevTools).
  const profile = process.env.LOCAL_CPU_PROF
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.LOCAL_CPU_PROF}`]
    : []
  const child = spawn(
    process.execPath,
    [...profile, '--disable-warning=ExperimentalWarning', 'local/main.ts'],
    {
      env: {
        ...process.env,
        PICKUP_DATA_DIR: dataDir,
        PORT: '0',
        IPFS_PUBLIC_NETWORK: 'false',
        LOG_LEVEL: process.env.LOCAL_LOG_LEVEL ?? 'warn',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  // Keep draining stdout (logs) so the child never blocks on a full pipe.
  child.stdout?.on('data', (d) => {
    if (process.env.LOCAL_LOG_LEVEL) process.stderr.write(d)
  })
  await new Promise<void>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (d) => {
      out += String(d)
      if (out.includes('pickup is running')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`local mode exited with ${code}: ${out}`)))
  })
  const endpoints = JSON.parse(await readFile(join(dataDir, 'endpoints.json'), 'utf8'))
  return {
    api: endpoints.api,
    authorization: endpoints.clusterAuthorization,
    endpoints,
    dataDir,
    child,
    async stop() {
      child.kill('SIGINT')
      await new Promise((r) => child.once('exit', r))
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}
