/**
 * The worker pool: an ECS service on Fargate, each task a kubo node (the official image, configured by
 * docker/kubo/) beside the worker sidecar (Dockerfile at the root: the esbuild bundle of pickup/main.ts).
 *
 * - Network: a VPC of public subnets only (no NAT gateway to pay for): tasks get public IPs so peers can
 *   dial kubo's swarm port (4001 tcp/udp, the only inbound rule); S3 and DynamoDB go through gateway
 *   endpoints. kubo's RPC API stays on 127.0.0.1 inside the task.
 * - Scaling: target tracking on the transfer demand the workers report: jobs transferring plus jobs that
 *   found their content and wait for a transfer slot, per task (the average of the tasks' JobsTransferring and
 *   JobsWaiting gauges, core/metrics.ts), aiming at BATCH_SIZE, between WORKER_MIN_TASKS and
 *   WORKER_MAX_TASKS. Jobs still searching are left out on purpose: a task searches for SEARCH_CONCURRENCY
 *   jobs at almost no cost, so a backlog of content nobody serves (searching until it stalls) adds no task
 *   that would only wait; a backlog of content that can be served shows as jobs waiting for a slot, and
 *   scales out. With no task running, any visible pin job starts one. A task holding jobs is protected from
 *   scale-in by the sidecar (ECS task scale-in protection), so scaling in only stops idle tasks.
 * - Disk: kubo keeps the blocks of running jobs until the sidecar runs `repo gc` while idle; the task's
 *   ephemeral storage is sized to BATCH_SIZE typical DAGs (workerEphemeralStorageGiB).
 */
import { Duration, IgnoreMode, Size } from 'aws-cdk-lib'
import * as appscaling from 'aws-cdk-lib/aws-applicationautoscaling'
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch'
import * as ec2 from 'aws-cdk-lib/aws-ec2'
import { Platform } from 'aws-cdk-lib/aws-ecr-assets'
import * as ecs from 'aws-cdk-lib/aws-ecs'
import * as iam from 'aws-cdk-lib/aws-iam'
import * as logs from 'aws-cdk-lib/aws-logs'
import * as cr from 'aws-cdk-lib/custom-resources'
import { type StackContext, use } from 'sst/constructs'
import { useProject } from 'sst/project.js'
import { indexNamed, pinsTable } from '../adapters/dynamodb/tables.ts'
import { workerSchema } from '../core/config.ts'
import { METRICS, metricNamespace } from '../core/metrics.ts'
import { DataStack } from './data.ts'
import {
  type DeployConfig,
  resourcePrefix,
  useDeployConfig,
  WORKER_STOP_TIMEOUT_SECONDS,
  workerEphemeralStorageGiB,
  workerJobDiskBytes,
} from './deploy-config.ts'
import { arnWildcard, suppress, suppressFrameworkResources } from './nag.ts'
import { PipelineStack } from './pipeline.ts'
import { applyStagePolicy, stagePolicy } from './stage.ts'

/** kubo's swarm port (tcp, and udp for QUIC/WebTransport/WebRTC). */
export const SWARM_PORT = 4001
/** kubo's RPC API, reachable only inside the task. */
export const KUBO_API_URL = 'http://127.0.0.1:5001'
/** The sidecar's health endpoint (pickup/health.ts), on 127.0.0.1. */
export const HEALTH_PORT = 8081
/** Same command as the Dockerfile's HEALTHCHECK (ECS ignores image health checks). */
export const SIDECAR_HEALTH_COMMAND =
  "node -e \"fetch('http://127.0.0.1:'+(process.env.HEALTH_PORT||8081)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))\""
/**
 * The scaling metric: jobs transferring or holding their first block until a transfer slot frees, per task
 * (the tasks' gauges averaged; a task reports both every METRICS_GAUGE_INTERVAL_MS, idle included). FILL: a
 * minute without a report (a task just started) counts as no demand rather than no data. With no task running
 * there are no gauges: any visible pin job then reads as twice the target, which starts a task.
 */
