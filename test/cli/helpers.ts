/**
 * Running the `pickup` command in tests: in this process through `main()` (fast; for most cases), or as a
 * real `node cli/pickup.js` process (as an operator runs it: TTY detection, signals, binary stdout).
 * Helpers to fill the queues behind the command's back.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { BatchWriteItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb'
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs'
import { encodePin } from '../../adapters/dynamodb/pins.ts'
import { type CliIo, main } from '../../cli/main.ts'
import type { Pin } from '../../core/pin.ts'

const repo = join(import.meta.dirname, '../..')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** `pickup <args>` through main(), with the data dir and, optionally, a terminal to prompt on. */
export async function pickup(
  dataDir: string,
  args: string[],
  io: Partial<Pick<CliIo, 'prompt' | 'signal' | 'tty' | 'env'>> = {},
): Promise<CliResult> {
  let stdout = ''
  let stderr = ''
  const code = await main(['node', 'pickup', ...args], {
    stdout: (s) => {
      stdout += s
    },
    stderr: (s) => {
      stderr += s
    },
    env: io.env ?? { PICKUP_DATA_DIR: dataDir },
    ...(io.prompt ? { prompt: io.prompt } : {}),
    ...(io.signal ? { signal: io.signal } : {}),
    ...(io.tty ? { tty: io.tty } : {}),
  })
  return { code, stdout, stderr }
}

/** `node cli/pickup.js <args>` as a process (no terminal: stdin closed, output piped). */
export function spawnPickup(
  dataDir: string,
  args: string[],
): { child: ChildProcess; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [join(repo, 'cli/pickup.js'), ...args], {
    cwd: repo,
    env: { ...process.env, PICKUP_DATA_DIR: dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => {
    stdout += c.toString()
  })
  child.stderr?.on('data', (c: Buffer) => {
    stderr += c.toString()
  })
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }))
  })
  return { child, done }
}

export async function runPickup(dataDir: string, args: string[]): Promise<CliResult> {
  return spawnPickup(dataDir, args).done
}

/** Sends bodies straight to a queue (the dead-letter queue, to test what operators do with it). */
export async function sendBodies(sqs: SQSClient, queueUrl: string, bodies: readonly string[]): Promise<void> {
  const batches: string[][] = []
  for (let i = 0; i < bodies.length; i += 10) batches.push(bodies.slice(i, i + 10))
  for (let i = 0; i < batches.length; i += 20) {
    await Promise.all(
      batches.slice(i, i + 20).map((batch) =>
        sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: batch.map((body, j) => ({ Id: String(j), MessageBody: body })),
          }),
        ),
      ),
    )
  }
}

/** Receives and deletes everything visible in a queue; answers the bodies. */
export async function drainQueue(sqs: SQSClient, queueUrl: string): Promise<string[]> {
  const bodies: string[] = []
  for (;;) {
    const { Messages = [] } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
    )
    if (Messages.length === 0) return bodies
    for (const m of Messages) bodies.push(m.Body ?? '')
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle ?? '' })),
      }),
    )
  }
}

export async function queueCounts(
  sqs: SQSClient,
  queueUrl: string,
): Promise<{ visible: number; inFlight: number }> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queueUrl,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  )
  return {
    visible: Number(Attributes?.ApproximateNumberOfMessages ?? 0),
    inFlight: Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0),
  }
}

/** Writes pin records in bulk (BatchWriteItem), for tests that need many. */
export async function putPins(
  dynamodb: DynamoDBClient,
  tableName: string,
  pins: readonly Pin[],
): Promise<void> {
  for (let i = 0; i < pins.length; i += 25) {
    let items = pins.slice(i, i + 25).map((p) => ({ PutRequest: { Item: encodePin(p) } }))
    while (items.length > 0) {
      const res = await dynamodb.send(new BatchWriteItemCommand({ RequestItems: { [tableName]: items } }))
      items = (res.UnprocessedItems?.[tableName] ?? []) as typeof items
    }
  }
}

export async function waitUntil<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 30_000,
  everyMs = 50,
): Promise<T> {
  const started = Date.now()
  for (;;) {
    const v = await read()
    if (ok(v)) return v
    if (Date.now() - started > timeoutMs)
      throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}
