/**
 * The ways `npm start` refuses to start that a newcomer can meet, each as a process: one line on stderr
 * saying what happened and what to do, no stack, exit 1. Dependencies not installed (a copy of the project
 * without node_modules, through `npm start` itself), Node too old (run without npm), bad configuration, a
 * data directory that cannot be written, and one written by an older pickup (a table lacking an index, which
 * the embedded DynamoDB cannot add).
 */
import { execFileSync } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import type { Server } from 'node:http'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTableInput, pinsTable, tableName } from '../../adapters/dynamodb/tables.ts'
import { type Exit, entry, localEnv, plainLines, repo, run } from './helpers.ts'

let root: string

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pickup-start-refusals-'))
})
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true })
})

/** Exit 1 with one line on stderr (no stack), which is returned. */
function refused(exit: Exit): string {
  expect(exit.code, `stdout:\n${exit.stdout}\nstderr:\n${exit.stderr}`).toBe(1)
  expect(exit.stderr).not.toMatch(/^\s+at /m)
  const lines = plainLines(exit.stderr).filter((l) => !l.startsWith('npm '))
  expect(lines).toHaveLength(1)
  expect(exit.stdout).not.toContain('pickup is running')
  return lines[0] ?? ''
}

/** A Node on PATH older than 22.18 other than this one (the machine's own), if there is one. */
function oldNode(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir.includes('node_modules')) continue
    const candidate = join(dir, 'node')
    try {
      const version = execFileSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()
      const [major = 0, minor = 0] = version.split('.').map(Number)
      if (major < 22 || (major === 22 && minor < 18)) return candidate
    } catch {
      // Not there.
    }
  }
  return undefined
}

/** PATH without any node_modules/.bin: what a shell has before `npm install`. */
function pathWithoutProjectNode(): string {
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((d) => !d.includes('node_modules'))
    .join(delimiter)
}

describe('npm start refuses, in one line', () => {
  it('before `npm install`: names missing dependencies and says to run npm install', async () => {
    // The project as cloned: its package.json and entry, no node_modules.
    const clone = join(root, 'clone')
    await mkdir(join(clone, 'local'), { recursive: true })
    await copyFile(join(repo, 'package.json'), join(clone, 'package.json'))
    await copyFile(entry, join(clone, 'local/start.js'))
    const exit = await run(
      localEnv({ PATH: pathWithoutProjectNode(), PICKUP_DATA_DIR: join(root, 'unused') }),
      {
        command: 'npm',
        args: ['start', '--silent'],
        cwd: clone,
      },
    ).exited
    const line = refused(exit)
    expect(line).toMatch(
      /^pickup: dependencies are not installed \(missing: @aws-sdk\/client-dynamodb, .* more\)\./,
    )
    expect(line).toContain(`Run \`npm install\` in ${clone}, then \`npm start\`.`)
  })

  const old = oldNode()
  it.skipIf(!old)(`on a Node older than 22.18 (${old ?? 'none on PATH'}), run without npm`, async () => {
    const exit = await run(localEnv({ PICKUP_DATA_DIR: join(root, 'unused') }), {
      command: old,
      args: [entry],
    }).exited
    const line = refused(exit)
    expect(line).toMatch(
      /^pickup: needs Node 22\.18 or later, and this is v\d+\.\d+\.\d+\. Run it with `npm start`/,
    )
  })

  it('with bad configuration: names every bad variable', async () => {
    const exit = await run(
      localEnv({
        PICKUP_DATA_DIR: join(root, 'unused'),
        PORT: 'abc',
        BATCH_SIZE: '0',
        CHAIN_RPC_1: 'wss://not-http.example',
      }),
    ).exited
    const line = refused(exit)
    expect(line).toMatch(
      /^pickup: invalid configuration: .*BATCH_SIZE: .*PORT: .*CHAIN_RPC_1: the endpoint must be an http\(s\) URL/,
    )
  })

  it("when the worker's process cannot start (its IPFS node refuses IPFS_LISTEN)", async () => {
    const exit = await run(
      localEnv({ PICKUP_DATA_DIR: join(root, 'worker-refused'), IPFS_LISTEN: '/not/a/multiaddr' }),
    ).exited
    expect(refused(exit)).toMatch(
      /^pickup: the worker's process exited \(1\) before it started \(its error, if it printed one, is above\); LOCAL_WORKER=inline/,
    )
    // Its error is in its log line, which local mode passes on.
    expect(exit.stdout).toMatch(/"service":"pickup-worker".*multiaddr/)
  })

  it('when the data directory cannot be created (a file is in the way)', async () => {
    const file = join(root, 'a-file')
    await writeFile(file, 'not a directory')
    const dir = join(file, 'data')
    const line = refused(await run(localEnv({ PICKUP_DATA_DIR: dir })).exited)
    expect(line).toMatch(new RegExp(`^pickup: cannot write the data directory ${dir} \\(.*ENOTDIR.*\\)\\. `))
    expect(line).toMatch(/Make it writable, or use another directory: PICKUP_DATA_DIR=\S+ npm start$/)
  })

  it.skipIf(process.getuid?.() === 0)('when the data directory is read-only (not as root)', async () => {
    const dir = join(root, 'read-only')
    await mkdir(dir, { mode: 0o500 })
    const line = refused(await run(localEnv({ PICKUP_DATA_DIR: dir })).exited)
    expect(line).toMatch(/^pickup: cannot write the data directory .*EACCES/)
  })

  it('when the data directory was written by an older pickup (a table lacks an index)', async () => {
    const dir = join(root, 'older')
    // The pins table as an older pickup created it: without its indexes.
    await mkdir(join(dir, 'services'), { recursive: true })
    const factory = createRequire(import.meta.url)('dynalite') as (o: { path: string }) => Server
    const dynalite = factory({ path: join(dir, 'services', 'dynamodb') })
    await new Promise<void>((resolve) => dynalite.listen(0, '127.0.0.1', resolve))
    const address = dynalite.address()
    const port = typeof address === 'object' && address ? address.port : 0
    const client = new DynamoDBClient({
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    })
    const name = tableName('pickup-local', pinsTable)
    const { GlobalSecondaryIndexes: _, ...current } = createTableInput(pinsTable, name)
    const key = pinsTable.partitionKey
    await client.send(
      new CreateTableCommand({
        ...current,
        AttributeDefinitions: [{ AttributeName: key.name, AttributeType: key.type }],
      }),
    )
    client.destroy()
    await new Promise<void>((resolve, reject) => {
      dynalite.close((err) => (err ? reject(err) : resolve()))
      dynalite.closeAllConnections()
    })

    const line = refused(await run(localEnv({ PICKUP_DATA_DIR: dir })).exited)
    expect(line).toContain(
      `pickup: the data directory ${dir} was written by an older pickup: table ${name} lacks`,
    )
    expect(line).toContain(`Delete ${dir}/services/dynamodb to recreate the tables`)
    expect(line).toMatch(/or use another directory: PICKUP_DATA_DIR=\S+ npm start$/)
  })
})
