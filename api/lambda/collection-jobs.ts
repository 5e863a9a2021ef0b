/**
 * Lambda entry point of the collection jobs consumer (the collection-jobs queue's event source, batch item
 * failures reported): enumerates collections from their chain and archives their tokens (api/collection-jobs.ts).
 */
import type { Context, SQSEvent } from 'aws-lambda'
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createStores, resourcesFromEnv } from '../../adapters/compose.ts'
import { createEvmEnumerator } from '../../adapters/evm/enumerate.ts'
import { createLogger } from '../../adapters/log.ts'
import { createSqsCollectionJobRetries } from '../../adapters/sqs/collection-jobs.ts'
import { createStoredContentReader } from '../../adapters/stored-content.ts'
import { webArchivePorts } from '../../adapters/web/archive-ports.ts'
import { parseConfig } from '../../core/config.ts'
import { collectionJobOptionsFromConfig, createCollectionJobHandler } from '../collection-jobs.ts'
import { chainRpcFromSecret } from './chain-rpc.ts'
import { collectionJobsEnvSchema } from './env.ts'

const cfg = parseConfig(collectionJobsEnvSchema, process.env)
const clients = createAwsClients(cfg)
const stores = createStores(clients, resourcesFromEnv(cfg))

const log = createLogger('pickup-collection-jobs')

const run = createCollectionJobHandler(collectionJobOptionsFromConfig(cfg), {
  collections: stores.collections(),
  requests: stores.requests(),
  pins: stores.pins(),
  queue: stores.pinQueue(),
  clock: { now: () => Date.now() },
  jobs: stores.collectionJobs(),
  retries: createSqsCollectionJobRetries({ client: clients.sqs, queueUrl: cfg.COLLECTION_JOBS_QUEUE_URL }),
  log,
  enumerator: createEvmEnumerator({ chains: chainRpcFromSecret() }),
  reader: createStoredContentReader({
    destination: stores.destination(),
    maxCarBytes: cfg.COLLECTION_READ_CAR_BYTES,
  }),
  // Web-hosted content: fetched under the address guard, imported in /tmp, its CAR uploaded for the validator.
  web: webArchivePorts(stores, cfg, log),
})

export const handler = (event: SQSEvent, context: Context) => run(event, context)
