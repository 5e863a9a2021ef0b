/**
 * Lambda entry point of the dead-letter queue's consumer (batch item failures reported): marks dead jobs'
 * pins failed and forwards the jobs to the failed-jobs queue.
 */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createLogger } from '../../adapters/log.ts'
import { createSqsFailedJobs } from '../../adapters/sqs/dead-letters.ts'
import { parseConfig } from '../../core/config.ts'
import { createDeadLetterHandler } from '../dead-letter.ts'
import { deadLetterEnvSchema } from './env.ts'

const cfg = parseConfig(deadLetterEnvSchema, process.env)
const aws = createAwsClients(cfg)

export const handler = createDeadLetterHandler({
  pins: createDynamoPinStore({ client: aws.dynamodb, tableName: cfg.PIN_TABLE }),
  failedJobs: createSqsFailedJobs({ client: aws.sqs, queueUrl: cfg.FAILED_JOBS_QUEUE_URL }),
  clock: { now: () => Date.now() },
  log: createLogger('pickup-dead-letter'),
})
