import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import { describe, expect, it } from 'vitest'
import { normalizeCid, parseCid } from '../../core/cid.ts'

const v0 = 'QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n'
const key = CID.parse(v0).toV1().toString()

describe('CIDs as clients send them', () => {
  it.each([
    ['CIDv0', v0],
    ['CIDv0 with the base58btc prefix', `z${v0}`],
    ['CIDv1 base32', key],
    ['CIDv1 base32 upper case', key.toUpperCase()],
    ['CIDv1 base58btc', CID.parse(v0).toV1().toString(base58btc)],
    ['CIDv1 base36', CID.parse(v0).toV1().toString(base36)],
  ])('%s is the same content', (_, text) => {
    expect(normalizeCid(text).key).toBe(key)
  })

  it.each(['', 'Qm', 'not-a-cid', `${key}x`, 'bafy', 'x'.repeat(600)])('refuses %j', (text) => {
    expect(() => parseCid(text)).toThrow(/not a valid CID/)
  })
})
