/**
 * Deploy-time configuration: parsed once, in sst.config.ts, from the environment SST loads (`.env`,
 * `.env.<stage>`; see .env.tpl), and handed to the stacks through the app. The worker's own tuning variables
 * (core/config.ts) are validated here too and passed to the tasks and functions explicitly, so what is
 * deployed is what was checked. Every problem is reported together, before anything is synthesized.
 */
import type { App } from 'sst/constructs'
import { z } from 'zod'
import { collectionFollowSchema } from '../api/collection-follow.ts'
import { collectionJobSettingsSchema, jobDeadlineMs } from '../api/collection-jobs.ts'
import { validatorReadSchema } from '../api/lambda/env.ts'
import { reconcileSettingsSchema } from '../api/reconcile.ts'
import { sweepUnreferencedSchema } from '../api/sweep-unreferenced.ts'
import { parseConfig, workerSchema } from '../core/config.ts'
import { estimateValidatorSeconds } from './validator-sizing.ts'

const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def)
const optionalString = z.string().min(1).optional()

/** Fargate's valid memory sizes (MiB) per CPU size (units of 1/1024 vCPU). */
const FARGATE_MEMORY: Record<number, { min: number; max: number; step: number }> = {
  1024: { min: 2048, max: 8192, step: 1024 },
  2048: { min: 4096, max: 16384, step: 1024 },
  4096: { min: 8192, max: 30720, step: 1024 },
  8192: { min: 16384, max: 61440, step: 4096 },
  16384: { min: 32768, max: 122880, step: 8192 },
}

const MiB = 1024 * 1024
/** The most memory a Lambda function can have. */
export const LAMBDA_MAX_MEMORY_MB = 10240

/**
 * Memory of the collection jobs consumer: it holds one stored CAR's blocks (up to COLLECTION_READ_CAR_BYTES)
 * while it reads a token's metadata out of it, with the CAR's bytes in flight beside them: twice the CAR,
 * plus 512 MB for the runtime and a page of tokens. At least 1024 MB (CPU grows with memory).
 */
export function collectionJobsMemoryMb(readCarBytes: number): number {
  return Math.max(1024, Math.ceil((2 * readCarBytes) / MiB) + 512)
}

/** The most /tmp a Lambda function can have, in MB. */
export const LAMBDA_MAX_DISK_MB = 10240

/**
 * /tmp of the collection jobs consumer: a web-hosted file of up to COLLECTION_WEB_MAX_BYTES is imported there
 * as UnixFS blocks (its bytes and a few dag-pb nodes, 5% covers them) before its CAR is uploaded; 256 MB more
 * for the runtime's own files. At least Lambda's default 512 MB.
 */
export function collectionJobsDiskMb(webMaxBytes: number): number {
  return Math.max(512, Math.ceil((webMaxBytes * 1.05) / MiB) + 256)
}

/** The largest COLLECTION_READ_CAR_BYTES whose consumer fits in a Lambda. */
export const MAX_COLLECTION_READ_CAR_BYTES = ((LAMBDA_MAX_MEMORY_MB - 512) / 2) * MiB

/** Fargate gives a container at most 120 s between SIGTERM and SIGKILL. */
export const WORKER_STOP_TIMEOUT_SECONDS = 120

