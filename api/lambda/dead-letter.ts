/** Lambda entry point of the dead-letter queue's consumer (batch item failures reported). */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createLogger } from '../../adapters/log.ts'
import { parseConfig } from '../../core/config.ts'
import { createDeadLetterHandler } from '../dead-letter.ts'
import { deadLetterEnvSchema } from './env.ts'

const cfg = parseConfig(deadLetterEnvSchema, process.env)
const aws = createAwsClients(cfg)

export const handler = createDeadLetterHandler({
  pins: createDynamoPinStore({ client: aws.dynamodb, tableName: cfg.PIN_TABLE }),
  clock: { now: () => Date.now() },
  log: createLogger('pickup-dead-letter'),
})
