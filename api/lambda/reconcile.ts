/** Lambda entry point of the scheduled reconciler (an EventBridge schedule). */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createStores, resourcesFromEnv } from '../../adapters/compose.ts'
import { createLogger } from '../../adapters/log.ts'
import { parseConfig } from '../../core/config.ts'
import { createReconcileHandler, reconcileOptionsFromConfig } from '../reconcile.ts'
import { reconcileEnvSchema } from './env.ts'

const cfg = parseConfig(reconcileEnvSchema, process.env)
const stores = createStores(createAwsClients(cfg), resourcesFromEnv(cfg))

export const handler = createReconcileHandler(reconcileOptionsFromConfig(cfg), {
  pins: stores.pins(),
  queue: stores.pinQueue(),
  clock: { now: () => Date.now() },
  log: createLogger('pickup-reconcile'),
})
