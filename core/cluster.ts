/**
 * The cluster API's view of pins: pickup is a one-peer cluster whose claim on some content is a request
 * with owner `cluster` and a requestid derived from the content, so pinning the same CID again updates the
 * one claim instead of adding another.
 */
import { normalizeCid } from './cid.ts'
import type { Pin } from './pin.ts'
import type { Clock, PinQueue, PinRequest, PinStore, RequestStore } from './ports.ts'
import { requestPin } from './request-pin.ts'
import { deleteRequest } from './unreferenced-content.ts'

export const CLUSTER_OWNER = 'cluster'

export function clusterRequestId(contentKey: string): string {
  return `${CLUSTER_OWNER}:${contentKey}`
}

export interface ClusterContext {
  pins: PinStore
  requests: RequestStore
  queue: PinQueue
  clock: Clock
}

export interface ClusterPinInput {
  cid: string
  name: string
  meta: Record<string, string>
  origins: string[]
}

/**
 * Records the cluster's claim, then requests the content. The claim is written first so that content is
 * never fetched without a requester that wants it.
 */
export async function pinForCluster(
  input: ClusterPinInput,
  ctx: ClusterContext,
): Promise<{ pin: Pin; request: PinRequest }> {
  const { key } = normalizeCid(input.cid)
  const request: PinRequest = {
    requestid: clusterRequestId(key),
    owner: CLUSTER_OWNER,
    cid: key,
    sourceCid: input.cid,
    name: input.name,
    meta: input.meta,
    origins: input.origins,
    created: ctx.clock.now(),
  }
  // Pinning the same content again replaces the claim and keeps when it was first made.
  request.created = await ctx.requests.putKeepingCreated(request)
  const pin = await requestPin({ cid: key, origins: input.origins, requester: CLUSTER_OWNER }, ctx)
  return { pin, request }
}

/**
 * Removes the cluster's claim; undefined when it had none. Content no request wants any longer is marked
 * unreferenced, and its CAR is removed after the retention period (core/unreferenced-content.ts).
 */
export async function unpinForCluster(
  cid: string,
  ctx: Pick<ClusterContext, 'requests' | 'pins' | 'clock'>,
): Promise<PinRequest | undefined> {
  const { key } = normalizeCid(cid)
  const requestid = clusterRequestId(key)
  const request = await ctx.requests.get(requestid)
  if (!request) return undefined
  await deleteRequest(request, ctx)
  return request
}
