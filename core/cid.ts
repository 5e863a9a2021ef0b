import { base32, base32upper } from 'multiformats/bases/base32'
import { base36 } from 'multiformats/bases/base36'
import { base58btc } from 'multiformats/bases/base58'
import { base64, base64url } from 'multiformats/bases/base64'
import { CID } from 'multiformats/cid'
import { InvalidCidError } from './errors.ts'

const decoder = base32.decoder
  .or(base32upper.decoder)
  .or(base58btc.decoder)
  .or(base36.decoder)
  .or(base64.decoder)
  .or(base64url.decoder)

/**
 * The longest CID pickup accepts, as its content key (CIDv1 base32): one limit for every API, checked at the
 * door by normalizeCid. Identity CIDs carry their data inline and come in any length; what is accepted must
 * fit everywhere the key goes afterwards (Pinning Service API requestids embed it: core/psa-requests.ts;
 * DynamoDB index sort keys, 1 KiB; S3 keys), so it can always be read, replaced and deleted. No multibase
 * pickup reads is longer than base32, so longer input is refused before it is decoded.
 */
export const MAX_CONTENT_KEY_LENGTH = 512

/**
 * Parses a CID in any form a client may send: CIDv0 (`Qm…`, or `z`-prefixed base58btc), CIDv1 in any of the
 * common multibases. Throws InvalidCidError with the reason otherwise.
 */
export function parseCid(input: string): CID {
  const text = input.trim()
  if (text.length === 0 || text.length > MAX_CONTENT_KEY_LENGTH)
    throw new InvalidCidError(input, `empty or longer than ${MAX_CONTENT_KEY_LENGTH} characters`)
  try {
    if (text.startsWith('Qm') && text.length === 46) return CID.parse(text)
    // A base58btc CIDv0 with the multibase prefix: multiformats decodes it as bytes of a v0 multihash.
    return CID.decode(decoder.decode(text))
  } catch (err) {
    throw new InvalidCidError(input, err instanceof Error ? err.message : undefined)
  }
}

/**
 * The key one piece of content is stored under: CIDv1 in base32. A CID asked for as CIDv0 and as CIDv1 is
 * the same content and therefore the same pin.
 */
export function contentKey(cid: CID): string {
  return cid.toV1().toString(base32)
}

/** Parses and normalises a CID; refuses one whose content key is longer than MAX_CONTENT_KEY_LENGTH. */
export function normalizeCid(input: string): { cid: CID; key: string } {
  const cid = parseCid(input).toV1()
  const key = cid.toString(base32)
  if (key.length > MAX_CONTENT_KEY_LENGTH) {
    throw new InvalidCidError(
      input,
      `${key.length} characters as CIDv1 base32, longer than ${MAX_CONTENT_KEY_LENGTH}`,
    )
  }
  return { cid, key }
}
