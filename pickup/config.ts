/**
 * The worker sidecar's environment: the worker's tuning (core/config.ts), the resources it uses, and the
 * sidecar's own variables. The stack builds the task's environment against this schema (test/stacks checks
 * that it parses), so the names cannot drift apart.
 */
import { z } from 'zod'
import { workerSchema } from '../core/config.ts'
import { resourcesSchema } from '../core/config-resources.ts'

const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce.number().int().min(min).max(max).default(def)
const flag = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1')

export const sidecarSchema = z.object({
  /**
   * Port of the health endpoint on 127.0.0.1 (see pickup/health.ts). 0, the default: no endpoint, so several
   * workers can run on one machine; the worker image and the ECS task set 8081.
   */
  HEALTH_PORT: int(0, 0, 65535),
  /** Set by ECS in every task: the agent endpoint for task scale-in protection. Unset: no protection. */
  ECS_AGENT_URI: z.string().url().optional(),
  /** How long one task protection lasts; renewed every half of it while the worker holds jobs. */
  TASK_PROTECTION_MINUTES: int(60, 1, 2880),
  /** Shortest interval between two kubo `repo gc` runs (GC runs only while the worker holds no jobs). */
  KUBO_GC_MIN_INTERVAL_MS: int(10 * 60 * 1000),
  /** kubo repo size above which the worker stops taking jobs until it is idle and has collected. 0: never. */
  KUBO_GC_HIGH_WATER_BYTES: int(0),
  /**
   * The embedded Helia node (IPFS_API_URL unset) may dial loopback, private and link-local addresses. Off by
   * default: origins come from clients, who must not steer a worker into its own network. Tests that run
   * the sidecar against origins on loopback turn it on.
   */
  IPFS_ALLOW_PRIVATE_DIALS: flag(false),
  /**
   * The embedded Helia node's blocks, datastore and peer key on disk, kept across restarts (local mode sets
   * it under its data directory); a failed attempt's blocks then stay for its retry. Unset: in memory.
   */
  IPFS_DATA_DIR: z.string().min(1).optional(),
  /** The embedded Helia node's listen addresses, comma-separated. Unset: TCP on a free loopback port. */
  IPFS_LISTEN: z.string().min(1).optional(),
  /** Whether the embedded Helia node bootstraps into the public IPFS network. */
  IPFS_PUBLIC_NETWORK: flag(true),
  /**
   * Whether the worker collects kubo's repo (`repo gc`) between jobs: on for the task's own kubo; local mode
   * turns it off for a kubo the user runs (IPFS_API_URL), whose unpinned blocks are not the worker's to delete.
   */
  KUBO_GC: flag(true),
  /**
   * Disk kubo's repo may fill with jobs' blocks. Set (the stack sets it), a job is admitted only while the
   * repo plus MAX_CAR_BYTES for it and for each running job fit in it (adapters/kubo/disk-gate.ts). 0: no check.
   */
  KUBO_JOB_DISK_BYTES: int(0),
  /**
   * The ECS service the task belongs to (the stack sets it). With ECS_CONTAINER_METADATA_URI_V4, a worker
   * whose task is no longer in the service's primary deployment stops taking jobs
   * (adapters/ecs/deployment-gate.ts).
   */
  ECS_SERVICE_NAME: z.string().min(1).optional(),
  /** Set by ECS in every container: the task metadata endpoint (version 4). */
  ECS_CONTAINER_METADATA_URI_V4: z.string().url().optional(),
  /** How often a worker checks whether its task is still in its service's primary deployment. */
  DEPLOYMENT_CHECK_INTERVAL_MS: int(60_000, 1000),
})

export const workerEnvSchema = workerSchema
  .extend(
    resourcesSchema.pick({
      AWS_REGION: true,
      S3_FORCE_PATH_STYLE: true,
      PIN_TABLE: true,
      WORKER_TABLE: true,
      PIN_QUEUE_URL: true,
      TEMP_BUCKET: true,
      METRICS_NAMESPACE: true,
    }).shape,
  )
  .extend(sidecarSchema.shape)
