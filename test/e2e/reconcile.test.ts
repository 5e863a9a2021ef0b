/**
 * The reconciler in local mode (its timer in local/system.ts), end to end: a pin whose job was deleted behind
 * its back, and one whose worker died holding it, are enqueued again and pinned; a pin stuck after its last
 * attempt is failed instead.
 */
import { PurgeQueueCommand } from '@aws-sdk/client-sqs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createDynamoWorkerRegistry } from '../../adapters/dynamodb/workers.ts'
import { createHeliaBlockSource } from '../../adapters/helia/block-source.ts'
import { createLogger } from '../../adapters/log.ts'
import { createSqsJobQueue } from '../../adapters/sqs/queue.ts'
import { contentKey } from '../../core/cid.ts'
import { parseConfig } from '../../core/config.ts'
import { localSchema } from '../../local/config.ts'
import { type RunningWorker, startWorker } from '../../pickup/worker.ts'
import { rawBlock, unixfsFile } from '../fixtures/dags.ts'
import { FAST, startTestSystem, type TestSystem } from '../helpers/system.ts'

const ENV = { RECONCILE_AFTER_MS: '1000', RECONCILE_INTERVAL_MS: '250', MAX_ATTEMPTS: '3' }

let t: TestSystem
let worker: RunningWorker | undefined
beforeAll(async () => {
  // No worker at first: the job is deleted before anything can take it.
  t = await startTestSystem(ENV, { worker: 'none' })
})
afterAll(async () => {
  await worker?.stop()
  await t?.stop()
})

describe('the reconciler in local mode', () => {
  it('heals a pin whose job was deleted behind its back, and one whose worker died', async () => {
    const { clients, names } = t.system.services
    const file = await unixfsFile(400 * 1024, { seed: 'reconcile-lost' })
    await t.addToOrigin(file.blocks)
    const lost = contentKey(file.root)
    const origins = encodeURIComponent(t.originAddrs().join(','))
    expect((await t.api(`/pins/${lost}?origins=${origins}`, { method: 'POST' })).status).toBe(200)
    await clients.sqs.send(new PurgeQueueCommand({ QueueUrl: names.pinQueueUrl }))

    // A pin a worker held when it died: its lease runs out, and no job is left for it.
    const orphan = await unixfsFile(200 * 1024, { seed: 'reconcile-orphan' })
    await t.addToOrigin(orphan.blocks)
    const orphaned = contentKey(orphan.root)
    await t.pins.request(orphaned, t.originAddrs(), Date.now())
    await t.pins.claim(orphaned, 'deadworker', Date.now() + 200, Date.now())

    const log = createLogger('test', process.env.TEST_LOG_LEVEL ?? 'silent')
    const cfg = parseConfig(localSchema, { ...FAST, ...ENV })
    worker = await startWorker(cfg, {
      queue: createSqsJobQueue({ client: clients.sqs, queueUrl: names.pinQueueUrl, log }),
      pins: t.pins,
      temp: t.temp,
      ipfs: createHeliaBlockSource(t.system.helia!, { log }),
      workers: createDynamoWorkerRegistry({ client: clients.dynamodb, tableName: names.workersTable }),
      clock: { now: () => Date.now() },
      log,
    })

    const healed = await t.waitForPin(lost, 'pinned', 20_000)
    expect(healed.attempts).toBe(1)
    expect(await t.destination.head(healed.car!.key)).toBeDefined()
    const taken = await t.waitForPin(orphaned, 'pinned', 20_000)
    expect(taken.attempts).toBe(2)
  })

  it('fails a pin stuck after its last attempt rather than retrying it for ever', async () => {
    const cid = rawBlock(64, 'reconcile-spent').root.toString()
    await t.pins.request(cid, [], Date.now())
    for (let i = 1; i <= 3; i++) await t.pins.claim(cid, `dead${i}`, Date.now() - 1, Date.now())
    const failed = await t.waitForPin(cid, 'failed', 20_000)
    expect(failed.attempts).toBe(3)
    expect(failed.error).toMatch(
      /^STUCK: no attempt finished \(gave up after 3 attempts: its attempt's lease expired \d+ s ago \(the worker died\)\)$/,
    )
  })
})
