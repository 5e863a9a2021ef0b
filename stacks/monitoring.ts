/**
 * Alarms and the dashboard. Every alarm notifies the stage's alarm topic (and ALARM_EMAIL, if set), when it
 * fires and when it clears; the README's Alarms table says what each one means and what to do.
 *
 * What users feel comes first: the metrics the validator, the workers and the API write as EMF lines
 * (core/metrics.ts) give time to pinned, pins and bytes stored, failures by reason and jobs looking vs
 * transferring, and three alarms watch them (slow small pins, a failure rate, nothing stored while jobs
 * arrive), each threshold a deploy-time setting (stacks/deploy-config.ts). Infrastructure follows.
 */
import { ArnFormat, Duration } from 'aws-cdk-lib'
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch'
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as sns from 'aws-cdk-lib/aws-sns'
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions'
import { type StackContext, use } from 'sst/constructs'
import { collectionJobsQueue } from '../adapters/sqs/queues.ts'
import { METRICS, type MetricDef, metricNamespace } from '../core/metrics.ts'
import { ApiStack } from './api.ts'
import { CollectionsStack } from './collections.ts'
import { queueAgeAlarmSeconds, resourcePrefix, useDeployConfig } from './deploy-config.ts'
import { suppress, suppressFrameworkResources } from './nag.ts'
import { PipelineStack } from './pipeline.ts'
import { applyStagePolicy, stagePolicy } from './stage.ts'
import { VALIDATOR_BUDGET_SHARE, VALIDATOR_TIMEOUT_SECONDS } from './validator-sizing.ts'
import { WorkerStack } from './worker.ts'

export interface MonitoringResources {
  alarmTopic: sns.Topic
  alarms: Record<string, cloudwatch.Alarm>
  dashboard: cloudwatch.Dashboard
}

