/**
 * `npm run synth` (scripts/synth.ts): offline synthesis of every stack into `<out>/<stack>.template.json`,
 * reading the deploy-time configuration from the environment as `sst deploy` does. Run as operators run it.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../../', import.meta.url))
const out = mkdtempSync(join(tmpdir(), 'pickup-synth-test-'))
afterAll(() => rmSync(out, { recursive: true, force: true }))

function synth(args: string[], env: Record<string, string> = {}) {
  return spawnSync('npm', ['run', '--silent', 'synth', '--', ...args], {
    cwd: root,
    encoding: 'utf8',
    // No AWS credentials and no region: synthesis must not need them.
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    timeout: 120_000,
  })
}

describe('npm run synth', () => {
  it('writes every stack template, from the deploy-time environment, without credentials', () => {
    const r = synth(['--stage', 'pr-77', '--out', out], { VALIDATOR_MEMORY_MB: '2048' })
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(readdirSync(out).sort()).toEqual([
      'pr-77-pickup-ApiStack.template.json',
      'pr-77-pickup-CollectionsStack.template.json',
      'pr-77-pickup-DataStack.template.json',
      'pr-77-pickup-MonitoringStack.template.json',
      'pr-77-pickup-PipelineStack.template.json',
      'pr-77-pickup-WorkerStack.template.json',
    ])
    const pipeline = JSON.parse(readFileSync(join(out, 'pr-77-pickup-PipelineStack.template.json'), 'utf8'))
    const validator = Object.entries(
      pipeline.Resources as Record<string, { Type: string; Properties: { MemorySize?: number } }>,
    ).find(([id, r]) => id.startsWith('ValidateCar') && r.Type === 'AWS::Lambda::Function')
    expect(validator?.[1].Properties.MemorySize).toBe(2048)
  })

  it('refuses a bad configuration or a missing stage, and says why', () => {
    const bad = synth(['--stage', 'pr-78', '--out', join(out, 'bad')], { VALIDATOR_MEMORY_MB: '64' })
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain('VALIDATOR_MEMORY_MB')
    const usage = synth(['--out', out])
    expect(usage.status).toBe(2)
    expect(usage.stderr).toContain('--stage is required')
  })
})
