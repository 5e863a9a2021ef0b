/**
 * Fairness between requesters through local mode: one Pinning Service API user's backlog of pins does not
 * hold another user's single pin behind all of it. The pin queue is fauxqs, which local mode makes deliver
 * like an SQS fair queue (one message group per requester); the worker, the API and the IPFS nodes are real.
 */
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createDynamoWorkerRegistry } from '../../adapters/dynamodb/workers.ts'
import { createHeliaBlockSource } from '../../adapters/helia/block-source.ts'
import { createSqsJobQueue } from '../../adapters/sqs/queue.ts'
import { normalizeCid } from '../../core/cid.ts'
import { parseConfig } from '../../core/config.ts'
import { localSchema } from '../../local/config.ts'
import { type RunningWorker, startWorker } from '../../pickup/worker.ts'
import { rawBlock } from '../fixtures/dags.ts'
import { createTestLogger } from '../helpers/log.ts'
import { FAST, startTestSystem, type TestSystem } from '../helpers/system.ts'
import { psaClient } from '../psa/helpers.ts'

// Few slots, so that the backlog really queues.
const env = { ...FAST, BATCH_SIZE: '2', SEARCH_CONCURRENCY: '4' }
let t: TestSystem
let worker: RunningWorker | undefined
beforeAll(async () => {
  // The worker starts once the backlog is in the queue, as when one user posts faster than workers pin.
  t = await startTestSystem(env, { worker: 'none' })
})
afterAll(async () => {
  await worker?.stop()
  await t?.stop()
})

async function startTheWorker(): Promise<RunningWorker> {
  const log = createTestLogger()
  const { clients, names } = t.system.services
  return startWorker(parseConfig(localSchema, env), {
    queue: createSqsJobQueue({ client: clients.sqs, queueUrl: names.pinQueueUrl, log }),
    pins: t.pins,
    temp: t.temp,
    ipfs: createHeliaBlockSource(t.system.helia!, { log }),
    workers: createDynamoWorkerRegistry({ client: clients.dynamodb, tableName: names.workersTable }),
    clock: { now: () => Date.now() },
    log,
  })
}

it("pins another user's single pin while the first user's backlog is still mostly waiting", async () => {
  const backlog = Array.from({ length: 150 }, (_, i) => rawBlock(1024, `alice backlog ${i} ${Math.random()}`))
  const single = rawBlock(1024, `bob single ${Math.random()}`)
  await t.addToOrigin([...backlog, single].flatMap((d) => d.blocks))
  const alice = psaClient(t, await t.createPsaToken('alice'))
  const bob = psaClient(t, await t.createPsaToken('bob'))
  const origins = t.originAddrs()

  for (let i = 0; i < backlog.length; i += 10) {
    await Promise.all(
      backlog.slice(i, i + 10).map((d) => alice.pinsPost({ pin: { cid: d.root.toString(), origins } })),
    )
  }
  await bob.pinsPost({ pin: { cid: single.root.toString(), origins } })
  worker = await startTheWorker()
  await t.waitForPin(single.root.toString(), 'pinned', 120_000)

  const pins = await t.pins.getMany(backlog.map((d) => normalizeCid(d.root.toString()).key))
  const waiting = [...pins.values()].filter((p) => p.status !== 'pinned').length
  // Delivered in posting order, bob's pin would have come after all of alice's.
  expect(waiting).toBeGreaterThan(backlog.length / 3)
})
