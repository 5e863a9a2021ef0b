/**
 * What operators do with the failed-jobs queue (`pickup dlq ...`): the jobs the dead-letter consumer gave up
 * on, each with what it recorded then (the reason, the receives, when). List and show them beside their pins'
 * current state, send them back to the pin queue, purge them. (The dead-letter queue proper is emptied by its
 * consumer within seconds; the failed-jobs queue keeps the jobs 14 days.) "Dead letter" here means such a job.
 *
 * Reading is receiving. A queue has no "peek": every message read is hidden from other readers for
 * `hideSeconds` (default 30 s) and released (made visible again) when the read ends; if the reader dies first,
 * the messages reappear when `hideSeconds` pass. Each read also adds one to the messages' receive counts.
 *
 * Redrive never loses a message: each one is sent to the pin queue first and deleted from the failed-jobs
 * queue only once the send succeeded. A crash between the two leaves the job in both queues; the duplicate
 * is harmless, since the worker claims by pin state (a pin that is already pinned or held is skipped).
 */
import type { Pin, PinJob, PinStatus } from './pin.ts'
import type { Clock, DeadLetter, DeadLetterQueue, Logger, PinQueue, PinStore, RequestStore } from './ports.ts'

/** How long a message being read stays hidden from other readers if the reader dies before releasing it. */
export const DEFAULT_HIDE_SECONDS = 30

/** A dead letter as shown to operators: the message, what became of the job, and the state of its pin. */
export interface DeadLetterView {
  id: string
  /** Undefined when the body is not a pin job. */
  cid?: string
  origins?: string[]
  /** The raw body, when it is not a pin job. */
  body?: string
  /**
   * Receives of the job before it was given up (on the pin queue and the dead-letter queue); for a message
   * put in by other means, its receives in this queue (reading counts too).
   */
  receiveCount: number
  /** Epoch ms the job was first sent to the pin queue. */
  sentAt: number
  ageMs: number
  /** The pin's failure reason when the job was given up (the pin's last error may have changed since). */
  reason?: string
  /** Epoch ms the dead-letter consumer gave the job up; absent for a message put in by other means. */
  failedAt?: number
  /** Undefined when there is no pin record (no request wants the content any longer). */
  pin?: {
    status: PinStatus
    attempts: number
    /** The last failure reason, `CODE: message`. */
    error?: string
    updated: number
  }
}

export interface DeadLetterReadContext {
  deadLetters: DeadLetterQueue
  pins: Pick<PinStore, 'getMany'>
  clock: Clock
}

export interface ReadOptions {
  hideSeconds?: number
  signal?: AbortSignal
}

/**
 * Reads every visible message once, in batches, handing each batch of messages not seen before to `visit`
 * (also for the collection jobs' dead-letter queue: core/collections/dead-jobs.ts).
 * `visit` answers the receipts it deleted and whether to stop; every other message is kept hidden until the
 * scan ends (so later receives move on through the queue) and then released. Ends when the queue has no
 * visible message left, when `visit` says stop, or on abort (after the batch in hand).
 */
export async function scanDeadLetters(
  deadLetters: DeadLetterQueue,
  opts: ReadOptions,
  visit: (batch: DeadLetter[]) => Promise<{ deleted?: ReadonlySet<string>; stop?: boolean }>,
): Promise<void> {
  const hideSeconds = opts.hideSeconds ?? DEFAULT_HIDE_SECONDS
  const seen = new Set<string>()
  const held: string[] = []
  try {
    while (!opts.signal?.aborted) {
      // A short receive first. An empty one is not proof of an empty queue on SQS (it samples some of its
      // servers), so unless the counts say nothing is visible, ask once more with a long poll.
      let batch = await deadLetters.receive({ max: 10, hideSeconds, waitSeconds: 0 })
      if (batch.length === 0 && (await deadLetters.counts()).visible > 0) {
        batch = await deadLetters.receive({ max: 10, hideSeconds, waitSeconds: 1 })
      }
      if (batch.length === 0) break
      // A message seen before reappeared (the scan outlasted `hideSeconds`): hold it again, don't revisit.
      const fresh = batch.filter((m) => !seen.has(m.id))
      for (const m of batch) if (seen.has(m.id)) held.push(m.receipt)
      if (fresh.length === 0) break
      for (const m of fresh) seen.add(m.id)
      let outcome: Awaited<ReturnType<typeof visit>>
      try {
        outcome = await visit(fresh)
      } catch (err) {
        // Release them all (releasing a deleted one does nothing) rather than leave them hidden.
        for (const m of fresh) held.push(m.receipt)
        throw err
      }
      for (const m of fresh) if (!outcome.deleted?.has(m.receipt)) held.push(m.receipt)
      if (outcome.stop) break
    }
  } finally {
    await deadLetters.release(held)
  }
}

