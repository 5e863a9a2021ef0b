/**
 * The Collections API through Hono's request handling (the real routes, auth and error mapping) over the
 * ports' in-memory twins; the chain is the enumeration port's twin (the EVM adapter is tested on anvil).
 */
import { Hono } from 'hono'
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryCollectionStore } from '../../adapters/memory/collections.ts'
import { createMemoryMetrics, type MemoryMetrics } from '../../adapters/memory/metrics.ts'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import { createMemoryTokenStore } from '../../adapters/memory/tokens.ts'
import { type CollectionsApiContext, createCollectionsApi } from '../../api/http/collections.ts'
import { createAccessToken } from '../../core/access-tokens.ts'
import { enumerateCollection } from '../../core/collections/archive.ts'
import { METRICS } from '../../core/metrics.ts'
import { rawBlock } from '../fixtures/dags.ts'
import { createTestLogger } from '../helpers/log.ts'

const ADDRESS = '0x00000000000000000000000000000000000000ab'
const ROOT = rawBlock(8, 'collections-api').root.toString()
let ctx: CollectionsApiContext
let app: Hono
let alice: string
let bob: string
let sent: string[]

beforeEach(async () => {
  const pins = createMemoryPinStore()
  sent = []
  ctx = {
    collections: createMemoryCollectionStore(),
    requests: createMemoryRequestStore(),
    pins,
    queue: createMemoryJobQueue(),
    clock: { now: () => Date.now() },
    tokens: createMemoryTokenStore(),
    jobs: { send: async (j) => void sent.push(j.collectionId) },
    chains: new Set([1]),
    log: createTestLogger([]),
    metrics: createMemoryMetrics(),
  }
  app = new Hono()
  app.route('/collections', createCollectionsApi(ctx))
  alice = (await createAccessToken({ user: 'alice' }, ctx)).token
  bob = (await createAccessToken({ user: 'bob' }, ctx)).token
})

const call = (path: string, token: string | undefined, init: RequestInit = {}) =>
  app.request(path, {
    ...init,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
  })
const post = (token: string, body: unknown) =>
  call('/collections', token, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })

