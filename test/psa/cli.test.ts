/**
 * The `pickup` command line against a running local mode: `npx pickup token create alice` (a real process, as
 * an operator types it) prints a token that the Pinning Service API accepts; list and revoke; and clear
 * errors when there is nothing to reach.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pickup as runPickup } from '../cli/helpers.ts'
import { startTestSystem, type TestSystem } from '../helpers/system.ts'
import { psaFetch } from './helpers.ts'

const run = promisify(execFile)
const repo = join(import.meta.dirname, '../..')

let t: TestSystem
let dataDir: string
beforeAll(async () => {
  t = await startTestSystem({}, { worker: 'none' })
  dataDir = await mkdtemp(join(tmpdir(), 'pickup-cli-'))
  // What `npm start` writes (local/main.ts).
  const { endpoints, credentials, names } = t.system.services
  await writeFile(
    join(dataDir, 'endpoints.json'),
    JSON.stringify({ api: t.system.url, aws: { ...endpoints, credentials }, resources: names }),
  )
})
afterAll(async () => {
  await t?.stop()
  if (dataDir) await rm(dataDir, { recursive: true, force: true })
})

/** `npx pickup ...` in the repository, as an operator runs it. */
async function npxPickup(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run('npx', ['pickup', ...args], {
      cwd: repo,
      env: { ...process.env, PICKUP_DATA_DIR: dataDir, ...env },
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

/** The command's main() in this process (faster than a process per case), by default on this data dir. */
function pickup(args: string[], env: Record<string, string | undefined> = { PICKUP_DATA_DIR: dataDir }) {
  return runPickup(dataDir, args, { env })
}

describe('pickup token', () => {
  it('`npx pickup token create alice` prints a working token as its last line; revoke stops it', async () => {
    const created = await npxPickup(['token', 'create', 'alice', '--label', 'laptop'])
    expect(created.code, created.stderr).toBe(0)
    const lines = created.stdout.trim().split('\n')
    const token = lines[lines.length - 1]!
    expect(token).toMatch(/^pk_[A-Za-z0-9_-]{43}$/)
    expect(created.stdout).toContain(`${t.system.url}/psa`)

    const res = await psaFetch(t, token, '/pins', {
      method: 'POST',
      body: JSON.stringify({ cid: 'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' }),
    })
    expect(res.status).toBe(202)

    const listed = await pickup(['token', 'list', 'alice', '--json'])
    expect(listed.code).toBe(0)
    const records = JSON.parse(listed.stdout) as Array<{ hash: string; user: string; label?: string }>
    expect(records).toHaveLength(1)
    expect(records[0]).toMatchObject({ user: 'alice', label: 'laptop' })
    expect(listed.stdout).not.toContain(token)

    const revoked = await npxPickup(['token', 'revoke', records[0]!.hash.slice(0, 12)])
    expect(revoked.code, revoked.stderr).toBe(0)
    expect(revoked.stdout).toContain('Revoked token')
    expect((await psaFetch(t, token, '/pins')).status).toBe(401)
  })

  it('lists everyone as a table, revokes by the token itself, and refuses ambiguous or short references', async () => {
    const a = await pickup(['token', 'create', 'bob'])
    const b = await pickup(['token', 'create', 'carol', '--label', 'ci'])
    expect([a.code, b.code]).toEqual([0, 0])
    const table = await pickup(['token', 'list'])
    expect(table.stdout.split('\n')[0]).toMatch(/^HASH\s+USER\s+CREATED\s+LABEL$/)
    expect(table.stdout).toMatch(/\sbob\s/)
    expect(table.stdout).toMatch(/\scarol\s.*\sci$/m)

    const tokenB = b.stdout.trim().split('\n').pop()!
    expect((await pickup(['token', 'revoke', tokenB])).stdout).toContain('of carol')
    expect(await pickup(['token', 'revoke', tokenB])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/no such token/),
    })
    expect(await pickup(['token', 'revoke', 'abc'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/8 hex digits/),
    })
    expect(await pickup(['token', 'create', 'not a user!'])).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/user ids/),
    })
    expect((await pickup(['token', 'list', 'nobody'])).stdout).toBe('no tokens\n')
  })

  it('says what it could not find or reach, and which setting to check', async () => {
    const missing = await pickup(['token', 'list'], { PICKUP_DATA_DIR: join(dataDir, 'nope') })
    expect(missing.code).toBe(1)
    expect(missing.stderr).toMatch(/endpoints\.json does not exist/)
    expect(missing.stderr).toMatch(/npm start/)

    const deadDir = await mkdtemp(join(tmpdir(), 'pickup-cli-dead-'))
    await writeFile(
      join(deadDir, 'endpoints.json'),
      JSON.stringify({
        aws: {
          dynamodb: 'http://127.0.0.1:9',
          region: 'us-east-1',
          credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
        },
        resources: { tokensTable: 't' },
      }),
    )
    const dead = await pickup(['token', 'list'], { PICKUP_DATA_DIR: deadDir })
    expect(dead.code).toBe(1)
    expect(dead.stderr).toMatch(/cannot reach local mode's DynamoDB at http:\/\/127\.0\.0\.1:9/)
    await rm(deadDir, { recursive: true, force: true })

    const aws = await pickup(['--aws', 'token', 'list'], {})
    expect(aws.code).toBe(1)
    expect(aws.stderr).toMatch(/TOKEN_TABLE/)
    expect(aws.stderr).toMatch(/AWS_REGION/)

    const usage = await pickup(['token', 'create'])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toMatch(/missing required argument/)
  })
})
