/**
 * The Pinning Service API through `@ipfs-shipyard/pinning-service-client`, against local mode (no worker, so
 * content stays where the test puts it): every operation and filter, kubo-style paging, users isolated from
 * each other, replace and delete, and content shared between requests.
 */
import { randomBytes } from 'node:crypto'
import {
  type PinStatus,
  type PinsGetRequest,
  type RemotePinningServiceClient,
  Status,
} from '@ipfs-shipyard/pinning-service-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { normalizeCid } from '../../core/cid.ts'
import { rawBlock } from '../fixtures/dags.ts'
import { startTestSystem, type TestSystem } from '../helpers/system.ts'
import { failureOf, markFailed, markPinned, markPinning, psaClient, psaFetch } from './helpers.ts'

let t: TestSystem
beforeAll(async () => {
  t = await startTestSystem({}, { worker: 'none' })
})
afterAll(async () => {
  await t?.stop()
})

let seq = 0
/** A fresh CID (CIDv1 base32) for a raw block nobody has. */
const newCid = () =>
  rawBlock(16, `psa-${process.pid}-${++seq}-${randomBytes(4).toString('hex')}`).root.toString()

async function newUser(): Promise<{ user: string; token: string; client: RemotePinningServiceClient }> {
  const user = `u${randomBytes(4).toString('hex')}`
  const token = await t.createPsaToken(user)
  return { user, token, client: psaClient(t, token) }
}

/** Every PinStatus must have exactly the specification's fields, and 1 to 20 `/p2p/` delegates. */
function expectSpecShape(json: Record<string, unknown>): void {
  expect(Object.keys(json).sort()).toEqual(['created', 'delegates', 'info', 'pin', 'requestid', 'status'])
  expect(['queued', 'pinning', 'pinned', 'failed']).toContain(json.status)
  expect(typeof json.created).toBe('string')
  expect(new Date(json.created as string).toISOString()).toBe(json.created)
  const pin = json.pin as Record<string, unknown>
  expect(Object.keys(pin).every((k) => ['cid', 'name', 'origins', 'meta'].includes(k))).toBe(true)
  const delegates = json.delegates as string[]
  expect(delegates.length).toBeGreaterThanOrEqual(1)
  expect(delegates.length).toBeLessThanOrEqual(20)
  for (const d of delegates) expect(d).toMatch(/\/p2p\/[^/]+$/)
  for (const v of Object.values(json.info as Record<string, unknown>)) expect(typeof v).toBe('string')
}

