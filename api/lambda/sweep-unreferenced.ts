/** Lambda entry point of the scheduled sweep of unreferenced content (an EventBridge schedule). */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createStores, resourcesFromEnv } from '../../adapters/compose.ts'
import { createLogger } from '../../adapters/log.ts'
import { parseConfig } from '../../core/config.ts'
import { createSweepUnreferencedHandler, sweepOptionsFromConfig } from '../sweep-unreferenced.ts'
import { sweepUnreferencedEnvSchema } from './env.ts'

const cfg = parseConfig(sweepUnreferencedEnvSchema, process.env)
const stores = createStores(createAwsClients(cfg), resourcesFromEnv(cfg))

export const handler = createSweepUnreferencedHandler(sweepOptionsFromConfig(cfg), {
  pins: stores.pins(),
  requests: stores.requests(),
  destination: stores.destination(),
  clock: { now: () => Date.now() },
  log: createLogger('pickup-sweep-unreferenced'),
})
