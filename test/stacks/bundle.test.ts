/**
 * The deployable code, built the way a deploy builds it, offline:
 * - the Lambda functions by SST itself: `app.finish()` runs SST's deferred tasks, which bundle every
 *   function with SST's Node runtime handler (esbuild, ESM) into the project's artifacts directory, as
 *   `sst deploy` does. Under NODE_ENV=test (vitest) SST skips its AWS calls (bootstrap bucket, sourcemap
 *   upload), so nothing here needs credentials. sst@2.49.8 pins esbuild 0.18, which cannot parse import
 *   attributes (`with { type: 'json' }`, core/version.ts); package.json's `overrides` gives SST the
 *   project's esbuild, and this test checks it does;
 * - the worker, with the esbuild command of the Dockerfile's build stage, run as written there.
 * Each bundle is then loaded by Node 22: with an empty environment it must stop on a ConfigError naming the
 * missing variables (so it loads and composes), and each Lambda bundle, given a complete environment, must
 * export its handler.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { CfnFunction } from 'aws-cdk-lib/aws-lambda'
import type { Construct } from 'constructs'
import { useProject } from 'sst/project.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { synthesize } from './synth.ts'

const root = fileURLToPath(new URL('../../', import.meta.url))
const out = mkdtempSync(join(tmpdir(), 'pickup-bundle-'))
afterAll(() => rmSync(out, { recursive: true, force: true }))

/** Loads a bundle in a fresh Node 22 with exactly this environment. */
function load(file: string, env: Record<string, string>, check = '') {
  return spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `const m = await import(${JSON.stringify(pathToFileURL(file).href)}); ${check}`,
    ],
    { env: { PATH: process.env.PATH ?? '', ...env }, encoding: 'utf8', timeout: 30_000 },
  )
}

const FULL_ENV = {
  AWS_REGION: 'us-east-1',
  PIN_TABLE: 'p',
  WORKER_TABLE: 'w',
  REQUEST_TABLE: 'r',
  TOKEN_TABLE: 'k',
  PIN_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/q',
  FAILED_JOBS_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/123456789012/f',
  TEMP_BUCKET: 't',
  DESTINATION_BUCKET: 'd',
  CAR_STORED_TOPIC_ARN: 'arn:aws:sns:us-east-1:123456789012:t',
}
/** What SST sets on every function; a secret's value is used as is unless it is `__FETCH_FROM_SSM__`. */
const SST_ENV = { SST_APP: 'pickup', SST_STAGE: 'test', SST_Secret_value_CLUSTER_BASIC_AUTH_TOKEN: 'token' }

interface Built {
  handler: string
  runtime: string
  file: string
}
let built: Built[] = []

beforeAll(async () => {
  const s = await synthesize('production')
  await s.app.finish()
  built = Object.values(s.stacks).flatMap((stack) =>
    // SST's Stack lists its own functions (not CDK's framework handlers).
    (stack as unknown as { getAllFunctions(): Construct[] }).getAllFunctions().map((fn) => {
      const cfn = fn.node.defaultChild as CfnFunction
      const handler = cfn.handler ?? ''
      const file = join(
        useProject().paths.artifacts,
        fn.node.addr,
        `${handler.slice(0, handler.lastIndexOf('.'))}.mjs`,
      )
      return { handler, runtime: cfn.runtime ?? '', file }
    }),
  )
}, 120_000)

describe('Lambda functions, built by SST', () => {
  it('are the five entry points, on Node 22', () => {
    expect(built.map((b) => b.handler).sort()).toEqual([
      'api/http.handler',
      'api/lambda/dead-letter.handler',
      'api/lambda/reconcile.handler',
      'api/lambda/sweep-unreferenced.handler',
      'api/lambda/validate-car.handler',
    ])
    for (const b of built) expect(b.runtime, b.handler).toBe('nodejs22.x')
  })

  it("were bundled by the project's esbuild", () => {
    const sstEsbuild = createRequire(fileURLToPath(import.meta.resolve('sst/runtime/handlers/node.js')))(
      'esbuild/package.json',
    ) as { version: string }
    const ours = JSON.parse(readFileSync(join(root, 'node_modules/esbuild/package.json'), 'utf8')) as {
      version: string
    }
    expect(sstEsbuild.version).toBe(ours.version)
  })

  it('load on Node 22: a ConfigError without environment, the handler with one', () => {
    for (const { handler, file } of built) {
      expect(existsSync(file), file).toBe(true)
      const bare = load(file, SST_ENV)
      expect(bare.status, handler).not.toBe(0)
      expect(bare.stderr, handler).toMatch(/invalid configuration:[\s\S]*PIN_TABLE/)

      const exportName = handler.slice(handler.lastIndexOf('.') + 1)
      const full = load(file, { ...FULL_ENV, ...SST_ENV }, `process.stdout.write(typeof m.${exportName})`)
      expect(full.stderr, handler).toBe('')
      expect(full.stdout, handler).toBe('function')
    }
  })
})

describe('worker', () => {
  it("bundles with the Dockerfile's esbuild command and loads on Node 22", () => {
    const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8').replace(/\\\n\s*/g, '')
    const command = /^RUN (\/opt\/esbuild\/node_modules\/\.bin\/esbuild pickup\/main\.ts .*)$/m.exec(
      dockerfile,
    )?.[1]
    expect(command).toBeDefined()
    const outfile = join(out, 'worker.mjs')
    const local = command!
      .replace('/opt/esbuild/node_modules/.bin/esbuild', join(root, 'node_modules/.bin/esbuild'))
      .replace('--outfile=dist/main.mjs', `--outfile=${outfile}`)
    execFileSync('sh', ['-c', `${local} --log-level=error`], { cwd: root, stdio: 'pipe' })

    const bare = load(outfile, {})
    expect(bare.status).not.toBe(0)
    expect(bare.stderr).toMatch(/invalid configuration:[\s\S]*PIN_QUEUE_URL/)
  })
})