/** Up to `limit` messages' views, oldest first (by when their jobs were first sent); `views` gets each batch. */
export async function listOldestFirst<V extends { sentAt: number }>(
  deadLetters: DeadLetterQueue,
  opts: ReadOptions & { limit: number },
  views: (batch: DeadLetter[]) => Promise<V[]>,
): Promise<V[]> {
  const out: V[] = []
  await scanDeadLetters(deadLetters, opts, async (batch) => {
    out.push(...(await views(batch.slice(0, opts.limit - out.length))))
    return { stop: out.length >= opts.limit }
  })
  return out.sort((a, b) => a.sentAt - b.sentAt)
}

/** The view of the message with this id, or undefined when the queue holds none (it stays in the queue). */
export async function findOne<V>(
  deadLetters: DeadLetterQueue,
  id: string,
  opts: ReadOptions,
  view: (m: DeadLetter) => Promise<V>,
): Promise<V | undefined> {
  let found: V | undefined
  await scanDeadLetters(deadLetters, opts, async (batch) => {
    const m = batch.find((x) => x.id === id)
    if (!m) return {}
    found = await view(m)
    return { stop: true }
  })
  return found
}

/** Where a redrive sends jobs, and how it names them: what differs between the two dead-letter queues. */
export interface RedriveRoute<J> {
  /**
   * Of the messages selected from a batch (those asked for, within the limit), the ones to send, with their
   * jobs; the others stay in the dead-letter queue, counted by the caller as it sees fit.
   */
  pick(selected: DeadLetter[]): Promise<Array<{ m: DeadLetter; job: J }>>
  send(job: J): Promise<unknown>
  /** Log fields naming the message and its job. */
  fields(m: DeadLetter, job: J): object
  /** The queue jobs go back to, and the dead-letter queue, as log lines name them. */
  target: string
  source: string
}

/**
 * The redrive both dead-letter queues share: selects the messages asked for (`ids`, `limit`), sends each the
 * route picks, and deletes it from the dead-letter queue only once the send succeeded (a failed delete leaves
 * it on both queues, counted `notDeleted`). Stops after the batch in hand on abort.
 */
export async function redriveEach<J>(
  opts: RedriveOptions,
  ctx: { deadLetters: DeadLetterQueue; log: Logger },
  route: RedriveRoute<J>,
): Promise<{ redriven: number; notDeleted: number; sendFailed: number; notFound: string[] }> {
  const wanted = opts.ids && new Set(opts.ids)
  const found = new Set<string>()
  const out = { redriven: 0, notDeleted: 0, sendFailed: 0, notFound: [] as string[] }
  let examined = 0
  const limit = opts.limit ?? Number.POSITIVE_INFINITY
  await scanDeadLetters(ctx.deadLetters, opts, async (batch) => {
    const selected = (wanted ? batch.filter((m) => wanted.has(m.id)) : batch).slice(
      0,
      Math.max(0, limit - out.redriven),
    )
    examined += batch.length
    for (const m of selected) found.add(m.id)
    const toSend = await route.pick(selected)
    const sent = await Promise.allSettled(toSend.map(({ job }) => route.send(job)))
    const receipts: string[] = []
    sent.forEach((outcome, i) => {
      const { m, job } = toSend[i]!
      if (outcome.status === 'fulfilled') {
        receipts.push(m.receipt)
        return
      }
      out.sendFailed++
      ctx.log.error(
        { ...route.fields(m, job), err: String(outcome.reason) },
        `redrive: ${route.target} refused the job; it stays in ${route.source}`,
      )
    })
    const { failed } = receipts.length > 0 ? await ctx.deadLetters.delete(receipts) : { failed: [] }
    const notDeleted = new Set(failed)
    out.redriven += receipts.length
    out.notDeleted += notDeleted.size
    for (const { m, job } of toSend) {
      if (notDeleted.has(m.receipt)) {
        ctx.log.warn(
          route.fields(m, job),
          `redrive: sent but not deleted from ${route.source} (now a harmless duplicate)`,
        )
      }
    }
    opts.onProgress?.({ redriven: out.redriven, examined })
    const deleted = new Set(receipts.filter((r) => !notDeleted.has(r)))
    const allFound = wanted !== undefined && found.size >= wanted.size
    return { deleted, stop: allFound || out.redriven >= limit }
  })
  if (wanted) out.notFound = [...wanted].filter((id) => !found.has(id))
  return out
}

async function pinsOf(batch: readonly DeadLetter[], pins: Pick<PinStore, 'getMany'>) {
  const cids = batch.flatMap((m) => (m.job ? [m.job.cid] : []))
  return cids.length > 0 ? pins.getMany(cids) : new Map<string, Pin>()
}

function view(m: DeadLetter, pin: Pin | undefined, now: number): DeadLetterView {
  const f = m.failure
  return {
    id: m.id,
    ...(m.job ? { cid: m.job.cid, origins: m.job.origins } : { body: m.body }),
    receiveCount: f ? f.receiveCount : m.receiveCount,
    sentAt: m.sentAt,
    ageMs: Math.max(0, now - m.sentAt),
    ...(f?.reason === undefined ? {} : { reason: f.reason }),
    ...(f ? { failedAt: f.failedAt } : {}),
    ...(pin
      ? {
          pin: {
            status: pin.status,
            attempts: pin.attempts,
            ...(pin.error === undefined ? {} : { error: pin.error }),
            updated: pin.updated,
          },
        }
      : {}),
  }
}

