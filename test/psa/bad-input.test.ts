/**
 * Every kind of bad input to the Pinning Service API is a 400 with a `Failure` whose reason is a stable code,
 * never a 500. Through `@ipfs-shipyard/pinning-service-client` where it can say it (a pre-middleware rewrites
 * the body for what its typed API cannot send), raw HTTP for query strings it never produces.
 */
import { randomBytes } from 'node:crypto'
import type { RemotePinningServiceClient } from '@ipfs-shipyard/pinning-service-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rawBlock } from '../fixtures/dags.ts'
import { startTestSystem, type TestSystem } from '../helpers/system.ts'
import { failureOf, psaClient, psaFetch } from './helpers.ts'

let t: TestSystem
let token: string
let client: RemotePinningServiceClient
let existing: string
const cid = rawBlock(8, 'bad-input').root.toString()
const origin = (i: number) =>
  `/ip4/198.51.100.${i}/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5`

beforeAll(async () => {
  t = await startTestSystem({}, { worker: 'none' })
  token = await t.createPsaToken(`bad${randomBytes(3).toString('hex')}`)
  client = psaClient(t, token)
  existing = (await client.pinsPost({ pin: { cid } })).requestid
})
afterAll(async () => {
  await t?.stop()
})

/** The client, sending `body` verbatim instead of the Pin it was given. */
function withBody(body: string): RemotePinningServiceClient {
  return client.withPreMiddleware(async ({ url, init }) => ({ url, init: { ...init, body } }))
}

async function expect400(call: Promise<unknown>, reason: string): Promise<void> {
  const failure = await failureOf(call)
  expect(failure, JSON.stringify(failure)).toMatchObject({ status: 400, reason })
  expect(failure.details).toBeTruthy()
}

