/**
 * The one place where errors become HTTP responses, for both APIs: `classifyError` gives each error its
 * status and stable code (domain errors with a client-side cause are 4xx; anything else is 500, logged with
 * the error object, and answered without internals), and each API shapes that into its own body.
 */
import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import {
  CollectionNotFoundError,
  InvalidCidError,
  InvalidInputError,
  ListingTooSparseError,
  PickupError,
  RequestNotFoundError,
  TokenNotFoundError,
  UnauthorizedError,
} from '../../core/errors.ts'
import { dimensionValue, METRICS, type Metrics } from '../../core/metrics.ts'
import type { Logger } from '../../core/ports.ts'

/** The APIs, as the `Api` dimension of the request metrics. */
export type ApiName = 'cluster' | 'psa' | 'collections'

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

/** The domain errors a client causes, and the status each is answered with. */
const CLIENT_ERRORS: ReadonlyArray<[abstract new (...args: never[]) => PickupError, ContentfulStatusCode]> = [
  [InvalidCidError, 400],
  [InvalidInputError, 400],
  [UnauthorizedError, 401],
  [RequestNotFoundError, 404],
  [CollectionNotFoundError, 404],
  [TokenNotFoundError, 404],
  // A status listing whose bounded read found nothing to answer with: its message says where to go on from.
  [ListingTooSparseError, 422],
]

export interface ErrorClass {
  status: ContentfulStatusCode
  /** The error's stable code; `INTERNAL_SERVER_ERROR` for anything unexpected. */
  code: string
  /** What the client is told: the error's message, or a fixed text for a 500 (its details are logged). */
  message?: string
}

export function classifyError(err: unknown): ErrorClass {
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: err.message }
  for (const [type, status] of CLIENT_ERRORS) {
    if (err instanceof type) return { status, code: err.code, message: err.message }
  }
  return { status: 500, code: 'INTERNAL_SERVER_ERROR' }
}

/** Classifies the error, logging it (the object, so its stack and cause survive) when it is unexpected. */
export function classifyAndLog(err: unknown, log: Logger, msg: string): ErrorClass {
  const classified = classifyError(err)
  if (classified.message === undefined) log.error({ err }, msg)
  return classified
}

/** The error body in the shape a real ipfs-cluster peer sends: `{ code, message }`. */
export function clusterErrorJson(status: number, message: string): { code: number; message: string } {
  return { code: status, message }
}

/** The cluster API's error responses. */
export function clusterErrorResponse(c: Context, err: unknown, log: Logger, metrics?: Metrics): Response {
  const { status, code, message } = classifyAndLog(err, log, 'request failed')
  countClientError(metrics, 'cluster', status, code)
  return c.json(clusterErrorJson(status, message ?? 'internal error'), status)
}