/** Up to `limit` messages, oldest first (by when their jobs were first sent), with their pins. */
export function listDeadLetters(
  opts: ReadOptions & { limit: number },
  ctx: DeadLetterReadContext,
): Promise<DeadLetterView[]> {
  return listOldestFirst(ctx.deadLetters, opts, async (batch) => {
    const pins = await pinsOf(batch, ctx.pins)
    const now = ctx.clock.now()
    return batch.map((m) => view(m, m.job && pins.get(m.job.cid), now))
  })
}

/** The message with this id, or undefined when the queue holds none (it is left in the queue either way). */
export function findDeadLetter(
  id: string,
  opts: ReadOptions,
  ctx: DeadLetterReadContext,
): Promise<DeadLetterView | undefined> {
  return findOne(ctx.deadLetters, id, opts, async (m) => {
    const pins = await pinsOf([m], ctx.pins)
    return view(m, m.job && pins.get(m.job.cid), ctx.clock.now())
  })
}

export interface RedriveContext extends DeadLetterReadContext {
  pins: Pick<PinStore, 'getMany' | 'settleIfUnchanged'>
  /** Requests of failed pins queued again, which listings had seen failed, are pending again. */
  requests: Pick<RequestStore, 'returnToPending'>
  queue: PinQueue
  log: Logger
}

export interface RedriveOptions extends ReadOptions {
  /** Only these message ids; every message when absent. */
  ids?: readonly string[]
  /** Most messages sent back in one run. */
  limit?: number
  onProgress?: (p: { redriven: number; examined: number }) => void
}

export interface RedriveResult {
  /** Sent to the pin queue (and, but for `notDeleted`, deleted from the failed-jobs queue). */
  redriven: number
  /** Of those, pins that were `failed` and are `queued` again. */
  requeued: number
  /** Sent but not deleted (the delete failed): on both queues now, harmlessly; a later redrive resends them. */
  notDeleted: number
  /** Left in the failed-jobs queue: */
  skipped: {
    /** the body is not a pin job (purge them); */
    notPinJob: number
    /** no pin record: no request wants the content any longer, so nothing should fetch it (purge them); */
    noPin: number
    /** the pin queue refused the send (see the log; run the redrive again). */
    sendFailed: number
  }
  /** Of the ids asked for, those not found in the failed-jobs queue. */
  notFound: string[]
}

/**
 * Sends messages back to the pin queue: each is sent, then deleted from the failed-jobs queue. A `failed` pin
 * is set `queued` again first, so its status says what is happening (its last error is kept). Stops after the
 * batch in hand on abort: what was not sent stays in the failed-jobs queue.
 */
export async function redriveDeadLetters(opts: RedriveOptions, ctx: RedriveContext): Promise<RedriveResult> {
  const started = ctx.clock.now()
  let requeued = 0
  const skipped = { notPinJob: 0, noPin: 0 }
  const sent = await redriveEach(opts, ctx, {
    target: 'the pin queue',
    source: 'the failed-jobs queue',
    send: (job: PinJob) => ctx.queue.send(job),
    fields: (m) => ({ messageId: m.id, cid: m.job?.cid }),
    async pick(selected) {
      const pins = await pinsOf(selected, ctx.pins)
      const toSend: Array<{ m: DeadLetter; job: PinJob }> = []
      for (const m of selected) {
        const pin = m.job && pins.get(m.job.cid)
        if (!m.job) skipped.notPinJob++
        else if (!pin) skipped.noPin++
        else {
          if (pin.status === 'failed') {
            const back = await ctx.pins.settleIfUnchanged(
              pin.cid,
              pin,
              { status: 'queued', error: pin.error ?? 'REDRIVEN: sent back to the pin queue by an operator' },
              ctx.clock.now(),
            )
            if (back) {
              requeued++
              await ctx.requests.returnToPending(pin.cid)
            }
          }
          toSend.push({ m, job: m.job })
        }
      }
      return toSend
    },
  })
  const result: RedriveResult = {
    redriven: sent.redriven,
    requeued,
    notDeleted: sent.notDeleted,
    skipped: { ...skipped, sendFailed: sent.sendFailed },
    notFound: sent.notFound,
  }
  ctx.log.info({ ...result, ms: ctx.clock.now() - started }, 'dead letters redriven')
  return result
}

/** Deletes every message; answers how many there were (approximately, as the queue counts them). */
export async function purgeDeadLetters(ctx: {
  deadLetters: DeadLetterQueue
  log: Logger
}): Promise<{ purged: number }> {
  const { visible, inFlight, delayed } = await ctx.deadLetters.counts()
  await ctx.deadLetters.purge()
  const purged = visible + inFlight + delayed
  ctx.log.warn({ purged }, 'failed-jobs queue purged')
  return { purged }
}
