/**
 * The Pinning Service API's authentication, shared by every API its users call (`/psa`, `/collections`):
 * `Authorization: Bearer <access token>`, the token's user set as `user` on the request's context. A missing
 * or unknown token is an UnauthorizedError, which the API's error handler answers 401.
 */
import type { MiddlewareHandler } from 'hono'
import { authenticate, type TokenContext } from '../../core/access-tokens.ts'

/** The context variables of a request that passed bearerAuth. */
export type BearerEnv = { Variables: { user: string } }

export function bearerAuth(ctx: Pick<TokenContext, 'tokens'>): MiddlewareHandler<BearerEnv> {
  return async (c, next) => {
    const token = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header('authorization') ?? '')?.[1]
    c.set('user', await authenticate(token, ctx))
    await next()
  }
}