describe('POST /pins and GET /pins/{requestid}', () => {
  it('creates a request (202) with its own requestid, echoing the pin, and reads it back (200)', async () => {
    const { token, client } = await newUser()
    const v1 = newCid()
    const origins = ['/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5']
    const res = await psaFetch(t, token, '/pins', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ cid: v1, name: 'Report.pdf', origins, meta: { app_id: 'x1' } }),
    })
    expect(res.status).toBe(202)
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const json = (await res.json()) as Record<string, unknown>
    expectSpecShape(json)
    expect(json).toMatchObject({
      status: 'queued',
      pin: { cid: v1, name: 'Report.pdf', origins, meta: { app_id: 'x1' } },
      info: { status_details: expect.any(String) },
    })

    const got = await client.pinsRequestidGet({ requestid: json.requestid as string })
    expect(got.requestid).toBe(json.requestid)
    expect(got.status).toBe(Status.Queued)
    expect(got.created.toISOString()).toBe(json.created)
    expect(got.pin).toEqual({ cid: v1, name: 'Report.pdf', origins, meta: { app_id: 'x1' } })

    // The same CID again: a new request, its own requestid.
    const again = await client.pinsPost({ pin: { cid: v1 } })
    expect(again.requestid).not.toBe(json.requestid)
  })

  it('echoes a CIDv0 as given while sharing the content with its CIDv1 form', async () => {
    const { client } = await newUser()
    const { cid } = normalizeCid(newCid())
    // A dag-pb CID of the same multihash: CIDv0 and its CIDv1 are one piece of content.
    const { CID } = await import('multiformats/cid')
    const v0 = CID.createV0(cid.multihash as never).toString()
    const v1 = CID.createV1(0x70, cid.multihash).toString()
    const a = await client.pinsPost({ pin: { cid: v0 } })
    const b = await client.pinsPost({ pin: { cid: v1 } })
    expect(a.pin.cid).toBe(v0)
    expect(b.pin.cid).toBe(v1)
    const listed = await client.pinsGet({ cid: [v1], status: [Status.Queued] })
    expect(listed.count).toBe(2)
  })

  it("answers 404 for another user's request, an unknown requestid and a malformed one", async () => {
    const alice = await newUser()
    const bob = await newUser()
    const mine = await alice.client.pinsPost({ pin: { cid: newCid() } })
    expect(await failureOf(bob.client.pinsRequestidGet({ requestid: mine.requestid }))).toMatchObject({
      status: 404,
      reason: 'NOT_FOUND',
    })
    const unknown = `${'a'.repeat(26)}-${newCid()}`
    expect((await failureOf(alice.client.pinsRequestidGet({ requestid: unknown }))).status).toBe(404)
    expect((await failureOf(alice.client.pinsRequestidGet({ requestid: 'nonsense' }))).status).toBe(404)
    expect(
      (await failureOf(alice.client.pinsRequestidGet({ requestid: `cluster:${newCid()}` }))).status,
    ).toBe(404)
  })

  it('follows the content: queued, pinning with progress, pinned with dag_size, failed with the reason', async () => {
    const { client } = await newUser()
    const [c1, c2] = [newCid(), newCid()]
    const r1 = await client.pinsPost({ pin: { cid: c1 } })
    const r2 = await client.pinsPost({ pin: { cid: c2 } })
    expect(r1.status).toBe(Status.Queued)
    expect(r1.info?.status_details).toMatch(/queued/)

    await markPinning(t, c1)
    const pinning = await client.pinsRequestidGet({ requestid: r1.requestid })
    expect(pinning.status).toBe(Status.Pinning)
    expect(pinning.info?.status_details).toMatch(/2 blocks, 100 bytes/)

    const car = await markPinned(t, c1, 5151)
    const pinned = await client.pinsRequestidGet({ requestid: r1.requestid })
    expect(pinned.status).toBe(Status.Pinned)
    expect(pinned.info).toMatchObject({ dag_size: '5151', status_details: expect.stringContaining(car.cid) })

    await markFailed(t, c2, 'CAR_TOO_LARGE: the DAG is larger than the limit')
    const failed = await client.pinsRequestidGet({ requestid: r2.requestid })
    expect(failed.status).toBe(Status.Failed)
    expect(failed.info?.status_details).toBe('CAR_TOO_LARGE: the DAG is larger than the limit')
  })

  it('tells searching from transferring while pinning', async () => {
    const { client } = await newUser()
    const cid = newCid()
    const r = await client.pinsPost({ pin: { cid } })
    const { key } = normalizeCid(cid)
    const attempt = `searching-${Math.random()}`
    await t.pins.claim(key, attempt, Date.now() + 60_000, Date.now())
    const dialled = ['/ip4/203.0.113.7/tcp/4001/p2p/12D3KooWA', '/dns4/example.com/tcp/4001/p2p/12D3KooWB']
    const searching = {
      bytes: 0,
      blocks: 0,
      phase: 'searching' as const,
      searchStarted: Date.now() - 42_000,
      dialled,
    }
    await t.pins.heartbeat(key, attempt, Date.now() + 60_000, searching, Date.now())
    const looking = await client.pinsRequestidGet({ requestid: r.requestid })
    expect(looking.status).toBe(Status.Pinning)
    expect(looking.info?.status_details).toMatch(
      /^searching: no block received yet after 4[2-9] s; dialled 2 origins: \/ip4\/203\.0\.113\.7\/tcp\/4001\/p2p\/12D3KooWA, \/dns4\/example\.com/,
    )
    const transferring = { ...searching, bytes: 4096, blocks: 3, phase: 'transferring' as const }
    await t.pins.heartbeat(key, attempt, Date.now() + 60_000, transferring, Date.now())
    const moving = await client.pinsRequestidGet({ requestid: r.requestid })
    expect(moving.info?.status_details).toMatch(/^transferring: 3 blocks, 4096 bytes so far/)
  })

  it('finds content another user pinned already pinned, without fetching it again', async () => {
    const alice = await newUser()
    const bob = await newUser()
    const cid = newCid()
    await alice.client.pinsPost({ pin: { cid } })
    await markPinned(t, cid)
    const before = await t.pins.get(normalizeCid(cid).key)
    const bobs = await bob.client.pinsPost({ pin: { cid, name: 'mine too' } })
    expect(bobs.status).toBe(Status.Pinned)
    expect(bobs.info?.dag_size).toBe(String(before!.car!.bytes))
    const after = await t.pins.get(normalizeCid(cid).key)
    expect(after).toEqual(before)
  })

  it('gives every request of a user a unique created time, even when sent at once', async () => {
    const { client } = await newUser()
    const created = await Promise.all(
      Array.from({ length: 20 }, () => client.pinsPost({ pin: { cid: newCid() } })),
    )
    expect(new Set(created.map((c) => c.created.getTime())).size).toBe(20)
  })
})

