/**
 * FetchLimits for the core tests (fetchPin, the worker loop) against in-memory ports: small and quick by
 * default, each test overriding what it is about.
 */
import type { FetchLimits } from '../../core/fetch-pin.ts'

export function testFetchLimits(overrides: Partial<FetchLimits> = {}): FetchLimits {
  return {
    maxCarBytes: 1024 * 1024,
    fetchTimeoutMs: 5_000,
    fetchChunkTimeoutMs: 1_000,
    concurrency: 4,
    dialTimeoutMs: 100,
    leaseMs: 60_000,
    progressIntervalMs: 50,
    partBytes: 5 * 1024 * 1024,
    validationLeaseMs: 60_000,
    ...overrides,
  }
}
