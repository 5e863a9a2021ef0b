/**
 * In-memory EventSink: records the events it is given, in order, for assertions.
 */
import type { CarStoredEvent, EventSink } from '../../core/ports.ts'

export interface MemoryEventSink extends EventSink {
  /** The events so far, oldest first (copies). */
  readonly events: readonly CarStoredEvent[]
}

export function createMemoryEventSink(): MemoryEventSink {
  const events: CarStoredEvent[] = []
  return {
    get events() {
      return events.map((e) => structuredClone(e))
    },
    async carStored(event) {
      events.push(structuredClone(event))
    },
  }
}
