/** Lambda entry point of the validator: S3 ObjectCreated events of the temporary bucket (suffix `.car`). */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import {
  createStores,
  promoteOptionsFromConfig,
  promotePorts,
  resourcesFromEnv,
  storeOptionsFromConfig,
} from '../../adapters/compose.ts'
import { createLogger } from '../../adapters/log.ts'
import { createEmfMetrics } from '../../adapters/metrics/emf.ts'
import { parseConfig } from '../../core/config.ts'
import { createValidateCarHandler } from '../validate-car.ts'
import { validateCarEnvSchema } from './env.ts'

const cfg = parseConfig(validateCarEnvSchema, process.env)
const stores = createStores(createAwsClients(cfg), resourcesFromEnv(cfg), storeOptionsFromConfig(cfg))

export const handler = createValidateCarHandler(promoteOptionsFromConfig(cfg), {
  ...promotePorts(stores),
  clock: { now: () => Date.now() },
  log: createLogger('pickup-validate-car'),
  metrics: createEmfMetrics({ namespace: cfg.METRICS_NAMESPACE }),
})
