/**
 * Decoding of the Pinning Service API's inputs: the `Pin` body and `GET /pins` query parameters, with zod.
 * Schemas are closed (an unknown field or parameter is an error, so a typo cannot silently change a query).
 * Every problem becomes an InvalidInputError whose code is a stable reason for the Failure body:
 *
 * Body: BODY_TOO_LARGE (413), INVALID_JSON, INVALID_BODY (not an object), UNKNOWN_FIELD, MISSING_CID, INVALID_CID,
 * INVALID_NAME, NAME_TOO_LONG, INVALID_ORIGINS (not strings, not multiaddrs, or repeated), TOO_MANY_ORIGINS,
 * INVALID_META (not an object of strings, or an empty key), META_TOO_LARGE.
 * Query: UNKNOWN_PARAMETER, DUPLICATE_PARAMETER, INVALID_CID, TOO_MANY_CIDS, NAME_TOO_LONG, INVALID_MATCH,
 * INVALID_STATUS, INVALID_DATE, INVALID_LIMIT, INVALID_META.
 */
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import { normalizeCid } from '../../../core/cid.ts'
import { InvalidInputError } from '../../../core/errors.ts'
import { MAX_ORIGINS, PIN_STATUSES } from '../../../core/pin.ts'
import type { PsaListQuery, PsaPinInput } from '../../../core/psa-requests.ts'
import { NAME_MATCHES } from '../../../core/request-filter.ts'
import { BodyTooLargeError, MAX_REQUEST_BODY_BYTES } from '../body-limit.ts'

export const MAX_BODY_BYTES = MAX_REQUEST_BODY_BYTES
export const MAX_NAME_LENGTH = 255
export const MAX_META_ENTRIES = 64
export const MAX_META_KEY_LENGTH = 128
/** The whole of `meta` as JSON: it is stored with the request and copied into its indexes. */
export const MAX_META_BYTES = 4 * 1024
export const MAX_FILTER_CIDS = 10
export const MAX_LIMIT = 1000
export const DEFAULT_LIMIT = 10

/** A zod message carrying the reason code: `CODE: text`. */
const r = (code: string, text: string) => `${code}: ${text}`

function isMultiaddr(s: string): boolean {
  try {
    return multiaddr(s).getComponents().length > 0
  } catch {
    return false
  }
}

const metaSchema = z
  .record(z.string(), z.string({ error: r('INVALID_META', 'meta values must be strings') }), {
    error: r('INVALID_META', 'meta must be an object of string values'),
  })
  .superRefine((meta, ctx) => {
    const keys = Object.keys(meta)
    if (keys.some((k) => k.length === 0 || k.length > MAX_META_KEY_LENGTH)) {
      ctx.addIssue({
        code: 'custom',
        message: r('INVALID_META', `meta keys are 1 to ${MAX_META_KEY_LENGTH} characters`),
      })
    } else if (keys.length > MAX_META_ENTRIES || Buffer.byteLength(JSON.stringify(meta)) > MAX_META_BYTES) {
      ctx.addIssue({
        code: 'custom',
        message: r(
          'META_TOO_LARGE',
          `meta is at most ${MAX_META_ENTRIES} entries and ${MAX_META_BYTES} bytes as JSON`,
        ),
      })
    }
  })

const pinSchema = z.strictObject(
  {
    cid: z
      .string({
        error: (iss) =>
          iss.input === undefined
            ? r('MISSING_CID', 'cid is required')
            : r('INVALID_CID', 'cid must be a string'),
      })
      .min(1, { error: r('INVALID_CID', 'cid must not be empty') }),
    name: z
      .string({ error: r('INVALID_NAME', 'name must be a string') })
      .max(MAX_NAME_LENGTH, { error: r('NAME_TOO_LONG', `name is at most ${MAX_NAME_LENGTH} characters`) })
      .optional(),
    origins: z
      .array(z.string({ error: r('INVALID_ORIGINS', 'origins must be multiaddr strings') }), {
        error: r('INVALID_ORIGINS', 'origins must be an array of multiaddrs'),
      })
      .max(MAX_ORIGINS, { error: r('TOO_MANY_ORIGINS', `at most ${MAX_ORIGINS} origins`) })
      .superRefine((origins, ctx) => {
        if (new Set(origins).size !== origins.length) {
          ctx.addIssue({ code: 'custom', message: r('INVALID_ORIGINS', 'origins must be unique') })
        }
        const bad = origins.find((o) => !isMultiaddr(o))
        if (bad !== undefined) {
          ctx.addIssue({
            code: 'custom',
            message: r('INVALID_ORIGINS', `not a multiaddr: ${JSON.stringify(bad.slice(0, 100))}`),
          })
        }
      })
      .optional(),
    meta: metaSchema.optional(),
  },
  {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? r(
            'UNKNOWN_FIELD',
            `unknown field(s): ${iss.keys.join(', ')}; a Pin has cid, name, origins and meta`,
          )
        : r('INVALID_BODY', 'the body must be a Pin object'),
  },
)

