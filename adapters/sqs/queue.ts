/**
 * The pin queue on SQS. Messages are `PinJob`s as JSON (`{"cid": ..., "origins": [...]}`).
 *
 * Malformed bodies (not JSON, or not a PinJob) can never be processed, so `receive` deletes them and logs a
 * warning instead of handing them to the worker (or letting them cycle into the dead-letter queue).
 */
import {
  type BatchResultErrorEntry,
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import { type PinJob, parsePinJob } from '../../core/pin.ts'
import type { JobQueue, Logger, PinQueue, ReceivedJob } from '../../core/ports.ts'

/** SQS limits. */
const MAX_MESSAGES_PER_RECEIVE = 10
/** SQS's most entries in one batch request. */
const MAX_BATCH_ENTRIES = 10
/** Batch requests of one `extendMany` in flight at once: thousands of receipts do not take the whole pool. */
const EXTEND_BATCHES_AT_ONCE = 4
/** Batch requests of coalesced releases, or of deletes, in flight at once. */
const SETTLE_BATCHES_AT_ONCE = 8
const MAX_WAIT_SECONDS = 20
const MAX_VISIBILITY_SECONDS = 12 * 60 * 60
const MAX_DELAY_SECONDS = 15 * 60

export interface SqsPinQueueOptions {
  client: SQSClient
  queueUrl: string
}

export interface SqsJobQueueOptions extends SqsPinQueueOptions {
  /** Where malformed messages are reported (they are deleted). */
  log?: Logger
}

export function encodeJob(job: PinJob): string {
  return JSON.stringify({
    cid: job.cid,
    origins: job.origins,
    ...(job.requester === undefined ? {} : { requester: job.requester }),
  })
}

/**
 * The message group of a job: its requester. On a standard queue this turns on SQS fair queues: when one
 * group has many messages in flight, SQS returns other groups' messages first, so one requester's backlog
 * does not hold back another's pins. Jobs sent without a requester (the reconciler, operators) share one.
 */
export function messageGroupOf(job: PinJob): string {
  // SQS allows 1-128 characters: letters, digits and ASCII punctuation.
  const group = (job.requester ?? 'pickup').replace(/[^\x21-\x7e]/g, '_').slice(0, 128)
  return group === '' ? 'pickup' : group
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.floor(value)))
}

/** The producer side only (the APIs, the validator, the reconciler). */
export function createSqsPinQueue({ client, queueUrl }: SqsPinQueueOptions): PinQueue {
  return {
    async send(job, opts) {
      await client.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: encodeJob(job),
          MessageGroupId: messageGroupOf(job),
          ...(opts?.delaySeconds ? { DelaySeconds: clamp(opts.delaySeconds, 0, MAX_DELAY_SECONDS) } : {}),
        }),
      )
    },
  }
}

