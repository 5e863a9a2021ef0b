/**
 * Lambda handler for ObjectCreated events of the temporary bucket: validates each CAR and promotes it.
 * Throws when a record could not be handled, so the invocation is retried (S3 invokes asynchronously);
 * promoteCar is idempotent, so redelivered records are harmless.
 */
import type { S3Event } from 'aws-lambda'
import { type PromoteContext, type PromoteOptions, promoteCar } from '../core/promote-car.ts'

export function createValidateCarHandler(opts: PromoteOptions, ctx: PromoteContext) {
  return async (event: S3Event): Promise<void> => {
    const failures: unknown[] = []
    for (const record of event.Records) {
      // S3 event keys are URL-encoded with '+' for spaces.
      const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '))
      try {
        await promoteCar(key, opts, ctx)
      } catch (err) {
        ctx.log.error({ key, err }, 'validation crashed')
        failures.push(err)
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `${failures.length} CAR(s) not handled`)
  }
}
