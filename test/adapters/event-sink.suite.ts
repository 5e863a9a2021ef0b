/**
 * The EventSink contract (core/ports.ts), run against every implementation.
 */
import { describe, expect, it } from 'vitest'
import type { CarStoredEvent, EventSink } from '../../core/ports.ts'

export interface EventSinkFixture {
  sink: EventSink
  /** Waits until `count` events arrived downstream and returns them (in any order). */
  received(count: number): Promise<CarStoredEvent[]>
}

export type EventSinkFactory = () => Promise<EventSinkFixture>

function event(n: number): CarStoredEvent {
  return {
    cid: `bafyroot${n}`,
    car: { cid: `bagcar${n}`, bytes: 1000 + n, blocks: n, key: `bagcar${n}/bagcar${n}.car` },
    bucket: 'pickup-cars',
    storedAt: new Date(1_700_000_000_000 + n).toISOString(),
  }
}

const byCid = (a: CarStoredEvent, b: CarStoredEvent) => (a.cid < b.cid ? -1 : 1)

export function eventSinkSuite(name: string, factory: EventSinkFactory): void {
  describe(`EventSink: ${name}`, () => {
    it('delivers each car-stored event downstream, unchanged', async () => {
      const { sink, received } = await factory()
      await sink.carStored(event(1))
      await sink.carStored(event(2))
      const got = await received(2)
      expect([...got].sort(byCid)).toEqual([event(1), event(2)])
    })

    it('delivers events sent concurrently', async () => {
      const { sink, received } = await factory()
      const events = Array.from({ length: 5 }, (_, i) => event(i + 10))
      await Promise.all(events.map((e) => sink.carStored(e)))
      expect([...(await received(5))].sort(byCid)).toEqual([...events].sort(byCid))
    })
  })
}
