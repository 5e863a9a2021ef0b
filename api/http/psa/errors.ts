/**
 * The Pinning Service API's one mapping point from errors to responses: a `Failure` body,
 * `{"error":{"reason":"<CODE>","details":"<text>"}}`, always JSON. Client mistakes are 4xx with their stable
 * code; anything unexpected is logged and answered 500 INTERNAL_SERVER_ERROR without internals.
 */
import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { UnauthorizedError } from '../../../core/access-tokens.ts'
import { InvalidCidError, InvalidInputError, PickupError } from '../../../core/errors.ts'
import type { Metrics } from '../../../core/metrics.ts'
import type { Logger } from '../../../core/ports.ts'
import { RequestNotFoundError } from '../../../core/psa-requests.ts'
import { countClientError, HttpError } from '../errors.ts'

export interface FailureJson {
  error: { reason: string; details?: string }
}

export function failure(reason: string, details: string): FailureJson {
  return { error: { reason, ...(details.length > 0 ? { details } : {}) } }
}

function classify(err: unknown): { status: ContentfulStatusCode; reason: string } {
  if (err instanceof HttpError) return { status: err.status, reason: err.code }
  if (err instanceof UnauthorizedError) return { status: 401, reason: err.code }
  if (err instanceof RequestNotFoundError) return { status: 404, reason: err.code }
  if (err instanceof InvalidCidError || err instanceof InvalidInputError)
    return { status: 400, reason: err.code }
  return { status: 500, reason: 'INTERNAL_SERVER_ERROR' }
}

export function psaErrorResponse(c: Context, err: unknown, log: Logger, metrics?: Metrics): Response {
  const { status, reason } = classify(err)
  countClientError(metrics, 'psa', status, reason)
  if (status >= 500) {
    log.error(
      {
        err: err instanceof Error ? err.stack : String(err),
        code: err instanceof PickupError ? err.code : undefined,
      },
      'pinning service request failed',
    )
  }
  if (status === 401) c.header('WWW-Authenticate', 'Bearer realm="pickup"')
  const details =
    status >= 500 && !(err instanceof HttpError)
      ? 'unexpected error; it was logged'
      : err instanceof Error
        ? err.message
        : String(err)
  return c.json(failure(reason, details), status)
}
