/**
 * Request bodies: neither API takes one larger than MAX_REQUEST_BODY_BYTES (a Pin is a few KiB; the cluster
 * API takes none). A body declared larger (`Content-Length`) is refused with 413 before a byte of it is read;
 * a chunked body of unknown length is read up to the limit and refused once past it. Either way the answer
 * does not wait for the rest, and the rest is dropped as it arrives (by Node for an unread body; here for a
 * chunked one), so the connection carries the client's next request. Served by Node (./node-server.ts), the
 * time a client may take to send it is bounded by the server's request timeout; behind API Gateway the
 * gateway has read the whole body already.
 */
import type { MiddlewareHandler } from 'hono'
import { HttpError } from './errors.ts'

export const MAX_REQUEST_BODY_BYTES = 64 * 1024

export class BodyTooLargeError extends HttpError {
  constructor(maxBytes: number) {
    super(413, 'BODY_TOO_LARGE', `the body is larger than ${maxBytes} bytes`)
  }
}

export function limitBody(maxBytes: number = MAX_REQUEST_BODY_BYTES): MiddlewareHandler {
  return async (c, next) => {
    const length = c.req.header('content-length')
    if (c.req.header('transfer-encoding') === undefined) {
      // Declared (or no body): decided from the header alone, without touching the body.
      if (length !== undefined && !(Number(length) <= maxBytes)) throw new BodyTooLargeError(maxBytes)
      return next()
    }
    const body = c.req.raw.body
    if (!body) return next()
    const reader = body.getReader()
    const chunks: Uint8Array[] = []
    let size = 0
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > maxBytes) {
        void dropRest(reader)
        throw new BodyTooLargeError(maxBytes)
      }
      chunks.push(value)
    }
    c.req.raw = new Request(c.req.raw, { body: Buffer.concat(chunks) })
    return next()
  }
}

/** Reads what is left of a refused body and drops it, so the connection's next request can be read. */
async function dropRest(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  try {
    for (;;) if ((await reader.read()).done) return
  } catch {
    // The client went away, or the server timed the request out: nothing left to drop.
  }
}