export const deploySchema = workerSchema
  .omit({ IPFS_API_URL: true })
  .extend(sweepUnreferencedSchema.shape)
  .extend(reconcileSettingsSchema.shape)
  .extend(validatorReadSchema.shape)
  // NFT collections: the collection jobs consumer's settings (stacks/collections.ts).
  .extend(collectionJobSettingsSchema.shape)
  // NFT collections: the follow tick's (stacks/collections.ts).
  .extend(collectionFollowSchema.shape)
  .extend({
    /** How often the follow tick of NFT collections runs (api/collection-follow.ts). */
    COLLECTION_FOLLOW_INTERVAL_MINUTES: int(5, 1, 24 * 60),
    /** How often the sweep of unreferenced content runs. */
    UNREFERENCED_SWEEP_INTERVAL_MINUTES: int(60, 5, 24 * 60),
    /**
     * How often the reconciler runs (api/reconcile.ts). At most an hour: its errors alarm looks at two
     * consecutive runs, and CloudWatch evaluates at most a day.
     */
    RECONCILE_INTERVAL_MINUTES: int(5, 1, 60),

    /** Store CARs in this existing bucket instead of creating one (it is imported, never modified). */
    DESTINATION_BUCKET_NAME: optionalString,

    /** Serve the API on this domain (e.g. pickup.example.org); needs the hosted zone below. */
    API_DOMAIN: optionalString,
    API_HOSTED_ZONE_ID: optionalString,
    API_HOSTED_ZONE_NAME: optionalString,
    /** Origins allowed by CORS, comma-separated. */
    API_CORS_ORIGINS: z.string().default('*'),
    /** Delegates the Pinning Service API hands out while no worker is live: `/p2p/` multiaddrs, comma-separated. */
    PSA_DELEGATES: z.string().default(''),

    /** Bounds of the worker service's autoscaling. */
    WORKER_MIN_TASKS: int(1, 0, 1000),
    WORKER_MAX_TASKS: int(10, 1, 1000),
    /** Task size: CPU units (1024 = 1 vCPU) and memory, shared by kubo and the sidecar. */
    WORKER_CPU: z.coerce
      .number()
      .int()
      .refine((v) => v in FARGATE_MEMORY, 'one of 1024, 2048, 4096, 8192, 16384')
      .default(2048),
    WORKER_MEMORY_MIB: int(8192, 2048),
    WORKER_CPU_ARCHITECTURE: z.enum(['x86_64', 'arm64']).default('x86_64'),
    /** Disk per task is BATCH_SIZE x this + 10 GiB (kubo keeps the blocks of running jobs), 21-200 GiB. */
    WORKER_TYPICAL_CAR_GIB: int(8, 1, 200),
    /** Availability zones the worker VPC spans. */
    WORKER_AZS: int(2, 1, 3),

    /** kubo's connection manager: trims connections above HIGH down to LOW. */
    KUBO_CONNMGR_LOW_WATER: int(100, 1),
    KUBO_CONNMGR_HIGH_WATER: int(400, 1),
    /** Shortest interval between two `repo gc` runs of one worker. */
    KUBO_GC_MIN_INTERVAL_MS: int(10 * 60 * 1000, 0),

    /**
     * Lambda memory of the validator: 3008 MB (~1.7 vCPUs), the most every account accepts (new accounts are
     * often limited to 3008 MB until they ask for more); see stacks/validator-sizing.ts.
     */
    VALIDATOR_MEMORY_MB: int(3008, 1769, 10240),
    /**
     * Concurrency reserved for the validator, so a burst of API requests cannot take the account's Lambda
     * concurrency from it (and caps it: S3 events beyond it wait in Lambda's event queue, up to 6 hours).
     * 0: none reserved. Reserving needs an account concurrency limit of at least this + 100.
     */
    VALIDATOR_RESERVED_CONCURRENCY: int(20, 0, 1000),
    /** Steady request rate and burst the HTTP API accepts (API Gateway route throttling); above it, 429. */
    API_THROTTLE_RATE_PER_SECOND: int(50, 1, 10000),
    API_THROTTLE_BURST: int(100, 1, 5000),
    /**
     * AWS accounts (12 digits, comma-separated) allowed to subscribe to the "CAR stored" topic: the indexers'.
     */
    CAR_STORED_SUBSCRIBER_ACCOUNTS: z
      .string()
      .default('')
      .transform((v) =>
        v
          .split(',')
          .map((a) => a.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.string().regex(/^\d{12}$/, 'a 12-digit AWS account id'))),

    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),

    /** Alarm notifications go to this address (SNS email subscription; confirm the first mail). */
    ALARM_EMAIL: z.string().email().optional(),
    /** Worker log lines at level error or above, per 5 minutes, that raise the alarm. */
    ALARM_WORKER_ERRORS: int(5, 1),
    /** HTTP API 5xx answers per 5 minutes that raise the api-5xx alarm. */
    ALARM_API_5XX: int(5, 1),
    /** Age of the oldest pin job that raises the alarm. Default: FETCH_TIMEOUT_MS + 1 hour. */
    ALARM_QUEUE_AGE_SECONDS: z.coerce.number().int().min(60).optional(),
    /**
     * p90 of the time from the first request to `pinned` of small content (CARs up to 10 MiB), over 15
     * minutes twice running, that raises the slow-pins alarm. 10 minutes: a small DAG from a peer that
     * serves it is stored in seconds; ten minutes leaves room for a retry after one 2-minute stall and its
     * delay, and a short queue, but not for workers that stopped keeping up.
     */
    ALARM_TIME_TO_PIN_SMALL_P90_SECONDS: int(600, 10, 86_400),
    /**
     * Share of fetch attempts ending failed (any reason) over 15 minutes, twice running, that raises the
     * failure-rate alarm, once at least ALARM_FAILURE_MIN_JOBS attempts ended. 50%: more attempts fail than
     * succeed. Content nobody serves fails three attempts per pin, so a pool whose requests are one fifth dead
     * content runs at ~43%; beyond half, the workers, their network or a flood of dead content is at fault,
     * and the dashboard's failures by reason says which.
     */
    ALARM_FAILURE_RATE_PERCENT: int(50, 1, 100),
    /** Fewest attempts ending in 15 minutes for the failure rate to count: two failures of three are no trend. */
    ALARM_FAILURE_MIN_JOBS: int(20, 1),
    /**
     * Minutes in which pin jobs were sent to the pin queue and no pin was stored that raise the
     * nothing-stored alarm. 60: small pins take seconds and large ones are rare; an hour of jobs with nothing
     * stored means the pipeline stopped (workers cannot fetch or upload, the validator cannot promote) even
     * when every queue depth looks normal.
     */
    ALARM_NOTHING_STORED_MINUTES: int(60, 10, 1440),
  })
  .superRefine((cfg, ctx) => {
    const problem = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message })
    if (cfg.WORKER_MAX_TASKS < cfg.WORKER_MIN_TASKS) {
      problem('WORKER_MAX_TASKS', `must be at least WORKER_MIN_TASKS (${cfg.WORKER_MIN_TASKS})`)
    }
    const memory = FARGATE_MEMORY[cfg.WORKER_CPU]
    if (
      memory &&
      (cfg.WORKER_MEMORY_MIB < memory.min ||
        cfg.WORKER_MEMORY_MIB > memory.max ||
        cfg.WORKER_MEMORY_MIB % memory.step !== 0)
    ) {
      problem(
        'WORKER_MEMORY_MIB',
        `Fargate with WORKER_CPU=${cfg.WORKER_CPU} takes ${memory.min}-${memory.max} MiB in steps of ${memory.step}`,
      )
    }
    if (cfg.KUBO_CONNMGR_HIGH_WATER <= cfg.KUBO_CONNMGR_LOW_WATER) {
      problem('KUBO_CONNMGR_HIGH_WATER', 'must be above KUBO_CONNMGR_LOW_WATER')
    }
    if (cfg.MAX_ATTEMPTS > 1000) {
      problem('MAX_ATTEMPTS', "is the pin queue's maxReceiveCount too, which SQS caps at 1000")
    }
    if (cfg.SHUTDOWN_GRACE_MS > (WORKER_STOP_TIMEOUT_SECONDS - 30) * 1000) {
      problem(
        'SHUTDOWN_GRACE_MS',
        `at most ${(WORKER_STOP_TIMEOUT_SECONDS - 30) * 1000}: Fargate kills a container ${WORKER_STOP_TIMEOUT_SECONDS} s after SIGTERM, and releasing jobs takes time too`,
      )
    }
    if (cfg.VISIBILITY_TIMEOUT_SECONDS > 12 * 60 * 60) {
      problem('VISIBILITY_TIMEOUT_SECONDS', 'SQS allows at most 43200 (12 hours)')
    }
    const estimate = estimateValidatorSeconds(cfg.MAX_CAR_BYTES, {
      memoryMb: cfg.VALIDATOR_MEMORY_MB,
      readConcurrency: cfg.VALIDATOR_READ_CONCURRENCY,
    })
    if (!estimate.fits) {
      problem(
        'MAX_CAR_BYTES',
        `the validator Lambda would need ~${Math.round(estimate.totalSeconds)} s for a CAR this large, over its ` +
          `${estimate.budgetSeconds} s budget (stacks/validator-sizing.ts): lower it, or validate large CARs on ECS`,
      )
    }
    const diskGiB = workerEphemeralStorageGiB(cfg)
    if ((diskGiB - WORKER_DISK_RESERVED_GIB) * GiB < cfg.MAX_CAR_BYTES) {
      problem(
        'WORKER_TYPICAL_CAR_GIB',
        `the task's disk (${diskGiB} GiB, ${WORKER_DISK_RESERVED_GIB} GiB of it for images and logs) must hold one CAR of MAX_CAR_BYTES, or no job of that size could ever be admitted`,
      )
    }
    if (collectionJobsMemoryMb(cfg.COLLECTION_READ_CAR_BYTES) > LAMBDA_MAX_MEMORY_MB) {
      problem(
        'COLLECTION_READ_CAR_BYTES',
        `the collection jobs consumer holds a CAR this large in memory: at most ${MAX_COLLECTION_READ_CAR_BYTES} fits in a Lambda's ${LAMBDA_MAX_MEMORY_MB} MB`,
      )
    }
    if (cfg.COLLECTION_WEB_WINDOW_MS + cfg.COLLECTION_WEB_TIMEOUT_MS > jobDeadlineMs(undefined)) {
      problem(
        'COLLECTION_WEB_WINDOW_MS',
        `with COLLECTION_WEB_TIMEOUT_MS, an archiving pass's last web fetch would outlast its job's deadline (${jobDeadlineMs(undefined)} ms)`,
      )
    }
    if (collectionJobsDiskMb(cfg.COLLECTION_WEB_MAX_BYTES) > LAMBDA_MAX_DISK_MB) {
      problem(
        'COLLECTION_WEB_MAX_BYTES',
        `the collection jobs consumer imports a web-hosted file this large into /tmp: it must fit, with its UnixFS nodes, in a Lambda's ${LAMBDA_MAX_DISK_MB} MB`,
      )
    }
    if (cfg.API_DOMAIN && !(cfg.API_HOSTED_ZONE_ID && cfg.API_HOSTED_ZONE_NAME)) {
      problem(
        'API_DOMAIN',
        'needs API_HOSTED_ZONE_ID and API_HOSTED_ZONE_NAME (the Route 53 zone it lives in)',
      )
    }
  })