export function createSqsJobQueue({ client, queueUrl, log }: SqsJobQueueOptions): JobQueue {
  const producer = createSqsPinQueue({ client, queueUrl })

  async function changeVisibility(receipt: string, seconds: number): Promise<void> {
    await client.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: receipt,
        VisibilityTimeout: clamp(seconds, 0, MAX_VISIBILITY_SECONDS),
      }),
    )
  }

  /** One ChangeMessageVisibilityBatch request; resolves with the receipts it did not extend. */
  async function extendBatch(receipts: readonly string[], seconds: number): Promise<string[]> {
    try {
      const res = await client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: queueUrl,
          Entries: receipts.map((receipt, i) => ({
            Id: String(i),
            ReceiptHandle: receipt,
            VisibilityTimeout: clamp(seconds, 0, MAX_VISIBILITY_SECONDS),
          })),
        }),
      )
      return (res.Failed ?? []).map((f) => receipts[Number(f.Id)]).filter((r) => r !== undefined)
    } catch (err) {
      log?.warn({ err, messages: receipts.length }, 'visibility batch failed')
      return [...receipts]
    }
  }

  async function extendMany(receipts: readonly string[], seconds: number): Promise<string[]> {
    const batches: string[][] = []
    for (let i = 0; i < receipts.length; i += MAX_BATCH_ENTRIES) {
      batches.push(receipts.slice(i, i + MAX_BATCH_ENTRIES))
    }
    const failed: string[] = []
    let next = 0
    const lane = async () => {
      while (next < batches.length) failed.push(...(await extendBatch(batches[next++]!, seconds)))
    }
    await Promise.all(Array.from({ length: Math.min(EXTEND_BATCHES_AT_ONCE, batches.length) }, lane))
    return failed
  }

  async function deleteMessage(receipt: string): Promise<void> {
    await client.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: receipt }))
  }

  // Jobs settle in bursts: searches received together stall together, and a stopping worker gives back every
  // message it holds. Releases and deletes asked for in one turn of the event loop go out as batch requests.
  const release = coalesced<{ receipt: string; seconds: number }>(async (entries) => {
    const res = await client.send(
      new ChangeMessageVisibilityBatchCommand({
        QueueUrl: queueUrl,
        Entries: entries.map((e, i) => ({
          Id: String(i),
          ReceiptHandle: e.receipt,
          VisibilityTimeout: clamp(e.seconds, 0, MAX_VISIBILITY_SECONDS),
        })),
      }),
    )
    return res.Failed ?? []
  })
  const settleDelete = coalesced<string>(async (receipts) => {
    const res = await client.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: receipts.map((receipt, i) => ({ Id: String(i), ReceiptHandle: receipt })),
      }),
    )
    return res.Failed ?? []
  })

  async function accept(message: Message): Promise<ReceivedJob | undefined> {
    const { MessageId: id, ReceiptHandle: receipt, Body: body } = message
    if (id === undefined || receipt === undefined) return undefined
    const job = body === undefined ? undefined : parsePinJob(body)
    if (job === undefined) {
      log?.warn({ messageId: id, body: body?.slice(0, 200) }, 'deleting a malformed pin queue message')
      await deleteMessage(receipt)
      return undefined
    }
    const count = Number(message.Attributes?.ApproximateReceiveCount)
    return { id, receipt, job, receiveCount: Number.isInteger(count) && count > 0 ? count : 1 }
  }

  return {
    send: producer.send,

    async receive({ max, waitSeconds, signal }) {
      const deadline = Date.now() + clamp(waitSeconds, 0, MAX_WAIT_SECONDS) * 1000
      // SQS (and fauxqs, which wakes every waiting poll when one message arrives) can answer a long poll
      // empty before its wait is over; poll again for what is left of it.
      for (;;) {
        signal?.throwIfAborted()
        let messages: Message[]
        try {
          const res = await client.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: clamp(max, 1, MAX_MESSAGES_PER_RECEIVE),
              WaitTimeSeconds: clamp(Math.ceil((deadline - Date.now()) / 1000), 0, MAX_WAIT_SECONDS),
              MessageSystemAttributeNames: ['ApproximateReceiveCount'],
            }),
            signal ? { abortSignal: signal } : {},
          )
          messages = res.Messages ?? []
        } catch (err) {
          // The SDK rejects with its own AbortError; give the caller the reason it aborted with.
          signal?.throwIfAborted()
          throw err
        }
        const jobs = (await Promise.all(messages.map(accept))).filter((j) => j !== undefined)
        if (jobs.length > 0 || Date.now() >= deadline) return jobs
      }
    },

    extend: changeVisibility,
    extendMany,
    release: (receipt, delaySeconds) => release({ receipt, seconds: delaySeconds }),
    delete: settleDelete,
  }
}

/**
 * An entry a batch request refused, as an error: its caller's alone. Named by SQS's code for the entry
 * (`ReceiptHandleIsInvalid` for a delivery no longer in flight), as the SDK names a single call's errors.
 */
export class SqsBatchEntryError extends Error {
  readonly code: string | undefined
  constructor(failed: BatchResultErrorEntry) {
    super(`${failed.Code ?? 'refused'}: ${failed.Message ?? 'no message'}`)
    this.name = failed.Code ?? 'SqsBatchEntryError'
    this.code = failed.Code
  }
}

/**
 * One call per entry to the caller; batch requests of up to ten to SQS. Entries asked for in the same turn of
 * the event loop share requests, at most SETTLE_BATCHES_AT_ONCE in flight; each caller's promise settles with
 * its own entry's result (a request that fails rejects all of its entries).
 */
function coalesced<E>(
  sendBatch: (entries: E[]) => Promise<BatchResultErrorEntry[]>,
): (entry: E) => Promise<void> {
  interface Waiting {
    entry: E
    resolve: () => void
    reject: (err: unknown) => void
  }
  const queued: Waiting[] = []
  let lanes = 0
  let scheduled = false

  const lane = async (): Promise<void> => {
    while (queued.length > 0) {
      const batch = queued.splice(0, MAX_BATCH_ENTRIES)
      try {
        const failed = await sendBatch(batch.map((w) => w.entry))
        const byId = new Map(failed.map((f) => [f.Id, f]))
        batch.forEach((w, i) => {
          const f = byId.get(String(i))
          if (f) w.reject(new SqsBatchEntryError(f))
          else w.resolve()
        })
      } catch (err) {
        for (const w of batch) w.reject(err)
      }
    }
  }
  const start = () => {
    scheduled = false
    while (lanes < SETTLE_BATCHES_AT_ONCE && queued.length > 0) {
      lanes++
      void lane().finally(() => {
        lanes--
      })
    }
  }
  return (entry) =>
    new Promise<void>((resolve, reject) => {
      queued.push({ entry, resolve, reject })
      if (!scheduled) {
        scheduled = true
        setImmediate(start)
      }
    })
}
