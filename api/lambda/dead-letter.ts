/**
 * Lambda entry point of the dead-letter queue's consumer (batch item failures reported): marks dead jobs'
 * pins failed and forwards the jobs to the failed-jobs queue.
 */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createStores, resourcesFromEnv } from '../../adapters/compose.ts'
import { createLogger } from '../../adapters/log.ts'
import { parseConfig } from '../../core/config.ts'
import { createDeadLetterHandler } from '../dead-letter.ts'
import { deadLetterEnvSchema } from './env.ts'

const cfg = parseConfig(deadLetterEnvSchema, process.env)
const stores = createStores(createAwsClients(cfg), resourcesFromEnv(cfg))

export const handler = createDeadLetterHandler({
  pins: stores.pins(),
  failedJobs: stores.failedJobs(),
  clock: { now: () => Date.now() },
  log: createLogger('pickup-dead-letter'),
})
