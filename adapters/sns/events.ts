/**
 * EventSink on SNS: each event is published as JSON with the message attribute `type`, so subscribers can
 * filter on it (`{"type": ["car-stored"]}`).
 */
import { PublishCommand, type SNSClient } from '@aws-sdk/client-sns'
import type { CarStoredEvent, EventSink } from '../../core/ports.ts'

export const CAR_STORED_EVENT_TYPE = 'car-stored'

/** The topic "CAR stored" events go to, named `<prefix>-car-stored` in the stack and in local mode alike. */
export const carStoredTopic = { nameSuffix: 'car-stored' } as const

export function topicName(prefix: string, def: { nameSuffix: string }): string {
  return `${prefix}-${def.nameSuffix}`
}

export interface SnsEventSinkOptions {
  client: SNSClient
  topicArn: string
}

export function encodeCarStoredEvent(event: CarStoredEvent): string {
  const { cid, car, bucket, storedAt } = event
  return JSON.stringify({
    cid,
    car: { cid: car.cid, bytes: car.bytes, blocks: car.blocks, key: car.key },
    bucket,
    storedAt,
  })
}

export function createSnsEventSink({ client, topicArn }: SnsEventSinkOptions): EventSink {
  return {
    async carStored(event) {
      await client.send(
        new PublishCommand({
          TopicArn: topicArn,
          Message: encodeCarStoredEvent(event),
          MessageAttributes: { type: { DataType: 'String', StringValue: CAR_STORED_EVENT_TYPE } },
        }),
      )
    },
  }
}
