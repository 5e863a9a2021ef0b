/**
 * Pinning Service API listings read at most their budget (core/psa-requests.ts listBudget) of a user's
 * requests, whatever the filter, and never pass a listing cut short off as complete: through the DynamoDB
 * store on dynalite (a middleware on the client sums the index entries each Query evaluated, matching or
 * not) and through the in-memory twin (answers only: it has no reads to count).
 */
import { randomBytes } from 'node:crypto'
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createDynamoRequestStore } from '../../adapters/dynamodb/requests.ts'
import { pinsTable, requestsTable } from '../../adapters/dynamodb/tables.ts'
import { createMemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import { ListingTooSparseError } from '../../core/errors.ts'
import type { PinRequest, PinStore, RequestStore } from '../../core/ports.ts'
import { listBudget, listPsaRequests, type PsaListQuery } from '../../core/psa-requests.ts'
import { type Services, startServices } from '../../local/services.ts'
import { createRandomTable } from '../adapters/harness.ts'

const T0 = 1_700_000_000_000
/** More requests than one budget reads at the smallest page. */
const HELD = listBudget(10) + 100

let services: Services
beforeAll(async () => {
  services = await startServices()
})
afterAll(async () => {
  await services?.stop()
})

/** Index entries evaluated by the client's Queries (ScannedCount), since the last reset. */
function countQueryReads(client: DynamoDBClient): { entries: number } {
  const reads = { entries: 0 }
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const out = await next(args)
      if (context.commandName === 'QueryCommand') {
        reads.entries += (out.output as { ScannedCount?: number }).ScannedCount ?? 0
      }
      return out
    },
    { step: 'initialize', name: `countQueryReads-${randomBytes(4).toString('hex')}` },
  )
  return reads
}

interface Twin {
  requests: RequestStore
  pins: PinStore
  /** Index entries read so far, where the store can tell. */
  reads?: { entries: number }
}

const twins: Array<[string, () => Promise<Twin>]> = [
  ['in-memory twin', async () => ({ requests: createMemoryRequestStore(), pins: createMemoryPinStore() })],
  [
    'DynamoDB (dynalite)',
    async () => {
      const client = services.clients.dynamodb
      const [tableName, pinsTableName] = await Promise.all([
        createRandomTable(services, requestsTable),
        createRandomTable(services, pinsTable),
      ])
      return {
        requests: createDynamoRequestStore({ client, tableName, countCache: { indexSettleMs: 0 } }),
        pins: createDynamoPinStore({ client, tableName: pinsTableName }),
        reads: countQueryReads(client),
      }
    },
  ],
]

for (const [label, make] of twins) {
  describe(`listings by meta or a partial or exact name, ${label}`, () => {
    let twin: Twin
    /** Oldest first: only the oldest has meta rare=1 and the name "Photo"; every other is named "PHOTO". */
    let held: PinRequest[]
    const list = (query: Omit<PsaListQuery, 'limit'> & { limit?: number }) =>
      listPsaRequests({ user: 'alice', query: { limit: 10, ...query } }, twin)
    const readDuring = async <T>(f: () => Promise<T>): Promise<[T | unknown, number]> => {
      const start = twin.reads?.entries ?? 0
      const out = await f().catch((err: unknown) => err)
      return [out, (twin.reads?.entries ?? 0) - start]
    }

    beforeAll(async () => {
      twin = await make()
      held = Array.from({ length: HELD }, (_, i): PinRequest => {
        const cid = `bafy${randomBytes(12).toString('hex')}`
        return {
          requestid: `r-${randomBytes(8).toString('hex')}`,
          owner: 'psa:alice',
          cid,
          sourceCid: cid,
          name: i === 0 ? 'Photo' : 'PHOTO',
          meta: i === 0 ? { rare: '1' } : { app: 'x' },
          origins: [],
          created: T0 + i,
          knownPinned: false,
        }
      })
      for (let i = 0; i < held.length; i += 50)
        await Promise.all(held.slice(i, i + 50).map(twin.requests.put))
    })

    it('answers a meta filter that matches nothing within the budget with LISTING_TOO_SPARSE and where to go on', async () => {
      const [sparse, entries] = await readDuring(() => list({ meta: { rare: '1' } }))
      expect(sparse).toBeInstanceOf(ListingTooSparseError)
      if (twin.reads) expect(entries).toBeGreaterThan(0)
      if (twin.reads) expect(entries).toBeLessThanOrEqual(listBudget(10))
      const before = (sparse as ListingTooSparseError).continueBefore!
      expect(before).toBeGreaterThan(held[0]!.created)
      const rest = await list({ meta: { rare: '1' }, before })
      expect(rest.count).toBe(1)
      expect(rest.results.map((r) => r.request.requestid)).toEqual([held[0]!.requestid])
    })

    it('counts a partial-name listing found + 1 past the budget, so clients page on', async () => {
      const [page, entries] = await readDuring(() => list({ name: { text: 'photo', match: 'ipartial' } }))
      if (twin.reads) expect(entries).toBeGreaterThan(0)
      if (twin.reads) expect(entries).toBeLessThanOrEqual(listBudget(10))
      const { count, results } = page as Awaited<ReturnType<typeof list>>
      expect(results.map((r) => r.request.requestid)).toEqual(
        held
          .slice(-10)
          .reverse()
          .map((r) => r.requestid),
      )
      expect(count).toBe(listBudget(10) + 1)
      // The same with every status named explicitly.
      const named = await list({
        name: { text: 'HOTO', match: 'ipartial' },
        statuses: ['queued', 'pinning', 'pinned', 'failed'],
      })
      expect(named.count).toBe(listBudget(10) + 1)
    })

    it('reads a bounded number of requests for an exact name, which its index holds among the names equal but for case', async () => {
      const [sparse, entries] = await readDuring(() => list({ name: { text: 'Photo', match: 'exact' } }))
      expect(sparse).toBeInstanceOf(ListingTooSparseError)
      if (twin.reads) expect(entries).toBeGreaterThan(0)
      if (twin.reads) expect(entries).toBeLessThanOrEqual(listBudget(10))
      const rest = await list({
        name: { text: 'Photo', match: 'exact' },
        before: (sparse as ListingTooSparseError).continueBefore!,
      })
      expect(rest.results.map((r) => r.request.requestid)).toEqual([held[0]!.requestid])
      expect(rest.count).toBe(1)
      // Case-insensitive, the index answers: an exact count, over every request.
      expect((await list({ name: { text: 'photo', match: 'iexact' } })).count).toBe(HELD)
    })

    it('counts exactly when the budget reaches the oldest request', async () => {
      const page = await list({ meta: { app: 'x' }, before: held[500]!.created })
      expect(page.count).toBe(499)
      expect(page.results[0]!.request.requestid).toBe(held[499]!.requestid)
    })
  })
}
