/**
 * One limit on a CID's length, enforced at the door: every CID an API accepts can be read, replaced and
 * deleted afterwards (a requestid embeds the content key). Identity CIDs carry their data inline, so they come
 * in every length; so do the denser multibases (base58btc, base36, base64), whose CIDv1 base32 key is longer
 * than what the client sent. The real app over the in-memory twins, through a real HTTP server and the real
 * Pinning Service API client.
 */
import { base64 } from 'multiformats/bases/base64'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { identity } from 'multiformats/hashes/identity'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MAX_CONTENT_KEY_LENGTH, normalizeCid } from '../../core/cid.ts'
import { contentKeyOfRequestId } from '../../core/psa-requests.ts'
import { startTestHttpApp, type TestHttpApp } from '../helpers/http-app.ts'
import { failureOf, psaClient } from './helpers.ts'

let t: TestHttpApp
beforeAll(async () => {
  t = await startTestHttpApp()
})
afterAll(async () => {
  await t?.stop()
})

let seq = 0
/** An identity CID (raw) whose CIDv1 base32 form is exactly `length` characters, or the next longer one. */
function identityCid(length: number, fill = ++seq % 256): CID {
  for (let n = 1; ; n++) {
    const bytes = new Uint8Array(n).fill(fill)
    const cid = CID.createV1(raw.code, identity.digest(bytes))
    if (cid.toString().length >= length) return cid
  }
}

describe('the longest CID', () => {
  it('is accepted by the Pinning Service API, then read, replaced and deleted', async () => {
    const longest = identityCid(MAX_CONTENT_KEY_LENGTH)
    expect(longest.toString().length).toBe(MAX_CONTENT_KEY_LENGTH)
    const client = psaClient({ psaUrl: `${t.url}/psa` }, await t.createPsaToken('longest'))

    const created = await client.pinsPost({ pin: { cid: longest.toString() } })
    expect(contentKeyOfRequestId(created.requestid)).toBe(longest.toString())
    expect((await client.pinsRequestidGet({ requestid: created.requestid })).pin.cid).toBe(longest.toString())
    const replaced = await client.pinsRequestidPost({
      requestid: created.requestid,
      pin: { cid: identityCid(MAX_CONTENT_KEY_LENGTH).toString() },
    })
    await client.pinsRequestidDelete({ requestid: replaced.requestid })
    expect(t.requests.all().filter((r) => r.owner === 'psa:longest')).toEqual([])
  })

  it('is accepted by the cluster API, then read and unpinned', async () => {
    const longest = identityCid(MAX_CONTENT_KEY_LENGTH).toString()
    expect((await t.api(`/pins/${longest}`, { method: 'POST' })).status).toBe(200)
    const got = (await (await t.api(`/pins/${longest}`)).json()) as {
      peer_map: Record<string, { status: string }>
    }
    expect(Object.values(got.peer_map)[0]?.status).toBe('pin_queued')
    expect((await t.api(`/pins/${longest}`, { method: 'DELETE' })).status).toBe(200)
  })
})

describe('a longer CID', () => {
  const tooLong = identityCid(MAX_CONTENT_KEY_LENGTH + 1)
  // Short as sent, too long once normalised.
  const denseTooLong = () => {
    const text = tooLong.toString(base64)
    expect(text.length).toBeLessThan(MAX_CONTENT_KEY_LENGTH)
    return text
  }

  it.each([
    ['base32', () => tooLong.toString()],
    ['base64, shorter than the limit as sent', denseTooLong],
  ])('in %s is refused by the Pinning Service API with 400 INVALID_CID, nothing stored', async (_, cid) => {
    const client = psaClient({ psaUrl: `${t.url}/psa` }, await t.createPsaToken('too-long'))
    const failed = await failureOf(client.pinsPost({ pin: { cid: cid() } }))
    expect(failed).toMatchObject({ status: 400, reason: 'INVALID_CID' })
    expect(t.requests.all().filter((r) => r.owner === 'psa:too-long')).toEqual([])
  })

  it.each([
    ['base32', () => tooLong.toString()],
    ['base64, shorter than the limit as sent', denseTooLong],
  ])('in %s is refused by the cluster API with 400, nothing stored', async (_, cid) => {
    const text = cid()
    const res = await t.api(`/pins/${encodeURIComponent(text)}`, { method: 'POST' })
    expect(res.status).toBe(400)
    expect(await res.json()).toMatchObject({ code: 400, message: expect.stringMatching(/not a valid CID/) })
    expect(await t.pins.get(tooLong.toString())).toBeUndefined()
    expect(t.requests.all().filter((r) => r.cid === tooLong.toString())).toEqual([])
  })

  it('is refused wherever a CID is normalised', () => {
    expect(() => normalizeCid(denseTooLong())).toThrow(/not a valid CID/)
  })
})
