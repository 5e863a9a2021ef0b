/**
 * The Pinning Service API's one mapping point from errors to responses: a `Failure` body,
 * `{"error":{"reason":"<CODE>","details":"<text>"}}`, always JSON. Client mistakes are 4xx with their stable
 * code; anything unexpected is logged and answered 500 INTERNAL_SERVER_ERROR without internals.
 */
import type { Context } from 'hono'
import type { Metrics } from '../../../core/metrics.ts'
import type { Logger } from '../../../core/ports.ts'
import { type ApiName, classifyAndLog, countClientError } from '../errors.ts'

export interface FailureJson {
  error: { reason: string; details?: string }
}

export function failure(reason: string, details: string): FailureJson {
  return { error: { reason, ...(details.length > 0 ? { details } : {}) } }
}

export function psaErrorResponse(
  c: Context,
  err: unknown,
  log: Logger,
  metrics?: Metrics,
  api: ApiName = 'psa',
): Response {
  const { status, code, message } = classifyAndLog(err, log, 'pinning service request failed')
  countClientError(metrics, api, status, code)
  if (status === 401) c.header('WWW-Authenticate', 'Bearer realm="pickup"')
  return c.json(failure(code, message ?? 'unexpected error; it was logged'), status)
}
