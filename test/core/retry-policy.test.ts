import { describe, expect, it } from 'vitest'
import {
  jobRetryDelaySeconds,
  MAX_DELAY_SECONDS,
  receiveBackoffMs,
  retryPolicyFromConfig,
} from '../../core/retry-policy.ts'

const policy = retryPolicyFromConfig({ RETRY_BASE_DELAY_SECONDS: 30, RETRY_MAX_DELAY_SECONDS: 900 })

describe('job retry delay', () => {
  it('doubles per attempt from the base, up to the cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => jobRetryDelaySeconds(n, policy, () => 0))).toEqual([
      30, 60, 120, 240, 480, 900, 900,
    ])
  })

  it('adds up to 20% jitter, never beyond the cap nor beyond what SQS allows', () => {
    expect(jobRetryDelaySeconds(1, policy, () => 0.999)).toBe(36)
    expect(jobRetryDelaySeconds(5, policy, () => 0.999)).toBe(576)
    expect(jobRetryDelaySeconds(5, policy, () => 0.5)).toBe(528)
    expect(jobRetryDelaySeconds(6, policy, () => 0.999)).toBe(900)
    const unbounded = { baseDelaySeconds: 600, maxDelaySeconds: 3600 }
    expect(jobRetryDelaySeconds(3, unbounded, () => 0.5)).toBe(MAX_DELAY_SECONDS)
  })

  it('is zero with a zero base (tests and local experiments)', () => {
    expect(jobRetryDelaySeconds(3, { baseDelaySeconds: 0, maxDelaySeconds: 900 }, () => 0.9)).toBe(0)
  })
})

describe('receive backoff', () => {
  it('waits 500 ms after a first failed receive, doubling to at most 30 s', () => {
    expect([1, 2, 3, 6, 7, 20].map(receiveBackoffMs)).toEqual([500, 1000, 2000, 16_000, 30_000, 30_000])
  })
})
