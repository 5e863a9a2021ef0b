/**
 * Sizing of the validator Lambda: can it read, verify and copy the largest CAR pickup accepts (MAX_CAR_BYTES,
 * 31 GiB by default) within Lambda's 15-minute limit, with margin?
 *
 * The validator streams the CAR from S3 once (GetObject), parses and hashes it block by block on one core,
 * then copies it server-side to the destination bucket (CopyObject, or UploadPartCopy above 5 GiB with 4
 * parts in flight). Nothing is written to disk, so the default 512 MB of ephemeral storage is enough.
 *
 *   CPU:      bench/validate-car.ts measures ~1 GB/s on a 2-vCPU machine (validation is single-threaded;
 *             sha2-256 alone is ~1.75 GB/s on one core). 31 GiB = 33,285,996,544 B at 1,000 MB/s = 33 s.
 *   Network:  one S3 GetObject stream is the real bound. Assumed 90 MB/s (not measurable offline; check the
 *             validator's Duration against CAR size on staging): 33,285,996,544 B at 90 MB/s = 370 s.
 *             Reading and hashing overlap, so validation takes max(33 s, 370 s) = 370 s.
 *   Copy:     server-side UploadPartCopy, assumed 200 MB/s with 4 parts in flight: 166 s.
 *   Total:    370 s + 166 s = 536 s, against a budget of 80% of 900 s = 720 s (the Duration alarm fires at
 *             the same 80%). Holds with 1.7x margin to the hard limit.
 *
 * Decision: every CAR is validated by the Lambda. A MAX_CAR_BYTES whose estimate exceeds the budget
 * (above ~41 GiB with these rates) fails synthesis; the way out is to route CARs above a threshold to a
 * validation task on the ECS cluster (not built: no CAR that pickup accepts today needs it).
 */

/** Lambda's hard limit. */
export const VALIDATOR_TIMEOUT_SECONDS = 15 * 60
/** 2 vCPUs (Lambda allocates 1 vCPU per 1,769 MB): the machine the validator benchmark runs on. */
export const VALIDATOR_MEMORY_MB = 3538
/** bench/validate-car.ts on 2 vCPUs. */
export const VALIDATE_BYTES_PER_SECOND = 1_000_000_000
/** One S3 GetObject stream from Lambda (assumption, see above). */
export const S3_READ_BYTES_PER_SECOND = 90_000_000
/** Server-side UploadPartCopy, 4 parts in flight (assumption). */
export const S3_COPY_BYTES_PER_SECOND = 200_000_000
/** Share of the timeout the largest CAR may use. */
export const VALIDATOR_BUDGET_SHARE = 0.8

export interface ValidatorEstimate {
  readonly validateSeconds: number
  readonly readSeconds: number
  readonly copySeconds: number
  readonly totalSeconds: number
  readonly budgetSeconds: number
  readonly fits: boolean
}

/** How long the validator needs for a CAR of `bytes`, and whether it fits the budget. */
export function estimateValidatorSeconds(bytes: number): ValidatorEstimate {
  const validateSeconds = bytes / VALIDATE_BYTES_PER_SECOND
  const readSeconds = bytes / S3_READ_BYTES_PER_SECOND
  const copySeconds = bytes / S3_COPY_BYTES_PER_SECOND
  const totalSeconds = Math.max(validateSeconds, readSeconds) + copySeconds
  const budgetSeconds = VALIDATOR_TIMEOUT_SECONDS * VALIDATOR_BUDGET_SHARE
  return {
    validateSeconds,
    readSeconds,
    copySeconds,
    totalSeconds,
    budgetSeconds,
    fits: totalSeconds <= budgetSeconds,
  }
}
