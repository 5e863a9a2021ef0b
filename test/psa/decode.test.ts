/**
 * Pure pieces of the Pinning Service API's HTTP layer: RFC 3339 parsing and the delegates policy.
 */
import { describe, expect, it } from 'vitest'
import { parseRfc3339 } from '../../api/http/psa/decode.ts'

describe('parseRfc3339', () => {
  it('reads every RFC 3339 form to the millisecond, offsets applied', () => {
    const t = Date.UTC(2020, 6, 27, 17, 32, 28)
    expect(parseRfc3339('2020-07-27T17:32:28Z')).toBe(t)
    expect(parseRfc3339('2020-07-27t17:32:28z')).toBe(t)
    expect(parseRfc3339('2020-07-27 17:32:28Z')).toBe(t)
    expect(parseRfc3339('2020-07-27T17:32:28.123Z')).toBe(t + 123)
    expect(parseRfc3339('2020-07-27T17:32:28.1Z')).toBe(t + 100)
    expect(parseRfc3339('2020-07-27T19:32:28+02:00')).toBe(t)
    expect(parseRfc3339('2020-07-27T19:32:28 02:00')).toBe(t)
    expect(parseRfc3339('2020-07-27T12:02:28-05:30')).toBe(t)
    expect(parseRfc3339('2020-12-31T23:59:60Z')).toBe(Date.UTC(2021, 0, 1))
    expect(parseRfc3339('0099-01-01T00:00:00Z')).toBe(new Date('0099-01-01T00:00:00Z').getTime())
  })

  it('keeps sub-millisecond parts exact for comparisons with whole milliseconds', () => {
    const t = Date.UTC(2020, 6, 27, 17, 32, 28)
    expect(parseRfc3339('2020-07-27T17:32:28.007Z')).toBe(t + 7)
    expect(parseRfc3339('2020-07-27T17:32:28.007000000Z')).toBe(t + 7)
    expect(parseRfc3339('2020-07-27T17:32:28.007000001Z')).toBe(t + 7.5)
  })

  it('rejects what is not one', () => {
    for (const s of [
      '',
      'yesterday',
      '2020-07-27',
      '2020-07-27T17:32:28',
      '2020-07-27T17:32Z',
      '2020-02-30T00:00:00Z',
      '2021-02-29T00:00:00Z',
      '2020-13-01T00:00:00Z',
      '2020-07-27T24:00:00Z',
      '2020-07-27T17:32:28+24:00',
      '2020-07-27T17:32:28.1234567891Z',
      '1595871148',
    ]) {
      expect(parseRfc3339(s), s).toBeUndefined()
    }
    expect(parseRfc3339('2020-02-29T00:00:00Z')).toBeDefined()
  })
})
