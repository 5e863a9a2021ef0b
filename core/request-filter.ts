/**
 * Filters over one owner's requests (the Pinning Service API's `GET /pins` conditions), and what matching one
 * means. A new filter is a field here and its condition in `matchesFilter` (the in-memory store's answer),
 * the query parameter that sets it (api/http/psa/decode.ts), and its query in the DynamoDB store
 * (adapters/dynamodb/requests.ts); the listing passes every field through and the count cache keys on the
 * whole filter, so nothing else names the fields.
 */
/** What of a request (core/ports.ts PinRequest) a filter looks at. */
export interface FilteredRequest {
  cid: string
  created: number
  name?: string
  meta: Readonly<Record<string, string>>
  knownPinned?: boolean
  knownFailed?: boolean
}

export const NAME_MATCHES = ['exact', 'iexact', 'partial', 'ipartial'] as const
export type NameMatch = (typeof NAME_MATCHES)[number]

/** Filters over one owner's requests. All given conditions must hold. */
export interface RequestFilter {
  /** Content keys (CIDv1); at most 10. */
  cids?: readonly string[]
  /** `iexact` and `ipartial` compare `toLowerCase()` forms. */
  name?: { text: string; match: NameMatch }
  /** Every pair must be in the request's meta. */
  meta?: Readonly<Record<string, string>>
  /** Only requests created strictly before this (epoch ms). */
  before?: number
  /** Only requests created strictly after this (epoch ms). */
  after?: number
  /** Only requests with `knownPinned: false`. */
  notKnownPinned?: boolean
  /** Only requests without `knownFailed` (with `notKnownPinned`: the pending ones whose content was not seen failed). */
  notKnownFailed?: boolean
}

/**
 * Whether one of a store's indexes answers every condition of the filter, so reading `n` matches reads `n`
 * index entries and counting them reads only matching ones: CIDs or a case-insensitive name (not both), and a
 * time range. Meta, a partial name and an exact name (tested entry by entry among those equal but for case)
 * are not. Listings with other conditions read a bounded number of entries at a time (RequestStore.scan),
 * since any number of non-matching ones may lie between two matches.
 */
export function indexAnswers(filter: RequestFilter): boolean {
  if (filter.meta !== undefined && Object.keys(filter.meta).length > 0) return false
  if (filter.name === undefined) return true
  return filter.name.match === 'iexact' && filter.cids === undefined
}

/** Whether the request matches every condition of the filter (the owner aside). */
export function matchesFilter(r: FilteredRequest, filter: RequestFilter): boolean {
  if (filter.cids !== undefined && !filter.cids.includes(r.cid)) return false
  if (filter.before !== undefined && !(r.created < filter.before)) return false
  if (filter.after !== undefined && !(r.created > filter.after)) return false
  if (filter.notKnownPinned && r.knownPinned !== false) return false
  if (filter.notKnownFailed && r.knownFailed === true) return false
  if (filter.name) {
    const { text, match } = filter.name
    const name = r.name
    if (name === undefined) return false
    if (match === 'exact' && name !== text) return false
    if (match === 'iexact' && name.toLowerCase() !== text.toLowerCase()) return false
    if (match === 'partial' && !name.includes(text)) return false
    if (match === 'ipartial' && !name.toLowerCase().includes(text.toLowerCase())) return false
  }
  if (filter.meta) {
    for (const [k, v] of Object.entries(filter.meta)) {
      if (!Object.hasOwn(r.meta, k) || r.meta[k] !== v) return false
    }
  }
  return true
}
