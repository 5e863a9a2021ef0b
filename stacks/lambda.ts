/**
 * pickup's Lambda functions: SST Functions (SST bundles them with esbuild, ESM, as test/stacks/bundle.test.ts
 * does) on Node 22 and arm64, each with its own log group and only the permissions it is given. No SST
 * `bind` for data resources: binding grants `*` actions; every statement here names its actions.
 */
import type { Duration } from 'aws-cdk-lib'
import type { PolicyStatement } from 'aws-cdk-lib/aws-iam'
import * as logs from 'aws-cdk-lib/aws-logs'
import { type FunctionProps, Function as SstFunction, type Stack } from 'sst/constructs'
import { metricNamespace } from '../core/metrics.ts'
import type { DeployConfig } from './deploy-config.ts'
import { BASIC_EXECUTION_ROLE, NODE_22_RUNTIME, suppress } from './nag.ts'
import type { StagePolicy } from './stage.ts'

export interface PickupFunctionProps {
  /** `<file without extension>.<export>`, relative to the project root. */
  handler: string
  description: string
  memorySize: number
  timeout: Duration
  environment: Record<string, string>
  permissions: PolicyStatement[]
  bind?: FunctionProps['bind']
  /** Concurrency reserved for (and capping) the function; unset: the account's shared pool. */
  reservedConcurrentExecutions?: number
  /** Size of /tmp in MB (512 to 10,240); unset: Lambda's 512. */
  diskSizeMb?: number
}

export function pickupFunction(
  stack: Stack,
  id: string,
  props: PickupFunctionProps,
  cfg: DeployConfig,
  policy: StagePolicy,
): SstFunction {
  const logGroup = new logs.LogGroup(stack, `${id}Logs`, { retention: policy.logRetention })
  const fn = new SstFunction(stack, id, {
    handler: props.handler,
    description: props.description,
    runtime: 'nodejs22.x',
    architecture: 'arm_64',
    memorySize: props.memorySize,
    timeout: props.timeout.toSeconds(),
    tracing: 'disabled',
    nodejs: { format: 'esm' },
    logGroup,
    // Every function writes its metrics (EMF lines) under the stage's namespace.
    environment: {
      LOG_LEVEL: cfg.LOG_LEVEL,
      METRICS_NAMESPACE: metricNamespace(stack.stage),
      ...props.environment,
    },
    permissions: props.permissions,
    ...(props.bind ? { bind: props.bind } : {}),
    ...(props.diskSizeMb === undefined ? {} : { diskSize: props.diskSizeMb }),
    ...(props.reservedConcurrentExecutions === undefined
      ? {}
      : { reservedConcurrentExecutions: props.reservedConcurrentExecutions }),
  })
  suppress(fn, [BASIC_EXECUTION_ROLE, NODE_22_RUNTIME])
  return fn
}
