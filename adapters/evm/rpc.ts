/**
 * A JSON-RPC 2.0 client for an EVM node, over HTTP with `fetch`: single calls and batches, retried with
 * exponential backoff (and full jitter) when the provider rate-limits (HTTP 429, JSON-RPC -32005, "rate
 * limit" / "too many requests") or fails transiently (HTTP 5xx, network errors). Errors that retrying cannot
 * fix are returned per call (`{ error }`), so one reverted call in a batch does not fail its neighbours.
 */

export interface RpcRequest {
  method: string
  params: unknown[]
}

export type RpcResult = { result: unknown; error?: undefined } | { result?: undefined; error: RpcError }

export class RpcError extends Error {
  override readonly name = 'RpcError'
  readonly code: number
  readonly data?: unknown
  constructor(code: number, message: string, data?: unknown) {
    super(message)
    this.code = code
    this.data = data
  }
}

/** The provider refused a log query as too large (block range or result count): ask for a smaller range. */
export class LogRangeTooLargeError extends Error {
  override readonly name = 'LogRangeTooLargeError'
}

/** The provider kept failing (rate limits or transient errors) through every retry. */
export class RpcUnavailableError extends Error {
  override readonly name = 'RpcUnavailableError'
}

export interface JsonRpcOptions {
  url: string
  /** Calls per HTTP request; longer lists are sent as several batches. Default 50. */
  maxBatch?: number
  /** Retries of one HTTP request on rate limits and transient failures. Default 6. */
  retries?: number
  /** First backoff; doubled each retry (full jitter). Default 250 ms. */
  backoffMs?: number
  /** Longest backoff. Default 10 s. */
  maxBackoffMs?: number
  /** Time allowed for one HTTP request. Default 30 s. */
  requestTimeoutMs?: number
  fetch?: typeof fetch
}

export interface JsonRpc {
  call(method: string, params: unknown[], opts?: { signal?: AbortSignal }): Promise<unknown>
  /** Answers in request order, each a result or an error. */
  batch(requests: readonly RpcRequest[], opts?: { signal?: AbortSignal }): Promise<RpcResult[]>
}

const RATE_LIMIT_CODES = new Set([-32005, 429, -32090])
const RATE_LIMIT_TEXT = /rate.?limit|too many requests|exceeded.*(capacity|quota|compute units)|throughput/i
/** Messages providers use to refuse an eth_getLogs range (Alchemy, Infura, QuickNode, geth, erigon, anvil). */
const LOG_RANGE_TEXT =
  /block range|range (is )?too (large|wide)|more than \d+ (results|logs)|query returned more than|limit exceeded|too many (blocks|results|logs)|response size|exceed(s|ed)? (max|maximum)/i

export function isLogRangeError(err: RpcError): boolean {
  return LOG_RANGE_TEXT.test(err.message) && !RATE_LIMIT_TEXT.test(err.message)
}

function isRateLimit(err: RpcError): boolean {
  return (RATE_LIMIT_CODES.has(err.code) && !isLogRangeError(err)) || RATE_LIMIT_TEXT.test(err.message)
}

export function createJsonRpc(opts: JsonRpcOptions): JsonRpc {
  const maxBatch = opts.maxBatch ?? 50
  const retries = opts.retries ?? 6
  const backoffMs = opts.backoffMs ?? 250
  const maxBackoffMs = opts.maxBackoffMs ?? 10_000
  const timeoutMs = opts.requestTimeoutMs ?? 30_000
  const doFetch = opts.fetch ?? fetch
  let nextId = 1

  async function post(body: unknown, signal: AbortSignal | undefined): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      signal?.throwIfAborted()
      let transient: string
      try {
        const timeout = AbortSignal.timeout(timeoutMs)
        const res = await doFetch(opts.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        })
        const text = await res.text()
        if (res.status === 429 || res.status >= 500) transient = `HTTP ${res.status}`
        else {
          const parsed: unknown = JSON.parse(text)
          // A whole-request error object answering a batch (some providers rate-limit that way).
          if (Array.isArray(body) && !Array.isArray(parsed) && isErrorEnvelope(parsed)) {
            const err = toRpcError(parsed.error)
            if (isRateLimit(err)) transient = err.message
            else throw err
          } else if (
            !Array.isArray(body) &&
            isErrorEnvelope(parsed) &&
            isRateLimit(toRpcError(parsed.error))
          ) {
            transient = toRpcError(parsed.error).message
          } else if (Array.isArray(body) && Array.isArray(parsed) && parsed.some(isRateLimitedItem)) {
            transient = 'rate limited within a batch'
          } else if (res.ok || isErrorEnvelope(parsed) || Array.isArray(parsed)) {
            return parsed
          } else transient = `HTTP ${res.status}`
        }
      } catch (err) {
        if (err instanceof RpcError) throw err
        if (signal?.aborted) throw signal.reason
        transient = err instanceof Error ? err.message : String(err)
      }
      if (attempt >= retries)
        throw new RpcUnavailableError(`the JSON-RPC endpoint failed ${attempt + 1} times: ${transient}`)
      const cap = Math.min(maxBackoffMs, backoffMs * 2 ** attempt)
      await sleep(Math.random() * cap, signal)
    }
  }

  async function batchOnce(requests: readonly RpcRequest[], signal?: AbortSignal): Promise<RpcResult[]> {
    const ids = requests.map(() => nextId++)
    const body = requests.map((r, i) => ({ jsonrpc: '2.0', id: ids[i], method: r.method, params: r.params }))
    const parsed = await post(body, signal)
    if (!Array.isArray(parsed)) throw new RpcError(-32603, 'the endpoint answered a batch with no array')
    const byId = new Map<unknown, unknown>()
    for (const item of parsed) if (isObject(item)) byId.set(item.id, item)
    return ids.map((id): RpcResult => {
      const item = byId.get(id)
      if (!isObject(item)) return { error: new RpcError(-32603, 'no answer to this call in the batch') }
      if (isErrorEnvelope(item)) return { error: toRpcError(item.error) }
      return { result: item.result }
    })
  }

  return {
    async call(method, params, callOpts) {
      const parsed = await post({ jsonrpc: '2.0', id: nextId++, method, params }, callOpts?.signal)
      if (isErrorEnvelope(parsed)) throw toRpcError(parsed.error)
      if (!isObject(parsed) || !('result' in parsed)) throw new RpcError(-32603, 'an answer with no result')
      return parsed.result
    },
    async batch(requests, callOpts) {
      const out: RpcResult[] = []
      for (let i = 0; i < requests.length; i += maxBatch)
        out.push(...(await batchOnce(requests.slice(i, i + maxBatch), callOpts?.signal)))
      return out
    },
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isErrorEnvelope(v: unknown): v is { error: unknown } {
  return isObject(v) && isObject(v.error)
}

function isRateLimitedItem(v: unknown): boolean {
  return isErrorEnvelope(v) && isRateLimit(toRpcError(v.error))
}

function toRpcError(e: unknown): RpcError {
  if (!isObject(e)) return new RpcError(-32603, 'malformed error')
  const code = typeof e.code === 'number' ? e.code : -32603
  const message = typeof e.message === 'string' ? e.message : 'error'
  return new RpcError(code, message, e.data)
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = () => {
      clearTimeout(t)
      reject(signal?.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
