/** Names of the deployed resources, as the stack passes them to every function and task. */
import { z } from 'zod'

export const resourcesSchema = z.object({
  AWS_REGION: z.string().default('us-east-1'),
  PIN_TABLE: z.string().min(1),
  WORKER_TABLE: z.string().min(1),
  PIN_QUEUE_URL: z.string().url(),
  DEAD_LETTER_QUEUE_URL: z.string().url().optional(),
  TEMP_BUCKET: z.string().min(1),
  DESTINATION_BUCKET: z.string().min(1),
  CAR_STORED_TOPIC_ARN: z.string().min(1).optional(),
  /** CloudWatch namespace of the metrics (EMF lines) a component writes; the stacks set `pickup/<stage>`. */
  METRICS_NAMESPACE: z.string().min(1).default('pickup/local'),
  /** Path-style S3 URLs: needed for local emulators, never for AWS. */
  S3_FORCE_PATH_STYLE: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
})

export type ResourcesConfig = z.infer<typeof resourcesSchema>