describe('replace and delete', () => {
  it('replaces: a new requestid for the new CID, the old one gone, old content unreferenced', async () => {
    const { client } = await newUser()
    const [oldCid, newCid_] = [newCid(), newCid()]
    const old = await client.pinsPost({ pin: { cid: oldCid, name: 'v1' } })
    const replaced = await client.pinsRequestidPost({
      requestid: old.requestid,
      pin: { cid: newCid_, name: 'v2', meta: { rev: '2' } },
    })
    expect(replaced.requestid).not.toBe(old.requestid)
    expect(replaced.pin).toEqual({ cid: newCid_, name: 'v2', meta: { rev: '2' } })
    expect(replaced.created.getTime()).toBeGreaterThan(old.created.getTime())
    expect((await failureOf(client.pinsRequestidGet({ requestid: old.requestid }))).status).toBe(404)
    expect((await client.pinsRequestidGet({ requestid: replaced.requestid })).pin.name).toBe('v2')
    expect((await t.pins.get(normalizeCid(oldCid).key))!.unreferencedSince).toBeTypeOf('number')
    expect((await t.pins.get(normalizeCid(newCid_).key))!.unreferencedSince).toBeUndefined()
    // Replacing the replaced request again is a 404.
    expect(
      (await failureOf(client.pinsRequestidPost({ requestid: old.requestid, pin: { cid: oldCid } }))).status,
    ).toBe(404)
  })

  it('replaces with the same CID: new requestid, content never unreferenced', async () => {
    const { client } = await newUser()
    const cid = newCid()
    const old = await client.pinsPost({ pin: { cid } })
    const replaced = await client.pinsRequestidPost({
      requestid: old.requestid,
      pin: { cid, name: 'renamed' },
    })
    expect(replaced.requestid).not.toBe(old.requestid)
    expect((await t.pins.get(normalizeCid(cid).key))!.unreferencedSince).toBeUndefined()
    const listed = await client.pinsGet({ cid: [cid] })
    expect(listed.results.map((r) => r.requestid)).toEqual([replaced.requestid])
  })

  it("cannot replace or delete another user's request", async () => {
    const alice = await newUser()
    const bob = await newUser()
    const mine = await alice.client.pinsPost({ pin: { cid: newCid() } })
    expect(
      (await failureOf(bob.client.pinsRequestidPost({ requestid: mine.requestid, pin: { cid: newCid() } })))
        .status,
    ).toBe(404)
    expect((await failureOf(bob.client.pinsRequestidDelete({ requestid: mine.requestid }))).status).toBe(404)
    expect((await alice.client.pinsRequestidGet({ requestid: mine.requestid })).requestid).toBe(
      mine.requestid,
    )
  })

  it('deletes (202): the request is gone; content is unreferenced only when no request wants it', async () => {
    const alice = await newUser()
    const bob = await newUser()
    const cid = newCid()
    const key = normalizeCid(cid).key
    const a = await alice.client.pinsPost({ pin: { cid } })
    const b = await bob.client.pinsPost({ pin: { cid } })
    const res = await psaFetch(t, alice.token, `/pins/${a.requestid}`, { method: 'DELETE' })
    expect(res.status).toBe(202)
    expect((await failureOf(alice.client.pinsRequestidGet({ requestid: a.requestid }))).status).toBe(404)
    expect((await failureOf(alice.client.pinsRequestidDelete({ requestid: a.requestid }))).status).toBe(404)
    expect((await t.pins.get(key))!.unreferencedSince).toBeUndefined()
    await bob.client.pinsRequestidDelete({ requestid: b.requestid })
    expect((await t.pins.get(key))!.unreferencedSince).toBeTypeOf('number')
    // Wanted again: the mark goes.
    await alice.client.pinsPost({ pin: { cid } })
    expect((await t.pins.get(key))!.unreferencedSince).toBeUndefined()
  })
})

