/**
 * The join of requests and pins: a request and the pin of its content, read from both stores at once (status
 * lookups are the hot path). Neither store reads the other's table, so either can move to another backend.
 */
import type { Pin } from './pin.ts'
import type { PinRequest, PinStore, RequestStore } from './ports.ts'

export interface RequestWithPin {
  request?: PinRequest
  pin?: Pin
}

export interface RequestsWithPinsContext {
  requests: Pick<RequestStore, 'getMany'>
  pins: Pick<PinStore, 'getMany'>
}

/** For each pair, in order, the request and the pin that exist (copies: one pin may answer several pairs). */
export async function getRequestsWithPins(
  pairs: ReadonlyArray<{ requestid: string; cid: string }>,
  ctx: RequestsWithPinsContext,
): Promise<RequestWithPin[]> {
  if (pairs.length === 0) return []
  const [requests, pins] = await Promise.all([
    ctx.requests.getMany(pairs.map((p) => p.requestid)),
    ctx.pins.getMany(pairs.map((p) => p.cid)),
  ])
  return pairs.map(({ requestid, cid }) => {
    const request = requests.get(requestid)
    const pin = pins.get(cid)
    return {
      ...(request ? { request: structuredClone(request) } : {}),
      ...(pin ? { pin: structuredClone(pin) } : {}),
    }
  })
}

export async function getRequestWithPin(
  requestid: string,
  cid: string,
  ctx: RequestsWithPinsContext,
): Promise<RequestWithPin> {
  const [found] = await getRequestsWithPins([{ requestid, cid }], ctx)
  return found ?? {}
}
