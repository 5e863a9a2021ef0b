/**
 * The S3 buckets, for the CDK stack and the local harness alike.
 */

export interface BucketDefinition {
  /** The bucket is named `<prefix>-<nameSuffix>` (see `bucketName`); S3 names are lowercase. */
  readonly nameSuffix: string
  /** Objects older than this are expired by a lifecycle rule (AWS only). */
  readonly expireAfterDays?: number
}

/**
 * Where workers upload each attempt's CAR (`<cid>/<attemptId>.car`); its ObjectCreated events trigger the
 * validator. Objects are temporary: the validator copies good CARs out and deletes them.
 */
export const tempBucket = {
  nameSuffix: 'temp',
  // A CAR waits here minutes, for the validator; what is left after a day was abandoned.
  expireAfterDays: 1,
} as const satisfies BucketDefinition

/** Where validated CARs live for good (`<carCid>/<carCid>.car`). */
export const destinationBucket = {
  nameSuffix: 'cars',
} as const satisfies BucketDefinition

export const buckets = { temp: tempBucket, destination: destinationBucket } as const

export function bucketName(prefix: string, def: BucketDefinition): string {
  return `${prefix}-${def.nameSuffix}`.toLowerCase()
}
