import { z } from 'zod'
import { collectionFollowSchema } from '../api/collection-follow.ts'
import { collectionJobSettingsSchema } from '../api/collection-jobs.ts'
import { reconcileSettingsSchema } from '../api/reconcile.ts'
import { workerSchema } from '../core/config.ts'
import { sidecarSchema } from '../pickup/config.ts'

const flag = (def: boolean) =>
  z
    .enum(['true', 'false', '1', '0'])
    .default(def ? 'true' : 'false')
    .transform((v) => v === 'true' || v === '1')

/** Local mode: the whole system on one machine. */
export const localSchema = workerSchema
  .extend({
    /** The HTTP API's port on 127.0.0.1. */
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    /** Where pins, queues, CARs and the IPFS node's blocks persist across restarts. */
    PICKUP_DATA_DIR: z.string().default('.pickup'),
    /** Accepted cluster API credentials (comma-separated). Unset: one is generated and kept in the data dir. */
    CLUSTER_BASIC_AUTH_TOKEN: z.string().optional(),
    /**
     * Local mode's worker: `process`, a process of its own (`pickup/main.ts`, the entry ECS runs), so the API
     * and the embedded services keep a thread of their own; `inline`, in local mode's process; `none`, to run
     * workers yourself (`node pickup/main.ts`). `true` and `false` (earlier versions) mean `process` and `none`.
     */
    LOCAL_WORKER: z
      .enum(['process', 'inline', 'none', 'true', 'false', '1', '0'])
      .default('process')
      .transform((v) => (v === 'true' || v === '1' ? 'process' : v === 'false' || v === '0' ? 'none' : v)),
    /**
     * The worker's IPFS node when IPFS_API_URL is unset: `helia`, embedded in the process, or `kubo`, a kubo
     * daemon local mode starts and configures as the worker's ECS task does (KUBO_BINARY, or `npm run tools`).
     */
    IPFS_NODE: z.enum(['helia', 'kubo']).default('helia'),
    /** Listen addresses of the embedded IPFS node, comma-separated. */
    IPFS_LISTEN: z.string().default('/ip4/127.0.0.1/tcp/0'),
    /** How often the reconciler looks for pins no job will move (core/reconcile.ts). */
    RECONCILE_INTERVAL_MS: z.coerce.number().int().min(1).default(60_000),
    /**
     * NFT collections: how often the follow tick looks for new mints of followed collections that are done
     * (COLLECTION_FOLLOW_LIMIT of them a tick, the longest unchecked first).
     */
    COLLECTION_FOLLOW_INTERVAL_MS: z.coerce.number().int().min(1000).default(60_000),
  })
  // Whether the embedded IPFS node bootstraps into the public IPFS network (it works offline too).
  .extend(sidecarSchema.pick({ IPFS_PUBLIC_NETWORK: true }).shape)
  .extend(collectionFollowSchema.shape)
  .extend(reconcileSettingsSchema.shape)
  // NFT collections: the jobs consumer's settings, as deployed.
  .extend(collectionJobSettingsSchema.shape)
  // Local mode fetches web-hosted token content from the operator's own network too.
  .extend({ COLLECTION_WEB_ALLOW_PRIVATE: flag(true) })

export type LocalConfig = z.infer<typeof localSchema>
