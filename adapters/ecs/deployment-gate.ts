/**
 * Lets ECS deployments finish: a worker whose task is no longer in its service's primary deployment stops
 * taking new jobs and finishes the ones it has.
 *
 * A busy worker protects its task from scale-in (./task-protection.ts), and ECS stops no protected task, for
 * scaling in or for a deployment. Under a steady backlog an old task would keep taking jobs, and renewing its
 * protection, for as long as the backlog lasts: the deployment would wait for hours and CloudFormation would
 * roll it back. With this gate around the worker's queue, an old task takes nothing more once a newer task
 * definition is primary; its running jobs finish, the worker goes idle, protection is lifted, and ECS stops it.
 *
 * How a task knows: the task metadata endpoint (`$ECS_CONTAINER_METADATA_URI_V4/task`, in every container)
 * gives its cluster and task definition (family and revision); `ecs:DescribeServices` on its own service
 * (ECS_SERVICE_NAME, set by the stack) gives the PRIMARY deployment's task definition. They differ once a
 * deployment of a new revision has started. A deployment rolled back makes the old revision primary again, and
 * intake resumes. Checked at most every `checkIntervalMs` (one DescribeServices call a minute per task by
 * default), on the next receive. When a check fails the last answer stands (at first: take jobs), so an ECS
 * outage or a missing permission never stops the pool; the failure is logged.
 *
 * A deployment that keeps the task definition (a service setting only) is not seen: old tasks then finish
 * as before, when the backlog lets them go idle or their protection lapses.
 */
import { DescribeServicesCommand, type ECSClient } from '@aws-sdk/client-ecs'
import { abortableSleep } from '../../core/abort.ts'
import type { Clock, JobQueue, Logger } from '../../core/ports.ts'

/** What the gate needs of ECS: the task definition of the service's PRIMARY deployment. */
export type PrimaryTaskDefinition = (
  cluster: string,
  service: string,
  signal: AbortSignal,
) => Promise<string | undefined>

/** `ecs:DescribeServices` through the AWS SDK. */
export function describePrimaryTaskDefinition(client: ECSClient): PrimaryTaskDefinition {
  return async (cluster, service, signal) => {
    const res = await client.send(new DescribeServicesCommand({ cluster, services: [service] }), {
      abortSignal: signal,
    })
    const failure = res.failures?.[0]
    if (failure) throw new EcsServiceNotFoundError(service, `${failure.reason ?? ''} ${failure.detail ?? ''}`)
    return res.services?.[0]?.deployments?.find((d) => d.status === 'PRIMARY')?.taskDefinition
  }
}

export class EcsServiceNotFoundError extends Error {
  override readonly name = 'EcsServiceNotFoundError'
  constructor(service: string, why: string) {
    super(`ECS service ${service} not described: ${why.trim()}`)
  }
}

export class TaskMetadataError extends Error {
  override readonly name = 'TaskMetadataError'
}

export interface DeploymentGateOptions {
  /** `ECS_CONTAINER_METADATA_URI_V4`, set by ECS in every container. */
  metadataUri: string
  /** The service this task belongs to (ECS_SERVICE_NAME). */
  serviceName: string
  primaryTaskDefinition: PrimaryTaskDefinition
  fetch?: typeof globalThis.fetch
  log: Logger
  clock?: Clock
  /** Shortest time between two checks. Default 60 s. */
  checkIntervalMs?: number
  /** Each metadata or ECS call gives up after this. Default 10 s. */
  requestTimeoutMs?: number
}

export interface DeploymentGate {
  /** The queue the worker should receive from: no job comes out of it while the task is outdated. */
  gate(queue: JobQueue): JobQueue
  /** Checks now (whatever the interval); resolves whether the task is outdated (draining). */
  check(): Promise<boolean>
  /** The last answer: true once the task is no longer in its service's primary deployment. */
  readonly draining: boolean
  stop(): void
}

export function createDeploymentGate(opts: DeploymentGateOptions): DeploymentGate {
  const fetch = opts.fetch ?? globalThis.fetch
  const clock = opts.clock ?? { now: () => Date.now() }
  const intervalMs = opts.checkIntervalMs ?? 60_000
  const timeoutMs = opts.requestTimeoutMs ?? 10_000
  const log = opts.log.child({ component: 'deployment-gate' })
  const stopped = new AbortController()

  let task: { cluster: string; taskDefinition: string } | undefined
  let draining = false
  let lastCheck = Number.NEGATIVE_INFINITY
  let checking: Promise<boolean> | undefined

  async function readTask(signal: AbortSignal): Promise<{ cluster: string; taskDefinition: string }> {
    if (task) return task
    const res = await fetch(`${opts.metadataUri.replace(/\/+$/, '')}/task`, { signal })
    if (!res.ok) throw new TaskMetadataError(`task metadata: HTTP ${res.status}`)
    const body = (await res.json()) as { Cluster?: string; Family?: string; Revision?: string }
    if (!body.Cluster || !body.Family || !body.Revision) {
      throw new TaskMetadataError('task metadata without Cluster, Family or Revision')
    }
    task = { cluster: body.Cluster, taskDefinition: `${body.Family}:${body.Revision}` }
    return task
  }

  async function runCheck(): Promise<boolean> {
    lastCheck = clock.now()
    const signal = AbortSignal.any([stopped.signal, AbortSignal.timeout(timeoutMs)])
    try {
      const own = await readTask(signal)
      const primary = await opts.primaryTaskDefinition(own.cluster, opts.serviceName, signal)
      // `arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>`
      const outdated = primary !== undefined && !primary.endsWith(`/${own.taskDefinition}`)
      if (outdated !== draining) {
        if (outdated) {
          log.info(
            { taskDefinition: own.taskDefinition, primary },
            'task no longer in the primary deployment: taking no new jobs, finishing those held',
          )
        } else {
          log.info(
            { taskDefinition: own.taskDefinition },
            'task in the primary deployment again: taking jobs',
          )
        }
      }
      draining = outdated
    } catch (err) {
      if (!stopped.signal.aborted) {
        log.warn(
          { err: err instanceof Error ? `${err.name}: ${err.message}` : String(err), draining },
          'deployment check failed: keeping the last answer',
        )
      }
    }
    return draining
  }

  function check(): Promise<boolean> {
    checking ??= runCheck().finally(() => {
      checking = undefined
    })
    return checking
  }

  return {
    gate(queue) {
      return {
        ...queue,
        async receive(receiveOpts) {
          if (clock.now() - lastCheck >= intervalMs) await check()
          if (draining && !stopped.signal.aborted) {
            // As a long poll that found nothing: the worker asks again after it, and the check runs again.
            await abortableSleep(receiveOpts.waitSeconds * 1000, receiveOpts.signal)
            return []
          }
          return queue.receive(receiveOpts)
        },
      }
    },
    check,
    get draining() {
      return draining
    },
    stop() {
      stopped.abort()
    },
  }
}