describe('bad Pin bodies (POST /pins and POST /pins/{requestid})', () => {
  const cases: Array<[string, () => Promise<unknown>, string]> = [
    ['malformed JSON', () => withBody('{"cid": ').pinsPost({ pin: { cid } }), 'INVALID_JSON'],
    ['an empty body', () => withBody('').pinsPost({ pin: { cid } }), 'INVALID_JSON'],
    ['a JSON array', () => withBody('[]').pinsPost({ pin: { cid } }), 'INVALID_BODY'],
    [
      'an unknown field',
      () => withBody(JSON.stringify({ cid, color: 'red' })).pinsPost({ pin: { cid } }),
      'UNKNOWN_FIELD',
    ],
    ['no cid', () => withBody(JSON.stringify({ name: 'x' })).pinsPost({ pin: { cid } }), 'MISSING_CID'],
    [
      'a cid that is not a string',
      () => withBody(JSON.stringify({ cid: 42 })).pinsPost({ pin: { cid } }),
      'INVALID_CID',
    ],
    ['an invalid CID', () => client.pinsPost({ pin: { cid: 'QmNotACid' } }), 'INVALID_CID'],
    ['an empty CID', () => client.pinsPost({ pin: { cid: '' } }), 'INVALID_CID'],
    [
      'more than 20 origins',
      () => client.pinsPost({ pin: { cid, origins: Array.from({ length: 21 }, (_, i) => origin(i)) } }),
      'TOO_MANY_ORIGINS',
    ],
    [
      'an origin that is not a multiaddr',
      () => client.pinsPost({ pin: { cid, origins: ['not/a/multiaddr'] } }),
      'INVALID_ORIGINS',
    ],
    [
      'repeated origins',
      () => client.pinsPost({ pin: { cid, origins: [origin(1), origin(1)] } }),
      'INVALID_ORIGINS',
    ],
    [
      'a name of 256 characters',
      () => client.pinsPost({ pin: { cid, name: 'n'.repeat(256) } }),
      'NAME_TOO_LONG',
    ],
    [
      'a name that is not a string',
      () => withBody(JSON.stringify({ cid, name: 5 })).pinsPost({ pin: { cid } }),
      'INVALID_NAME',
    ],
    [
      'meta larger than 4 KiB',
      () => client.pinsPost({ pin: { cid, meta: { big: 'm'.repeat(5000) } } }),
      'META_TOO_LARGE',
    ],
    [
      'meta with more than 64 entries',
      () =>
        client.pinsPost({
          pin: { cid, meta: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v'])) },
        }),
      'META_TOO_LARGE',
    ],
    [
      'a meta value that is not a string',
      () => withBody(JSON.stringify({ cid, meta: { a: 1 } })).pinsPost({ pin: { cid } }),
      'INVALID_META',
    ],
    ['an empty meta key', () => client.pinsPost({ pin: { cid, meta: { '': 'v' } } }), 'INVALID_META'],
  ]
  for (const [label, call, reason] of cases) {
    it(`rejects ${label} with ${reason}`, async () => {
      await expect400(call(), reason)
    })
  }

  it('rejects a body over 64 KiB with 413 BODY_TOO_LARGE', async () => {
    const failure = await failureOf(
      withBody(JSON.stringify({ cid, name: 'x'.repeat(70_000) })).pinsPost({ pin: { cid } }),
    )
    expect(failure).toMatchObject({ status: 413, reason: 'BODY_TOO_LARGE' })
  })

  it('rejects a bad body on replace too, and leaves the request alone', async () => {
    await expect400(
      client.pinsRequestidPost({ requestid: existing, pin: { cid: 'bafyNope' } }),
      'INVALID_CID',
    )
    await expect400(
      withBody('{oops').pinsRequestidPost({ requestid: existing, pin: { cid } }),
      'INVALID_JSON',
    )
    expect((await client.pinsRequestidGet({ requestid: existing })).requestid).toBe(existing)
  })
})

describe('bad GET /pins queries', () => {
  it('rejects what the client can send: bad CIDs, too many CIDs, limits out of range, long names', async () => {
    await expect400(client.pinsGet({ cid: ['notacid'] }), 'INVALID_CID')
    const cids = Array.from({ length: 11 }, (_, i) => rawBlock(8, `many-${i}`).root.toString())
    await expect400(client.pinsGet({ cid: cids }), 'TOO_MANY_CIDS')
    await expect400(client.pinsGet({ limit: 0 }), 'INVALID_LIMIT')
    await expect400(client.pinsGet({ limit: 1001 }), 'INVALID_LIMIT')
    await expect400(client.pinsGet({ limit: 2.5 }), 'INVALID_LIMIT')
    await expect400(client.pinsGet({ name: 'n'.repeat(256) }), 'NAME_TOO_LONG')
    await expect400(client.pinsGet({ match: 'fuzzy' as never, name: 'x' }), 'INVALID_MATCH')
    await expect400(client.pinsGet({ status: ['done' as never] }), 'INVALID_STATUS')
  })

  const raw: Array<[string, string]> = [
    ['before=yesterday', 'INVALID_DATE'],
    ['after=2020-13-01T00:00:00Z', 'INVALID_DATE'],
    ['after=2021-02-29T00:00:00Z', 'INVALID_DATE'],
    ['before=2020-07-27T17:32:28', 'INVALID_DATE'],
    ['before=2020-07-27T25:00:00Z', 'INVALID_DATE'],
    ['before=1595871148', 'INVALID_DATE'],
    ['limit=abc', 'INVALID_LIMIT'],
    ['limit=', 'INVALID_LIMIT'],
    ['limit=-1', 'INVALID_LIMIT'],
    ['limit=99999999999', 'INVALID_LIMIT'],
    ['status=', 'INVALID_STATUS'],
    ['status=pinned,lost', 'INVALID_STATUS'],
    ['meta=notjson', 'INVALID_META'],
    [`meta=${encodeURIComponent('["a"]')}`, 'INVALID_META'],
    [`meta=${encodeURIComponent('{"a":1}')}`, 'INVALID_META'],
    ['cid=', 'INVALID_CID'],
    ['sort=created', 'UNKNOWN_PARAMETER'],
    ['limit=5&limit=6', 'DUPLICATE_PARAMETER'],
    ['name=a&name=b', 'DUPLICATE_PARAMETER'],
  ]
  for (const [query, reason] of raw) {
    it(`rejects ?${query} with ${reason}`, async () => {
      const res = await psaFetch(t, token, `/pins?${query}`)
      expect(res.status).toBe(400)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      expect(await res.json()).toEqual({ error: { reason, details: expect.any(String) } })
    })
  }

  it('accepts RFC 3339 in every form: offsets, nanoseconds, lowercase t and z', async () => {
    for (const date of [
      '2020-07-27T17:32:28Z',
      '2020-07-27t17:32:28.123456789z',
      '2020-07-27T17:32:28+05:30',
      '2020-07-27T17:32:28.5-08:00',
    ]) {
      const res = await psaFetch(t, token, `/pins?before=${encodeURIComponent(date)}`)
      expect(res.status, date).toBe(200)
    }
    // An unencoded '+' arrives as a space.
    expect((await psaFetch(t, token, '/pins?after=2020-07-27T17:32:28+05:30')).status).toBe(200)
  })
})
