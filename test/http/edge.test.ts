/**
 * Bad input at the HTTP edge, through a real Node HTTP server (@hono/node-server, as local mode serves the
 * app): oversize bodies get a JSON 413 without being read (a chunked one, once past the limit), on a
 * connection that stays usable for the next request; every error of both APIs is JSON in that API's shape,
 * the cluster API's unknown routes, oversize request lines and malformed requests included.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_REQUEST_BODY_BYTES } from '../../api/http/body-limit.ts'
import { rawBlock } from '../fixtures/dags.ts'
import { startTestHttpApp, TEST_TOKEN, type TestHttpApp } from '../helpers/http-app.ts'
import { chunked, type RawResponse, rawExchange, rawRequest } from './raw.ts'

let t: TestHttpApp
let psaToken: string
beforeAll(async () => {
  t = await startTestHttpApp()
  psaToken = await t.createPsaToken('edge')
})
afterAll(async () => {
  await t?.stop()
})

let n = 0
const newCid = () => rawBlock(8, `edge-${++n}`).root.toString()
const TWO_MIB = Buffer.alloc(2 * 1024 * 1024, 0x61)
const cluster = { Authorization: `Basic ${TEST_TOKEN}` }
const psa = () => ({ Authorization: `Bearer ${psaToken}`, 'Content-Type': 'application/json' })
const version = rawRequest('GET', '/version', cluster)

function expectClusterError(
  res: RawResponse | { status: number; headers: Record<string, string>; body: string },
  status: number,
) {
  expect(res.status).toBe(status)
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  const body = JSON.parse(res.body) as Record<string, unknown>
  expect(Object.keys(body).sort()).toEqual(['code', 'message'])
  expect(body.code).toBe(status)
  expect(String(body.message).length).toBeGreaterThan(0)
}

function expectFailure(
  res: { status: number; headers: Record<string, string>; body: string },
  status: number,
  reason: string,
) {
  expect(res.status).toBe(status)
  expect(res.headers['content-type']).toMatch(/^application\/json/)
  const body = JSON.parse(res.body) as { error: Record<string, unknown> }
  expect(Object.keys(body)).toEqual(['error'])
  expect(body.error.reason).toBe(reason)
  expect(String(body.error.details).length).toBeGreaterThan(0)
}

async function fetched(res: Response) {
  return { status: res.status, headers: Object.fromEntries(res.headers), body: await res.text() }
}

describe('an oversize body', () => {
  it('to the Pinning Service API: a JSON 413, then the next request on the same connection is answered', async () => {
    const cid = newCid()
    const body = Buffer.concat([
      Buffer.from(JSON.stringify({ cid, name: '' }).slice(0, -2)),
      TWO_MIB,
      Buffer.from('"}'),
    ])
    const ex = await rawExchange(t.url, [rawRequest('POST', '/psa/pins', psa(), body), () => version], {
      responses: 2,
    })
    expect(ex.error).toBeUndefined()
    expect(ex.responses).toHaveLength(2)
    expectFailure(ex.responses[0]!, 413, 'BODY_TOO_LARGE')
    expect(ex.responses[1]!.status).toBe(200)
    expect(t.requests.all().filter((r) => r.cid === cid)).toEqual([])
  })

  it('to the cluster API: a JSON 413, nothing pinned, then the next request on the same connection is answered', async () => {
    const cid = newCid()
    const ex = await rawExchange(
      t.url,
      [rawRequest('POST', `/pins/${cid}`, cluster, TWO_MIB), () => version],
      {
        responses: 2,
      },
    )
    expect(ex.error).toBeUndefined()
    expectClusterError(ex.responses[0]!, 413)
    expect(ex.responses[1]!.status).toBe(200)
    expect(await t.pins.get(cid)).toBeUndefined()
    expect(t.requests.all().filter((r) => r.cid === cid)).toEqual([])
  })

  it('is answered 413 to fetch too, rather than failing the request', async () => {
    const res = await fetch(`${t.url}/psa/pins`, { method: 'POST', headers: psa(), body: TWO_MIB })
    expectFailure(await fetched(res), 413, 'BODY_TOO_LARGE')
  })

  it('chunked, of unknown length: a JSON 413 once past the limit, then the next request is answered', async () => {
    const cid = newCid()
    const ex = await rawExchange(
      t.url,
      [
        rawRequest(
          'POST',
          `/pins/${cid}`,
          { ...cluster, 'Transfer-Encoding': 'chunked' },
          chunked(TWO_MIB, 16 * 1024),
        ),
        () => version,
      ],
      { responses: 2 },
    )
    expect(ex.error).toBeUndefined()
    expectClusterError(ex.responses[0]!, 413)
    expect(ex.responses[1]!.status).toBe(200)
    expect(await t.pins.get(cid)).toBeUndefined()
    expect(t.requests.all().filter((r) => r.cid === cid)).toEqual([])
  })

  it('accepts a body up to the limit, chunked or not', async () => {
    const small = Buffer.from(JSON.stringify({ cid: newCid() }))
    const ex = await rawExchange(
      t.url,
      [
        rawRequest('POST', '/psa/pins', { ...psa(), 'Transfer-Encoding': 'chunked' }, chunked(small, 7)),
        () => rawRequest('POST', '/psa/pins', psa(), Buffer.from(JSON.stringify({ cid: newCid() }))),
        () => rawRequest('POST', `/pins/${newCid()}`, cluster, Buffer.alloc(MAX_REQUEST_BODY_BYTES)),
      ],
      { responses: 3 },
    )
    expect(ex.responses.map((r) => r.status)).toEqual([202, 202, 200])
  })
})

describe('every error is JSON in its API shape', () => {
  it('the cluster API answers unknown routes and methods with a JSON 404', async () => {
    for (const [method, path] of [
      ['GET', '/nope'],
      ['GET', '/'],
      ['PUT', `/pins/${newCid()}`],
      ['GET', '/pins/a/b'],
    ] as const) {
      expectClusterError(await fetched(await t.api(path, { method })), 404)
    }
  })

  it('an oversize request line is a JSON 431 in the shape of the API it was for', async () => {
    const long = 'a'.repeat(20_000)
    const clusterEx = await rawExchange(t.url, [rawRequest('GET', `/pins?x=${long}`, cluster)], {
      responses: 1,
    })
    expect(clusterEx.error).toBeUndefined()
    expectClusterError(clusterEx.responses[0]!, 431)
    const psaEx = await rawExchange(t.url, [rawRequest('GET', `/psa/pins?name=${long}`, psa())], {
      responses: 1,
    })
    expect(psaEx.error).toBeUndefined()
    expectFailure(psaEx.responses[0]!, 431, 'REQUEST_HEADER_FIELDS_TOO_LARGE')
  })

  it('a malformed request is a JSON 400', async () => {
    const ex = await rawExchange(
      t.url,
      [Buffer.from('GET /version HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n')],
      {
        responses: 1,
      },
    )
    expectClusterError(ex.responses[0]!, 400)
  })
})
