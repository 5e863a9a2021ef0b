/** Lambda entry point of the scheduled reconciler (an EventBridge schedule). */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createLogger } from '../../adapters/log.ts'
import { createSqsPinQueue } from '../../adapters/sqs/queue.ts'
import { parseConfig } from '../../core/config.ts'
import { createReconcileHandler, reconcileOptionsFromConfig } from '../reconcile.ts'
import { reconcileEnvSchema } from './env.ts'

const cfg = parseConfig(reconcileEnvSchema, process.env)
const aws = createAwsClients(cfg)

export const handler = createReconcileHandler(reconcileOptionsFromConfig(cfg), {
  pins: createDynamoPinStore({ client: aws.dynamodb, tableName: cfg.PIN_TABLE }),
  queue: createSqsPinQueue({ client: aws.sqs, queueUrl: cfg.PIN_QUEUE_URL }),
  clock: { now: () => Date.now() },
  log: createLogger('pickup-reconcile'),
})
