/**
 * The follow tick for NFT collections (core/collections/follow.ts): a scheduled Lambda in AWS (an EventBridge
 * schedule every COLLECTION_FOLLOW_INTERVAL_MINUTES), a timer in local mode (every COLLECTION_FOLLOW_INTERVAL_MS).
 * Each run looks at COLLECTION_FOLLOW_LIMIT followed collections, the longest unchecked first, and sends those
 * done to enumerate the tokens minted since. Throws when the run failed, so the invocation shows as an error;
 * a partial run is harmless (the next continues) and runs may overlap: the job a tick sends moves the
 * collection to enumerating as it starts, conditionally, so of several sent for one collection one goes on.
 *
 * The function needs Query on the collections table's `following-due` index, UpdateItem on the table, and
 * sqs:SendMessage on the collection-jobs queue.
 */
import { z } from 'zod'
import type { CollectionContext, CollectionJobs } from '../core/collections/archive.ts'
import { type FollowResult, followCollections } from '../core/collections/follow.ts'
import type { Logger } from '../core/ports.ts'

/** The follow tick's own settings (local mode adds the interval; the stack sets the schedule's). */
export const collectionFollowSchema = z.object({
  /**
   * Most followed collections one tick looks at. With more, each is looked at every few ticks, in turn; one
   * tick costs one index query, and per collection one write and at most one send, so it ends well within a
   * Lambda's time.
   */
  COLLECTION_FOLLOW_LIMIT: z.coerce.number().int().min(1).max(10_000).default(100),
})

export type CollectionFollowContext = Pick<CollectionContext, 'collections' | 'clock'> & {
  jobs: CollectionJobs
  log: Logger
}

export function createCollectionFollowHandler(
  cfg: z.infer<typeof collectionFollowSchema>,
  ctx: CollectionFollowContext,
): () => Promise<FollowResult> {
  return () => followCollections({ limit: cfg.COLLECTION_FOLLOW_LIMIT }, ctx)
}
