/**
 * Takes no job while the worker's IPFS node does not answer. A worker whose kubo is down (restarting, out of
 * memory, killed) would otherwise receive job after job and fail each at once, spending their attempts on a
 * fault that is not theirs. Before each receive the gate asks the node (a cheap `id`); while it does not
 * answer, intake waits, probing again with a growing pause, and `ready` is false (the health check and local
 * mode's status show it).
 */
import { abortableSleep } from '../core/abort.ts'
import type { JobQueue, Logger } from '../core/ports.ts'

/** How long a held message's visibility is extended each time (every third of it). */
const HOLD_SECONDS = 30

export interface IpfsGate {
  /** The queue the worker receives from: `receive` waits while the node does not answer. */
  queue: JobQueue
  /** Whether the node answered the last probe. */
  readonly ready: boolean
}

export interface IpfsGateOptions {
  /** Resolves when the node answers (e.g. `() => ipfs.multiaddrs()`). */
  probe: (signal: AbortSignal) => Promise<unknown>
  log: Logger
  /** First pause between probes while the node does not answer; doubles up to `maxRetryMs`. */
  retryMs?: number
  maxRetryMs?: number
  /** A probe taking longer than this counts as no answer. Default 5 s. */
  probeTimeoutMs?: number
}

export function createIpfsGate(inner: JobQueue, opts: IpfsGateOptions): IpfsGate {
  const retryMs = opts.retryMs ?? 500
  const maxRetryMs = opts.maxRetryMs ?? 10_000
  const probeTimeoutMs = opts.probeTimeoutMs ?? 5_000
  let ready = true

  async function answers(signal: AbortSignal | undefined): Promise<boolean> {
    const timeout = AbortSignal.timeout(probeTimeoutMs)
    try {
      await opts.probe(signal ? AbortSignal.any([signal, timeout]) : timeout)
      return true
    } catch (err) {
      if (signal?.aborted) throw signal.reason
      if (ready) opts.log.error({ err }, 'IPFS node does not answer: taking no jobs until it does')
      return false
    }
  }

  async function waitUntilReady(signal: AbortSignal | undefined): Promise<void> {
    let pause = retryMs
    while (!(await answers(signal))) {
      ready = false
      await abortableSleep(pause, signal)
      pause = Math.min(maxRetryMs, pause * 2)
    }
    if (!ready) opts.log.info({}, 'IPFS node answers again: taking jobs')
    ready = true
  }

  return {
    queue: {
      send: (job, o) => inner.send(job, o),
      extend: (receipt, seconds) => inner.extend(receipt, seconds),
      extendMany: (receipts, seconds) => inner.extendMany(receipts, seconds),
      release: (receipt, delay) => inner.release(receipt, delay),
      delete: (receipt) => inner.delete(receipt),
      async receive(o) {
        await waitUntilReady(o.signal)
        const messages = await inner.receive(o)
        // A long poll may have started before the node stopped answering: what it brought back waits for the
        // node too, held invisible (a receive is an attempt SQS counts: releasing it would spend another), and
        // released only if the worker stops meanwhile.
        if (messages.length === 0 || (await answers(o.signal))) return messages
        ready = false
        const hold = () => {
          for (const m of messages) inner.extend(m.receipt, HOLD_SECONDS).catch(() => {})
        }
        hold()
        const holding = setInterval(hold, (HOLD_SECONDS * 1000) / 3)
        try {
          await waitUntilReady(o.signal)
          return messages
        } catch (err) {
          await Promise.all(messages.map((m) => inner.release(m.receipt, 0).catch(() => {})))
          throw err
        } finally {
          clearInterval(holding)
        }
      },
    },
    get ready() {
      return ready
    },
  }
}