/** Turns zod issues into one InvalidInputError: the first issue's reason, every issue in the details. */
function fail(issues: ReadonlyArray<{ message: string; path: PropertyKey[] }>): never {
  const parts = issues.map((i) => {
    const m = /^([A-Z_]+): (.*)$/s.exec(i.message)
    return { code: m?.[1] ?? 'BAD_REQUEST', text: m?.[2] ?? i.message }
  })
  throw new InvalidInputError(
    parts[0]?.code ?? 'BAD_REQUEST',
    parts.map((p) => p.text).join('; ') || 'bad request',
  )
}

/** The body of `POST /pins` and `POST /pins/{requestid}`. */
export function decodePinBody(text: string): PsaPinInput {
  // limitBody (../body-limit.ts) refuses larger bodies before they are read; this keeps the decoder whole.
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) throw new BodyTooLargeError(MAX_BODY_BYTES)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new InvalidInputError(
      'INVALID_JSON',
      `the body is not JSON: ${err instanceof Error ? err.message : String(err)}`,
    )
  }
  const parsed = pinSchema.safeParse(json)
  if (!parsed.success) fail(parsed.error.issues)
  const { cid, name, origins, meta } = parsed.data
  return { cid, ...(name === undefined ? {} : { name }), origins: origins ?? [], meta: meta ?? {} }
}

// ---------------------------------------------------------------- GET /pins

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+\- ])(\d{2}):(\d{2}))$/

/**
 * An RFC 3339 date-time (any offset, up to nanoseconds) as epoch milliseconds (see below for sub-millisecond
 * parts); undefined when it is not one. A space before the offset is read as `+` (an unencoded `+` in a query string).
 */
export function parseRfc3339(text: string): number | undefined {
  const m = RFC3339.exec(text)
  if (!m) return undefined
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  // Whole milliseconds, plus 0.5 for any finer part: compared with integer `created` values, that is exact
  // (created < t + f  <=>  created < t + 0.5 for 0 < f < 1), with no floating-point rounding of decimals.
  const digits = m[7] ?? ''
  const fraction = Number(digits.slice(0, 3).padEnd(3, '0')) + (/[1-9]/.test(digits.slice(3)) ? 0.5 : 0)
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0
  const maxDay = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1] ?? 0
  if (month < 1 || month > 12 || day < 1 || day > maxDay || hour > 23 || minute > 59 || second > 60)
    return undefined
  let offsetMinutes = 0
  if (m[8] === undefined) {
    const oh = Number(m[10])
    const om = Number(m[11])
    if (oh > 23 || om > 59) return undefined
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (oh * 60 + om)
  }
  const date = new Date(0)
  date.setUTCFullYear(year, month - 1, day)
  date.setUTCHours(hour, minute, Math.min(second, 59), 0)
  return date.getTime() + (second === 60 ? 1000 : 0) + fraction - offsetMinutes * 60_000
}

const csv = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0)

const dateParam = (name: string) =>
  z.string().transform((s, ctx) => {
    const ms = parseRfc3339(s)
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: r('INVALID_DATE', `${name} must be an RFC 3339 date-time, e.g. 2020-07-27T17:32:28Z`),
      })
      return z.NEVER
    }
    return ms
  })

