/**
 * Pinning Service API access tokens. A token is `pk_` + 32 random bytes in base64url, shown once when created;
 * only its sha256 is stored, keyed by that hash, so a lookup by the presented token's hash finds its record,
 * and the stored hash is compared with the computed one in constant time after the lookup.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { InvalidInputError, TokenNotFoundError, UnauthorizedError } from './errors.ts'
import type { AccessTokenRecord, Clock, TokenStore } from './ports.ts'

export const TOKEN_PREFIX = 'pk_'
const TOKEN_PATTERN = /^pk_[A-Za-z0-9_-]{43}$/
/** User ids: what can follow `psa:` in a request owner and be typed on a command line. */
const USER_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/
const MAX_LABEL_LENGTH = 200
/** Shortest hash prefix `revoke` accepts, so a typo cannot match many tokens by accident. */
export const MIN_HASH_PREFIX = 8

export interface TokenContext {
  tokens: TokenStore
  clock: Clock
}

/** Missing, malformed, unknown or revoked token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export function validateUserId(user: string): string {
  if (!USER_PATTERN.test(user)) {
    throw new InvalidInputError(
      'INVALID_USER',
      `user ids are 1 to 64 characters of letters, digits, '.', '_', '@' and '-', starting with a letter or digit: ${JSON.stringify(user)}`,
    )
  }
  return user
}

/** The request owner of a Pinning Service API user. */
export function psaOwner(user: string): string {
  return `psa:${user}`
}

export async function createAccessToken(
  input: { user: string; label?: string },
  ctx: TokenContext,
): Promise<{ token: string; record: AccessTokenRecord }> {
  const user = validateUserId(input.user)
  if (input.label !== undefined && input.label.length > MAX_LABEL_LENGTH) {
    throw new InvalidInputError('INVALID_LABEL', `labels are at most ${MAX_LABEL_LENGTH} characters`)
  }
  const token = `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`
  const record: AccessTokenRecord = {
    hash: hashToken(token),
    user,
    created: ctx.clock.now(),
    ...(input.label ? { label: input.label } : {}),
  }
  await ctx.tokens.put(record)
  return { token, record }
}

/** The user a presented token belongs to; throws UnauthorizedError otherwise. */
export async function authenticate(
  token: string | undefined,
  ctx: Pick<TokenContext, 'tokens'>,
): Promise<string> {
  if (token === undefined || !TOKEN_PATTERN.test(token)) throw new UnauthorizedError()
  const hash = hashToken(token)
  const record = await ctx.tokens.get(hash)
  if (!record || !timingSafeEqual(Buffer.from(record.hash, 'hex'), Buffer.from(hash, 'hex'))) {
    throw new UnauthorizedError()
  }
  return record.user
}

export async function listAccessTokens(
  input: { user?: string },
  ctx: Pick<TokenContext, 'tokens'>,
): Promise<AccessTokenRecord[]> {
  return ctx.tokens.list(input.user === undefined ? {} : { user: validateUserId(input.user) })
}

/**
 * Revokes a token given as the token itself or as a prefix of its hash (as `pickup token list` shows it, at
 * least MIN_HASH_PREFIX hex digits) matching exactly one token.
 */
export async function revokeAccessToken(
  tokenOrHashPrefix: string,
  ctx: Pick<TokenContext, 'tokens'>,
): Promise<AccessTokenRecord> {
  const given = tokenOrHashPrefix.trim()
  let record: AccessTokenRecord | undefined
  if (given.startsWith(TOKEN_PREFIX)) {
    record = await ctx.tokens.get(hashToken(given))
    if (!record) throw new TokenNotFoundError('no such token (already revoked?)')
  } else {
    const prefix = given.toLowerCase()
    if (!/^[0-9a-f]+$/.test(prefix) || prefix.length < MIN_HASH_PREFIX) {
      throw new InvalidInputError(
        'INVALID_TOKEN_REFERENCE',
        `give the token (pk_...) or at least ${MIN_HASH_PREFIX} hex digits of its hash`,
      )
    }
    const matches = (await ctx.tokens.list()).filter((t) => t.hash.startsWith(prefix))
    if (matches.length === 0) throw new TokenNotFoundError(`no token's hash starts with ${prefix}`)
    if (matches.length > 1) {
      throw new InvalidInputError(
        'AMBIGUOUS_TOKEN_REFERENCE',
        `${matches.length} tokens' hashes start with ${prefix}`,
      )
    }
    record = matches[0]!
  }
  await ctx.tokens.delete(record.hash)
  return record
}
