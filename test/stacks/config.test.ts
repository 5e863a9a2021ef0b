/**
 * Deploy-time configuration (stacks/deploy-config.ts), the stage policy's naming rules, the validator sizing
 * arithmetic (stacks/validator-sizing.ts), and .env.tpl listing exactly the variables the deploy reads.
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { sweepUnreferencedSchema } from '../../api/sweep-unreferenced.ts'
import { ConfigError, parseConfig } from '../../core/config.ts'
import { MIN_UNREFERENCED_RETENTION_MS } from '../../core/unreferenced-content.ts'
import {
  collectionJobsMemoryMb,
  deploySchema,
  LAMBDA_MAX_MEMORY_MB,
  MAX_COLLECTION_READ_CAR_BYTES,
  parseDeployConfig,
  workerEphemeralStorageGiB,
  workerJobDiskBytes,
} from '../../stacks/deploy-config.ts'
import { stagePolicy } from '../../stacks/stage.ts'
import { estimateValidatorSeconds, VALIDATOR_TIMEOUT_SECONDS } from '../../stacks/validator-sizing.ts'

const GiB = 1024 ** 3

function problems(env: Record<string, string>): string[] {
  try {
    parseDeployConfig(env)
    return []
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
}

describe('deploy configuration', () => {
  it('has defaults for everything', () => {
    const cfg = parseDeployConfig({})
    expect(cfg).toMatchObject({
      MAX_CAR_BYTES: 31 * GiB,
      VISIBILITY_TIMEOUT_SECONDS: 300,
      MAX_ATTEMPTS: 3,
      WORKER_MIN_TASKS: 1,
      WORKER_MAX_TASKS: 10,
      WORKER_CPU: 2048,
      WORKER_MEMORY_MIB: 8192,
      VALIDATOR_MEMORY_MB: 3008,
      VALIDATOR_RESERVED_CONCURRENCY: 20,
      API_THROTTLE_RATE_PER_SECOND: 50,
      API_THROTTLE_BURST: 100,
      CAR_STORED_SUBSCRIBER_ACCOUNTS: [],
    })
    expect(cfg.VALIDATOR_MEMORY_MB).toBeLessThanOrEqual(3008)
    expect(cfg.DESTINATION_BUCKET_NAME).toBeUndefined()
    expect(workerEphemeralStorageGiB(cfg)).toBe(90)
  })

  it('reports every problem at once', () => {
    const found = problems({
      MAX_ATTEMPTS: '1001',
      WORKER_MIN_TASKS: '8',
      WORKER_MAX_TASKS: '4',
      WORKER_CPU: '2048',
      WORKER_MEMORY_MIB: '2048',
      API_DOMAIN: 'pickup.example.org',
      SHUTDOWN_GRACE_MS: '100000',
      MAX_CAR_BYTES: String(128 * GiB),
      CAR_STORED_SUBSCRIBER_ACCOUNTS: '123456789012, 12345',
    })
    expect(found.map((p) => p.split(':')[0]).sort()).toEqual([
      'API_DOMAIN',
      'CAR_STORED_SUBSCRIBER_ACCOUNTS.1',
      'MAX_ATTEMPTS',
      'MAX_CAR_BYTES',
      'SHUTDOWN_GRACE_MS',
      'WORKER_MAX_TASKS',
      'WORKER_MEMORY_MIB',
      'WORKER_TYPICAL_CAR_GIB',
    ])
  })

  it('refuses a retention of unreferenced content under an hour, in the deploy config and in the sweep function', () => {
    for (const ms of ['0', '1000', String(MIN_UNREFERENCED_RETENTION_MS - 1)]) {
      expect(problems({ UNREFERENCED_RETENTION_MS: ms }).map((p) => p.split(':')[0])).toEqual([
        'UNREFERENCED_RETENTION_MS',
      ])
      expect(() => parseConfig(sweepUnreferencedSchema, { UNREFERENCED_RETENTION_MS: ms })).toThrow(
        ConfigError,
      )
    }
    expect(MIN_UNREFERENCED_RETENTION_MS).toBe(60 * 60 * 1000)
    const least = String(MIN_UNREFERENCED_RETENTION_MS)
    expect(parseDeployConfig({ UNREFERENCED_RETENTION_MS: least }).UNREFERENCED_RETENTION_MS).toBe(
      60 * 60 * 1000,
    )
    expect(parseConfig(sweepUnreferencedSchema, {}).UNREFERENCED_RETENTION_MS).toBe(7 * 24 * 60 * 60 * 1000)
  })

  it('sizes the collection jobs consumer for the CARs it reads, and refuses a CAR size no Lambda can hold', () => {
    expect(collectionJobsMemoryMb(parseDeployConfig({}).COLLECTION_READ_CAR_BYTES)).toBe(1024)
    expect(collectionJobsMemoryMb(MAX_COLLECTION_READ_CAR_BYTES)).toBe(LAMBDA_MAX_MEMORY_MB)
    expect(problems({ COLLECTION_READ_CAR_BYTES: String(MAX_COLLECTION_READ_CAR_BYTES) })).toEqual([])
    expect(
      problems({ COLLECTION_READ_CAR_BYTES: String(MAX_COLLECTION_READ_CAR_BYTES + 1024 * 1024) }),
    ).toEqual([expect.stringMatching(/^COLLECTION_READ_CAR_BYTES: .*holds a CAR this large in memory/)])
    // Web-hosted content: a pass's last fetch must end within its job's deadline, the largest file fit in /tmp.
    expect(problems({ COLLECTION_WEB_WINDOW_MS: '200000', COLLECTION_WEB_TIMEOUT_MS: '95000' })).toEqual([
      expect.stringMatching(/^COLLECTION_WEB_WINDOW_MS: .*outlast its job's deadline/),
    ])
    expect(problems({ COLLECTION_WEB_MAX_BYTES: String(10 * 1024 ** 3) })).toEqual([
      expect.stringMatching(/^COLLECTION_WEB_MAX_BYTES: .*must fit/),
    ])
    // SQS delays a message at most 15 minutes.
    expect(problems({ COLLECTION_ADVANCE_DELAY_SECONDS: '901' })).toEqual([
      expect.stringMatching(/^COLLECTION_ADVANCE_DELAY_SECONDS: /),
    ])
  })

  it('treats empty values as unset, as a copied .env.tpl leaves them', () => {
    expect(
      parseDeployConfig({ DESTINATION_BUCKET_NAME: '', ALARM_QUEUE_AGE_SECONDS: '' }).DESTINATION_BUCKET_NAME,
    ).toBe(undefined)
  })

  it('keeps the disk within what Fargate offers', () => {
    expect(workerEphemeralStorageGiB({ BATCH_SIZE: 1, WORKER_TYPICAL_CAR_GIB: 1 })).toBe(21)
    expect(
      workerEphemeralStorageGiB(parseDeployConfig({ BATCH_SIZE: '50', WORKER_TYPICAL_CAR_GIB: '31' })),
    ).toBe(200)
  })

  it('refuses a task disk that cannot hold one CAR of MAX_CAR_BYTES beside what it keeps for itself', () => {
    // 21 GiB of disk, 10 of them kept: 11 GiB for jobs, less than one 31 GiB CAR.
    expect(problems({ BATCH_SIZE: '1', WORKER_TYPICAL_CAR_GIB: '1' })).toEqual([
      expect.stringMatching(/^WORKER_TYPICAL_CAR_GIB: .*must hold one CAR of MAX_CAR_BYTES/),
    ])
    expect(
      problems({ BATCH_SIZE: '1', WORKER_TYPICAL_CAR_GIB: '1', MAX_CAR_BYTES: String(11 * GiB) }),
    ).toEqual([])
    expect(workerJobDiskBytes(parseDeployConfig({}))).toBe(80 * GiB)
  })

  it('is listed in .env.tpl, one line per variable, nothing else', () => {
    const tpl = readFileSync(new URL('../../.env.tpl', import.meta.url), 'utf8')
    const listed = [...tpl.matchAll(/^([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1])
    expect(listed.sort()).toEqual(Object.keys(deploySchema.shape).sort())
    for (const [, key, value] of tpl.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)) {
      if (value === '') continue
      // The values shown are the defaults.
      expect(String(parseDeployConfig({})[key as keyof ReturnType<typeof parseDeployConfig>]), key).toBe(
        value,
      )
    }
  })
})

describe('stages', () => {
  it('production and staging keep their data; pull-request and personal stages do not', () => {
    expect(stagePolicy('production').persistent).toBe(true)
    expect(stagePolicy('staging').persistent).toBe(true)
    expect(stagePolicy('pr-123').persistent).toBe(false)
    expect(stagePolicy('alice').persistent).toBe(false)
  })

  it('refuses names that cannot be part of a bucket name', () => {
    for (const bad of ['Production', 'pr_1', '1pr', 'pr-', 'a-very-long-stage-name-indeed']) {
      expect(() => stagePolicy(bad), bad).toThrow(/stage/)
    }
  })
})

describe('validator sizing', () => {
  it('validates the largest CAR (31 GiB) within 80% of 15 minutes, at the default 3008 MB', () => {
    const e = estimateValidatorSeconds(31 * GiB)
    // 1.7 vCPUs verify at ~850 MB/s: 39 s. 8 ranged GETs: min(8 x 90, 500) MB/s = 500 MB/s: 67 s (one stream
    // alone: 370 s). Copy at 200 MB/s: 166 s.
    expect(Math.round(e.validateSeconds)).toBe(39)
    expect(Math.round(e.readSeconds)).toBe(67)
    expect(Math.round(e.copySeconds)).toBe(166)
    expect(Math.round(e.totalSeconds)).toBe(233)
    expect(e.budgetSeconds).toBe(0.8 * VALIDATOR_TIMEOUT_SECONDS)
    expect(e.fits).toBe(true)
    expect(Math.round(estimateValidatorSeconds(31 * GiB, { readConcurrency: 1 }).readSeconds)).toBe(370)
  })

  it('refuses a MAX_CAR_BYTES the Lambda could not validate in time', () => {
    expect(estimateValidatorSeconds(95 * GiB).fits).toBe(true)
    expect(estimateValidatorSeconds(96 * GiB).fits).toBe(false)
    // One stream would have capped it near 41 GiB.
    expect(estimateValidatorSeconds(42 * GiB, { readConcurrency: 1 }).fits).toBe(false)
  })
})
