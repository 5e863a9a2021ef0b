/**
 * The Pinning Service API's response shapes, exactly the specification's fields: `PinStatus`, `Pin` and
 * `PinResults`. `info` holds strings only: `status_details` (progress while pinning, the reason when failed)
 * and, once pinned, `dag_size` (bytes of the stored CAR: the DAG's blocks plus CAR framing).
 */
import type { PinRequest } from '../../../core/ports.ts'
import type { PsaListResult, PsaRequestView } from '../../../core/psa-requests.ts'

export interface PinJson {
  cid: string
  name?: string
  origins?: string[]
  meta?: Record<string, string>
}

export interface PinStatusJson {
  requestid: string
  status: string
  created: string
  pin: PinJson
  delegates: string[]
  info: Record<string, string>
}

function pinJson(r: PinRequest): PinJson {
  return {
    cid: r.sourceCid,
    ...(r.name === undefined ? {} : { name: r.name }),
    ...(r.origins.length > 0 ? { origins: r.origins } : {}),
    ...(Object.keys(r.meta).length > 0 ? { meta: r.meta } : {}),
  }
}

function info(v: PsaRequestView): Record<string, string> {
  const pin = v.pin
  switch (v.status) {
    case 'queued':
      return {
        status_details: pin?.error
          ? `queued for another attempt; the last one failed: ${pin.error}`
          : 'queued: waiting for a worker',
      }
    case 'pinning': {
      const p = pin?.progress
      return {
        status_details: p
          ? `fetching: ${p.blocks} blocks, ${p.bytes} bytes so far (attempt ${pin?.attempts ?? 1})`
          : `fetching: finding providers (attempt ${pin?.attempts ?? 1})`,
      }
    }
    case 'pinned':
      return pin?.car
        ? {
            status_details: `stored: ${pin.car.blocks} blocks in CAR ${pin.car.cid}`,
            dag_size: String(pin.car.bytes),
          }
        : { status_details: 'stored' }
    case 'failed':
      return { status_details: pin?.error ?? 'failed' }
  }
}

export function pinStatusJson(v: PsaRequestView, delegates: string[]): PinStatusJson {
  return {
    requestid: v.request.requestid,
    status: v.status,
    created: new Date(v.request.created).toISOString(),
    pin: pinJson(v.request),
    delegates,
    info: info(v),
  }
}

export function pinResultsJson(result: PsaListResult, delegates: string[]) {
  return { count: result.count, results: result.results.map((v) => pinStatusJson(v, delegates)) }
}
