/** Lambda entry point of the scheduled sweep of unreferenced content (an EventBridge schedule). */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createDynamoRequestStore } from '../../adapters/dynamodb/requests.ts'
import { createLogger } from '../../adapters/log.ts'
import { createS3ObjectStore } from '../../adapters/s3/objects.ts'
import { parseConfig } from '../../core/config.ts'
import { createSweepUnreferencedHandler, sweepOptionsFromConfig } from '../sweep-unreferenced.ts'
import { sweepUnreferencedEnvSchema } from './env.ts'

const cfg = parseConfig(sweepUnreferencedEnvSchema, process.env)
const aws = createAwsClients(cfg)

export const handler = createSweepUnreferencedHandler(sweepOptionsFromConfig(cfg), {
  pins: createDynamoPinStore({ client: aws.dynamodb, tableName: cfg.PIN_TABLE }),
  requests: createDynamoRequestStore({
    client: aws.dynamodb,
    tableName: cfg.REQUEST_TABLE,
    pinsTableName: cfg.PIN_TABLE,
  }),
  destination: createS3ObjectStore({ client: aws.s3, bucket: cfg.DESTINATION_BUCKET }),
  clock: { now: () => Date.now() },
  log: createLogger('pickup-sweep-unreferenced'),
})