export function MonitoringStack({ app, stack }: StackContext): MonitoringResources {
  const cfg = useDeployConfig(app)
  const policy = stagePolicy(app.stage)
  applyStagePolicy(stack, policy)
  const pipeline = use(PipelineStack)
  const worker = use(WorkerStack)
  const { api, handler: httpHandler } = use(ApiStack)
  const collections = use(CollectionsStack)
  const prefix = resourcePrefix(app)

  // Not named: operators subscribe through its ARN (the AlarmTopicArn output) or ALARM_EMAIL.
  const alarmTopic = new sns.Topic(stack, 'AlarmTopic', { enforceSSL: true })
  // Without this, CloudWatch may not publish to the topic and no alarm reaches anyone. Only this account's
  // alarms may.
  alarmTopic.addToResourcePolicy(
    new iam.PolicyStatement({
      sid: 'CloudWatchAlarmsPublish',
      principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
      actions: ['sns:Publish'],
      resources: [alarmTopic.topicArn],
      conditions: {
        ArnLike: {
          'aws:SourceArn': stack.formatArn({
            service: 'cloudwatch',
            resource: 'alarm',
            resourceName: '*',
            arnFormat: ArnFormat.COLON_RESOURCE_NAME,
          }),
        },
        StringEquals: { 'aws:SourceAccount': stack.account },
      },
    }),
  )
  suppress(alarmTopic, [
    {
      id: 'AwsSolutions-SNS2',
      reason: 'Alarm notifications name alarms and thresholds only; nothing to hide.',
    },
  ])
  if (cfg.ALARM_EMAIL) alarmTopic.addSubscription(new EmailSubscription(cfg.ALARM_EMAIL))
  const notify = new SnsAction(alarmTopic)

  const fiveMinutes = Duration.minutes(5)
  const alarm = (
    id: string,
    props: Omit<cloudwatch.AlarmProps, 'alarmName' | 'actionsEnabled'> & {
      name: string
    },
  ) => {
    const { name, ...rest } = props
    const a = new cloudwatch.Alarm(stack, id, {
      alarmName: `${prefix}-${name}`,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...rest,
    })
    a.addAlarmAction(notify)
    a.addOkAction(notify)
    return a
  }

  // ---- what users feel: the metrics of core/metrics.ts
  const namespace = metricNamespace(app.stage)
  const pickupMetric = (
    def: MetricDef,
    props: { statistic: string; period?: Duration; label?: string; dimensions?: Record<string, string> },
  ) =>
    new cloudwatch.Metric({
      namespace,
      metricName: def.name,
      statistic: props.statistic,
      period: props.period ?? fiveMinutes,
      ...(props.label ? { label: props.label } : {}),
      ...(props.dimensions ? { dimensionsMap: props.dimensions } : {}),
    })
  /** One series per value of a metric's dimension (failures by reason...), for graphs only. */
  const perDimension = (def: MetricDef, dimensions: string[], statistic: string, period: Duration) =>
    new cloudwatch.MathExpression({
      expression: `SEARCH('{${namespace},${dimensions.join(',')}} MetricName="${def.name}"', '${statistic}', ${period.toSeconds()})`,
      usingMetrics: {},
      period,
      label: '',
    })
  const quarterHour = Duration.minutes(15)
  const userAlarms = {
    slowSmallPins: alarm('SlowSmallPinsAlarm', {
      name: 'slow-small-pins',
      alarmDescription:
        `The p90 time from request to pinned of small content (CARs up to 10 MiB) was over ` +
        `${cfg.ALARM_TIME_TO_PIN_SMALL_P90_SECONDS} s for 30 minutes (ALARM_TIME_TO_PIN_SMALL_P90_SECONDS): ` +
        'workers are behind (jobs waiting for transfer slots at WORKER_MAX_TASKS?) or retrying; see the ' +
        'dashboard: failures by reason, searching vs transferring.',
      metric: pickupMetric(METRICS.timeToPinned, {
        statistic: 'p90',
        period: quarterHour,
        dimensions: { SizeClass: 'small' },
      }),
      threshold: cfg.ALARM_TIME_TO_PIN_SMALL_P90_SECONDS * 1000,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 2,
    }),
    failureRate: alarm('FailureRateAlarm', {
      name: 'job-failure-rate',
      alarmDescription:
        `Over ${cfg.ALARM_FAILURE_RATE_PERCENT}% of fetch attempts failed for 30 minutes ` +
        `(ALARM_FAILURE_RATE_PERCENT; counted once ${cfg.ALARM_FAILURE_MIN_JOBS} attempts end in 15 minutes). ` +
        'The dashboard shows failures by reason: FETCH_STALLED alone is content nobody serves (or the ' +
        "workers' network); anything else points at the workers.",
      metric: new cloudwatch.MathExpression({
        expression:
          `IF(FILL(failed, 0) + FILL(finished, 0) >= ${cfg.ALARM_FAILURE_MIN_JOBS}, ` +
          '100 * FILL(failed, 0) / (FILL(failed, 0) + FILL(finished, 0)), 0)',
        usingMetrics: {
          failed: pickupMetric(METRICS.jobsFailed, { statistic: 'Sum', period: quarterHour }),
          finished: pickupMetric(METRICS.jobsFinished, { statistic: 'Sum', period: quarterHour }),
        },
        period: quarterHour,
        label: 'failed attempts (%)',
      }),
      threshold: cfg.ALARM_FAILURE_RATE_PERCENT,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 2,
    }),
    nothingStored: alarm('NothingStoredAlarm', {
      name: 'nothing-stored',
      alarmDescription:
        `Pin jobs were sent to the pin queue in the last ${cfg.ALARM_NOTHING_STORED_MINUTES} minutes and no pin ` +
        'was stored (ALARM_NOTHING_STORED_MINUTES): the pipeline has stopped (workers cannot fetch or upload, ' +
        'or the validator cannot promote) whatever the queue depths say.',
      metric: new cloudwatch.MathExpression({
        expression: 'IF(FILL(sent, 0) >= 1 AND FILL(stored, 0) == 0, 1, 0)',
        usingMetrics: {
          sent: pipeline.queue.metricNumberOfMessagesSent({
            statistic: 'Sum',
            period: Duration.minutes(cfg.ALARM_NOTHING_STORED_MINUTES),
          }),
          stored: pickupMetric(METRICS.pinsStored, {
            statistic: 'Sum',
            period: Duration.minutes(cfg.ALARM_NOTHING_STORED_MINUTES),
          }),
        },
        period: Duration.minutes(cfg.ALARM_NOTHING_STORED_MINUTES),
        label: 'jobs sent, nothing stored',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
  }

  const alarms = {
    ...userAlarms,
    deadLetters: alarm('DeadLettersAlarm', {
      name: 'dead-letters-not-handled',
      alarmDescription:
        'The pin dead-letter queue has not been empty for 15 minutes: its consumer is failing to mark dead ' +
        "jobs' pins failed and forward them to the failed-jobs queue (see the DeadLetterConsumer logs).",
      metric: pipeline.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: fiveMinutes,
        statistic: 'Maximum',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 3,
    }),
    // On what arrives, not on depth: a depth alarm stays in ALARM while jobs wait (days) and notifies once;
    // every new failed job must be heard of.
    failedJobs: alarm('FailedJobsAlarm', {
      name: 'failed-jobs-arrived',
      alarmDescription:
        'Jobs given up on after MAX_ATTEMPTS receives (their pins are failed) arrived in the failed-jobs queue: ' +
        'see why with `pickup dlq list`, then redrive or purge them. They expire after 14 days.',
      metric: pipeline.failedJobs.metricNumberOfMessagesSent({ period: fiveMinutes, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
    oldestJob: alarm('OldestJobAlarm', {
      name: 'pin-queue-oldest-job',
      alarmDescription:
        `A pin job has waited over ${queueAgeAlarmSeconds(cfg)} s (a full fetch plus an hour): workers are not ` +
        'keeping up (at WORKER_MAX_TASKS?) or are stuck.',
      metric: pipeline.queue.metricApproximateAgeOfOldestMessage({
        period: fiveMinutes,
        statistic: 'Maximum',
      }),
      threshold: queueAgeAlarmSeconds(cfg),
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 2,
    }),
    workerErrors: alarm('WorkerErrorsAlarm', {
      name: 'worker-errors',
      alarmDescription: `The workers logged ${cfg.ALARM_WORKER_ERRORS} or more lines at level error or above in 5 minutes.`,
      metric: worker.workerErrors,
      threshold: cfg.ALARM_WORKER_ERRORS,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
    validatorErrors: alarm('ValidatorErrorsAlarm', {
      name: 'validator-errors',
      alarmDescription:
        'The validator failed on a CAR (crashed or timed out; invalid CARs are not errors). S3 retries twice, ' +
        'then the event lands in the validator failure queue.',
      metric: pipeline.validator.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
    validatorNearTimeout: alarm('ValidatorDurationAlarm', {
      name: 'validator-near-timeout',
      alarmDescription:
        `A validation took over ${VALIDATOR_BUDGET_SHARE * 100}% of the 15-minute limit: the sizing in ` +
        'stacks/validator-sizing.ts no longer holds for the CARs seen.',
      metric: pipeline.validator.metricDuration({ period: fiveMinutes, statistic: 'Maximum' }),
      threshold: VALIDATOR_TIMEOUT_SECONDS * VALIDATOR_BUDGET_SHARE * 1000,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
    }),
    sweepErrors: alarm('SweepErrorsAlarm', {
      name: 'sweep-errors',
      alarmDescription:
        'The sweep of unreferenced content failed (see the SweepUnreferenced logs). Unwanted CARs are kept ' +
        'longer until a run succeeds; nothing is lost.',
      metric: pipeline.sweeper.metricErrors({ period: Duration.hours(3), statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
    reconcileErrors: alarm('ReconcileErrorsAlarm', {
      name: 'reconcile-errors',
      alarmDescription:
        'The reconciler of stuck pins failed in two consecutive runs (see the Reconcile logs). Pins whose job ' +
        'was lost stay queued or pinning until a run succeeds; nothing is lost.',
      metric: pipeline.reconciler.metricErrors({
        period: Duration.minutes(Math.max(5, cfg.RECONCILE_INTERVAL_MINUTES)),
        statistic: 'Sum',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
    }),
    validatorEventsLost: alarm('ValidatorFailuresAlarm', {
      name: 'validator-events-failed',
      alarmDescription:
        'S3 events the validator failed on three times arrived in the validator failure queue; their pins ' +
        'stay pinning until the events are replayed.',
      metric: pipeline.validatorFailures.metricNumberOfMessagesSent({
        period: fiveMinutes,
        statistic: 'Sum',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
    api5xx: alarm('Api5xxAlarm', {
      name: 'api-5xx',
      alarmDescription: `The HTTP API answered ${cfg.ALARM_API_5XX} or more requests with a 5xx in 5 minutes (see the HttpApi logs).`,
      metric: new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: '5xx',
        dimensionsMap: { ApiId: api.httpApiId },
        statistic: 'Sum',
        period: fiveMinutes,
      }),
      threshold: cfg.ALARM_API_5XX,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
    httpErrors: alarm('HttpFunctionErrorsAlarm', {
      name: 'http-function-errors',
      alarmDescription:
        'The HTTP API function failed (crashed, timed out, or could not start: an unset CLUSTER_BASIC_AUTH_TOKEN ' +
        'or CHAIN_RPC secret fails every request at cold start). See the HttpApi logs.',
      metric: httpHandler.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
    // NFT collections. Nothing consumes their dead-letter queue: a dead job's collection stays enumerating or
    // archiving until an operator looks (`pickup dlq list --collections`; the alarm stays in ALARM until then).
    collectionDeadLetters: alarm('CollectionDeadLettersAlarm', {
      name: 'collection-jobs-dead',
      alarmDescription:
        'Collection jobs failed every delivery and wait in the collection dead-letter queue (see the ' +
        'CollectionJobs logs for why: a JSON-RPC provider down or rate-limiting, say). Their collections stay ' +
        'enumerating or archiving: once the cause is fixed, redrive them (`pickup dlq redrive --all --collections`).',
      metric: collections.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: fiveMinutes,
        statistic: 'Maximum',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
    collectionJobErrors: alarm('CollectionJobsErrorsAlarm', {
      name: 'collection-jobs-errors',
      alarmDescription:
        'The collection jobs function failed (crashed, timed out, or could not start: an unset or invalid ' +
        'CHAIN_RPC secret fails every job at cold start). Failed jobs come back and, after ' +
        `${collectionJobsQueue.deadLetter.maxReceiveCount} deliveries, go to the collection dead-letter queue. ` +
        'See the CollectionJobs logs.',
      metric: collections.consumer.metricErrors({ period: fiveMinutes, statistic: 'Sum' }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
    }),
    collectionFollowErrors: alarm('CollectionFollowErrorsAlarm', {
      name: 'collection-follow-errors',
      alarmDescription:
        'The follow tick of NFT collections failed in two consecutive runs (see the CollectionFollow logs). ' +
        'Followed collections are not checked for new mints until a run succeeds; nothing is lost.',
      metric: collections.follow.metricErrors({
        period: Duration.minutes(Math.max(5, cfg.COLLECTION_FOLLOW_INTERVAL_MINUTES)),
        statistic: 'Sum',
      }),
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 2,
      datapointsToAlarm: 2,
    }),
    ...(cfg.WORKER_MIN_TASKS > 0
      ? {
          tasksBelowMinimum: alarm('RunningTasksAlarm', {
            name: 'workers-below-minimum',
            alarmDescription:
              `Fewer than WORKER_MIN_TASKS (${cfg.WORKER_MIN_TASKS}) worker tasks ran for 15 minutes: tasks fail ` +
              'to start or their health checks (see the ECS service events and the worker and kubo logs).',
            metric: new cloudwatch.Metric({
              namespace: 'ECS/ContainerInsights',
              metricName: 'RunningTaskCount',
              dimensionsMap: {
                ClusterName: worker.cluster.clusterName,
                ServiceName: worker.service.serviceName,
              },
              statistic: 'Minimum',
              period: fiveMinutes,
            }),
            threshold: cfg.WORKER_MIN_TASKS,
            comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluationPeriods: 3,
            // No data from Container Insights means no running task reported either.
            treatMissingData: cloudwatch.TreatMissingData.BREACHING,
          }),
        }
      : {}),
  }

  const dashboard = new cloudwatch.Dashboard(stack, 'Dashboard', {
    dashboardName: prefix,
    defaultInterval: Duration.hours(6),
  })
  const graph = (title: string, left: cloudwatch.IMetric[], width = 8) =>
    new cloudwatch.GraphWidget({ title, left, width, height: 6 })
  dashboard.addWidgets(
    new cloudwatch.AlarmStatusWidget({
      title: 'Alarms',
      alarms: Object.values(alarms),
      width: 24,
      height: 3,
    }),
  )
  // What users feel, first.
  const hour = Duration.hours(1)
  const day = Duration.days(1)
  // Ids of the metrics inside expressions: unique within a graph.
  let ids = 0
  const id = (prefix: string) => `${prefix}${++ids}`
  const seconds = (def: MetricDef, stat: string, dimensions?: Record<string, string>) => {
    const m = id('ms')
    return new cloudwatch.MathExpression({
      expression: `${m} / 1000`,
      usingMetrics: {
        [m]: pickupMetric(def, { statistic: stat, ...(dimensions ? { dimensions } : {}) }),
      },
      label: `${def.name} ${stat}${dimensions ? ` (${Object.values(dimensions).join(', ')})` : ''}`,
      period: fiveMinutes,
    })
  }
  const perTask = (def: MetricDef, label: string) => {
    const g = id('gauge')
    return new cloudwatch.MathExpression({
      // Each task reports the gauge; their average times the running tasks is the pool's total.
      expression: `${g} * running`,
      usingMetrics: {
        [g]: pickupMetric(def, { statistic: 'Average', period: Duration.minutes(1) }),
        running: new cloudwatch.Metric({
          namespace: 'ECS/ContainerInsights',
          metricName: 'RunningTaskCount',
          dimensionsMap: {
            ClusterName: worker.cluster.clusterName,
            ServiceName: worker.service.serviceName,
          },
          statistic: 'Average',
          period: Duration.minutes(1),
        }),
      },
      label,
      period: Duration.minutes(1),
    })
  }
  const mibPerSecond = (def: MetricDef, label: string) => {
    const m = id('rate')
    return new cloudwatch.MathExpression({
      expression: `${m} / 1048576`,
      usingMetrics: { [m]: pickupMetric(def, { statistic: 'p50' }) },
      label,
      period: fiveMinutes,
    })
  }
  dashboard.addWidgets(
    graph('Time to pinned (s), from the first request', [
      seconds(METRICS.timeToPinned, 'p50'),
      seconds(METRICS.timeToPinned, 'p90'),
      seconds(METRICS.timeToPinned, 'p99'),
      seconds(METRICS.timeToPinned, 'p90', { SizeClass: 'small' }),
    ]),
    graph('Pins stored per hour', [
      pickupMetric(METRICS.pinsStored, { statistic: 'Sum', period: hour, label: 'pins stored' }),
      pickupMetric(METRICS.pinRequestsAccepted, {
        statistic: 'Sum',
        period: hour,
        label: 'requests accepted',
      }),
    ]),
    graph('Failed attempts by reason (per 5 min)', [
      perDimension(METRICS.jobsFailed, ['Reason'], 'Sum', fiveMinutes),
    ]),
  )
  dashboard.addWidgets(
    graph('Bytes stored per day (GiB)', [
      new cloudwatch.MathExpression({
        expression: 'b / 1073741824',
        usingMetrics: { b: pickupMetric(METRICS.carBytes, { statistic: 'Sum', period: day }) },
        label: 'GiB stored',
        period: day,
      }),
    ]),
    graph('Jobs looking vs transferring (all workers)', [
      perTask(METRICS.jobsSearching, 'searching'),
      perTask(METRICS.jobsWaiting, 'found, waiting for a transfer slot'),
      perTask(METRICS.jobsTransferring, 'transferring'),
    ]),
    graph('Time searching vs transferring (s, p50)', [
      seconds(METRICS.searchTime, 'p50'),
      seconds(METRICS.transferTime, 'p50'),
    ]),
  )
  dashboard.addWidgets(
    graph('Fetch and validation rate (MiB/s, p50)', [
      mibPerSecond(METRICS.fetchRate, 'fetch'),
      mibPerSecond(METRICS.validationRate, 'validation'),
    ]),
    graph('Invalid CARs by fault', [perDimension(METRICS.invalidCars, ['FaultCode'], 'Sum', fiveMinutes)]),
    graph('API: 4xx by reason', [perDimension(METRICS.clientErrors, ['Api', 'Reason'], 'Sum', fiveMinutes)]),
  )
  // Infrastructure.
  dashboard.addWidgets(
    graph('Pin queue', [
      pipeline.queue.metricApproximateNumberOfMessagesVisible({ label: 'waiting' }),
      pipeline.queue.metricApproximateNumberOfMessagesNotVisible({ label: 'in flight or delayed' }),
    ]),
    graph('Oldest pin job (s)', [pipeline.queue.metricApproximateAgeOfOldestMessage()]),
    graph('Dead letters and failed jobs', [
      pipeline.deadLetterQueue.metricNumberOfMessagesReceived({
        label: 'dead letters received',
        statistic: 'Sum',
      }),
      pipeline.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ label: 'dead letters waiting' }),
      pipeline.failedJobs.metricApproximateNumberOfMessagesVisible({ label: 'failed jobs waiting' }),
    ]),
  )
  dashboard.addWidgets(
    graph('Workers', [
      new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName: 'RunningTaskCount',
        dimensionsMap: { ClusterName: worker.cluster.clusterName, ServiceName: worker.service.serviceName },
        label: 'running tasks',
      }),
      new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName: 'DesiredTaskCount',
        dimensionsMap: { ClusterName: worker.cluster.clusterName, ServiceName: worker.service.serviceName },
        label: 'desired tasks',
      }),
    ]),
    graph('Transfer demand per task (scaling metric)', [worker.transferDemandPerTask]),
    graph('Worker errors', [worker.workerErrors]),
  )
  dashboard.addWidgets(
    graph('Validator', [
      pipeline.validator.metricInvocations({ statistic: 'Sum' }),
      pipeline.validator.metricErrors({ statistic: 'Sum' }),
    ]),
    graph('Sweep of unreferenced content', [
      pipeline.sweeper.metricInvocations({ statistic: 'Sum' }),
      pipeline.sweeper.metricErrors({ statistic: 'Sum' }),
    ]),
    graph('Reconciler of stuck pins', [
      pipeline.reconciler.metricInvocations({ statistic: 'Sum' }),
      pipeline.reconciler.metricErrors({ statistic: 'Sum' }),
    ]),
    graph('Validator duration (ms)', [
      pipeline.validator.metricDuration({ statistic: 'Maximum', label: 'max' }),
      pipeline.validator.metricDuration({ statistic: 'p50', label: 'p50' }),
    ]),
    graph('HTTP API', [
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: 'Count',
        dimensionsMap: { ApiId: api.httpApiId },
        statistic: 'Sum',
        label: 'requests',
      }),
      new cloudwatch.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: '5xx',
        dimensionsMap: { ApiId: api.httpApiId },
        statistic: 'Sum',
        label: '5xx',
      }),
      httpHandler.metricErrors({ statistic: 'Sum', label: 'function errors' }),
    ]),
  )

  suppressFrameworkResources(stack)
  stack.addOutputs({ AlarmTopicArn: alarmTopic.topicArn })
  return { alarmTopic, alarms, dashboard }
}