describe('the Collections API', () => {
  it('needs a Pinning Service API token, and answers errors in its Failure shape', async () => {
    const res = await call('/collections', undefined)
    expect(res.status).toBe(401)
    expect(await res.json()).toMatchObject({ error: { reason: expect.any(String) } })
    for (const [body, reason] of [
      ['{', 'BAD_JSON'],
      ['[1]', 'BAD_JSON'],
      [{ chainId: 1, address: 'nope' }, 'INVALID_ADDRESS'],
      [{ chainId: 2, address: ADDRESS }, 'UNKNOWN_CHAIN'],
      [{ chainId: -1, address: ADDRESS }, 'INVALID_CHAIN_ID'],
      [{ chainId: 1, address: ADDRESS, name: 7 }, 'INVALID_NAME'],
    ] as const) {
      const r = await post(alice, body)
      expect(r.status).toBe(400)
      expect(await r.json()).toEqual({ error: { reason, details: expect.any(String) } })
    }
    expect((await call('/collections?limit=0', alice)).status).toBe(400)
    expect(sent).toEqual([])
    // Each refusal counted as this API's, by its reason; nothing accepted.
    const metrics = ctx.metrics as MemoryMetrics
    expect(metrics.values(METRICS.clientErrors, { Api: 'collections', Reason: 'INVALID_ADDRESS' })).toEqual([
      1,
    ])
    expect(metrics.values(METRICS.clientErrors, { Api: 'collections' })).toHaveLength(8)
    expect(metrics.values(METRICS.pinRequestsAccepted)).toEqual([])
  })

  it('creates, shows, lists, pages tokens and deletes a collection; others cannot see it', async () => {
    const res = await post(alice, {
      chainId: 1,
      address: ADDRESS.toUpperCase().replace('0X', '0x'),
      name: 'A',
    })
    expect(res.status).toBe(202)
    const created = (await res.json()) as { id: string }
    expect(created).toMatchObject({
      chainId: 1,
      address: ADDRESS,
      name: 'A',
      status: 'enumerating',
      tokens: { total: 0, archived: 0, incomplete: 0, failed: 0 },
      cids: { total: 0, pinned: 0, queued: 0, pinning: 0, failed: 0 },
    })
    expect(sent).toEqual([created.id])
    expect(
      (ctx.metrics as MemoryMetrics).values(METRICS.pinRequestsAccepted, { Api: 'collections' }),
    ).toEqual([1])
    expect(((await (await post(alice, { chainId: 1, address: ADDRESS })).json()) as { id: string }).id).toBe(
      created.id,
    )

    await enumerateCollection(
      { collectionId: created.id },
      {
        ...ctx,
        enumerator: {
          async *enumerate() {
            yield {
              standard: 'erc721',
              tokens: [
                { tokenId: '1', uri: `ipfs://${ROOT}/1` },
                { tokenId: '2', uri: `ipfs://${ROOT}/2` },
                { tokenId: '3', uri: 'ftp://x/3' },
              ],
              checkpoint: { standard: 'erc721', method: 'index', total: '3', next: '3' },
            }
          },
        },
      },
    )
    // No job has failed: no lastJobFailure. Once one has (the consumer records it), GET shows it.
    expect(await (await call(`/collections/${created.id}`, alice)).json()).not.toHaveProperty(
      'lastJobFailure',
    )
    await ctx.collections.putJobFailure(created.id, {
      step: 'enumerate',
      error: 'RPC_RATE_LIMITED: the provider answered 429',
      at: Date.UTC(2026, 0, 2, 3, 4, 5),
      receives: 2,
    })
    const shown = await (await call(`/collections/${created.id}`, alice)).json()
    expect(shown).toMatchObject({
      lastJobFailure: {
        step: 'enumerate',
        error: 'RPC_RATE_LIMITED: the provider answered 429',
        at: '2026-01-02T03:04:05.000Z',
        receives: 2,
      },
      status: 'archiving',
      standard: 'erc721',
      tokens: { total: 3, archived: 0, incomplete: 2, failed: 1 },
      cids: { total: 1, queued: 1 },
    })
    const page = (await (await call(`/collections/${created.id}/tokens?limit=2`, alice)).json()) as {
      results: Array<{ tokenId: string }>
      cursor: string
    }
    expect(page.results.map((t) => t.tokenId)).toEqual(['1', '2'])
    const rest = (await (
      await call(`/collections/${created.id}/tokens?limit=2&cursor=${page.cursor}`, alice)
    ).json()) as { results: Array<{ tokenId: string; metadata: object }>; cursor?: string }
    expect(rest.results).toMatchObject([{ tokenId: '3', metadata: { status: 'failed' } }])
    expect(rest.cursor).toBeUndefined()
    const failed = (await (await call(`/collections/${created.id}/tokens?status=failed`, alice)).json()) as {
      results: unknown[]
    }
    expect(failed.results).toHaveLength(1)
    expect((await call(`/collections/${created.id}/tokens?status=nope`, alice)).status).toBe(400)
    expect((await call(`/collections/${created.id}/tokens?cursor=nope`, alice)).status).toBe(400)

    const list = (await (await call('/collections', alice)).json()) as { results: Array<{ id: string }> }
    expect(list.results.map((c) => c.id)).toEqual([created.id])
    expect(((await (await call('/collections', bob)).json()) as { results: unknown[] }).results).toEqual([])
    const hidden = await call(`/collections/${created.id}`, bob)
    expect(hidden.status).toBe(404)
    expect(await hidden.json()).toEqual({ error: { reason: 'NOT_FOUND', details: expect.any(String) } })
    expect((await call(`/collections/${created.id}`, bob, { method: 'DELETE' })).status).toBe(404)

    expect((await call(`/collections/${created.id}`, alice, { method: 'DELETE' })).status).toBe(202)
    expect((await call(`/collections/${created.id}`, alice)).status).toBe(404)
    expect(await ctx.requests.listByOwner(`collection:${created.id}`, { limit: 10 })).toMatchObject({
      requests: [],
    })
  })
})
