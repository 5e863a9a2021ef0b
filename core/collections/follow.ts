/**
 * Following a collection (`follow: true`): once archiving is done, the follow tick (a scheduled Lambda in
 * AWS, a timer in local mode) sends it an enumerate job from its checkpoint. A finished checkpoint continues
 * to the chain as it is now (core/collections/enumeration.ts): mint logs from the block after the last one
 * read, or token indexes from the last total. The new tokens are archived by the same steps as the first
 * ones, and the collection is `done` again.
 *
 * One tick looks at `limit` collections, those never checked first, then the longest unchecked, and records
 * that it did (`followChecked`): with more followed collections than that, each is looked at once every few
 * ticks, in turn. A collection still enumerating or archiving is only marked checked; its turn comes again.
 *
 * The tick changes nothing but `followChecked`: the job it sends (`follow: true`) moves the collection from
 * `done` to `enumerating` as it starts, by a write conditional on `done` that also names it as the collection's
 * one job (core/collections/jobs.ts). So a tick that dies (a Lambda's timeout, a crash, a send that failed)
 * strands nothing: before the send the collection is `done`, and the next tick to look at it sends again;
 * after it, the job itself moves it. Of two jobs for one collection (ticks overlapping, a tick's job arriving
 * after a later tick's, a user's post racing a tick), the first to start moves it and the others find it no
 * longer `done` and are dropped, so one chain of jobs runs.
 */
import type { Logger } from '../ports.ts'
import { type CollectionContext, type CollectionJobs, newJobId } from './archive.ts'

export interface FollowResult {
  /** Collections looked at. */
  checked: number
  /** Of those, the ones sent a job to enumerate again. */
  enumerating: string[]
}

export async function followCollections(
  input: { limit: number },
  ctx: Pick<CollectionContext, 'collections' | 'clock'> & { jobs: CollectionJobs; log: Logger },
): Promise<FollowResult> {
  const due = await ctx.collections.listFollowing({ limit: input.limit })
  const enumerating: string[] = []
  for (const c of due) {
    if (c.status === 'done' && c.deleting === undefined) {
      // A send that fails throws: the collection is still done, for the next tick.
      await ctx.jobs.send({ collectionId: c.id, step: 'enumerate', id: newJobId(), follow: true })
      enumerating.push(c.id)
    }
    // Busy, failed or deleted meanwhile: its turn comes again (a deleted one is gone from the index).
    const now = ctx.clock.now()
    await ctx.collections.update(c.id, { followChecked: now }, now)
  }
  if (due.length > 0)
    ctx.log.info({ checked: due.length, enumerating: enumerating.length }, 'collections followed')
  return { checked: due.length, enumerating }
}
