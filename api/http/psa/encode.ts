/**
 * The Pinning Service API's response shapes, exactly the specification's fields: `PinStatus`, `Pin` and
 * `PinResults`. `info` holds strings only: `status_details` (while pinning: searching for how long and which
 * origins were dialled, waiting for a transfer slot, or transferring with blocks and bytes; the reason when failed)
 * and, once pinned, `dag_size` (bytes of the stored CAR: the DAG's blocks plus CAR framing).
 */
import { CANCELLED_CODE } from '../../../core/pin.ts'
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

/** At most this many origins are named in `status_details`; the rest are counted. */
const NAMED_ORIGINS = 3

function dialledText(dialled: readonly string[] | undefined): string {
  if (!dialled || dialled.length === 0) return 'no origins given: finding providers'
  const named = dialled.slice(0, NAMED_ORIGINS).join(', ')
  const more = dialled.length > NAMED_ORIGINS ? ` and ${dialled.length - NAMED_ORIGINS} more` : ''
  return `dialled ${dialled.length} origin${dialled.length === 1 ? '' : 's'}: ${named}${more}`
}

function info(v: PsaRequestView, now: number): Record<string, string> {
  const pin = v.pin
  switch (v.status) {
    case 'queued':
      return {
        // After a cancellation, a new request queued it: nothing failed.
        status_details:
          pin?.error && !pin.error.startsWith(`${CANCELLED_CODE}:`)
            ? `queued for another attempt; the last one failed: ${pin.error}`
            : 'queued: waiting for a worker',
      }
    case 'pinning': {
      const p = pin?.progress
      const attempt = `attempt ${pin?.attempts ?? 1}`
      const searched =
        p?.searchStarted === undefined ? undefined : Math.max(0, Math.round((now - p.searchStarted) / 1000))
      if (!p || p.phase === 'searching') {
        return {
          status_details:
            `searching: no block received yet${searched === undefined ? '' : ` after ${searched} s`}; ` +
            `${dialledText(p?.dialled)} (${attempt})`,
        }
      }
      if (p.phase === 'waiting') {
        return { status_details: `found: waiting for a transfer slot (${attempt})` }
      }
      return {
        status_details: `transferring: ${p.blocks} blocks, ${p.bytes} bytes so far (${attempt})`,
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

export function pinStatusJson(v: PsaRequestView, delegates: string[], now = Date.now()): PinStatusJson {
  return {
    requestid: v.request.requestid,
    status: v.status,
    created: new Date(v.request.created).toISOString(),
    pin: pinJson(v.request),
    delegates,
    info: info(v, now),
  }
}

export function pinResultsJson(result: PsaListResult, delegates: string[], now = Date.now()) {
  return { count: result.count, results: result.results.map((v) => pinStatusJson(v, delegates, now)) }
}
