/**
 * The AWS SDK's own environment variables that point a deployed component (a Lambda bundle, the worker's
 * process, an entry point imported as deployed) at local mode's embedded services.
 */
export function localAwsEnv(services: {
  endpoints: { region: string; dynamodb: string; sqs: string; s3: string; sns?: string }
  credentials: { accessKeyId: string; secretAccessKey: string }
}): Record<string, string> {
  const { endpoints: e, credentials } = services
  return {
    AWS_REGION: e.region,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_ENDPOINT_URL_DYNAMODB: e.dynamodb,
    AWS_ENDPOINT_URL_SQS: e.sqs,
    AWS_ENDPOINT_URL_S3: e.s3,
    ...(e.sns === undefined ? {} : { AWS_ENDPOINT_URL_SNS: e.sns }),
    S3_FORCE_PATH_STYLE: 'true',
  }
}

/** The worker's (`pickup/main.ts`) resources at local mode's embedded services, as the stack passes them. */
export function localWorkerEnv(services: {
  endpoints: { region: string; dynamodb: string; sqs: string; s3: string }
  credentials: { accessKeyId: string; secretAccessKey: string }
  names: { pinsTable: string; workersTable: string; pinQueueUrl: string; tempBucket: string }
}): Record<string, string> {
  const { names } = services
  return {
    ...localAwsEnv(services),
    PIN_TABLE: names.pinsTable,
    WORKER_TABLE: names.workersTable,
    PIN_QUEUE_URL: names.pinQueueUrl,
    TEMP_BUCKET: names.tempBucket,
  }
}
