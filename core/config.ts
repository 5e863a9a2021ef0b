/**
 * Configuration, parsed once at start by a pure function. Every invalid variable is reported together.
 * Durations carry their unit in the name; sizes are bytes unless the name says otherwise.
 */
import { z } from 'zod'
import { DEFAULT_MAX_DAG_BLOCKS, MAX_DAG_BLOCKS_CEILING } from './links.ts'

const GiB = 1024 ** 3
const MiB = 1024 ** 2

const int = (def: number, min = 0) => z.coerce.number().int().min(min).default(def)

/** The pin queue's visibility timeout and the worker's lease, unless configured: 5 minutes. */
export const DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 300

/** What the worker needs to fetch and upload one DAG. */
export const workerSchema = z.object({
  /** Largest CAR pickup will store; a larger DAG fails at once, without retry. 31 GiB. */
  MAX_CAR_BYTES: int(31 * GiB, 1),
  /**
   * Most distinct blocks (link targets included) of one DAG, for the worker and the validator alike: it
   * bounds the memory of one job (~140 bytes each in the worker, ~150 in the validator) whatever the DAG's
   * shape; a larger DAG fails at once, without retry. 2,000,000; at most 16,000,000 (below V8's 2^24 limit
   * on the entries of one Map).
   */
  MAX_DAG_BLOCKS: z.coerce.number().int().min(1).max(MAX_DAG_BLOCKS_CEILING).default(DEFAULT_MAX_DAG_BLOCKS),
  /** Longest one fetch may take. 4 hours: 2/3 of home connections upload 32 GiB in 3.5 h. */
  FETCH_TIMEOUT_MS: int(4 * 60 * 60 * 1000, 1),
  /** Longest wait for the next byte (the first included) before the fetch counts as stalled. */
  FETCH_CHUNK_TIMEOUT_MS: int(2 * 60 * 1000, 1),
  /** Pin jobs one worker transfers at once (jobs still searching for their content do not count). */
  BATCH_SIZE: int(10, 1),
  /**
   * Pin jobs one worker searches for at once: no block received yet (dialling origins, finding providers,
   * waiting for the root), or waiting for a transfer slot. A search holds a message (visibility extended in
   * batches of ten), a lease (one write every third of the visibility timeout), a place in the worker's read
   * of its running pins every 12th PROGRESS_INTERVAL_MS (core/pin-watch.ts) and one want; starting it is one
   * receive's share and one conditional write, which the search does not wait for (core/claim-lane.ts). 2,500: more than a backlog of 2,000 unreachable pins (README, Benchmarks), so fresh requests still
   * find a slot without waiting for rounds of 2-minute stalls. A peer keeps at most 1024 of our wants (Helia's
   * `maxWantlistSize`) and drops those for blocks it does not have first, so wants for content it serves stay.
   */
  SEARCH_CONCURRENCY: int(2500, 1),
  /**
   * Receives from the pin queue one worker keeps in flight. A receive brings at most ten messages and takes a
   * round trip (20-50 ms to SQS), so one at a time starts a backlog at a few hundred jobs a second at best.
   * Each receive reserves the search slots it may fill before it is sent, so the worker never holds a message
   * it cannot start, whatever this is.
   */
  RECEIVE_CONCURRENCY: int(4, 1),
  /** Blocks fetched in parallel within one job (a depth-first walk is latency-bound). */
  FETCH_CONCURRENCY: int(32, 1),
  /**
   * A block unanswered this long, while later ones arrive or nothing arrives at all, is asked again (then after
   * twice as long, up to 60 s); FETCH_CHUNK_TIMEOUT_MS stays the last resort. 10 s: above bitswap's 5 s
   * window in which a peer ignores a repeated want for a block it sent.
   */
  FETCH_REASK_MS: int(10_000, 10),
  /** Best-effort dial of a request's origins: each dial gives up after this. */
  DIAL_TIMEOUT_MS: int(10_000, 1),
  /** S3 multipart part size. 8 MiB: 10,000 parts reach 78 GiB. */
  UPLOAD_PART_BYTES: int(8 * MiB, 5 * MiB),
  /** How long a received message stays invisible; the worker renews it every third of this while it works. */
  VISIBILITY_TIMEOUT_SECONDS: int(DEFAULT_VISIBILITY_TIMEOUT_SECONDS, 10),
  /** First retry delay; it doubles with every receive, up to RETRY_MAX_DELAY_SECONDS (core/retry-policy.ts). */
  RETRY_BASE_DELAY_SECONDS: int(30),
  RETRY_MAX_DELAY_SECONDS: int(900),
  /** How often a running job records its progress on the pin (bytes and blocks so far). */
  PROGRESS_INTERVAL_MS: int(5_000, 100),
  /** On SIGTERM, how long in-flight jobs may still run before they are released for another worker. */
  SHUTDOWN_GRACE_MS: int(30_000),
  /** Receives before a message goes to the dead-letter queue; also the bound on validation retries. */
  MAX_ATTEMPTS: int(3, 1),
  /** kubo's RPC API. Unset: an embedded Helia node. */
  IPFS_API_URL: z.string().url().optional(),
  /** While the IPFS node does not answer, how often the worker asks again (it takes no job until it does). */
  IPFS_RETRY_INTERVAL_MS: int(5_000, 1),
})

export type WorkerConfig = z.infer<typeof workerSchema>

/** Reads configuration from an environment; throws one error naming every bad variable. */
export function parseConfig<S extends z.ZodType>(
  schema: S,
  env: Record<string, string | undefined>,
): z.infer<S> {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const result = schema.safeParse(cleaned)
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`)
    throw new ConfigError(problems)
  }
  return result.data
}

export class ConfigError extends Error {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
    this.problems = problems
  }
}
