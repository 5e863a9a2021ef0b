/**
 * Page cursors: the index key of a page's last item as a base64url JSON array, opaque to clients. The DynamoDB
 * adapters and their in-memory twins share these codecs, so a cursor means the same to both. A cursor that
 * is not one of the listing's is refused with INVALID_CURSOR, never passed on to a query.
 */
import { InvalidInputError } from '../core/errors.ts'
import type { PinStatus } from '../core/pin.ts'

function encode(values: ReadonlyArray<string | number>): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url')
}

/** The cursor's values if it has `kinds` shape (finite numbers, strings), else undefined. */
function decode(
  cursor: string,
  kinds: ReadonlyArray<'string' | 'number'>,
): Array<string | number> | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
  if (!Array.isArray(parsed) || parsed.length !== kinds.length) return undefined
  const ok = kinds.every((kind, i) =>
    kind === 'number'
      ? typeof parsed[i] === 'number' && Number.isFinite(parsed[i])
      : typeof parsed[i] === 'string',
  )
  return ok ? parsed : undefined
}

function invalid(what: string): never {
  throw new InvalidInputError('INVALID_CURSOR', `not a cursor of ${what}`)
}

/** Pins by status, newest or oldest first: [status, updated, cid]. */
export const pinCursor = {
  encode: (status: PinStatus, updated: number, cid: string) => encode([status, updated, cid]),
  decode(cursor: string, status: PinStatus): { updated: number; cid: string } {
    const v = decode(cursor, ['string', 'number', 'string'])
    if (!v || v[0] !== status) invalid(`a ${status} pin listing`)
    return { updated: v[1] as number, cid: v[2] as string }
  },
}

/** Unreferenced pins: ['unreferenced', unreferencedSince, cid]. */
export const unreferencedCursor = {
  encode: (since: number, cid: string) => encode(['unreferenced', since, cid]),
  decode(cursor: string): { since: number; cid: string } {
    const v = decode(cursor, ['string', 'number', 'string'])
    if (v?.[0] !== 'unreferenced') invalid('the unreferenced pin listing')
    return { since: v[1] as number, cid: v[2] as string }
  },
}

/** One owner's requests, newest first: [created, requestid]. */
export const requestCursor = {
  encode: (created: number, requestid: string) => encode([created, requestid]),
  decode(cursor: string): { created: number; requestid: string } {
    const v = decode(cursor, ['number', 'string'])
    if (!v) invalid('a request listing')
    return { created: v[0] as number, requestid: v[1] as string }
  },
}

/** A collection's tokens, by token id: ['token', tokenId]. */
export const tokenCursor = {
  encode: (tokenId: string) => encode(['token', tokenId]),
  decode(cursor: string): string {
    const v = decode(cursor, ['string', 'string'])
    if (v?.[0] !== 'token') invalid("a collection's token listing")
    return v[1] as string
  },
}

/** A collection's roots, by CID: ['root', cid]. */
export const rootCursor = {
  encode: (cid: string) => encode(['root', cid]),
  decode(cursor: string): string {
    const v = decode(cursor, ['string', 'string'])
    if (v?.[0] !== 'root') invalid("a collection's root listing")
    return v[1] as string
  },
}

/** One owner's collections, newest first: ['collection', created, id]. */
export const collectionCursor = {
  encode: (created: number, id: string) => encode(['collection', created, id]),
  decode(cursor: string): { created: number; id: string } {
    const v = decode(cursor, ['string', 'number', 'string'])
    if (v?.[0] !== 'collection') invalid('a collection listing')
    return { created: v[1] as number, id: v[2] as string }
  },
}
