import { CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns'
import { DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMemoryEventSink } from '../../adapters/memory/events.ts'
import { CAR_STORED_EVENT_TYPE, createSnsEventSink } from '../../adapters/sns/events.ts'
import type { CarStoredEvent } from '../../core/ports.ts'
import { ensureQueue, type Services, startServices } from '../../local/services.ts'
import { eventSinkSuite } from './event-sink.suite.ts'
import { randomName } from './harness.ts'

let services: Services
beforeAll(async () => {
  services = await startServices()
})
afterAll(async () => {
  await services?.stop()
})

eventSinkSuite('memory', async () => {
  const sink = createMemoryEventSink()
  return {
    sink,
    async received(count) {
      expect(sink.events).toHaveLength(count)
      return [...sink.events]
    },
  }
})

interface Envelope {
  Type: string
  TopicArn: string
  Message: string
  MessageAttributes?: Record<string, { Type: string; Value: string }>
}

/** A topic with an SQS subscription (filtered on the `type` attribute when asked); returns what arrives. */
async function topicWithSubscriber(filterPolicy?: object) {
  const { clients, endpoints } = services
  const name = randomName('topic')
  const { TopicArn: topicArn } = await clients.sns.send(new CreateTopicCommand({ Name: name }))
  const queue = await ensureQueue(clients.sqs, endpoints.sqs, `${name}-sub`, {})
  await clients.sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: queue.arn,
      ...(filterPolicy ? { Attributes: { FilterPolicy: JSON.stringify(filterPolicy) } } : {}),
    }),
  )
  async function envelopes(count: number, waitSeconds = 5): Promise<Envelope[]> {
    const out: Envelope[] = []
    const deadline = Date.now() + waitSeconds * 1000
    while (out.length < count && Date.now() < deadline) {
      const res = await clients.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queue.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
      )
      for (const m of res.Messages ?? []) {
        out.push(JSON.parse(m.Body ?? '') as Envelope)
        await clients.sqs.send(
          new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: m.ReceiptHandle }),
        )
      }
    }
    return out
  }
  return { topicArn: topicArn!, envelopes }
}

eventSinkSuite('SNS (fauxqs) to an SQS subscription', async () => {
  const { topicArn, envelopes } = await topicWithSubscriber()
  return {
    sink: createSnsEventSink({ client: services.clients.sns, topicArn }),
    async received(count) {
      const got = await envelopes(count)
      expect(got).toHaveLength(count)
      return got.map((e) => JSON.parse(e.Message) as CarStoredEvent)
    },
  }
})

describe('SNS event sink', () => {
  it('tags each message type=car-stored, so subscriptions can filter on it', async () => {
    const { topicArn, envelopes } = await topicWithSubscriber({ type: [CAR_STORED_EVENT_TYPE] })
    const sink = createSnsEventSink({ client: services.clients.sns, topicArn })
    const event: CarStoredEvent = {
      cid: 'bafyroot',
      car: { cid: 'bagcar', bytes: 1, blocks: 1, key: 'bagcar/bagcar.car' },
      bucket: 'b',
      storedAt: new Date(0).toISOString(),
    }
    await sink.carStored(event)
    const [envelope] = await envelopes(1)
    expect(envelope).toMatchObject({ Type: 'Notification', TopicArn: topicArn })
    expect(envelope?.MessageAttributes?.type).toEqual({ Type: 'String', Value: 'car-stored' })
    expect(JSON.parse(envelope!.Message)).toEqual(event)
  })

  it('is not delivered to subscriptions filtering on other types', async () => {
    const { topicArn, envelopes } = await topicWithSubscriber({ type: ['something-else'] })
    await createSnsEventSink({ client: services.clients.sns, topicArn }).carStored({
      cid: 'bafyroot',
      car: { cid: 'bagcar', bytes: 1, blocks: 1, key: 'bagcar/bagcar.car' },
      bucket: 'b',
      storedAt: new Date(0).toISOString(),
    })
    expect(await envelopes(1, 1)).toEqual([])
  })
})
