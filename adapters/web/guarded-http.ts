/**
 * HTTP(S) GET of a URL a token names, under limits, never into pickup's own network: outside local mode an
 * address that is not public unicast (loopback, private, link-local, ULA, CGNAT, multicast, unspecified, and
 * the same embedded in IPv6 as v4-mapped, NAT64 or 6to4 forms: core/origins.ts's `isNonPublicIp`) is refused
 * where the address is known: an IP literal before anything is sent, a name in the DNS lookup the connection
 * uses (every address it resolves to must be public), and the socket's peer once connected. Redirects are
 * followed by hand, at most `maxRedirects`, each new URL checked the same way.
 *
 * Limits: `maxBytes` (a declared Content-Length over it is refused before the body is read; the body is
 * counted as it streams), `timeoutMs` for the whole exchange, redirects included.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns'
import http, { type IncomingMessage } from 'node:http'
import https from 'node:https'
import { isIP, type LookupFunction, type Socket } from 'node:net'
import { WebContentError } from '../../core/collections/web.ts'
import { isNonPublicIp } from '../../core/origins.ts'

export interface GuardedGetOptions {
  /** Local mode: loopback and private addresses allowed (a test's or the operator's own server). */
  allowPrivate: boolean
  maxBytes: number
  timeoutMs: number
  maxRedirects: number
  /** Addresses let through although not public (a test's stand-in for a public server). */
  permit?: readonly string[]
  /** Name resolution (default: the system's, dns.lookup). */
  resolve?: (hostname: string) => Promise<LookupAddress[]>
  signal?: AbortSignal
  userAgent?: string
}

export interface GuardedResponse {
  /** After redirects. */
  url: string
  contentType?: string
  /** The body, at most `maxBytes`: reading past it throws WEB_TOO_LARGE. */
  body: AsyncIterable<Uint8Array>
}

const REDIRECTS = new Set([301, 302, 303, 307, 308])

export async function guardedGet(input: string, opts: GuardedGetOptions): Promise<GuardedResponse> {
  const deadline = AbortSignal.timeout(opts.timeoutMs)
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline
  let url = parseUrl(input)
  for (let redirects = 0; ; redirects++) {
    const res = await request(url, opts, signal)
    const status = res.statusCode ?? 0
    if (REDIRECTS.has(status)) {
      res.resume()
      const location = res.headers.location
      if (!location) throw new WebContentError('WEB_HTTP_ERROR', `HTTP ${status} without a Location`)
      if (redirects >= opts.maxRedirects)
        throw new WebContentError('WEB_TOO_MANY_REDIRECTS', `more than ${opts.maxRedirects} redirects`)
      url = parseUrl(new URL(location, url).toString())
      continue
    }
    if (status < 200 || status > 299) {
      res.resume()
      throw new WebContentError(
        'WEB_HTTP_ERROR',
        `HTTP ${status} from ${url.origin}`,
        status === 429 || status >= 500,
      )
    }
    const declared = Number(res.headers['content-length'])
    if (Number.isFinite(declared) && declared > opts.maxBytes) {
      res.destroy()
      throw tooLarge(opts.maxBytes)
    }
    return {
      url: url.toString(),
      ...(res.headers['content-type'] ? { contentType: res.headers['content-type'] } : {}),
      body: limited(res, opts, signal),
    }
  }
}

function tooLarge(maxBytes: number): WebContentError {
  return new WebContentError('WEB_TOO_LARGE', `larger than ${maxBytes} bytes, the most pickup fetches`)
}

function parseUrl(text: string): URL {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new WebContentError('WEB_INVALID_URL', 'not a valid URL')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new WebContentError('WEB_INVALID_URL', `${url.protocol} is not http: or https:`)
  if (url.username || url.password)
    throw new WebContentError('WEB_INVALID_URL', 'a URL with credentials is not fetched')
  return url
}

/** Why an address may not be dialled, or undefined. */
function refusal(address: string, opts: GuardedGetOptions): string | undefined {
  if (opts.allowPrivate || opts.permit?.includes(address)) return undefined
  return isNonPublicIp(address) ? `${address} is not a public address` : undefined
}

function refused(host: string, why: string): WebContentError {
  return new WebContentError('WEB_ADDRESS_REFUSED', `${host}: ${why}`)
}

/** A lookup that answers only when every address the name resolves to may be dialled. */
function guardedLookup(opts: GuardedGetOptions): LookupFunction {
  const resolve =
    opts.resolve ??
    ((hostname: string) =>
      new Promise<LookupAddress[]>((ok, fail) =>
        dnsLookup(hostname, { all: true } satisfies LookupAllOptions, (err, addresses) =>
          err ? fail(err) : ok(addresses),
        ),
      ))
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (all) => {
        const family = options.family === 4 || options.family === 6 ? options.family : undefined
        const addresses = family ? all.filter((a) => a.family === family) : all
        if (addresses.length === 0) {
          const err = Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' })
          return callback(err, '', 0)
        }
        for (const a of addresses) {
          const why = refusal(a.address, opts)
          if (why) return callback(refused(hostname, why), '', 0)
        }
        if (options.all) return callback(null, addresses)
        const first = addresses[0]!
        callback(null, first.address, first.family)
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    )
  }
}

function request(url: URL, opts: GuardedGetOptions, signal: AbortSignal): Promise<IncomingMessage> {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (isIP(host) !== 0) {
    const why = refusal(host, opts)
    if (why) return Promise.reject(refused(host, why))
  }
  const client = url.protocol === 'https:' ? https : http
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: 'GET',
      agent: false,
      lookup: guardedLookup(opts),
      signal,
      headers: { 'user-agent': opts.userAgent ?? 'pickup', accept: '*/*', 'accept-encoding': 'identity' },
    })
    // The peer as connected, whatever resolved it.
    req.on('socket', (socket: Socket) => {
      socket.once('connect', () => {
        const peer = socket.remoteAddress
        const why = peer === undefined ? 'no peer address' : refusal(peer, opts)
        if (why) req.destroy(refused(host, why))
      })
    })
    req.once('response', resolve)
    req.once('error', (err) => reject(translate(err, signal, opts)))
    req.end()
  })
}

function translate(err: unknown, signal: AbortSignal, opts: GuardedGetOptions): unknown {
  if (err instanceof WebContentError) return err
  if (signal.aborted) {
    if (opts.signal?.aborted) return opts.signal.reason
    return new WebContentError('WEB_TIMEOUT', `no complete answer within ${opts.timeoutMs} ms`, true)
  }
  const e = err as NodeJS.ErrnoException
  return new WebContentError(
    'WEB_FETCH_FAILED',
    `${e.code ?? e.name}: ${e.message}`,
    e.code !== 'ENOTFOUND' && e.code !== 'CERT_HAS_EXPIRED',
  )
}

async function* limited(
  res: IncomingMessage,
  opts: GuardedGetOptions,
  signal: AbortSignal,
): AsyncGenerator<Uint8Array> {
  let bytes = 0
  const { maxBytes } = opts
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      bytes += chunk.byteLength
      if (bytes > maxBytes) throw tooLarge(maxBytes)
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    }
  } catch (err) {
    throw translate(err, signal, opts)
  } finally {
    res.destroy()
  }
}
