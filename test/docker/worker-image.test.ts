/**
 * The worker image's build stage (Dockerfile), run without Docker: its install commands, as written there,
 * with the npm major of its base image (node:22 ships npm 10), on a copy of package.json and the lockfile; then
 * its esbuild command against the production dependencies that install gave, and the bundle loaded by Node 22.
 * A lockfile npm 10 refuses (npm 11 drops optional peer dependencies when it rewrites one), or a worker import
 * that only a dev dependency satisfies, fails here instead of at the first deploy.
 *
 * Needs the npm registry (as `npm ci` does); npm 10 itself comes from it through npx.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8')
const work = mkdtempSync(join(tmpdir(), 'pickup-image-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

/** The base image's npm major: node:22 images ship npm 10. */
const BASE_NPM = 'npm@10'

/** The build stage's RUN instructions, continuation lines joined. */
function buildStageRuns(): string[] {
  const stage = dockerfile.split(/^FROM /m)[1] ?? ''
  return stage
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((line) => line.startsWith('RUN '))
    .map((line) => line.slice('RUN '.length).trim())
}

describe("the worker image's build stage, without Docker", () => {
  it('starts from node:22, whose npm is the one this test installs with', () => {
    expect(dockerfile).toMatch(/^FROM node:22-\S+ AS build$/m)
  })

  it(
    `installs from the lockfile with ${BASE_NPM}, bundles with esbuild from production dependencies only, and the bundle loads`,
    () => {
      const [install, bundle] = buildStageRuns()
      expect(install).toMatch(/^npm ci --omit=dev /)
      expect(bundle).toMatch(/esbuild pickup\/main\.ts --bundle/)

      cpSync(join(root, 'package.json'), join(work, 'package.json'))
      cpSync(join(root, 'package-lock.json'), join(work, 'package-lock.json'))
      // `npm` in the Dockerfile's commands is the base image's npm; `node` is the project's Node 22.
      const shims = join(work, '.shims')
      execFileSync('mkdir', ['-p', shims])
      execFileSync('sh', [
        '-c',
        `printf '#!/bin/sh\\nexec npx -y ${BASE_NPM} "$@"\\n' > ${shims}/npm && chmod +x ${shims}/npm`,
      ])
      const env = { ...process.env, PATH: `${shims}:${process.env.PATH}`, npm_config_yes: 'true' }
      const installed = spawnSync('sh', ['-c', install!.replaceAll('/opt/esbuild', join(work, 'esbuild'))], {
        cwd: work,
        env,
        encoding: 'utf8',
        timeout: 8 * 60_000,
      })
      expect(installed.stderr + installed.stdout).not.toMatch(/npm error/)
      expect(installed.status).toBe(0)
      // Production dependencies only: the worker's runtime ones present, SST and CDK absent.
      expect(existsSync(join(work, 'node_modules/kubo-rpc-client/package.json'))).toBe(true)
      expect(existsSync(join(work, 'node_modules/@aws-sdk/client-sqs/package.json'))).toBe(true)
      expect(existsSync(join(work, 'node_modules/sst'))).toBe(false)
      expect(existsSync(join(work, 'node_modules/aws-cdk-lib'))).toBe(false)

      for (const dir of ['core', 'adapters', 'pickup'])
        cpSync(join(root, dir), join(work, dir), { recursive: true })
      cpSync(join(root, 'tsconfig.json'), join(work, 'tsconfig.json'))
      const built = spawnSync('sh', ['-c', bundle!.replaceAll('/opt/esbuild', join(work, 'esbuild'))], {
        cwd: work,
        env,
        encoding: 'utf8',
        timeout: 2 * 60_000,
      })
      expect(built.stderr).not.toMatch(/ERROR/)
      expect(built.status).toBe(0)

      // Loaded with an empty environment it stops on the configuration, naming what is missing: it loaded.
      const loaded = spawnSync(process.execPath, [join(work, 'dist/main.mjs')], {
        env: { PATH: process.env.PATH ?? '' },
        encoding: 'utf8',
        timeout: 30_000,
      })
      expect(loaded.status).not.toBe(0)
      expect(loaded.stderr).toMatch(/invalid configuration/)
      expect(loaded.stderr).toMatch(/PIN_QUEUE_URL/)
    },
    10 * 60_000,
  )
})
