import { describe, expect, it } from 'vitest'
import { collectionWebSchema, webArchiveLimitsFromConfig } from '../../../core/collections/web-config.ts'
import { ConfigError, parseConfig, workerSchema } from '../../../core/config.ts'
import { localSchema } from '../../../local/config.ts'

describe('web-hosted content settings', () => {
  it('refuse non-public addresses unless configured; local mode allows them', () => {
    expect(parseConfig(collectionWebSchema, {})).toEqual({
      COLLECTION_WEB_MAX_BYTES: 256 * 1024 * 1024,
      COLLECTION_WEB_TIMEOUT_MS: 60_000,
      COLLECTION_WEB_MAX_REDIRECTS: 5,
      COLLECTION_WEB_ALLOW_PRIVATE: false,
      COLLECTION_WEB_WINDOW_MS: 45_000,
    })
    expect(parseConfig(localSchema, {}).COLLECTION_WEB_ALLOW_PRIVATE).toBe(true)
    expect(
      parseConfig(localSchema, { COLLECTION_WEB_ALLOW_PRIVATE: 'false' }).COLLECTION_WEB_ALLOW_PRIVATE,
    ).toBe(false)
  })

  it('report every bad variable together', () => {
    let err: unknown
    try {
      parseConfig(collectionWebSchema, {
        COLLECTION_WEB_ALLOW_PRIVATE: 'maybe',
        COLLECTION_WEB_MAX_BYTES: '-1',
      })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).problems.map((p) => p.split(':')[0]).sort()).toEqual([
      'COLLECTION_WEB_ALLOW_PRIVATE',
      'COLLECTION_WEB_MAX_BYTES',
    ])
  })

  it("share the worker's lease, part size and CAR limit", () => {
    const cfg = {
      ...parseConfig(workerSchema, { VISIBILITY_TIMEOUT_SECONDS: '60', MAX_CAR_BYTES: '1000000000' }),
      ...parseConfig(collectionWebSchema, { COLLECTION_WEB_MAX_BYTES: '1048576' }),
    }
    expect(webArchiveLimitsFromConfig(cfg)).toEqual({
      maxBytes: 1_048_576,
      maxCarBytes: 1_000_000_000,
      leaseMs: 60_000,
      validationLeaseMs: 20 * 60 * 1000,
      partBytes: 8 * 1024 * 1024,
    })
  })
})