describe('GET /pins', () => {
  /** A user with 12 requests: names, meta, statuses and CIDs of every kind, oldest first. */
  async function seeded() {
    const u = await newUser()
    const specs = [
      { name: 'Report.pdf', meta: { app: 'a', env: 'prod' }, to: 'pinned' },
      { name: 'report.PDF', meta: { app: 'a' }, to: 'pinned' },
      { name: 'old report draft', meta: { app: 'b' }, to: 'failed' },
      { name: 'photo.jpg', meta: { app: 'a', env: 'dev' }, to: 'queued' },
      { meta: {}, to: 'pinning' },
      { name: 'photo.jpg', meta: { app: 'b' }, to: 'pinned' },
      { name: 'Report.pdf', meta: { app: 'a', env: 'prod' }, to: 'queued' },
      { name: 'notes', meta: { env: 'prod' }, to: 'pinned' },
      { name: 'REPORT.PDF', meta: {}, to: 'failed' },
      { name: 'notes', meta: { app: 'a' }, to: 'pinned' },
      { name: 'x', meta: { app: 'c' }, to: 'queued' },
      { name: 'report', meta: { app: 'a' }, to: 'pinned' },
    ] as const
    const made: PinStatus[] = []
    for (const s of specs) {
      const cid = newCid()
      made.push(
        await u.client.pinsPost({
          pin: { cid, ...('name' in s ? { name: s.name } : {}), meta: { ...s.meta } },
        }),
      )
      if (s.to === 'pinned') await markPinned(t, cid)
      if (s.to === 'failed') await markFailed(t, cid)
      if (s.to === 'pinning') await markPinning(t, cid)
    }
    const status = (i: number) => specs[i]!.to
    return { ...u, made, specs, status }
  }

  const ids = (rs: PinStatus[]) => rs.map((r) => r.requestid)
  /** Newest first, as the API lists. */
  const newest = (xs: PinStatus[]) => [...xs].reverse()

  it('without filters lists pinned requests only, newest first, 10 by default', async () => {
    const u = await seeded()
    const res = await u.client.pinsGet()
    const pinned = newest(u.made.filter((_, i) => u.status(i) === 'pinned'))
    expect(res.count).toBe(pinned.length)
    expect(ids(res.results)).toEqual(ids(pinned))
    for (const r of res.results) expect(r.status).toBe(Status.Pinned)
    // The default of 10 results.
    for (let i = 0; i < 10; i++)
      await markPinned(t, (await u.client.pinsPost({ pin: { cid: newCid() } })).pin.cid)
    const more = await u.client.pinsGet()
    expect(more.results).toHaveLength(10)
    expect(more.count).toBe(pinned.length + 10)
  })

  it('filters by status (any combination), counting over the filter', async () => {
    const u = await seeded()
    for (const statuses of [
      [Status.Queued],
      [Status.Failed, Status.Pinning],
      [Status.Pinned, Status.Queued],
      [Status.Queued, Status.Pinning, Status.Pinned, Status.Failed],
    ]) {
      const res = await u.client.pinsGet({ status: statuses, limit: 100 })
      const expected = newest(u.made.filter((_, i) => (statuses as string[]).includes(u.status(i))))
      expect(res.count).toBe(expected.length)
      expect(ids(res.results)).toEqual(ids(expected))
    }
  })

  it('filters by name with every match mode; a name filter alone means every status', async () => {
    const u = await seeded()
    const cases: Array<
      [string, 'exact' | 'iexact' | 'partial' | 'ipartial' | undefined, (n: string) => boolean]
    > = [
      ['Report.pdf', undefined, (n) => n === 'Report.pdf'],
      ['Report.pdf', 'exact', (n) => n === 'Report.pdf'],
      ['report.pdf', 'iexact', (n) => n.toLowerCase() === 'report.pdf'],
      ['report', 'partial', (n) => n.includes('report')],
      ['REPORT', 'ipartial', (n) => n.toLowerCase().includes('report')],
    ]
    for (const [name, match, test] of cases) {
      const res = await u.client.pinsGet({ name, ...(match ? { match: match as never } : {}), limit: 100 })
      const expected = newest(
        u.made.filter((_, i) => {
          const s = u.specs[i]!
          return 'name' in s && test(s.name)
        }),
      )
      expect(res.count, `${match} ${name}`).toBe(expected.length)
      expect(ids(res.results)).toEqual(ids(expected))
    }
    // With a status too.
    const pinnedReports = await u.client.pinsGet({
      name: 'report',
      match: 'ipartial' as never,
      status: [Status.Pinned],
    })
    expect(pinnedReports.count).toBe(3)
  })

  it('filters by meta, given as meta[k]=v (the JS client) or as JSON (the specification)', async () => {
    const u = await seeded()
    const metaOf = (i: number): Record<string, string> => u.specs[i]!.meta
    const expected = newest(u.made.filter((_, i) => metaOf(i).app === 'a' && metaOf(i).env === 'prod'))
    const viaClient = await u.client.pinsGet({ meta: { app: 'a', env: 'prod' } })
    expect(viaClient.count).toBe(expected.length)
    expect(ids(viaClient.results)).toEqual(ids(expected))
    const res = await psaFetch(
      t,
      u.token,
      `/pins?meta=${encodeURIComponent(JSON.stringify({ app: 'a', env: 'prod' }))}`,
    )
    expect(res.status).toBe(200)
    const json = (await res.json()) as { count: number; results: Array<{ requestid: string }> }
    expect(json.count).toBe(expected.length)
    expect(json.results.map((r) => r.requestid)).toEqual(ids(expected))
  })

  it('filters by cid (several, any CID form) and by before and after, exclusively', async () => {
    const u = await seeded()
    const pick = [u.made[1]!, u.made[4]!, u.made[9]!]
    const byCid = await u.client.pinsGet({ cid: pick.map((p) => p.pin.cid) })
    expect(byCid.count).toBe(3)
    expect(ids(byCid.results)).toEqual(ids(newest(pick)))

    const after = u.made[3]!.created
    const before = u.made[8]!.created
    const range = await u.client.pinsGet({ after, before, limit: 100 })
    expect(ids(range.results)).toEqual(ids(newest(u.made.slice(4, 8))))
    expect(range.count).toBe(4)
    // Nanosecond and offset forms of the same instants.
    const iso = (d: Date, extra: string) => d.toISOString().replace('Z', extra)
    const res = await psaFetch(
      t,
      u.token,
      `/pins?after=${encodeURIComponent(iso(after, '000001Z'))}&before=${encodeURIComponent(
        new Date(before.getTime() + 2 * 3600_000).toISOString().replace('Z', '+02:00'),
      )}&limit=100`,
    )
    const json = (await res.json()) as { count: number }
    expect(json.count).toBe(4)
  })

  it('respects limit, and counts all matches beyond it', async () => {
    const u = await seeded()
    const res = await u.client.pinsGet({
      status: [Status.Pinned, Status.Queued, Status.Failed, Status.Pinning],
      limit: 3,
    })
    expect(res.results).toHaveLength(3)
    expect(res.count).toBe(12)
    expect(ids(res.results)).toEqual(ids(newest(u.made).slice(0, 3)))
  })

  it('pages the way kubo does over 35 requests: before = the last created, until count is reached', async () => {
    const u = await newUser()
    const made: PinStatus[] = []
    for (let i = 0; i < 35; i++) {
      const p = await u.client.pinsPost({ pin: { cid: newCid(), name: `file-${i}` } })
      if (i % 3 !== 0) await markPinned(t, p.pin.cid)
      made.push(p)
    }
    // kubo sends `status` (its default: pinned) with every page.
    const cases: Array<[PinsGetRequest, PinStatus[]]> = [
      [{ name: 'file', match: 'partial' as never }, made],
      [{ status: [Status.Pinned] }, made.filter((_, i) => i % 3 !== 0)],
      [{ status: [Status.Queued] }, made.filter((_, i) => i % 3 === 0)],
      [{ status: [Status.Queued, Status.Pinned] }, made],
    ]
    for (const [query, expected] of cases) {
      for (const limit of [10, 7]) {
        const seen: PinStatus[] = []
        let before: Date | undefined
        let pages = 0
        for (;;) {
          const res = await u.client.pinsGet({ ...query, limit, ...(before ? { before } : {}) })
          pages++
          seen.push(...res.results)
          if (res.count === res.results.length) break
          expect(res.results.length).toBe(limit)
          before = res.results[res.results.length - 1]!.created
        }
        expect(ids(seen)).toEqual(ids(newest([...expected])))
        expect(pages).toBe(Math.max(1, Math.ceil(expected.length / limit)))
      }
    }
  })

  it('keeps two users apart: lists, counts and filters see only their own requests', async () => {
    const alice = await newUser()
    const bob = await newUser()
    const shared = newCid()
    await alice.client.pinsPost({ pin: { cid: shared, name: 'same' } })
    await bob.client.pinsPost({ pin: { cid: shared, name: 'same' } })
    await bob.client.pinsPost({ pin: { cid: newCid(), name: 'same' } })
    expect((await alice.client.pinsGet({ name: 'same' })).count).toBe(1)
    expect((await bob.client.pinsGet({ name: 'same' })).count).toBe(2)
    expect((await alice.client.pinsGet({ cid: [shared] })).count).toBe(1)
    const fresh = await newUser()
    expect(await fresh.client.pinsGet({ status: [Status.Queued] })).toEqual({ count: 0, results: [] })
  })

  it('answers with exactly the specification fields', async () => {
    const u = await seeded()
    const res = await psaFetch(t, u.token, '/pins?limit=2')
    expect(res.headers.get('content-type')).toMatch(/^application\/json/)
    const json = (await res.json()) as { count: number; results: Array<Record<string, unknown>> }
    expect(Object.keys(json).sort()).toEqual(['count', 'results'])
    for (const r of json.results) expectSpecShape(r)
  })
})

