/**
 * The environment of each Lambda function: only the resources it uses. The stacks set exactly these
 * variables (test/stacks checks that each function's environment parses), so names cannot drift apart.
 */
import { z } from 'zod'
import { workerSchema } from '../../core/config.ts'
import { resourcesSchema } from '../../core/config-resources.ts'
import { collectionFollowSchema } from '../collection-follow.ts'
import { collectionJobSettingsSchema } from '../collection-jobs.ts'
import { reconcileSchema } from '../reconcile.ts'
import { sweepUnreferencedSchema } from '../sweep-unreferenced.ts'

const aws = resourcesSchema.pick({ AWS_REGION: true, S3_FORCE_PATH_STYLE: true })

/** NFT collections: the collections table and the collection jobs queue (adapters/compose.ts's names). */
const collectionResources = z.object({
  COLLECTION_TABLE: z.string().min(1),
  COLLECTION_JOBS_QUEUE_URL: z.string().url(),
})

/**
 * The HTTP API (api/http.ts), with the Collections API. The cluster API's credentials and the chains' JSON-RPC
 * endpoints come from SST secrets, not from the environment. REQUEST_TABLE and TOKEN_TABLE belong in core/config-resources.ts once more than this entry
 * point reads them from the environment.
 */
export const httpEnvSchema = aws
  .extend(
    resourcesSchema.pick({
      PIN_TABLE: true,
      WORKER_TABLE: true,
      PIN_QUEUE_URL: true,
      METRICS_NAMESPACE: true,
    }).shape,
  )
  .extend({
    REQUEST_TABLE: z.string().min(1),
    TOKEN_TABLE: z.string().min(1),
    /**
     * Delegates handed out while no worker is live (scaled to zero, or all restarting): stable `/p2p/`
     * multiaddrs of the service's own peers, comma-separated. Without any, the Pinning Service API answers
     * 503 until a worker is up.
     */
    PSA_DELEGATES: z.string().default(''),
  })
  .extend(collectionResources.shape)

/**
 * How the validator reads a CAR from the temporary bucket: ranged GETs of VALIDATOR_READ_PART_BYTES,
 * VALIDATOR_READ_CONCURRENCY in flight (adapters/s3/ranged-get.ts). Memory for the read is at most
 * (concurrency + 1) x part: 72 MiB by default. Defaults: 8 MiB ranges (S3's guidance for ranged reads),
 * 8 in flight (several times one stream's ~90 MB/s, above what the CPU verifies).
 */
export const validatorReadSchema = z.object({
  VALIDATOR_READ_PART_BYTES: z.coerce
    .number()
    .int()
    .min(1024 * 1024)
    .max(256 * 1024 * 1024)
    .default(8 * 1024 * 1024),
  VALIDATOR_READ_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(8),
})

/** The validator on the temporary bucket's ObjectCreated events (api/lambda/validate-car.ts). */
export const validateCarEnvSchema = aws
  .extend(
    resourcesSchema.pick({
      PIN_TABLE: true,
      PIN_QUEUE_URL: true,
      TEMP_BUCKET: true,
      DESTINATION_BUCKET: true,
      METRICS_NAMESPACE: true,
    }).shape,
  )
  .extend({ CAR_STORED_TOPIC_ARN: z.string().min(1) })
  .extend(
    workerSchema.pick({
      MAX_CAR_BYTES: true,
      MAX_DAG_BLOCKS: true,
      MAX_ATTEMPTS: true,
      RETRY_BASE_DELAY_SECONDS: true,
      RETRY_MAX_DELAY_SECONDS: true,
    }).shape,
  )
  .extend(validatorReadSchema.shape)

/** The dead-letter queue's consumer (api/lambda/dead-letter.ts): it forwards dead jobs to the failed-jobs queue. */
export const deadLetterEnvSchema = aws
  .extend(resourcesSchema.pick({ PIN_TABLE: true }).shape)
  .extend({ FAILED_JOBS_QUEUE_URL: z.string().url() })

/** The scheduled sweep of unreferenced content (api/lambda/sweep-unreferenced.ts). */
export const sweepUnreferencedEnvSchema = aws
  .extend(resourcesSchema.pick({ PIN_TABLE: true, DESTINATION_BUCKET: true }).shape)
  .extend({ REQUEST_TABLE: z.string().min(1) })
  .extend(sweepUnreferencedSchema.shape)

/**
 * The scheduled reconciler (api/lambda/reconcile.ts): the resources, and the settings of `reconcileSchema`
 * (MAX_ATTEMPTS, VISIBILITY_TIMEOUT_SECONDS and RETRY_MAX_DELAY_SECONDS as the worker has them, optionally
 * RECONCILE_AFTER_MS and RECONCILE_LIMIT).
 */
export const reconcileEnvSchema = aws
  .extend(resourcesSchema.pick({ PIN_TABLE: true, PIN_QUEUE_URL: true }).shape)
  .extend(reconcileSchema.shape)

/**
 * The collection jobs consumer (api/lambda/collection-jobs.ts): the collections, the requests and pins it
 * makes, the pin queue, the stored CARs it reads metadata from, its own queue (it sends each job's next), and
 * the temporary bucket it uploads web-hosted content's CARs to for the validator, with the pin settings a
 * worker's attempt has (core/collections/web-config.ts). The chains' JSON-RPC endpoints come from the SST
 * secret CHAIN_RPC, not from the environment.
 */
export const collectionJobsEnvSchema = aws
  .extend(
    resourcesSchema.pick({
      PIN_TABLE: true,
      PIN_QUEUE_URL: true,
      DESTINATION_BUCKET: true,
      TEMP_BUCKET: true,
    }).shape,
  )
  .extend({ REQUEST_TABLE: z.string().min(1) })
  .extend(collectionResources.shape)
  .extend(collectionJobSettingsSchema.shape)
  .extend(
    workerSchema.pick({ MAX_CAR_BYTES: true, VISIBILITY_TIMEOUT_SECONDS: true, UPLOAD_PART_BYTES: true })
      .shape,
  )

/**
 * The NFT collections' follow tick (api/lambda/collection-follow.ts): the collections table, the
 * collection-jobs queue, and COLLECTION_FOLLOW_LIMIT.
 */
export const collectionFollowEnvSchema = aws
  .extend(collectionResources.shape)
  .extend(collectionFollowSchema.shape)
