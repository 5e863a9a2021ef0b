/** Lambda entry point of the NFT collections' follow tick (an EventBridge schedule). */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createStores, resourcesFromEnv } from '../../adapters/compose.ts'
import { createLogger } from '../../adapters/log.ts'
import { parseConfig } from '../../core/config.ts'
import { createCollectionFollowHandler } from '../collection-follow.ts'
import { collectionFollowEnvSchema } from './env.ts'

const cfg = parseConfig(collectionFollowEnvSchema, process.env)
const stores = createStores(createAwsClients(cfg), resourcesFromEnv(cfg))

export const handler = createCollectionFollowHandler(cfg, {
  collections: stores.collections(),
  jobs: stores.collectionJobs(),
  clock: { now: () => Date.now() },
  log: createLogger('pickup-collection-follow'),
})
