/**
 * The delivery order of an SQS fair queue (a standard queue whose messages carry a `MessageGroupId`): when
 * one group has more messages in flight than others, SQS hands out the other groups' messages first, so a
 * requester with a backlog of thousands does not push another requester's job behind all of them.
 *
 * AWS does this itself. The emulators do not (fauxqs ignores the group id of a standard queue), so local
 * mode's fauxqs queues and the in-memory twin both order deliveries with `pickFairly`: each message picked
 * comes from the group with the fewest messages in flight (counting those picked in the same receive), the
 * oldest group first on a tie, and within a group the oldest message. One group alone is plain FIFO.
 */
import { parsePinJob } from '../../core/pin.ts'
import { messageGroupOf } from './queue.ts'

/** The group of a pin queue message body: its job's requester, as the adapter sends it as MessageGroupId. */
export function groupOfBody(body: string): string {
  const job = parsePinJob(body)
  return job ? messageGroupOf(job) : ''
}

/**
 * Indexes into `visible` (oldest first) of the next `max` messages to deliver, in delivery order.
 * `inFlight` counts each group's messages received and not yet deleted or visible again.
 */
export function pickFairly(
  visible: readonly string[],
  inFlight: ReadonlyMap<string, number>,
  max: number,
): number[] {
  const byGroup = new Map<string, number[]>()
  for (const [i, group] of visible.entries()) {
    const list = byGroup.get(group)
    if (list) list.push(i)
    else byGroup.set(group, [i])
  }
  const taken = new Map<string, number>()
  const picked: number[] = []
  const count = Math.min(max, visible.length)
  while (picked.length < count) {
    let best: { group: string; load: number; next: number } | undefined
    for (const [group, list] of byGroup) {
      const used = taken.get(group) ?? 0
      if (used >= list.length) continue
      const load = (inFlight.get(group) ?? 0) + used
      const next = list[used]!
      if (!best || load < best.load || (load === best.load && next < best.next)) best = { group, load, next }
    }
    if (!best) break
    picked.push(best.next)
    taken.set(best.group, (taken.get(best.group) ?? 0) + 1)
  }
  return picked
}
