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
    dynamodb: new DynamoDBClient({ region }),
    sqs: new SQSClient({ region }),
    s3: new S3Client({ region, forcePathStyle: cfg.S3_FORCE_PATH_STYLE, ...S3_CHECKSUMS }),
    sns: new SNSClient({ region }),
  }
}
