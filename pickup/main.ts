/**
 * The worker sidecar's entry point (one per ECS task, beside kubo; or on its own with an embedded Helia node
 * when IPFS_API_URL is unset). SIGTERM stops polling and gives in-flight jobs SHUTDOWN_GRACE_MS to finish
 * before releasing them for another worker.
 */
import { createAwsClients } from '../adapters/aws-clients.ts'
import { createDynamoPinStore } from '../adapters/dynamodb/pins.ts'
import { createDynamoWorkerRegistry } from '../adapters/dynamodb/workers.ts'
import { createHeliaBlockSource } from '../adapters/helia/block-source.ts'
import { createHeliaNode } from '../adapters/helia/node.ts'
import { createKuboBlockSource } from '../adapters/kubo/block-source.ts'
import { createLogger } from '../adapters/log.ts'
import { createS3ObjectStore } from '../adapters/s3/objects.ts'
import { createSqsJobQueue } from '../adapters/sqs/queue.ts'
import { parseConfig, workerSchema } from '../core/config.ts'
import { resourcesSchema } from '../core/config-resources.ts'
import type { BlockSource } from '../core/ports.ts'
import { startWorker } from './worker.ts'

const cfg = parseConfig(workerSchema.extend(resourcesSchema.shape), process.env)
const log = createLogger('pickup-worker')
const aws = createAwsClients(cfg)
const stops: Array<() => Promise<void>> = []

let ipfs: BlockSource
if (cfg.IPFS_API_URL) {
  ipfs = createKuboBlockSource({ url: cfg.IPFS_API_URL, log, connectTimeoutMs: cfg.DIAL_TIMEOUT_MS })
} else {
  const helia = await createHeliaNode({ publicNetwork: process.env.IPFS_PUBLIC_NETWORK !== 'false', log })
  stops.push(async () => {
    await helia.stop()
  })
  ipfs = createHeliaBlockSource(helia, { log, dialTimeoutMs: cfg.DIAL_TIMEOUT_MS })
}

const running = await startWorker(cfg, {
  queue: createSqsJobQueue({ client: aws.sqs, queueUrl: cfg.PIN_QUEUE_URL, log }),
  pins: createDynamoPinStore({ client: aws.dynamodb, tableName: cfg.PIN_TABLE }),
  temp: createS3ObjectStore({ client: aws.s3, bucket: cfg.TEMP_BUCKET, partSize: cfg.UPLOAD_PART_BYTES }),
  workers: createDynamoWorkerRegistry({ client: aws.dynamodb, tableName: cfg.WORKER_TABLE }),
  ipfs,
  clock: { now: () => Date.now() },
  log,
})

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, async () => {
    log.info({ signal, inFlight: running.worker.inFlight }, 'shutting down')
    await running.stop()
    for (const stop of stops) await stop()
    process.exit(0)
  })
}
