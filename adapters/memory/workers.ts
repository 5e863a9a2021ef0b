/**
 * In-memory WorkerRegistry with the DynamoDB registry's semantics: one entry per worker id (an announce
 * replaces it), `live` lists the entries not yet expired, by id.
 */
import type { WorkerInfo, WorkerRegistry } from '../../core/ports.ts'

export function createMemoryWorkerRegistry(): WorkerRegistry {
  const workers = new Map<string, WorkerInfo>()
  return {
    async announce(info) {
      workers.set(info.id, { ...info, multiaddrs: [...info.multiaddrs] })
    },
    async remove(id) {
      workers.delete(id)
    },
    async live(now) {
      return [...workers.values()]
        .filter((w) => w.expires > now)
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map((w) => ({ ...w, multiaddrs: [...w.multiaddrs] }))
    },
  }
}
