/**
 * Local mode's data directory: created private (0700: it holds credentials and the IPFS node's private key),
 * checked writable, and locked by one pickup at a time (`pickup.lock`: the pid and API URL of the holder),
 * since two processes on one directory would share one LevelDB and one SQLite file. A lock whose process is
 * gone (killed, crashed) is taken over.
 *
 * The lock is taken by creating the file exclusively; a stale one is removed, then created again. Two starts
 * that find the same stale lock at the same instant could both take it (the window is one unlink); pickup is
 * started by hand, so that is left as it is.
 */
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, open, readFile, stat, unlink, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DataDirLockedError, DataDirUnwritableError } from './errors.ts'

export const LOCK_FILE = 'pickup.lock'

export interface LockHolder {
  pid: number
  /** The holder's HTTP API, once it serves. */
  api?: string
  /** ISO time the lock was taken. */
  since: string
}

export interface DataDirLock {
  file: string
  /** The dead process whose lock was taken over, if any. */
  tookOverFrom?: LockHolder
  /** Records the API URL in the lock, for whoever finds the directory in use. */
  setApi(api: string): Promise<void>
  /** Removes the lock if it is still this process's. */
  release(): Promise<void>
}

function code(err: unknown): string {
  const c = err instanceof Error ? Reflect.get(err, 'code') : undefined
  return typeof c === 'string' ? c : String(err)
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** Creates the directory (0700) or tightens an existing one that is ours to 0700; checks it is writable. */
export async function prepareDataDir(dir: string): Promise<string> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const info = await stat(dir)
    if (!info.isDirectory()) throw new DataDirUnwritableError(dir, 'it is not a directory')
    if (process.getuid && info.uid === process.getuid() && (info.mode & 0o077) !== 0) {
      await chmod(dir, 0o700)
    }
    // Root passes every permission check (access() too): only a real write says whether it works.
    const probe = join(dir, `.write-test-${process.pid}`)
    await writeFile(probe, '')
    await unlink(probe)
  } catch (err) {
    if (err instanceof DataDirUnwritableError) throw err
    throw new DataDirUnwritableError(dir, reason(err))
  }
  return dir
}

/** Whether a process with this pid exists (EPERM: it exists, under another user). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return code(err) === 'EPERM'
  }
}

async function readHolder(file: string): Promise<LockHolder | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(file, 'utf8'))
    const pid = typeof value === 'object' && value !== null ? Reflect.get(value, 'pid') : undefined
    if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return undefined
    const api = Reflect.get(value as object, 'api')
    const since = Reflect.get(value as object, 'since')
    return {
      pid,
      ...(typeof api === 'string' ? { api } : {}),
      since: typeof since === 'string' ? since : '',
    }
  } catch {
    return undefined
  }
}

export interface LockOptions {
  pid?: number
  alive?: (pid: number) => boolean
}

/** Takes the directory's lock, or throws DataDirLockedError naming the live process that holds it. */
export async function lockDataDir(dir: string, opts: LockOptions = {}): Promise<DataDirLock> {
  const pid = opts.pid ?? process.pid
  const alive = opts.alive ?? processAlive
  const file = join(dir, LOCK_FILE)
  let holder: LockHolder = { pid, since: new Date().toISOString() }
  let tookOverFrom: LockHolder | undefined
  const write = (h: LockHolder) => `${JSON.stringify(h)}\n`

  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o644)
      try {
        await handle.writeFile(write(holder))
      } finally {
        await handle.close()
      }
      break
    } catch (err) {
      if (code(err) !== 'EEXIST') throw new DataDirUnwritableError(dir, reason(err))
    }
    let found = await readHolder(file)
    if (!found) {
      // Empty or unreadable: another start may be between creating and writing it. Look once more.
      await sleep(200)
      found = await readHolder(file)
    }
    if (found && found.pid !== pid && alive(found.pid)) throw new DataDirLockedError(dir, file, found)
    if (attempt >= 2) throw new DataDirUnwritableError(dir, `cannot replace the stale lock ${file}`)
    // The holder is gone (or it is this very process, restarted under the same pid): take the lock over.
    if (found) tookOverFrom = found
    await unlink(file).catch((err) => {
      if (code(err) !== 'ENOENT') throw new DataDirUnwritableError(dir, reason(err))
    })
  }

  return {
    file,
    ...(tookOverFrom ? { tookOverFrom } : {}),
    async setApi(api) {
      holder = { ...holder, api }
      await writeFile(file, write(holder))
    },
    async release() {
      const current = await readHolder(file)
      if (current?.pid === pid) await unlink(file).catch(() => {})
    },
  }
}

/** Writes a file only its owner can read (0600), an existing one included (writeFile's mode applies only to a new file). */
export async function writePrivateFile(file: string, text: string): Promise<void> {
  await writeFile(file, text, { mode: 0o600 })
  await chmod(file, 0o600)
}

/** The generated cluster credential, kept so restarts and the README's commands keep working. */
export async function localToken(dir: string): Promise<string> {
  const file = join(dir, 'cluster-token')
  let token: string | undefined
  try {
    token = (await readFile(file, 'utf8')).trim()
  } catch {
    // None yet.
  }
  if (token) {
    // Kept from an older pickup, which may have written it readable by others.
    await chmod(file, 0o600)
    return token
  }
  const generated = Buffer.from(`pickup:${randomBytes(18).toString('base64url')}`).toString('base64')
  await writePrivateFile(file, `${generated}\n`)
  return generated
}

/**
 * The service ports of the previous run, so endpoints.json stays valid for tools across restarts; a port
 * another program took meanwhile is left out (the service then takes a new one, which endpoints.json names).
 */
export async function previousPorts(
  dir: string,
): Promise<{ ports: { dynamodb?: number; fauxqs?: number }; taken: number[] }> {
  let prev: { dynamodb?: number; fauxqs?: number }
  try {
    const info = JSON.parse(await readFile(join(dir, 'endpoints.json'), 'utf8'))
    prev = { dynamodb: Number(new URL(info.aws.dynamodb).port), fauxqs: Number(new URL(info.aws.sqs).port) }
  } catch {
    return { ports: {}, taken: [] }
  }
  const ports: { dynamodb?: number; fauxqs?: number } = {}
  const taken: number[] = []
  for (const key of ['dynamodb', 'fauxqs'] as const) {
    const port = prev[key]
    if (!port) continue
    if (await portFree(port)) ports[key] = port
    else taken.push(port)
  }
  return { ports, taken }
}

/** Whether a port on 127.0.0.1 can be bound now. */
async function portFree(port: number): Promise<boolean> {
  const server = createServer()
  return new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}