export type DeployConfig = z.infer<typeof deploySchema>

/** Parses and checks the deploy-time environment; throws one ConfigError naming every problem. */
export function parseDeployConfig(env: Record<string, string | undefined>): DeployConfig {
  return parseConfig(deploySchema, env)
}

const GiB = 1024 ** 3
/** Disk of a worker task kept for the images, logs and kubo's own files: never given to jobs. */
export const WORKER_DISK_RESERVED_GIB = 10

/**
 * Disk per worker task: room for BATCH_SIZE typical DAGs in kubo's repo, plus images and headroom, within
 * Fargate's 21-200 GiB. Not the worst case (BATCH_SIZE x MAX_CAR_BYTES can exceed 200 GiB): the worker
 * admits a job only while the disk holds the largest CAR for it and for every job it runs
 * (adapters/kubo/disk-gate.ts, given `workerJobDiskBytes`).
 */
export function workerEphemeralStorageGiB(
  cfg: Pick<DeployConfig, 'BATCH_SIZE' | 'WORKER_TYPICAL_CAR_GIB'>,
): number {
  return Math.min(200, Math.max(21, cfg.BATCH_SIZE * cfg.WORKER_TYPICAL_CAR_GIB + 10))
}

/** The part of a task's disk that kubo's repo may use for jobs. */
export function workerJobDiskBytes(cfg: Pick<DeployConfig, 'BATCH_SIZE' | 'WORKER_TYPICAL_CAR_GIB'>): number {
  return (workerEphemeralStorageGiB(cfg) - WORKER_DISK_RESERVED_GIB) * GiB
}

/** The oldest-message alarm: a job may legitimately be in flight for a whole fetch. */
export function queueAgeAlarmSeconds(cfg: DeployConfig): number {
  return cfg.ALARM_QUEUE_AGE_SECONDS ?? Math.round(cfg.FETCH_TIMEOUT_MS / 1000) + 3600
}

const configs = new WeakMap<App, DeployConfig>()

/** Called once by sst.config.ts (or a test) before the stacks are added. */
export function setDeployConfig(app: App, cfg: DeployConfig): void {
  configs.set(app, cfg)
}

export function useDeployConfig(app: App): DeployConfig {
  const cfg = configs.get(app)
  if (!cfg)
    throw new Error('no deploy configuration: call setDeployConfig(app, parseDeployConfig(env)) first')
  return cfg
}

/** `<stage>-pickup`: the prefix of every table, queue and topic name (as `app.logicalPrefixedName`). */
export function resourcePrefix(app: App): string {
  return `${app.stage}-${app.name}`
}

/** Bucket names are global: the account and region make them unique. At most 63 characters. */
export function bucketPrefix(app: App): string {
  return `${app.stage}-${app.name}-${app.account}-${app.region}`
}