export function transferDemandPerTaskExpression(batchSize: number): string {
  return `IF(running > 0, FILL(transferring, 0) + FILL(waiting, 0), IF(visible > 0, ${2 * batchSize}, 0))`
}

/** Metric namespace of the worker's log-derived metrics, per stage: the one its EMF lines use. */
export const workerMetricNamespace = metricNamespace

/**
 * The worker's environment: every tuning variable of core/config.ts as validated at deploy time (so the
 * task runs with exactly what was checked), the resources, and the sidecar's own variables.
 */
export function workerEnvironment(
  cfg: DeployConfig,
  resources: Record<
    'PIN_TABLE' | 'WORKER_TABLE' | 'PIN_QUEUE_URL' | 'TEMP_BUCKET' | 'AWS_REGION' | 'ECS_SERVICE_NAME',
    string
  >,
): Record<string, string> {
  const tuning: Record<string, string> = {}
  for (const key of Object.keys(workerSchema.shape) as Array<keyof typeof workerSchema.shape>) {
    if (key === 'IPFS_API_URL') continue
    tuning[key] = String(cfg[key])
  }
  const ephemeralBytes = workerEphemeralStorageGiB(cfg) * 1024 ** 3
  return {
    ...tuning,
    ...resources,
    IPFS_API_URL: KUBO_API_URL,
    LOG_LEVEL: cfg.LOG_LEVEL,
    HEALTH_PORT: String(HEALTH_PORT),
    KUBO_GC_MIN_INTERVAL_MS: String(cfg.KUBO_GC_MIN_INTERVAL_MS),
    // Stop taking jobs for a GC when kubo's repo fills 70% of the task's disk (images and logs need room too),
    // or leaves less than one largest CAR for jobs, so a worker the disk gate keeps idle collects at once.
    KUBO_GC_HIGH_WATER_BYTES: String(
      Math.floor(Math.min(ephemeralBytes * 0.7, workerJobDiskBytes(cfg) - cfg.MAX_CAR_BYTES)),
    ),
    // The disk kubo's repo may fill with jobs' blocks: a job is admitted only while it holds MAX_CAR_BYTES
    // more for it and for every running job (adapters/kubo/disk-gate.ts).
    KUBO_JOB_DISK_BYTES: String(workerJobDiskBytes(cfg)),
  }
}

export interface WorkerResources {
  cluster: ecs.Cluster
  service: ecs.FargateService
  workerLogs: logs.LogGroup
  /** Worker log lines at level error (50) or above. */
  workerErrors: cloudwatch.Metric
  /** The autoscaling metric: jobs transferring or waiting for a transfer slot, per running task. */
  transferDemandPerTask: cloudwatch.MathExpression
}

