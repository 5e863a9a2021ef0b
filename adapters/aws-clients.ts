/**
 * AWS SDK clients for the deployed system. Endpoints come from the SDK's own environment variables
 * (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL_SQS`, `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL_SNS`), so the
 * same entry points run against AWS and against local mode's emulators.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { S3Client } from '@aws-sdk/client-s3'
import { SNSClient } from '@aws-sdk/client-sns'
import { SQSClient } from '@aws-sdk/client-sqs'
import type { ResourcesConfig } from '../core/config-resources.ts'

/**
 * S3 checksums only where S3 requires them. pickup verifies every byte end to end by content: the validator
 * hashes every block against its CID and the whole CAR for the CAR's own CID, so the SDK's default CRC32 of
 * each part (a third pass over the data, on the worker's CPU) buys nothing.
 */
export const S3_CHECKSUMS = {
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
} as const

/**
 * Takes the SDK's logger middleware out of a client. It runs on every call even with no logger configured:
 * it copies the command's input and output with their sensitive fields filtered (a walk of each shape's
 * schema, `schemaLogFilter`) and hands them to a logger that discards them. pickup configures no SDK logger
 * (its own log lines name what it does), so the middleware only costs CPU (README "Benchmarks", posting).
 * The deployed system's clients (below) and local mode's (local/services.ts) go through here.
 */
export function withoutSdkLogger<C extends { middlewareStack: { remove(name: string): boolean } }>(
  client: C,
): C {
  client.middlewareStack.remove('loggerMiddleware')
  return client
}

export interface AwsClients {
  dynamodb: DynamoDBClient
  sqs: SQSClient
  s3: S3Client
  sns: SNSClient
}

export function createAwsClients(
  cfg: Pick<ResourcesConfig, 'AWS_REGION' | 'S3_FORCE_PATH_STYLE'>,
): AwsClients {
  const region = cfg.AWS_REGION
  return {
    dynamodb: withoutSdkLogger(new DynamoDBClient({ region })),
    sqs: withoutSdkLogger(new SQSClient({ region })),
    s3: withoutSdkLogger(new S3Client({ region, forcePathStyle: cfg.S3_FORCE_PATH_STYLE, ...S3_CHECKSUMS })),
    sns: withoutSdkLogger(new SNSClient({ region })),
  }
}
