/**
 * Sizing of the validator Lambda: can it read, verify and copy the largest CAR pickup accepts (MAX_CAR_BYTES,
 * 31 GiB by default) within Lambda's 15-minute limit, with margin?
 *
 * The validator reads the CAR from S3 as parallel ranged GETs reassembled in order
 * (adapters/s3/ranged-get.ts: VALIDATOR_READ_CONCURRENCY ranges of VALIDATOR_READ_PART_BYTES in flight),
 * parses and hashes it block by block while a worker thread hashes the whole CAR, then copies it server-side
 * to the destination bucket (CopyObject, or UploadPartCopy above 5 GiB with 4 parts in flight). Nothing is
 * written to disk, so the default 512 MB of ephemeral storage is enough.
 *
 *   CPU:      bench/validate-car.ts measures ~1 GB/s on 2 vCPUs. The default 3008 MB (the most every account
 *             accepts) is 1.7 vCPUs: scaled, ~850 MB/s. 31 GiB = 33,285,996,544 B at 850 MB/s = 39 s.
 *   Network:  one S3 stream is assumed to run at ~90 MB/s from a Lambda, and a function's network at ~500 MB/s
 *             in all (both assumptions: not measurable offline; check the validator's Duration against CAR
 *             size on staging). 8 ranges in flight: min(8 x 90, 500) = 500 MB/s, so reading takes 67 s.
 *             Reading and verifying overlap (bench/s3-read.ts measures the overlap against the local S3,
 *             paced to 90 MB/s per connection), so validation takes max(39 s, 67 s) = 67 s. One stream alone
 *             would take 370 s.
 *   Copy:     server-side UploadPartCopy, assumed 200 MB/s with 4 parts in flight: 166 s.
 *   Total:    67 s + 166 s = 233 s, against a budget of 80% of 900 s = 720 s (the Duration alarm fires at
 *             the same 80%): 3.1x margin to the budget, 3.9x to the hard limit.
 *
 * Decision: every CAR is validated by the Lambda. A MAX_CAR_BYTES whose estimate exceeds the budget
 * (above ~95 GiB with these rates) fails synthesis; the way out is to route CARs above a threshold to a
 * validation task on the ECS cluster (not built: no CAR that pickup accepts today needs it).
 */

/** Lambda's hard limit. */
export const VALIDATOR_TIMEOUT_SECONDS = 15 * 60
/** The default: the most memory every account accepts (new accounts are often capped at 3008 MB). */
export const VALIDATOR_MEMORY_MB = 3008
/** Lambda allocates one vCPU per 1,769 MB. */
export const LAMBDA_MB_PER_VCPU = 1769
/** bench/validate-car.ts on 2 vCPUs (block verification on one, the whole-CAR hash on the other). */
export const VALIDATE_BYTES_PER_SECOND_2_VCPUS = 1_000_000_000
/** One S3 GetObject connection from Lambda (assumption, see above). */
export const S3_STREAM_BYTES_PER_SECOND = 90_000_000
/** A Lambda function's network throughput, all connections together (assumption, see above). */
export const LAMBDA_NETWORK_BYTES_PER_SECOND = 500_000_000
/** Server-side UploadPartCopy, 4 parts in flight (assumption). */
export const S3_COPY_BYTES_PER_SECOND = 200_000_000
/** Share of the timeout the largest CAR may use. */
export const VALIDATOR_BUDGET_SHARE = 0.8

export interface ValidatorEstimate {
  readonly verifyBytesPerSecond: number
  readonly readBytesPerSecond: number
  readonly validateSeconds: number
  readonly readSeconds: number
  readonly copySeconds: number
  readonly totalSeconds: number
  readonly budgetSeconds: number
  readonly fits: boolean
}

export interface ValidatorShape {
  /** Lambda memory (MB): decides the vCPUs. Default VALIDATOR_MEMORY_MB. */
  memoryMb?: number
  /** Ranged GETs in flight. Default 8. */
  readConcurrency?: number
}

/** How long the validator needs for a CAR of `bytes`, and whether it fits the budget. */
export function estimateValidatorSeconds(bytes: number, shape: ValidatorShape = {}): ValidatorEstimate {
  const vcpus = (shape.memoryMb ?? VALIDATOR_MEMORY_MB) / LAMBDA_MB_PER_VCPU
  const verifyBytesPerSecond = (VALIDATE_BYTES_PER_SECOND_2_VCPUS * Math.min(2, vcpus)) / 2
  const readBytesPerSecond = Math.min(
    (shape.readConcurrency ?? 8) * S3_STREAM_BYTES_PER_SECOND,
    LAMBDA_NETWORK_BYTES_PER_SECOND,
  )
  const validateSeconds = bytes / verifyBytesPerSecond
  const readSeconds = bytes / readBytesPerSecond
  const copySeconds = bytes / S3_COPY_BYTES_PER_SECOND
  const totalSeconds = Math.max(validateSeconds, readSeconds) + copySeconds
  const budgetSeconds = VALIDATOR_TIMEOUT_SECONDS * VALIDATOR_BUDGET_SHARE
  return {
    verifyBytesPerSecond,
    readBytesPerSecond,
    validateSeconds,
    readSeconds,
    copySeconds,
    totalSeconds,
    budgetSeconds,
    fits: totalSeconds <= budgetSeconds,
  }
}
