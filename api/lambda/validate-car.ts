/** Lambda entry point of the validator: S3 ObjectCreated events of the temporary bucket (suffix `.car`). */
import { createAwsClients } from '../../adapters/aws-clients.ts'
import { createDynamoPinStore } from '../../adapters/dynamodb/pins.ts'
import { createLogger } from '../../adapters/log.ts'
import { createEmfMetrics } from '../../adapters/metrics/emf.ts'
import { createS3ObjectStore } from '../../adapters/s3/objects.ts'
import { createSnsEventSink } from '../../adapters/sns/events.ts'
import { createSqsPinQueue } from '../../adapters/sqs/queue.ts'
import { parseConfig } from '../../core/config.ts'
import { createValidateCarHandler } from '../validate-car.ts'
import { validateCarEnvSchema } from './env.ts'

const cfg = parseConfig(validateCarEnvSchema, process.env)
const aws = createAwsClients(cfg)

export const handler = createValidateCarHandler(
  {
    maxCarBytes: cfg.MAX_CAR_BYTES,
    maxDagBlocks: cfg.MAX_DAG_BLOCKS,
    maxAttempts: cfg.MAX_ATTEMPTS,
    retryDelaySeconds: cfg.RETRY_BASE_DELAY_SECONDS,
  },
  {
    pins: createDynamoPinStore({ client: aws.dynamodb, tableName: cfg.PIN_TABLE }),
    temp: createS3ObjectStore({
      client: aws.s3,
      bucket: cfg.TEMP_BUCKET,
      readPartBytes: cfg.VALIDATOR_READ_PART_BYTES,
      readConcurrency: cfg.VALIDATOR_READ_CONCURRENCY,
    }),
    destination: createS3ObjectStore({ client: aws.s3, bucket: cfg.DESTINATION_BUCKET }),
    queue: createSqsPinQueue({ client: aws.sqs, queueUrl: cfg.PIN_QUEUE_URL }),
    events: createSnsEventSink({ client: aws.sns, topicArn: cfg.CAR_STORED_TOPIC_ARN }),
    clock: { now: () => Date.now() },
    log: createLogger('pickup-validate-car'),
    metrics: createEmfMetrics({ namespace: cfg.METRICS_NAMESPACE }),
  },
)
