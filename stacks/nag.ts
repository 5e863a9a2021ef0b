/**
 * cdk-nag (AwsSolutions) suppressions. Each one names the rule, carries the reason it does not apply, and,
 * for IAM wildcard findings, the exact finding it covers (`appliesTo`), so a new wildcard is not silently
 * accepted. test/stacks/nag.test.ts runs the checks over every stack and fails on any unsuppressed error.
 */
import type { Stack } from 'aws-cdk-lib'
import { type NagPackSuppression, NagSuppressions } from 'cdk-nag'
import type { IConstruct } from 'constructs'

export type Suppression = NagPackSuppression
export type AppliesTo = NonNullable<NagPackSuppression['appliesTo']>

export function suppress(construct: IConstruct, suppressions: Suppression[], applyToChildren = true): void {
  NagSuppressions.addResourceSuppressions(construct, suppressions, applyToChildren)
}

/**
 * An `appliesTo` regex for a wildcard under a resource's ARN, as cdk-nag renders it: `<Id.Arn>` in the same
 * stack, `<stack>:ExportsOutputFnGetAttIdArn…` across stacks. `logicalIdPrefix` is the construct id whose
 * logical id starts the reference (e.g. `TempBucket` for `TempBucket0E5E5C6E`); `suffix` follows the ARN.
 */
export function arnWildcard(logicalIdPrefix: string, suffix: string): { regex: string } {
  const id = `${logicalIdPrefix}[0-9A-F]{8}`
  const escaped = suffix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')
  return { regex: `/^Resource::(<${id}\\.Arn>|[\\w-]+:ExportsOutputFnGetAtt${id}Arn[0-9A-F]{8})${escaped}$/` }
}

/** The Lambda execution role's managed policy, which only allows writing the function's own logs. */
export const BASIC_EXECUTION_ROLE: Suppression = {
  id: 'AwsSolutions-IAM4',
  reason: 'AWSLambdaBasicExecutionRole only allows writing CloudWatch Logs, the function needs exactly that.',
  appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole'],
}

/** Lambda runtime: the project (and its tests) target Node 22 everywhere. */
export const NODE_22_RUNTIME: Suppression = {
  id: 'AwsSolutions-L1',
  reason:
    'Node.js 22 is the runtime pickup is built and tested for (package.json engines, the worker image).',
}

/**
 * Resources the frameworks add to every stack that uses them: SST's custom resource handler (one per SST
 * stack), CDK's S3 auto-delete and bucket-notification handlers. Their code and permissions are not ours.
 */
export function suppressFrameworkResources(stack: Stack): void {
  const paths = [
    'CustomResourceHandler',
    'Custom::S3AutoDeleteObjectsCustomResourceProvider',
    'BucketNotificationsHandler050a0587b7544547bf325f094a3db834',
    // CDK's AwsCustomResource provider (the ECS service-linked roles, stacks/worker.ts).
    'AWS679f53fac002430cb0da5b7982bd2287',
  ]
  for (const path of paths) {
    const construct = stack.node.tryFindChild(path)
    if (!construct) continue
    suppress(construct, [
      { id: 'AwsSolutions-IAM4', reason: `${path} is framework code; its role only writes its own logs.` },
      {
        id: 'AwsSolutions-IAM5',
        reason: `${path} is framework code (SST or CDK) whose permissions are scoped by the framework.`,
      },
      {
        id: 'AwsSolutions-L1',
        reason: `${path} is framework code (SST or CDK); its runtime is theirs to pick.`,
      },
    ])
  }
}
