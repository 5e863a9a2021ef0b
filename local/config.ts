import { z } from 'zod'
import { reconcileSettingsSchema } from '../api/reconcile.ts'
import { collectionWebSchema } from '../core/collections/web-config.ts'
import { workerSchema } from '../core/config.ts'

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
    /** Whether the embedded IPFS node bootstraps into the public IPFS network (it works offline too). */
    IPFS_PUBLIC_NETWORK: flag(true),
    /** Run a worker inside local mode; false to run workers as processes of their own (`node pickup/main.ts`). */
    LOCAL_WORKER: flag(true),
    /**
     * The worker's IPFS node when IPFS_API_URL is unset: `helia`, embedded in the process, or `kubo`, a kubo
     * daemon local mode starts and configures as the worker's ECS task does (KUBO_BINARY, or `npm run tools`).
     */
    IPFS_NODE: z.enum(['helia', 'kubo']).default('helia'),
    /** Listen addresses of the embedded IPFS node, comma-separated. */
    IPFS_LISTEN: z.string().default('/ip4/127.0.0.1/tcp/0'),
    /** How often the reconciler looks for pins no job will move (core/reconcile.ts). */
    RECONCILE_INTERVAL_MS: z.coerce.number().int().min(1).default(60_000),
    /** NFT collections: how long archiving waits between two passes while its pins are still being fetched. */
    COLLECTION_ADVANCE_DELAY_SECONDS: z.coerce.number().int().min(0).max(900).default(10),
    /** NFT collections: pages of tokens (100 each) one enumeration job reads before the next job continues. */
    COLLECTION_PAGES_PER_JOB: z.coerce.number().int().min(1).default(10),
    /** NFT collections: the largest stored CAR read into memory to find a token's metadata file or export it. */
    COLLECTION_READ_CAR_BYTES: z.coerce
      .number()
      .int()
      .min(1)
      .default(256 * 1024 * 1024),
  })
  .extend(reconcileSettingsSchema.shape)
  .extend({
    ...collectionWebSchema.shape,
    /** Local mode fetches web-hosted token content from the operator's own network too. */
    COLLECTION_WEB_ALLOW_PRIVATE: flag(true),
  })

export type LocalConfig = z.infer<typeof localSchema>
