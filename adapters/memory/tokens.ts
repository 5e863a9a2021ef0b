/**
 * In-memory TokenStore with the DynamoDB store's semantics (adapters/dynamodb/tokens.ts).
 */
import type { AccessTokenRecord, TokenStore } from '../../core/ports.ts'

export function createMemoryTokenStore(): TokenStore {
  const tokens = new Map<string, AccessTokenRecord>()
  return {
    async put(record) {
      if (tokens.has(record.hash)) throw new Error(`a token with hash ${record.hash.slice(0, 12)}… exists`)
      tokens.set(record.hash, { ...record })
    },
    async get(hash) {
      const record = tokens.get(hash)
      return record && { ...record }
    },
    async list(opts = {}) {
      return [...tokens.values()]
        .filter((t) => opts.user === undefined || t.user === opts.user)
        .sort((a, b) => a.created - b.created || (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0))
        .map((t) => ({ ...t }))
    },
    async delete(hash) {
      return tokens.delete(hash)
    },
  }
}
