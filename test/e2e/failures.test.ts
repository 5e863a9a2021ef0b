/**
 * Failure paths end to end in local mode: retries, the dead-letter queue (and the failed-jobs queue its
 * consumer forwards to), stalls, the size limit and duplicate deliveries, through the real worker, queue,
 * validator and dead-letter consumer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createHeliaNode } from '../../adapters/helia/node.ts'
import { createSqsDeadLetterQueue } from '../../adapters/sqs/dead-letters.ts'
import { createSqsPinQueue } from '../../adapters/sqs/queue.ts'
import { contentKey } from '../../core/cid.ts'
import { dagCborDag, rawBlock, unixfsFile } from '../fixtures/dags.ts'
import { listKeys, startTestSystem, type TestSystem, verifyStoredCar } from '../helpers/system.ts'

let t: TestSystem
beforeAll(async () => {
  t = await startTestSystem({
    // Short enough that stalls show within seconds, long enough that a loaded machine's first block arrives.
    FETCH_CHUNK_TIMEOUT_MS: '1500',
    RETRY_BASE_DELAY_SECONDS: '1',
    RETRY_MAX_DELAY_SECONDS: '2',
    MAX_CAR_BYTES: String(4 * 1024 * 1024),
  })
})
afterAll(async () => {
  await t?.stop()
})

async function waitUntil<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const started = Date.now()
  for (;;) {
    const v = await read()
    if (ok(v)) return v
    if (Date.now() - started > timeoutMs) throw new Error(`timed out; last value: ${JSON.stringify(v)}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe('failures, end to end', () => {
  it('an unreachable CID is retried, lands in the dead-letter queue, ends failed with its reason and waits in the failed-jobs queue', async () => {
    const dag = rawBlock(100, 'nowhere') // never added to any node
    const cid = dag.root.toString()
    const requestedAt = Date.now()
    expect((await t.api(`/pins/${cid}`, { method: 'POST' })).status).toBe(200)
    const body = await t.waitForStatus(cid, 'pin_error', 60_000)
    const peer = Object.values(body.peer_map as Record<string, { error: string; attempt_count: number }>)[0]!
    expect(peer.attempt_count).toBe(3)
    expect(peer.error).toMatch(/^FETCH_STALLED: no data received for 1500 ms \(gave up after \d receives\)$/)

    // The consumer forwarded the job, as it was, with what became of it; the dead-letter queue is empty.
    const { clients, names } = t.system.services
    const failedJobs = createSqsDeadLetterQueue({ client: clients.sqs, queueUrl: names.failedJobsQueueUrl })
    const letters = await waitUntil(
      () => failedJobs.receive({ max: 10, hideSeconds: 1, waitSeconds: 1 }),
      (ls) => ls.some((l) => l.job?.cid === contentKey(dag.root)),
      10_000,
    )
    const letter = letters.find((l) => l.job?.cid === contentKey(dag.root))!
    // The job as sent, its requester (the fair queue's group) included.
    expect(JSON.parse(letter.body)).toEqual({ cid: contentKey(dag.root), origins: [], requester: 'cluster' })
    expect(letter.failure).toEqual({
      reason: peer.error,
      receiveCount: Number(/after (\d) receives/.exec(peer.error)?.[1]),
      sentAt: expect.any(Number),
      failedAt: expect.any(Number),
    })
    expect(letter.failure!.receiveCount).toBeGreaterThanOrEqual(3)
    // First sent when the pin was requested, failed after the attempts.
    expect(letter.sentAt).toBeGreaterThanOrEqual(requestedAt - 1000)
    expect(letter.failure!.failedAt).toBeGreaterThan(letter.sentAt)
    expect(letter.failure!.failedAt).toBeLessThanOrEqual(Date.now())
    await failedJobs.release(letters.map((l) => l.receipt))
    // Deleted from the dead-letter queue once forwarded (the consumer reports it done).
    await waitUntil(
      async () => (await clients.sqs.send(attributesOf(names.deadLetterQueueUrl))).Attributes,
      (a) => a?.ApproximateNumberOfMessages === '0' && a?.ApproximateNumberOfMessagesNotVisible === '0',
      5_000,
    )
  })

  it('a stalled fetch is retried, with the origins every requester named since', async () => {
    const dag = dagCborDag()
    const missing = dag.byName.leafRaw
    // The first requester's origin lacks one block: the fetch stalls.
    await t.addToOrigin(dag.blocks.filter((b) => b !== missing))
    const cid = contentKey(dag.root)
    await t.api(`/pins/${cid}?origins=${encodeURIComponent(t.originAddrs().join(','))}`, { method: 'POST' })
    const stalled = await waitUntil(
      () => t.pins.get(cid),
      (p) => p?.error?.startsWith('FETCH_STALLED') === true,
    )
    expect(stalled?.status).toBe('queued')
    // A second requester names an origin that has the whole DAG; the retry dials it too.
    const second = await createHeliaNode({ allowPrivateDials: true })
    try {
      for (const b of dag.blocks) await second.blockstore.put(b.cid, b.bytes)
      const addrs = second.libp2p.getMultiaddrs().map(String)
      await t.api(`/pins/${cid}?origins=${encodeURIComponent(addrs.join(','))}`, { method: 'POST' })
      await t.waitForStatus(cid, 'pinned')
    } finally {
      await second.stop()
    }
    const pin = await t.pins.get(cid)
    // At least the stalled attempt and the one that dialled the new origin (a retry may start, and stall,
    // before the second request names it).
    expect(pin?.attempts).toBeGreaterThanOrEqual(2)
    await verifyStoredCar(t.destination, pin!.car!.key, dag.root, dag.blocks)
  })

  it('a DAG over MAX_CAR_BYTES fails at once, without a retry, and stores nothing', async () => {
    const file = await unixfsFile(5 * 1024 * 1024, { seed: 'too-big' })
    await t.addToOrigin(file.blocks)
    const cid = file.root.toString()
    await t.api(`/pins/${cid}?origins=${encodeURIComponent(t.originAddrs().join(','))}`, { method: 'POST' })
    const body = await t.waitForStatus(cid, 'pin_error')
    const peer = Object.values(body.peer_map as Record<string, { error: string; attempt_count: number }>)[0]!
    expect(peer.attempt_count).toBe(1)
    expect(peer.error).toMatch(/^CAR_TOO_LARGE: /)
    expect((await t.pins.get(contentKey(file.root)))?.car).toBeUndefined()
    expect(await listKeys(t.temp)).toEqual([])
  })

  it('a duplicated message stores one copy', async () => {
    const file = await unixfsFile(3 * 1024 * 1024, { seed: 'duplicate' })
    await t.addToOrigin(file.blocks)
    const cid = contentKey(file.root)
    const queue = createSqsPinQueue({
      client: t.system.services.clients.sqs,
      queueUrl: t.system.services.names.pinQueueUrl,
    })
    const before = new Set(await listKeys(t.destination))
    const job = { cid, origins: t.originAddrs() }
    // The record first, as every request writes it before it enqueues; then the same job three times.
    await t.pins.request(cid, job.origins, Date.now())
    await Promise.all([queue.send(job), queue.send(job), queue.send(job)])
    await t.waitForPin(cid, 'pinned')
    // Give the other deliveries time to be handled, then count what was stored.
    await waitUntil(
      async () =>
        (await t.system.services.clients.sqs.send(attributesOf(t.system.services.names.pinQueueUrl)))
          .Attributes,
      (a) => a?.ApproximateNumberOfMessages === '0' && a?.ApproximateNumberOfMessagesNotVisible === '0',
    )
    const added = (await listKeys(t.destination)).filter((k) => !before.has(k))
    expect(added).toHaveLength(1)
    expect(await listKeys(t.temp)).toEqual([])
  })
})

import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs'

function attributesOf(queueUrl: string) {
  return new GetQueueAttributesCommand({
    QueueUrl: queueUrl,
    AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
  })
}
