/** Byte helpers shared by the validator, the adapters and the tests. */

/** The parts joined into one array; a single part is returned as is, without a copy. */
export function concatBytes(parts: readonly Uint8Array[], length = totalLength(parts)): Uint8Array {
  if (parts.length === 1 && parts[0]!.length === length) return parts[0]!
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

/** Every chunk of a stream in one array: for blocks and small bodies, never a whole CAR in production. */
export async function collectBytes(
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const chunk of chunks) parts.push(chunk)
  return concatBytes(parts)
}

function totalLength(parts: readonly Uint8Array[]): number {
  let n = 0
  for (const p of parts) n += p.length
  return n
}