describe('access tokens', () => {
  it('answers 401 with a Failure for a missing, malformed, unknown or revoked token', async () => {
    const { token } = await newUser()
    for (const auth of [
      undefined,
      'Bearer',
      'Basic dGVzdDpzZWNyZXQ=',
      `Bearer pk_${'A'.repeat(43)}`,
      `Bearer ${token}x`,
    ]) {
      const res = await fetch(`${t.psaUrl}/pins`, { headers: auth ? { authorization: auth } : {} })
      expect(res.status).toBe(401)
      expect(res.headers.get('content-type')).toMatch(/^application\/json/)
      expect(await res.json()).toEqual({ error: { reason: 'UNAUTHORIZED', details: expect.any(String) } })
    }
    const { revokeAccessToken } = await import('../../core/access-tokens.ts')
    expect((await psaFetch(t, token, '/pins')).status).toBe(200)
    await revokeAccessToken(token, { tokens: t.tokens })
    expect((await psaFetch(t, token, '/pins')).status).toBe(401)
  })

  it('lets browsers call it from any origin (CORS), preflight without a token', async () => {
    const preflight = await fetch(`${t.psaUrl}/pins`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    })
    expect(preflight.status).toBeLessThan(300)
    expect(preflight.headers.get('access-control-allow-origin')).toBe('*')
    expect(preflight.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('authorization')
    const { token } = await newUser()
    const res = await psaFetch(t, token, '/pins', { headers: { origin: 'https://app.example' } })
    expect(res.headers.get('access-control-allow-origin')).toBe('*')
  })

  it('answers 404 and 405 with Failures for other paths and methods', async () => {
    const { token } = await newUser()
    const notFound = await psaFetch(t, token, '/nothing')
    expect(notFound.status).toBe(404)
    expect(((await notFound.json()) as { error: { reason: string } }).error.reason).toBe('NOT_FOUND')
    const put = await psaFetch(t, token, '/pins', { method: 'PUT' })
    expect(put.status).toBe(405)
    expect(((await put.json()) as { error: { reason: string } }).error.reason).toBe('METHOD_NOT_ALLOWED')
  })
})
