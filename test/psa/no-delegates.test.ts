/**
 * With no delegate to hand out (no worker live, no fallback), the Pinning Service API cannot write a valid
 * PinStatus and answers 503: it must do so before it changes anything, so a client's retry neither duplicates
 * a create nor loses a replace. The real app over the in-memory twins, through a real HTTP server and the real
 * client.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rawBlock } from '../fixtures/dags.ts'
import { startTestHttpApp, TEST_DELEGATE, type TestHttpApp } from '../helpers/http-app.ts'
import { failureOf, psaClient } from './helpers.ts'

let t: TestHttpApp
beforeAll(async () => {
  t = await startTestHttpApp()
})
afterAll(async () => {
  await t?.stop()
})

let n = 0
const newCid = () => rawBlock(8, `no-delegates-${++n}`).root.toString()
const client = (token: string) => psaClient({ psaUrl: `${t.url}/psa` }, token)

describe('no delegates', () => {
  it('answers 503 to a create before storing or queueing anything', async () => {
    const token = await t.createPsaToken('alice')
    t.fallbackDelegates = []
    try {
      const failed = await failureOf(client(token).pinsPost({ pin: { cid: newCid() } }))
      expect(failed).toMatchObject({ status: 503, reason: 'SERVICE_UNAVAILABLE' })
      expect(t.requests.all()).toEqual([])
      expect(t.queue.stats()).toEqual({ visible: 0, invisible: 0 })
    } finally {
      t.fallbackDelegates = [TEST_DELEGATE]
    }
  })

  it('answers 503 to a replace before touching the old request, which still answers', async () => {
    const token = await t.createPsaToken('bob')
    const c = client(token)
    const created = await c.pinsPost({ pin: { cid: newCid() } })
    const before = t.requests.all().map((r) => r.requestid)
    t.fallbackDelegates = []
    try {
      const failed = await failureOf(
        c.pinsRequestidPost({ requestid: created.requestid, pin: { cid: newCid() } }),
      )
      expect(failed).toMatchObject({ status: 503, reason: 'SERVICE_UNAVAILABLE' })
      expect(t.requests.all().map((r) => r.requestid)).toEqual(before)
    } finally {
      t.fallbackDelegates = [TEST_DELEGATE]
    }
    expect((await c.pinsRequestidGet({ requestid: created.requestid })).requestid).toBe(created.requestid)
  })
})
