/**
 * The order in which one worker's jobs claim their pins (core/fetch-pin.ts). A claim is one conditional write
 * (`PinStore.claim`); a worker handed a backlog of thousands of searches at once would otherwise issue
 * thousands together, and the claim of content that has just been found, or of the job received after them,
 * would queue behind every one in the SDK's connection pool and the table's capacity (in local mode, behind
 * the emulator's one thread: ~6 ms of CPU a claim, 12 s for 2,000).
 *
 * So claims wait in this lane, at most `concurrency` of them running, in the order they came. A job does not
 * wait for its turn to search: the lane starts its claim at once when it has room (the usual case, and then
 * the job learns before searching that its content is pinned, unwanted or held by another attempt); otherwise
 * the job searches meanwhile and its claim follows in order. A job whose content has arrived `hurry`s its
 * claim once the worker gives it a transfer slot (core/fetch-pin.ts), and the claim then runs at once, ahead
 * of the lane: content that can be served is claimed as soon as it can be transferred, whatever backlog of
 * searches is still waiting to be claimed.
 */

export interface ClaimTicket<T> {
  /** Settles with the claim's result once it has run. */
  readonly result: Promise<T>
  /** Whether the claim has started (at once, in its turn or hurried). */
  readonly started: boolean
  /** Starts the claim now if it is still waiting for its turn; answers its result. */
  hurry(): Promise<T>
  /**
   * Takes the claim out of the lane if it has not started (the job ended first: the worker stopping, say);
   * it then never runs and `result` rejects with ClaimWithdrawnError. False if it has started.
   */
  withdraw(): boolean
}

export class ClaimWithdrawnError extends Error {
  constructor() {
    super('the claim was withdrawn before it ran')
    this.name = 'ClaimWithdrawnError'
  }
}

export interface ClaimLane {
  /** Queues a claim; it starts at once if fewer than `concurrency` claims are running. */
  enqueue<T>(claim: () => Promise<T>): ClaimTicket<T>
  /** Claims waiting for their turn (not hurried). */
  readonly waiting: number
}

/** Claims running at once in a worker's lane: enough for DynamoDB's latency, few enough to leave room. */
export const DEFAULT_CLAIM_CONCURRENCY = 8

interface Entry {
  started: boolean
  start(): void
}

export function createClaimLane(opts: { concurrency: number }): ClaimLane {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
    throw new RangeError(`claim concurrency must be a positive integer, got ${opts.concurrency}`)
  }
  const queue: Entry[] = []
  let head = 0
  let running = 0
  let waiting = 0

  const pump = () => {
    while (running < opts.concurrency && head < queue.length) {
      const entry = queue[head++]!
      // A hurried entry has started already and holds no place in the lane.
      if (!entry.started) {
        running++
        waiting--
        entry.start()
      }
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue.splice(0, head)
      head = 0
    }
  }

  return {
    get waiting() {
      return waiting
    },
    enqueue<T>(claim: () => Promise<T>): ClaimTicket<T> {
      let resolve!: (value: T) => void
      let reject!: (err: unknown) => void
      const result = new Promise<T>((res, rej) => {
        resolve = res
        reject = rej
      })
      // Observed by whoever awaits it; a rejection nobody has asked for yet must not end the process.
      result.catch(() => {})
      const run = (inLane: boolean) => {
        entry.started = true
        Promise.resolve()
          .then(claim)
          .then(resolve, reject)
          .finally(() => {
            if (inLane) {
              running--
              pump()
            }
          })
      }
      const entry: Entry = { started: false, start: () => run(true) }
      waiting++
      queue.push(entry)
      pump()
      return {
        result,
        get started() {
          return entry.started
        },
        hurry() {
          if (!entry.started) {
            waiting--
            run(false)
          }
          return result
        },
        withdraw() {
          if (entry.started) return false
          entry.started = true
          waiting--
          reject(new ClaimWithdrawnError())
          return true
        },
      }
    },
  }
}

/** No lane: every claim starts at once (an attempt run on its own, outside a worker). */
export const immediateClaims: ClaimLane = {
  waiting: 0,
  enqueue(claim) {
    const result = claim()
    result.catch(() => {})
    return { result, started: true, hurry: () => result, withdraw: () => false }
  },
}