const querySchema = z.strictObject(
  {
    cid: z
      .string()
      .transform(csv)
      .pipe(
        z
          .array(z.string())
          .min(1, { error: r('INVALID_CID', 'cid must list at least one CID') })
          .max(MAX_FILTER_CIDS, { error: r('TOO_MANY_CIDS', `at most ${MAX_FILTER_CIDS} CIDs per query`) }),
      )
      .optional(),
    name: z
      .string()
      .max(MAX_NAME_LENGTH, { error: r('NAME_TOO_LONG', `name is at most ${MAX_NAME_LENGTH} characters`) })
      .optional(),
    match: z
      .enum(NAME_MATCHES, { error: r('INVALID_MATCH', `match is one of ${NAME_MATCHES.join(', ')}`) })
      .optional(),
    status: z
      .string()
      .transform(csv)
      .pipe(
        z
          .array(
            z.enum(PIN_STATUSES, {
              error: r('INVALID_STATUS', `status values are ${PIN_STATUSES.join(', ')}`),
            }),
          )
          .min(1, { error: r('INVALID_STATUS', 'status must list at least one status') }),
      )
      .optional(),
    before: dateParam('before').optional(),
    after: dateParam('after').optional(),
    limit: z
      .string()
      .regex(/^[0-9]{1,7}$/, { error: r('INVALID_LIMIT', `limit is an integer from 1 to ${MAX_LIMIT}`) })
      .transform(Number)
      .pipe(
        z
          .number()
          .min(1, { error: r('INVALID_LIMIT', `limit is an integer from 1 to ${MAX_LIMIT}`) })
          .max(MAX_LIMIT, { error: r('INVALID_LIMIT', `limit is an integer from 1 to ${MAX_LIMIT}`) }),
      )
      .optional(),
    meta: metaSchema.optional(),
  },
  {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? r('UNKNOWN_PARAMETER', `unknown parameter(s): ${iss.keys.join(', ')}`)
        : r('BAD_REQUEST', 'bad query'),
  },
)

const MULTI_VALUED = new Set(['cid', 'status'])

/**
 * `GET /pins` parameters. `cid` and `status` may be repeated as well as comma-separated; `meta` is accepted
 * as the specification's JSON (`meta={"k":"v"}`) and as `meta[k]=v` (what the generated JS client sends),
 * both merged. An empty `name` is no name filter.
 */
export function decodeListQuery(params: URLSearchParams): PsaListQuery {
  const raw: Record<string, unknown> = {}
  const meta: Record<string, string> = {}
  let hasMeta = false
  for (const [key, value] of params) {
    const bracket = /^meta\[(.*)\]$/s.exec(key)
    if (bracket) {
      if (Object.hasOwn(meta, bracket[1]!)) {
        throw new InvalidInputError('DUPLICATE_PARAMETER', `meta[${bracket[1]}] is given twice`)
      }
      meta[bracket[1]!] = value
      hasMeta = true
    } else if (key === 'meta') {
      let parsed: unknown
      try {
        parsed = JSON.parse(value)
      } catch {
        throw new InvalidInputError(
          'INVALID_META',
          'meta must be a JSON object of string values, e.g. {"app_id":"x"}',
        )
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new InvalidInputError(
          'INVALID_META',
          'meta must be a JSON object of string values, e.g. {"app_id":"x"}',
        )
      }
      for (const [k, v] of Object.entries(parsed)) {
        if (typeof v !== 'string')
          throw new InvalidInputError('INVALID_META', `meta value of ${JSON.stringify(k)} is not a string`)
        if (Object.hasOwn(meta, k))
          throw new InvalidInputError('DUPLICATE_PARAMETER', `meta key ${JSON.stringify(k)} is given twice`)
        meta[k] = v
      }
      hasMeta = true
    } else if (Object.hasOwn(raw, key)) {
      if (!MULTI_VALUED.has(key))
        throw new InvalidInputError('DUPLICATE_PARAMETER', `${key} is given more than once`)
      raw[key] = `${raw[key]},${value}`
    } else {
      raw[key] = value
    }
  }
  if (hasMeta) raw.meta = meta
  const parsed = querySchema.safeParse(raw)
  if (!parsed.success) fail(parsed.error.issues)
  const q = parsed.data
  return {
    // Content keys (CIDv1): a CID given as v0 and as v1 is one condition.
    ...(q.cid ? { cids: [...new Set(q.cid.map((c) => normalizeCid(c).key))] } : {}),
    ...(q.name ? { name: { text: q.name, match: q.match ?? 'exact' } } : {}),
    ...(q.status ? { statuses: [...new Set(q.status)] } : {}),
    ...(q.before === undefined ? {} : { before: q.before }),
    ...(q.after === undefined ? {} : { after: q.after }),
    ...(q.meta && Object.keys(q.meta).length > 0 ? { meta: q.meta } : {}),
    limit: q.limit ?? DEFAULT_LIMIT,
  }
}
