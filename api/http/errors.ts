/**
 * The one place where errors become HTTP responses. Domain errors with a client-side cause are 400s with
 * their stable code; anything else is logged and answered 500 without internals.
 */
import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { InvalidCidError, InvalidInputError, PickupError } from '../../core/errors.ts'
import { dimensionValue, METRICS, type Metrics } from '../../core/metrics.ts'
import type { Logger } from '../../core/ports.ts'

/** The APIs, as the `Api` dimension of the request metrics. */
export type ApiName = 'cluster' | 'psa'

/** Counts a 4xx answer by API and reason code (ClientErrors); other statuses are not client errors. */
export function countClientError(
  metrics: Metrics | undefined,
  api: ApiName,
  status: number,
  reason: string | undefined,
): void {
  if (status < 400 || status >= 500) return
  metrics?.emit({
    metric: METRICS.clientErrors,
    value: 1,
    dimensions: { Api: api, Reason: dimensionValue(reason) },
  })
}

export class HttpError extends PickupError {
  readonly code: string
  readonly status: ContentfulStatusCode
  constructor(status: ContentfulStatusCode, code: string, message: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

export function statusOf(err: unknown): ContentfulStatusCode {
  if (err instanceof HttpError) return err.status
  if (err instanceof InvalidCidError || err instanceof InvalidInputError) return 400
  return 500
}

/** The error body in the shape a real ipfs-cluster peer sends: `{ code, message }`. */
export function clusterErrorJson(status: number, message: string): { code: number; message: string } {
  return { code: status, message }
}

/** The cluster API's one mapping point from errors to responses. */
export function clusterErrorResponse(c: Context, err: unknown, log: Logger, metrics?: Metrics): Response {
  const status = statusOf(err)
  countClientError(metrics, 'cluster', status, err instanceof PickupError ? err.code : undefined)
  if (status >= 500) log.error({ err: err instanceof Error ? err.stack : String(err) }, 'request failed')
  const message = status >= 500 ? 'internal error' : err instanceof Error ? err.message : String(err)
  return c.json(clusterErrorJson(status, message), status)
}
