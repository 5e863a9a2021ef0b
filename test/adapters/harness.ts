/**
 * Resources with random names in the embedded services, so adapter tests never share state.
 */
import { randomBytes } from 'node:crypto'
import type { TableDefinition } from '../../adapters/dynamodb/tables.ts'
import { queueAttributes } from '../../adapters/sqs/queues.ts'
import { ensureBucket, ensureQueue, ensureTable, type Services } from '../../local/services.ts'

export function randomName(prefix: string): string {
  return `${prefix}-${randomBytes(5).toString('hex')}`
}

export async function createRandomTable(services: Services, def: TableDefinition): Promise<string> {
  const name = randomName(`t-${def.nameSuffix}`)
  await ensureTable(services.clients.dynamodb, def, name)
  return name
}

/** A queue with a dead-letter queue after `maxReceiveCount` receives. */
export async function createRandomQueue(
  services: Services,
  opts: { visibilityTimeoutSeconds: number; maxReceiveCount: number },
): Promise<{ url: string; deadLetterUrl: string }> {
  const name = randomName('q')
  const dlq = await ensureQueue(
    services.clients.sqs,
    services.endpoints.sqs,
    `${name}-dlq`,
    queueAttributes({ nameSuffix: 'dlq', visibilityTimeoutSeconds: 30, messageRetentionSeconds: 3600 }),
  )
  const queue = await ensureQueue(
    services.clients.sqs,
    services.endpoints.sqs,
    name,
    queueAttributes(
      {
        nameSuffix: 'q',
        visibilityTimeoutSeconds: opts.visibilityTimeoutSeconds,
        messageRetentionSeconds: 3600,
      },
      { deadLetterTargetArn: dlq.arn, maxReceiveCount: opts.maxReceiveCount },
    ),
  )
  return { url: queue.url, deadLetterUrl: dlq.url }
}

export async function createRandomBucket(services: Services): Promise<string> {
  const name = randomName('b')
  await ensureBucket(services.clients.s3, name)
  return name
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}
