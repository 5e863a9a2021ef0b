/**
 * Stage policy, in one place: what a stage keeps when it is removed, how it protects its data, and how its
 * resources are tagged for cost allocation.
 *
 * - Persistent stages (`production`, `staging`) keep their data: tables, buckets and log groups are
 *   retained on removal and on replacement, but not when their own creation rolls back
 *   (`RetainExceptOnCreate`): a first deploy that fails leaves nothing behind that would make the retry fail
 *   with "already exists". Tables have deletion protection, logs are kept longer.
 * - Every other stage (`pr-<number>` preview stages, personal stages) is disposable: `sst remove` destroys
 *   everything, buckets are emptied first.
 * - Every taggable resource carries `project=pickup` and `stage=<stage>`.
 */
import {
  Aspects,
  CfnDeletionPolicy,
  CfnResource,
  type IAspect,
  RemovalPolicies,
  RemovalPolicy,
  type Stack,
  Tags,
} from 'aws-cdk-lib'
import { RetentionDays } from 'aws-cdk-lib/aws-logs'
import type { IConstruct } from 'constructs'

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
    dataRemovalPolicy: persistent ? RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE : RemovalPolicy.DESTROY,
    autoDeleteObjects: !persistent,
    tableDeletionProtection: persistent,
    logRetention: persistent ? RetentionDays.THREE_MONTHS : RetentionDays.ONE_WEEK,
    logRetentionName: persistent ? 'three_months' : 'one_week',
  }
}

/**
 * Every resource that would be retained (`Retain`, e.g. CDK's default for log groups) is retained except
 * when its creation rolls back, so a failed first deploy can be retried.
 */
class RetainExceptOnCreate implements IAspect {
  visit(node: IConstruct): void {
    if (node instanceof CfnResource && node.cfnOptions.deletionPolicy === CfnDeletionPolicy.RETAIN) {
      node.cfnOptions.deletionPolicy = CfnDeletionPolicy.RETAIN_EXCEPT_ON_CREATE
    }
  }
}

/**
 * Tags every resource of the stack. On disposable stages every resource (whatever its own default, e.g. log
 * groups and tables default to RETAIN) is destroyed on removal; on persistent stages, whatever is retained is
 * retained except on a rolled-back create.
 */
export function applyStagePolicy(stack: Stack, policy: StagePolicy): void {
  Tags.of(stack).add('project', PROJECT_TAG)
  Tags.of(stack).add('stage', policy.stage)
  if (!policy.persistent) RemovalPolicies.of(stack).destroy()
  else Aspects.of(stack).add(new RetainExceptOnCreate())
}
