/**
 * HTTP/1.1 spoken by hand over one TCP connection, for what fetch cannot show: several requests on one
 * keep-alive connection, chunked bodies, oversize request lines, and how the server ends the connection.
 */
import { connect } from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

export interface RawExchange {
  responses: RawResponse[]
  /** The server ended the connection (FIN) before the client did. */
  serverEnded: boolean
  /** A socket error (a reset), if any. */
  error?: string
}

/**
 * Sends each part in turn on one connection (each a Buffer, or a function of the responses so far that
 * returns one); ends the connection once `responses` responses have arrived or the server ended it.
 */
export function rawExchange(
  url: string,
  parts: Array<Buffer | ((responses: RawResponse[]) => Buffer | undefined)>,
  opts: { responses: number },
): Promise<RawExchange> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname)
    const result: RawExchange = { responses: [], serverEnded: false }
    let buffer = Buffer.alloc(0)
    let waiting: (() => void) | undefined
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      for (;;) {
        const parsed = parseResponse(buffer)
        if (!parsed) break
        result.responses.push(parsed.response)
        buffer = buffer.subarray(parsed.length)
        waiting?.()
      }
      if (result.responses.length >= opts.responses) socket.end()
    })
    socket.on('end', () => {
      if (result.responses.length < opts.responses) result.serverEnded = true
      waiting?.()
    })
    socket.on('error', (err) => {
      result.error = `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}`
      waiting?.()
    })
    socket.on('close', () => resolve(result))
    socket.on('connect', async () => {
      for (const part of parts) {
        if (socket.destroyed || result.serverEnded) return
        const bytes = typeof part === 'function' ? await responseThen(part) : part
        if (bytes === undefined || socket.destroyed || result.serverEnded) return
        if (!socket.write(bytes)) await new Promise((r) => socket.once('drain', r))
      }
    })
    // A function part is sent once one more response arrived than before it.
    async function responseThen(part: (r: RawResponse[]) => Buffer | undefined) {
      const seen = result.responses.length
      while (result.responses.length === seen && !result.serverEnded && !result.error && !socket.destroyed)
        await new Promise<void>((r) => {
          waiting = r
        })
      return result.serverEnded || result.error ? undefined : part(result.responses)
    }
  })
}

function parseResponse(buf: Buffer): { response: RawResponse; length: number } | undefined {
  const end = buf.indexOf('\r\n\r\n')
  if (end < 0) return undefined
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(statusLine?.split(' ')[1])
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  const start = end + 4
  if (headers['transfer-encoding'] === 'chunked') {
    let at = start
    const parts: Buffer[] = []
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at)
      if (lineEnd < 0) return undefined
      const size = Number.parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16)
      if (buf.length < lineEnd + 2 + size + 2) return undefined
      parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
      if (size === 0)
        return { response: { status, headers, body: Buffer.concat(parts).toString() }, length: at }
    }
  }
  const length = Number(headers['content-length'] ?? 0)
  if (buf.length < start + length) return undefined
  return {
    response: { status, headers, body: buf.subarray(start, start + length).toString() },
    length: start + length,
  }
}

export function rawRequest(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: Buffer,
): Buffer {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1']
  for (const [k, v] of Object.entries(headers)) head.push(`${k}: ${v}`)
  if (body && headers['Transfer-Encoding'] === undefined) head.push(`Content-Length: ${body.length}`)
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), body ?? Buffer.alloc(0)])
}

/** A body in chunked transfer encoding, in chunks of `chunkBytes`. */
export function chunked(body: Buffer, chunkBytes: number): Buffer {
  const parts: Buffer[] = []
  for (let i = 0; i < body.length; i += chunkBytes) {
    const c = body.subarray(i, i + chunkBytes)
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'))
  }
  parts.push(Buffer.from('0\r\n\r\n'))
  return Buffer.concat(parts)
}
