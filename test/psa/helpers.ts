/**
 * Pinning Service API test helpers: a `@ipfs-shipyard/pinning-service-client` per user against local mode,
 * the Failure body of a rejected call, and ways to move content along without a worker.
 */
import { Configuration, RemotePinningServiceClient } from '@ipfs-shipyard/pinning-service-client'
import { expect } from 'vitest'
import { normalizeCid } from '../../core/cid.ts'
import type { CarInfo } from '../../core/pin.ts'
import type { TestSystem } from '../helpers/system.ts'

export function psaClient(t: Pick<TestSystem, 'psaUrl'>, token: string): RemotePinningServiceClient {
  return new RemotePinningServiceClient(new Configuration({ endpointUrl: t.psaUrl, accessToken: token }))
}

/** The HTTP status and Failure body of a call the client rejected (it throws the Response). */
export async function failureOf(
  call: Promise<unknown>,
): Promise<{ status: number; reason: string; details?: string }> {
  let thrown: unknown
  try {
    await call
  } catch (err) {
    thrown = err
  }
  // The client throws the fetch Response (from another realm than the test's `Response`).
  expect(thrown).toMatchObject({ status: expect.any(Number), headers: expect.anything() })
  const res = thrown as Response
  expect(res.headers.get('content-type')).toMatch(/^application\/json/)
  const body = (await res.json()) as { error: { reason: string; details?: string } }
  expect(Object.keys(body)).toEqual(['error'])
  expect(Object.keys(body.error).every((k) => k === 'reason' || k === 'details')).toBe(true)
  if (body.error.details !== undefined) expect(body.error.details.length).toBeGreaterThan(0)
  return { status: res.status, ...body.error }
}

/** A raw request to the Pinning Service API. */
export function psaFetch(t: TestSystem, token: string | undefined, path: string, init: RequestInit = {}) {
  return fetch(`${t.psaUrl}${path}`, {
    ...init,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...init.headers },
  })
}

let carSeq = 0

/** Makes content pinned as a worker and the validator would (no fetch: the CAR is not real). */
export async function markPinned(t: TestSystem, cid: string, bytes = 4242): Promise<CarInfo> {
  const { key } = normalizeCid(cid)
  await t.pins.request(key, [], Date.now())
  const attempt = `test-${++carSeq}`
  const car: CarInfo = {
    cid: `bagcar${carSeq}`,
    bytes,
    blocks: 3,
    key: `bagcar${carSeq}/bagcar${carSeq}.car`,
  }
  expect(await t.pins.markPinned(key, attempt, car, Date.now())).toBe(true)
  return car
}

/** Makes content failed, as after its last attempt. */
export async function markFailed(
  t: TestSystem,
  cid: string,
  error = 'FETCH_STALLED: no data received',
): Promise<void> {
  const { key } = normalizeCid(cid)
  await t.pins.request(key, [], Date.now())
  expect(await t.pins.settle(key, undefined, { status: 'failed', error }, Date.now())).toBe(true)
}

/** Makes content pinning, with progress. */
export async function markPinning(t: TestSystem, cid: string): Promise<void> {
  const { key } = normalizeCid(cid)
  await t.pins.request(key, [], Date.now())
  const attempt = `test-${++carSeq}`
  await t.pins.claim(key, attempt, Date.now() + 60_000, Date.now())
  await t.pins.heartbeat(key, attempt, Date.now() + 60_000, { bytes: 100, blocks: 2 }, Date.now())
}
