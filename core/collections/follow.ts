/**
 * Following a collection (`follow: true`): once archiving is done, the follow tick (a scheduled Lambda in
 * AWS, a timer in local mode) puts it back to `enumerating` and sends an enumerate job from its checkpoint.
 * A finished checkpoint continues to the chain as it is now (core/collections/enumeration.ts): mint logs from
 * the block after the last one read, or token indexes from the last total. The new tokens are archived by the
 * same steps as the first ones, and the collection is `done` again.
 *
 * One tick looks at `limit` collections, those never checked first, then the longest unchecked, and records
 * that it did (`followChecked`): with more followed collections than that, each is looked at once every few
 * ticks, in turn. A collection still enumerating or archiving is only marked checked; its turn comes again.
 *
 * The move to `enumerating` is conditional on `done`, so two ticks racing send one job. A job that cannot be
 * sent puts the collection back to `done` (and the tick fails, for the next to try). Should the process die
 * between the move and the send, the collection stays `enumerating` without a job until it is posted again
 * (posting a collection that is enumerating sends the job).
 */
import type { Logger } from '../ports.ts'
import type { CollectionContext, CollectionJobs } from './archive.ts'

export interface FollowResult {
  /** Collections looked at. */
  checked: number
  /** Of those, the ones sent to enumerate again. */
  enumerating: string[]
}

export async function followCollections(
  input: { limit: number },
  ctx: Pick<CollectionContext, 'collections' | 'clock'> & { jobs: CollectionJobs; log: Logger },
): Promise<FollowResult> {
  const due = await ctx.collections.listFollowing({ limit: input.limit })
  const enumerating: string[] = []
  for (const c of due) {
    const now = ctx.clock.now()
    if (c.status === 'done' && c.deleting === undefined) {
      const moved = await ctx.collections.update(c.id, { status: 'enumerating', followChecked: now }, now, {
        ifStatus: ['done'],
      })
      if (moved) {
        try {
          await ctx.jobs.send({ collectionId: c.id, step: 'enumerate' })
        } catch (err) {
          // Not sent: back to done, for the next tick (a job sent after all finds it done and does nothing).
          await ctx.collections.update(c.id, { status: 'done' }, ctx.clock.now(), {
            ifStatus: ['enumerating'],
          })
          throw err
        }
        enumerating.push(c.id)
        continue
      }
    }
    // Busy, failed or deleted meanwhile: its turn comes again (a deleted one is gone from the index).
    await ctx.collections.update(c.id, { followChecked: now }, now)
  }
  if (due.length > 0)
    ctx.log.info({ checked: due.length, enumerating: enumerating.length }, 'collections followed')
  return { checked: due.length, enumerating }
}
