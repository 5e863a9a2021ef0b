import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * Compares a presented secret against a set of accepted ones in constant time: both sides are hashed to a
 * fixed length first, and every accepted value is compared, so timing reveals neither which nor how much.
 */
export function createSecretMatcher(accepted: readonly string[]): (presented: string | undefined) => boolean {
  const digests = accepted.filter((s) => s.length > 0).map(sha256)
  return (presented) => {
    if (presented === undefined) return false
    const candidate = sha256(presented)
    let ok = false
    for (const d of digests) ok = timingSafeEqual(d, candidate) || ok
    return ok
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}
