/**
 * Serving the HTTP app with Node (local mode): @hono/node-server, plus what only the server can answer. A
 * request Node cannot hand to the app (a request line or headers over Node's 16 KiB, a malformed request)
 * gets a JSON error in the shape of the API its path belongs to, instead of Node's bare status line; the
 * connection is then closed (`Connection: close`), since the rest of what was sent cannot be parsed. An
 * oversize body is answered by the app (./body-limit.ts) and dropped by Node as it arrives, so the connection
 * stays usable; `requestTimeout` bounds how long a client may take to send one.
 */
import type { Server } from 'node:http'
import { STATUS_CODES } from 'node:http'
import type { Duplex } from 'node:stream'
import { serve } from '@hono/node-server'
import { clusterErrorJson } from './errors.ts'
import { failure } from './psa/errors.ts'

export interface ServeOptions {
  port: number
  hostname: string
}

export function serveHttpApp(
  app: { fetch: (request: Request, env: unknown) => Response | Promise<Response> },
  opts: ServeOptions,
): Promise<Server> {
  // A port in use rejects (EADDRINUSE, with the port), for local/main.ts to explain.
  return new Promise((resolve, reject) => {
    const server = serve(
      {
        fetch: app.fetch,
        port: opts.port,
        hostname: opts.hostname,
        // Node itself drops a body nobody read (and ./body-limit.ts the rest of a refused chunked one),
        // however long it is in coming; @hono/node-server's own cleanup would reset a connection whose body
        // takes more than half a second.
        autoCleanupIncoming: false,
      },
      () => {
        server.off('error', reject)
        resolve(server as Server)
      },
    ) as Server
    server.once('error', reject)
    server.on('clientError', answerClientError)
  })
}

const CLIENT_ERRORS: Record<string, { status: number; reason: string; message: string }> = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    reason: 'REQUEST_HEADER_FIELDS_TOO_LARGE',
    message: 'the request line and headers are larger than 16 KiB; the query string may be at most 8 KiB',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    reason: 'REQUEST_TIMEOUT',
    message: 'the request was not received in time',
  },
}

function answerClientError(err: Error & { code?: string; rawPacket?: Buffer }, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  const known = CLIENT_ERRORS[err.code ?? '']
  const { status, reason, message } = known ?? {
    status: 400,
    reason: 'BAD_REQUEST',
    message: `malformed HTTP request (${err.code ?? err.message})`,
  }
  // The path, when the bytes Node was parsing hold the request line.
  const path = /^[A-Z]+ (\/\S*)/.exec(err.rawPacket?.subarray(0, 1024).toString('latin1') ?? '')?.[1] ?? '/'
  const psa = path === '/psa' || path.startsWith('/psa/') || path.startsWith('/psa?')
  const body = JSON.stringify(psa ? failure(reason, message) : clusterErrorJson(status, message))
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
}