export function WorkerStack({ app, stack }: StackContext): WorkerResources {
  const cfg = useDeployConfig(app)
  const policy = stagePolicy(app.stage)
  applyStagePolicy(stack, policy)
  const data = use(DataStack)
  const pipeline = use(PipelineStack)
  const prefix = resourcePrefix(app)
  const root = useProject().paths.root
  const arm = cfg.WORKER_CPU_ARCHITECTURE === 'arm64'
  const platform = arm ? Platform.LINUX_ARM64 : Platform.LINUX_AMD64

  // ------------------------------------------------------------ network
  const flowLogs = new logs.LogGroup(stack, 'VpcFlowLogs', { retention: policy.logRetention })
  const vpc = new ec2.Vpc(stack, 'Vpc', {
    maxAzs: cfg.WORKER_AZS,
    natGateways: 0,
    subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 20 }],
    gatewayEndpoints: {
      S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
      DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
    },
    // Rejected traffic only: accepted bitswap traffic would cost more to log than to move.
    flowLogs: {
      rejected: {
        trafficType: ec2.FlowLogTrafficType.REJECT,
        destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      },
    },
  })
  const securityGroup = new ec2.SecurityGroup(stack, 'WorkerSecurityGroup', {
    vpc,
    description: 'pickup workers: kubo swarm port open to the IPFS network',
    allowAllOutbound: true,
  })
  securityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(SWARM_PORT), 'kubo swarm (tcp)')
  securityGroup.addIngressRule(ec2.Peer.anyIpv4(), ec2.Port.udp(SWARM_PORT), 'kubo swarm (quic, webrtc)')
  suppress(securityGroup, [
    {
      id: 'AwsSolutions-EC23',
      reason:
        'kubo must be dialable by any IPFS peer (origins hand it content; clients are given its address). ' +
        'Only the swarm port is open.',
    },
  ])

  // ECS's service-linked role (AWSServiceRoleForECS) must exist before the first cluster of an account is
  // created, and Application Auto Scaling's for ECS before the scalable target: created here if missing
  // (an "already exists" answer is expected and ignored), so a first deploy in a new account does not
  // depend on a manual step.
  const serviceLinkedRoles = ['ecs.amazonaws.com', 'ecs.application-autoscaling.amazonaws.com'].map(
    (service, i) =>
      new cr.AwsCustomResource(stack, i === 0 ? 'EcsServiceLinkedRole' : 'EcsScalingServiceLinkedRole', {
        onCreate: {
          service: 'IAM',
          action: 'createServiceLinkedRole',
          parameters: { AWSServiceName: service },
          physicalResourceId: cr.PhysicalResourceId.of(`service-linked-role-${service}`),
          // "Service role name ... has been taken in this account": the role exists, which is the point.
          ignoreErrorCodesMatching: 'InvalidInput',
        },
        policy: cr.AwsCustomResourcePolicy.fromStatements([
          new iam.PolicyStatement({
            actions: ['iam:CreateServiceLinkedRole'],
            resources: [
              stack.formatArn({
                service: 'iam',
                region: '',
                resource: 'role',
                resourceName: `aws-service-role/${service}/*`,
              }),
            ],
            conditions: { StringLike: { 'iam:AWSServiceName': service } },
          }),
        ]),
        installLatestAwsSdk: false,
      }),
  )

  for (const role of serviceLinkedRoles) {
    suppress(role, [
      {
        id: 'AwsSolutions-IAM5',
        reason:
          "Creates one AWS service's service-linked role, whose name AWS picks (the condition names the service).",
        appliesTo: [
          {
            regex:
              '/^Resource::arn:<AWS::Partition>:iam::\\d+:role\\/aws-service-role\\/ecs(\\.application-autoscaling)?\\.amazonaws\\.com\\/\\*$/',
          },
        ],
      },
    ])
  }

  // Not named: nothing outside the stack needs its name (it is an output).
  const cluster = new ecs.Cluster(stack, 'Cluster', {
    vpc,
    containerInsightsV2: ecs.ContainerInsights.ENABLED,
  })
  cluster.node.addDependency(serviceLinkedRoles[0]!)

  // ------------------------------------------------------------ task
  // Named: the task reads its service's deployments (adapters/ecs/deployment-gate.ts), and a task definition
  // cannot refer to the service that uses it.
  const serviceName = `${prefix}-workers`
  const ephemeralStorageGiB = workerEphemeralStorageGiB(cfg)
  const taskDefinition = new ecs.FargateTaskDefinition(stack, 'WorkerTask', {
    cpu: cfg.WORKER_CPU,
    memoryLimitMiB: cfg.WORKER_MEMORY_MIB,
    ephemeralStorageGiB,
    runtimePlatform: {
      cpuArchitecture: arm ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
      operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
    },
  })

  // Not named: a retained log group with a fixed name would make a re-created stage fail.
  const kuboLogs = new logs.LogGroup(stack, 'KuboLogs', { retention: policy.logRetention })
  const workerLogs = new logs.LogGroup(stack, 'WorkerLogs', { retention: policy.logRetention })
  const logDriver = (logGroup: logs.LogGroup, streamPrefix: string) =>
    ecs.LogDrivers.awsLogs({
      logGroup,
      streamPrefix,
      // Never block the process on CloudWatch: a full buffer drops lines instead.
      mode: ecs.AwsLogDriverMode.NON_BLOCKING,
      maxBufferSize: Size.mebibytes(25),
    })

  const kubo = taskDefinition.addContainer('kubo', {
    image: ecs.ContainerImage.fromAsset(`${root}/docker/kubo`, { platform }),
    essential: true,
    environment: {
      IPFS_PROFILE: 'server',
      KUBO_CONNMGR_LOW_WATER: String(cfg.KUBO_CONNMGR_LOW_WATER),
      KUBO_CONNMGR_HIGH_WATER: String(cfg.KUBO_CONNMGR_HIGH_WATER),
      // Half the task's memory: the Go runtime collects harder before it gets there.
      GOMEMLIMIT: `${Math.floor(cfg.WORKER_MEMORY_MIB / 2)}MiB`,
    },
    portMappings: [
      { containerPort: SWARM_PORT, protocol: ecs.Protocol.TCP },
      { containerPort: SWARM_PORT, protocol: ecs.Protocol.UDP },
    ],
    healthCheck: {
      // Through the RPC API, so it only passes once the daemon serves it (offline `ipfs id` would pass earlier).
      command: ['CMD-SHELL', 'ipfs --api=/ip4/127.0.0.1/tcp/5001 id > /dev/null || exit 1'],
      interval: Duration.seconds(15),
      timeout: Duration.seconds(5),
      retries: 3,
      startPeriod: Duration.seconds(60),
    },
    stopTimeout: Duration.seconds(WORKER_STOP_TIMEOUT_SECONDS),
    logging: logDriver(kuboLogs, 'kubo'),
  })

  const worker = taskDefinition.addContainer('worker', {
    image: ecs.ContainerImage.fromAsset(root, {
      file: 'Dockerfile',
      platform,
      // Only what the image build copies: the fingerprint (and the build context) skip everything else.
      ignoreMode: IgnoreMode.DOCKER,
      exclude: [
        '*',
        '!Dockerfile',
        '!package.json',
        '!package-lock.json',
        '!tsconfig.json',
        '!core',
        '!adapters',
        '!pickup',
      ],
    }),
    essential: true,
    environment: {
      ...workerEnvironment(cfg, {
        AWS_REGION: stack.region,
        PIN_TABLE: data.tables.pins.tableName,
        WORKER_TABLE: data.tables.workers.tableName,
        PIN_QUEUE_URL: pipeline.queue.queueUrl,
        TEMP_BUCKET: pipeline.temp.bucketName,
        // A literal, not a reference: the service depends on this task definition.
        ECS_SERVICE_NAME: serviceName,
      }),
      METRICS_NAMESPACE: metricNamespace(app.stage),
    },
    healthCheck: {
      command: ['CMD-SHELL', SIDECAR_HEALTH_COMMAND],
      interval: Duration.seconds(30),
      timeout: Duration.seconds(10),
      retries: 3,
      startPeriod: Duration.seconds(60),
    },
    // SIGTERM gives running jobs SHUTDOWN_GRACE_MS, then releases them (checked in deploy-config.ts).
    stopTimeout: Duration.seconds(WORKER_STOP_TIMEOUT_SECONDS),
    logging: logDriver(workerLogs, 'worker'),
  })
  // Started after kubo answers, stopped before it.
  worker.addContainerDependencies({ container: kubo, condition: ecs.ContainerDependencyCondition.HEALTHY })

  // ------------------------------------------------------------ permissions (task role)
  const taskRole = taskDefinition.taskRole
  taskRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'PinJobs',
      actions: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:SendMessage'],
      resources: [pipeline.queue.queueArn],
    }),
  )
  taskRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'PinsClaimSettle',
      // BatchGetItem: the watcher of running pins reads them all once a minute (core/pin-watch.ts).
      actions: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:BatchGetItem'],
      resources: [data.tables.pins.tableArn],
    }),
  )
  taskRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'WatchUnreferencedPins',
      // Each interval the watcher reads the marks of content no request wants any longer, set lately.
      actions: ['dynamodb:Query'],
      resources: [`${data.tables.pins.tableArn}/index/${indexNamed(pinsTable, 'unreferenced-since')}`],
    }),
  )
  taskRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'AnnounceWorker',
      actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'],
      resources: [data.tables.workers.tableArn],
    }),
  )
  taskRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'UploadCars',
      actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
      resources: [pipeline.temp.arnForObjects('*')],
    }),
  )
  taskRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'OwnServiceDeployments',
      actions: ['ecs:DescribeServices'],
      resources: [
        stack.formatArn({
          service: 'ecs',
          resource: 'service',
          resourceName: `${cluster.clusterName}/${serviceName}`,
        }),
      ],
    }),
  )
  taskRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      sid: 'TaskScaleInProtection',
      actions: ['ecs:UpdateTaskProtection', 'ecs:GetTaskProtection'],
      resources: [
        stack.formatArn({ service: 'ecs', resource: 'task', resourceName: `${cluster.clusterName}/*` }),
      ],
    }),
  )
  suppress(taskRole, [
    {
      id: 'AwsSolutions-IAM5',
      reason:
        "CAR uploads go to per-CID keys of the temporary bucket; task protection applies to this cluster's " +
        'tasks, whose ids are not known ahead.',
      appliesTo: [
        arnWildcard('TempBucket', '/*'),
        { regex: '/^Resource::arn:<AWS::Partition>:ecs:[a-z0-9-]+:\\d+:task\\/<Cluster[0-9A-F]{8}>\\/\\*$/' },
      ],
    },
  ])
  suppress(taskDefinition.obtainExecutionRole(), [
    {
      id: 'AwsSolutions-IAM5',
      reason:
        'ecr:GetAuthorizationToken has no resource-level permissions (CDK grants it to pull the images).',
      appliesTo: ['Resource::*'],
    },
  ])
  suppress(taskDefinition, [
    {
      id: 'AwsSolutions-ECS2',
      reason:
        'The environment holds resource names and tuning only; there is no secret in it (the workers need none).',
    },
  ])

  // ------------------------------------------------------------ service and scaling
  const service = new ecs.FargateService(stack, 'WorkerService', {
    serviceName,
    cluster,
    taskDefinition,
    assignPublicIp: true,
    vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC },
    securityGroups: [securityGroup],
    minHealthyPercent: 100,
    maxHealthyPercent: 200,
    circuitBreaker: { rollback: true },
    propagateTags: ecs.PropagatedTagSource.SERVICE,
    enableECSManagedTags: true,
  })

  const scalingTarget = new appscaling.ScalableTarget(stack, 'WorkerScalingTarget', {
    serviceNamespace: appscaling.ServiceNamespace.ECS,
    scalableDimension: 'ecs:service:DesiredCount',
    resourceId: `service/${cluster.clusterName}/${service.serviceName}`,
    minCapacity: cfg.WORKER_MIN_TASKS,
    maxCapacity: cfg.WORKER_MAX_TASKS,
    // Application Auto Scaling's service-linked role for ECS (what `service.autoScaleTaskCount` uses).
    role: iam.Role.fromRoleArn(
      stack,
      'WorkerScalingRole',
      stack.formatArn({
        service: 'iam',
        region: '',
        resource: 'role/aws-service-role/ecs.application-autoscaling.amazonaws.com',
        resourceName: 'AWSServiceRoleForApplicationAutoScaling_ECSService',
      }),
    ),
  })
  scalingTarget.node.addDependency(service, serviceLinkedRoles[1]!)

  const queueDimension = [{ name: 'QueueName', value: pipeline.queue.queueName }]
  const serviceDimensions = [
    { name: 'ClusterName', value: cluster.clusterName },
    { name: 'ServiceName', value: service.serviceName },
  ]
  const namespace = workerMetricNamespace(app.stage)
  const transferDemandExpression = transferDemandPerTaskExpression(cfg.BATCH_SIZE)
  const gauge = (id: string, metricName: string) => ({
    id,
    metricStat: { metric: { namespace, metricName }, stat: 'Average' },
    returnData: false,
  })
  // CDK's target tracking takes one metric, not math: the policy is written as the CloudFormation resource.
  new appscaling.CfnScalingPolicy(stack, 'TransferDemandScaling', {
    policyName: `${prefix}-transfer-demand-per-task`,
    policyType: 'TargetTrackingScaling',
    scalingTargetId: scalingTarget.scalableTargetId,
    targetTrackingScalingPolicyConfiguration: {
      targetValue: cfg.BATCH_SIZE,
      scaleOutCooldown: 60,
      scaleInCooldown: 300,
      customizedMetricSpecification: {
        metrics: [
          {
            id: 'visible',
            metricStat: {
              metric: {
                namespace: 'AWS/SQS',
                metricName: 'ApproximateNumberOfMessagesVisible',
                dimensions: queueDimension,
              },
              stat: 'Average',
            },
            returnData: false,
          },
          gauge('transferring', METRICS.jobsTransferring.name),
          gauge('waiting', METRICS.jobsWaiting.name),
          {
            id: 'running',
            metricStat: {
              metric: {
                namespace: 'ECS/ContainerInsights',
                metricName: 'RunningTaskCount',
                dimensions: serviceDimensions,
              },
              stat: 'Average',
            },
            returnData: false,
          },
          {
            id: 'transferDemand',
            expression: transferDemandExpression,
            label: 'Jobs transferring or waiting for a transfer slot, per worker task',
            returnData: true,
          },
        ],
      },
    },
  })

  // ------------------------------------------------------------ log-derived metrics
  new logs.MetricFilter(stack, 'WorkerErrorsFilter', {
    logGroup: workerLogs,
    // pino levels: 50 error, 60 fatal.
    filterPattern: logs.FilterPattern.numberValue('$.level', '>=', 50),
    metricNamespace: namespace,
    metricName: 'WorkerErrors',
    metricValue: '1',
    defaultValue: 0,
  })
  const workerErrors = new cloudwatch.Metric({
    namespace,
    metricName: 'WorkerErrors',
    statistic: 'Sum',
    period: Duration.minutes(5),
  })
  const transferDemandPerTask = new cloudwatch.MathExpression({
    expression: transferDemandExpression,
    label: 'Jobs transferring or waiting for a slot, per task (scaling metric)',
    period: Duration.minutes(1),
    usingMetrics: {
      visible: pipeline.queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Average' }),
      transferring: new cloudwatch.Metric({
        namespace,
        metricName: METRICS.jobsTransferring.name,
        statistic: 'Average',
      }),
      waiting: new cloudwatch.Metric({
        namespace,
        metricName: METRICS.jobsWaiting.name,
        statistic: 'Average',
      }),
      running: new cloudwatch.Metric({
        namespace: 'ECS/ContainerInsights',
        metricName: 'RunningTaskCount',
        dimensionsMap: { ClusterName: cluster.clusterName, ServiceName: service.serviceName },
        statistic: 'Average',
      }),
    },
  })

  suppressFrameworkResources(stack)
  stack.addOutputs({ ClusterName: cluster.clusterName, ServiceName: service.serviceName })
  return { cluster, service, workerLogs, workerErrors, transferDemandPerTask }
}
