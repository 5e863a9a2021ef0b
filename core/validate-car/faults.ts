/**
 * The validator's verdicts of invalidity: the stable fault codes, which of them are permanent, and the Fault
 * each part of the validator throws (validateCar turns it into a verdict). A new rule adds its code here.
 */

export const CAR_FAULT_CODES = [
  'CAR_HEADER_INVALID',
  'CAR_VERSION_UNSUPPORTED',
  'CAR_ROOTS_INVALID',
  'CAR_ROOT_MISMATCH',
  'CAR_TRUNCATED',
  'CAR_BLOCK_INVALID',
  'CAR_TOO_LARGE',
  'CAR_UNREACHABLE_BLOCK',
  'UNSUPPORTED_HASH',
  'UNSUPPORTED_CODEC',
  'BLOCK_HASH_MISMATCH',
  'BLOCK_DECODE_FAILED',
  'DAG_INCOMPLETE',
  'DAG_TOO_MANY_BLOCKS',
] as const
export type CarFaultCode = (typeof CAR_FAULT_CODES)[number]

/**
 * Faults of the content itself: its hash functions, codecs, block encodings and size are the same in every
 * fetch of the DAG, so a CAR refused for one of them fails its pin at once instead of being fetched again.
 * The other faults can come of a faulty upload, worker or peer, and are retried.
 */
export const PERMANENT_CAR_FAULTS: ReadonlySet<CarFaultCode> = new Set<CarFaultCode>([
  'UNSUPPORTED_HASH',
  'UNSUPPORTED_CODEC',
  'BLOCK_DECODE_FAILED',
  'CAR_TOO_LARGE',
  'DAG_TOO_MANY_BLOCKS',
])

/**
 * A verdict of invalidity. `at` is the offset the fault is reported at: the start of the offending header or
 * section, or the CAR's length for a fault found at its end.
 */
export class Fault extends Error {
  readonly code: CarFaultCode
  readonly at: number
  constructor(code: CarFaultCode, reason: string, at: number) {
    super(reason)
    this.code = code
    this.at = at
  }
}

export function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}
