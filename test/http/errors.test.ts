/**
 * Both APIs answer every error from one classification: the same status for the same error, each in its own
 * body shape; an unexpected error is a 500 without internals, logged as the error object (cause and all).
 */
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { serializeError } from '../../adapters/log.ts'
import { clusterErrorResponse, HttpError } from '../../api/http/errors.ts'
import { psaErrorResponse } from '../../api/http/psa/errors.ts'
import {
  InvalidCidError,
  InvalidInputError,
  ListingTooSparseError,
  RequestNotFoundError,
  TokenNotFoundError,
  UnauthorizedError,
} from '../../core/errors.ts'
import { createTestLogger } from '../helpers/log.ts'

async function answer(api: 'cluster' | 'psa', err: Error) {
  const lines: Array<{ level: string; msg?: string; obj: object }> = []
  const log = createTestLogger(lines)
  const app = new Hono()
  app.get('/', () => {
    throw err
  })
  app.onError((e, c) => (api === 'cluster' ? clusterErrorResponse(c, e, log) : psaErrorResponse(c, e, log)))
  const res = await app.request('/')
  return { status: res.status, body: await res.json(), lines }
}

describe('error responses', () => {
  const cases: Array<[Error, number, string]> = [
    [new InvalidCidError('nope'), 400, 'INVALID_CID'],
    [new InvalidInputError('BAD_THING', 'a bad thing'), 400, 'BAD_THING'],
    [new UnauthorizedError(), 401, 'UNAUTHORIZED'],
    [new RequestNotFoundError(), 404, 'NOT_FOUND'],
    [new TokenNotFoundError('no such token'), 404, 'TOKEN_NOT_FOUND'],
    [new ListingTooSparseError(1000, 1_700_000_000_000), 422, 'LISTING_TOO_SPARSE'],
    [new HttpError(413, 'TOO_LARGE', 'too large'), 413, 'TOO_LARGE'],
  ]
  for (const [err, status, code] of cases) {
    it(`${err.constructor.name}: ${status} from both APIs, not logged`, async () => {
      const cluster = await answer('cluster', err)
      const psa = await answer('psa', err)
      expect(cluster).toEqual({ status, body: { code: status, message: err.message }, lines: [] })
      expect(psa).toEqual({ status, body: { error: { reason: code, details: err.message } }, lines: [] })
    })
  }

  it('an unexpected error: 500 without internals, logged as the error object with its cause', async () => {
    const err = new Error('the table is gone', { cause: new Error('ResourceNotFoundException') })
    for (const api of ['cluster', 'psa'] as const) {
      const { status, body, lines } = await answer(api, err)
      expect(status).toBe(500)
      expect(JSON.stringify(body)).not.toContain('table')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatchObject({ level: 'error', obj: { err } })
    }
    expect((await answer('psa', err)).body).toEqual({
      error: { reason: 'INTERNAL_SERVER_ERROR', details: 'unexpected error; it was logged' },
    })
    const logged = serializeError(err) as { code: string; message: string; stack: string }
    expect(logged.code).toBe('INTERNAL')
    expect(logged.message).toContain('the table is gone')
    expect(logged.stack).toContain('ResourceNotFoundException')
  })
})
