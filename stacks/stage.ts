/**
 * Stage policy, in one place: what a stage keeps when it is removed, how it protects its data, and how its
 * resources are tagged for cost allocation.
 *
 * - Persistent stages (`production`, `staging`) keep their data: tables and the destination bucket are
 *   retained on removal and on replacement, tables have deletion protection, logs are kept longer.
 * - Every other stage (`pr-<number>` preview stages, personal stages) is disposable: `sst remove` destroys
 *   everything, buckets are emptied first.
 * - Every taggable resource carries `project=pickup` and `stage=<stage>`.
 */
import { RemovalPolicies, RemovalPolicy, type Stack, Tags } from 'aws-cdk-lib'
import { RetentionDays } from 'aws-cdk-lib/aws-logs'

export const PROJECT_TAG = 'pickup'
export const PERSISTENT_STAGES: readonly string[] = ['production', 'staging']

export interface StagePolicy {
  readonly stage: string
  /** production or staging: data outlives the stack. */
  readonly persistent: boolean
  /** For data resources (tables, the destination bucket). */
  readonly dataRemovalPolicy: RemovalPolicy
  /** Created buckets are emptied on removal (only where they are destroyed). */
  readonly autoDeleteObjects: boolean
  readonly tableDeletionProtection: boolean
  readonly logRetention: RetentionDays
  /** The same, as SST constructs spell it. */
  readonly logRetentionName: 'three_months' | 'one_week'
}

/** Stage names end up in bucket names (`<stage>-pickup-<account>-<region>-temp`): short, lowercase. */
const STAGE_NAME = /^[a-z][a-z0-9-]{0,19}$/

export function stagePolicy(stage: string): StagePolicy {
  if (!STAGE_NAME.test(stage) || stage.endsWith('-')) {
    throw new Error(
      `stage "${stage}": use 1-20 lowercase letters, digits and hyphens, starting with a letter (e.g. pr-123)`,
    )
  }
  const persistent = PERSISTENT_STAGES.includes(stage)
  return {
    stage,
    persistent,
    dataRemovalPolicy: persistent ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    autoDeleteObjects: !persistent,
    tableDeletionProtection: persistent,
    logRetention: persistent ? RetentionDays.THREE_MONTHS : RetentionDays.ONE_WEEK,
    logRetentionName: persistent ? 'three_months' : 'one_week',
  }
}

/** Preview stages are named after their pull request: `pr-<number>`. */
export function isPreviewStage(stage: string): boolean {
  return /^pr-\d+$/.test(stage)
}

/**
 * Tags every resource of the stack, and on disposable stages makes every resource (whatever its own default,
 * e.g. log groups and tables default to RETAIN) destroyed on removal.
 */
export function applyStagePolicy(stack: Stack, policy: StagePolicy): void {
  Tags.of(stack).add('project', PROJECT_TAG)
  Tags.of(stack).add('stage', policy.stage)
  if (!policy.persistent) RemovalPolicies.of(stack).destroy()
}
