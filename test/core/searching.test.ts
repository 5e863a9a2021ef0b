/**
 * Content nobody serves must not hold up content that can be served, and deleting stops the work: the real
 * worker loop running the real fetchPin and validator against in-memory ports (SQS semantics, the pin and
 * request stores, buckets) and an in-memory block source where a block nobody holds is never found.
 */
import { CID } from 'multiformats/cid'
import { identity } from 'multiformats/hashes/identity'
import { afterEach, describe, expect, it } from 'vitest'
import { createMemoryEventSink } from '../../adapters/memory/events.ts'
import { createMemoryObjectStore } from '../../adapters/memory/objects.ts'
import { createMemoryPinStore, type MemoryPinStore } from '../../adapters/memory/pins.ts'
import { createMemoryJobQueue, type MemoryJobQueue } from '../../adapters/memory/queue.ts'
import { createMemoryRequestStore } from '../../adapters/memory/requests.ts'
import { type ClaimLane, createClaimLane, DEFAULT_CLAIM_CONCURRENCY } from '../../core/claim-lane.ts'
import { type FetchOutcome, fetchPin } from '../../core/fetch-pin.ts'
import { CANCELLED_ERROR, type Pin } from '../../core/pin.ts'
import { createPinWatcher, type PinWatcher } from '../../core/pin-watch.ts'
import { createPinWorker, type PinWorker } from '../../core/pin-worker.ts'
import type { BlockSource, ObjectStore, RequestStore } from '../../core/ports.ts'
import { promoteCar } from '../../core/promote-car.ts'
import { createPsaRequest, deletePsaRequest } from '../../core/psa-requests.ts'
import { type Block, type Dag, dagCborDag, rawBlock, unixfsFile } from '../fixtures/dags.ts'
import { testFetchLimits } from '../helpers/fetch-limits.ts'
import { createTestLogger } from '../helpers/log.ts'
import { createMemoryBlockSource, type MemoryBlockSource } from '../helpers/memory-block-source.ts'

const log = createTestLogger()
const clock = { now: () => Date.now() }

interface Harness {
  pins: MemoryPinStore
  requests: RequestStore
  queue: MemoryJobQueue
  temp: ObjectStore
  ipfs: MemoryBlockSource
  worker: PinWorker
  claims: ClaimLane
  outcomes: Array<{ cid: string; outcome: FetchOutcome }>
  /** Uploads to the temporary bucket started so far. */
  uploadsStarted(): number
  /** A Pinning Service API request of `user` for the content; returns its requestid. */
  request(cid: CID, user?: string): Promise<string>
  remove(requestid: string, user?: string): Promise<void>
  pin(cid: CID): Promise<Pin | undefined>
}

let running: Array<{ worker: PinWorker; watcher: PinWatcher }> = []
afterEach(async () => {
  for (const r of running) {
    await r.worker.stop(0)
    r.watcher.stop()
  }
  running = []
})

function harness(opts: {
  transferSlots: number
  searchSlots: number
  chunkTimeoutMs?: number
  /** Wraps the block source the worker fetches through. */
  source?: (ipfs: MemoryBlockSource) => BlockSource
  start?: boolean
  /** Claims running at once in the worker's claim lane (DEFAULT_CLAIM_CONCURRENCY, as deployed). */
  claimConcurrency?: number
}): Harness {
  const pins = createMemoryPinStore()
  const requests = createMemoryRequestStore()
  const queue = createMemoryJobQueue({ visibilityTimeoutSeconds: 30 })
  const stored = createMemoryObjectStore({ bucket: 'temp' })
  let uploadsStarted = 0
  const temp: ObjectStore = {
    ...stored,
    put(key, body, putOpts) {
      uploadsStarted++
      return stored.put(key, body, putOpts)
    },
  }
  const destination = createMemoryObjectStore({ bucket: 'cars' })
  const events = createMemoryEventSink()
  const ipfs = createMemoryBlockSource()
  const limits = testFetchLimits({
    maxCarBytes: 16 * 1024 * 1024,
    fetchTimeoutMs: 60_000,
    // Longer than any test: a job nobody serves stays searching until the worker stops.
    fetchChunkTimeoutMs: opts.chunkTimeoutMs ?? 60_000,
  })
  const watcher = createPinWatcher({ intervalMs: limits.progressIntervalMs }, { pins, log })
  const source = opts.source?.(ipfs) ?? ipfs
  const claims = createClaimLane({ concurrency: opts.claimConcurrency ?? DEFAULT_CLAIM_CONCURRENCY })
  let ids = 0
  const outcomes: Harness['outcomes'] = []
  const worker = createPinWorker(
    {
      transferSlots: opts.transferSlots,
      searchSlots: opts.searchSlots,
      visibilityTimeoutSeconds: 30,
      fetchTimeoutMs: limits.fetchTimeoutMs,
      waitSeconds: 1,
      // Failed jobs do not come back during a test.
      retry: { baseDelaySeconds: 600, maxDelaySeconds: 900 },
    },
    {
      queue,
      log,
      run: async (job, signal, control) => {
        const outcome = await fetchPin(
          job,
          limits,
          { pins, temp, ipfs: source, clock, log, newId: () => `attempt${++ids}`, watcher, claims },
          signal,
          control,
        )
        outcomes.push({ cid: job.cid, outcome })
        // The validator, as the S3 event would run it.
        if (outcome.kind === 'uploaded') {
          await promoteCar(
            outcome.key,
            {
              maxCarBytes: limits.maxCarBytes,
              maxAttempts: 3,
              retry: { baseDelaySeconds: 0, maxDelaySeconds: 0 },
            },
            { pins, temp, destination, queue, events, clock, log },
          )
        }
        return outcome
      },
    },
  )
  running.push({ worker, watcher })
  if (opts.start ?? true) worker.start()
  const ctx = { requests, pins, queue, clock }
  return {
    pins,
    requests,
    queue,
    temp,
    ipfs,
    worker,
    claims,
    outcomes,
    uploadsStarted: () => uploadsStarted,
    async request(cid, user = 'alice') {
      const view = await createPsaRequest({ user, pin: { cid: cid.toString(), origins: [], meta: {} } }, ctx)
      return view.request.requestid
    },
    remove: (requestid, user = 'alice') => deletePsaRequest({ user, requestid }, ctx),
    pin: (cid) => pins.get(cid.toV1().toString()),
  }
}

function waitFor(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const started = Date.now()
  return new Promise((resolve, reject) => {
    const tick = async () => {
      if (await check()) return resolve()
      if (Date.now() - started > ms) return reject(new Error('condition not met in time'))
      setTimeout(tick, 10)
    }
    void tick()
  })
}

/** Content no peer serves: its blocks are never added to the block source. */
function unreachable(n: number): Dag[] {
  return Array.from({ length: n }, (_, i) => rawBlock(64, `nobody serves ${i} ${Math.random()}`))
}

async function blocksOf(dag: { blocks: AsyncIterable<Block> }): Promise<Block[]> {
  const out: Block[] = []
  for await (const b of dag.blocks) out.push(b)
  return out
}

async function tempKeys(store: ObjectStore): Promise<string[]> {
  const keys: string[] = []
  for await (const o of store.list()) keys.push(o.key)
  return keys
}

describe('searching does not hold up transferring', () => {
  it('pins a reachable DAG posted after more unreachable jobs than transfer slots, while they still search', async () => {
    const h = harness({ transferSlots: 2, searchSlots: 16 })
    const dead = unreachable(6)
    for (const d of dead) await h.request(d.root)
    await waitFor(() => h.worker.load.searching === 6)

    const dag = dagCborDag()
    h.ipfs.add(dag.blocks)
    await h.request(dag.root)
    await waitFor(async () => (await h.pin(dag.root))?.status === 'pinned')

    // Every unreachable job is still searching: pinned while the others still look.
    expect(h.worker.load).toMatchObject({ searching: 6, transferring: 0 })
    for (const d of dead) {
      const pin = await h.pin(d.root)
      expect(pin?.status).toBe('pinning')
      expect(pin?.progress).toMatchObject({ phase: 'searching', blocks: 0 })
    }
    // It never held more messages than it could search for: the six and nothing else are in flight.
    expect(h.queue.stats()).toEqual({ visible: 0, invisible: 6 })
    // A search holds its want for the root, not an export and an upload: only the found DAG was uploaded.
    expect(h.uploadsStarted()).toBe(1)
  })

  it('lets many jobs that find their content at once wait for a transfer slot without stalling or losing it', async () => {
    // Every block takes 150 ms to arrive; the stall timeout is 400 ms. Three jobs find their root together
    // with one transfer slot: the two that wait do so for longer than the stall timeout, and must not stall.
    let transfers = 0
    let most = 0
    let sawWaiting = false
    const slow = (ipfs: MemoryBlockSource): BlockSource => ({
      ...ipfs,
      async get(cid, o) {
        await new Promise((r) => setTimeout(r, 150))
        return ipfs.get(cid, o)
      },
    })
    const h = harness({ transferSlots: 1, searchSlots: 8, chunkTimeoutMs: 400, source: slow, start: false })
    const files = await Promise.all(
      [1, 2, 3].map((seed) => unixfsFile(12 * 1024, { chunkSize: 1024, seed: `wait ${seed}` })),
    )
    for (const f of files) h.ipfs.add(await blocksOf(f))
    for (const f of files) await h.request(f.root)
    const watch = setInterval(() => {
      transfers = h.worker.load.transferring
      most = Math.max(most, transfers)
      if (h.worker.load.waiting > 0) sawWaiting = true
    }, 5)
    h.worker.start()
    try {
      for (const f of files) await waitFor(async () => (await h.pin(f.root))?.status === 'pinned', 20_000)
    } finally {
      clearInterval(watch)
    }
    expect(sawWaiting).toBe(true)
    expect(most).toBe(1)
    for (const f of files) expect((await h.pin(f.root))?.attempts).toBe(1)
    expect(h.outcomes.map((o) => o.outcome.kind)).toEqual(['uploaded', 'uploaded', 'uploaded'])
  })
})

describe('fairness between requesters', () => {
  it("gives a freed transfer slot to another requester's job before the rest of one requester's backlog", async () => {
    // Every block waits for its gate: the roots one by one, so the order jobs find their content is set, and
    // the rest together, so the first transfer cannot end before every job waits.
    const gates = new Map<string, { opened: Promise<void>; open: () => void }>()
    const gate = (key: string) => {
      let g = gates.get(key)
      if (!g) {
        let open!: () => void
        const opened = new Promise<void>((r) => {
          open = r
        })
        g = { opened, open }
        gates.set(key, g)
      }
      return g
    }
    const gated = (ipfs: MemoryBlockSource): BlockSource => ({
      ...ipfs,
      async get(cid, o) {
        const key = cid.toV1().toString()
        await gate(roots.has(key) ? key : 'leaves').opened
        return ipfs.get(cid, o)
      },
    })
    const roots = new Set<string>()
    const h = harness({ transferSlots: 1, searchSlots: 8, source: gated })
    const theirs = await Promise.all(
      [1, 2, 3].map((seed) => unixfsFile(8 * 1024, { chunkSize: 1024, seed: `busy ${seed}` })),
    )
    const mine = await unixfsFile(8 * 1024, { chunkSize: 1024, seed: 'single' })
    const key = (f: { root: CID }) => f.root.toV1().toString()
    for (const f of [...theirs, mine]) {
      roots.add(key(f))
      h.ipfs.add(await blocksOf(f))
    }
    for (const f of theirs) await h.request(f.root, 'busy')
    await h.request(mine.root, 'single')
    await waitFor(() => h.worker.load.searching === 4)

    // The busy requester's three find their content first: one transfers, two wait; then the single pin.
    for (const [i, f] of theirs.entries()) {
      gate(key(f)).open()
      await waitFor(() => h.worker.load.transferring + h.worker.load.waiting === i + 1)
    }
    gate(key(mine)).open()
    await waitFor(() => h.worker.load.waiting === 3)
    gate('leaves').open()
    for (const f of [...theirs, mine]) await waitFor(async () => (await h.pin(f.root))?.status === 'pinned')

    const uploaded = h.outcomes.filter((o) => o.outcome.kind === 'uploaded').map((o) => o.cid)
    // The slot the first transfer freed went to the single pin, ahead of the two that found content earlier.
    expect(uploaded).toEqual([key(theirs[0]!), key(mine), key(theirs[1]!), key(theirs[2]!)])
  })
})

describe('fairness: a backlog found at once', () => {
  it("receives another requester's job while one requester's backlog fills the search slots waiting for a transfer slot", async () => {
    // Every block but the roots waits behind one gate, so the first transfer cannot end before the backlog's
    // jobs have all found their content and wait.
    let openLeaves!: () => void
    const leaves = new Promise<void>((r) => {
      openLeaves = r
    })
    const roots = new Set<string>()
    const gated = (ipfs: MemoryBlockSource): BlockSource => ({
      ...ipfs,
      async get(cid, o) {
        if (!roots.has(cid.toV1().toString())) await leaves
        return ipfs.get(cid, o)
      },
    })
    const h = harness({ transferSlots: 1, searchSlots: 8, source: gated })
    const key = (f: { root: CID }) => f.root.toV1().toString()
    const theirs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => unixfsFile(4 * 1024, { chunkSize: 1024, seed: `backlog ${i}` })),
    )
    const mine = await unixfsFile(4 * 1024, { chunkSize: 1024, seed: 'single after the backlog' })
    for (const f of [...theirs, mine]) {
      roots.add(key(f))
      h.ipfs.add(await blocksOf(f))
    }
    for (const f of theirs) await h.request(f.root, 'busy')
    // One transfers; every search slot holds a job of the backlog that found its content and waits.
    await waitFor(() => h.worker.load.transferring === 1 && h.worker.load.waiting === 8)
    await h.request(mine.root, 'single')
    openLeaves()
    await waitFor(async () => (await h.pin(mine.root))?.status === 'pinned')

    const uploaded = h.outcomes.filter((o) => o.outcome.kind === 'uploaded').map((o) => o.cid)
    // Received as soon as a search slot freed (the first transfer's end), found at once, and given a transfer
    // slot before the backlog's waiting jobs: among the first few uploads, not after the nine in hand.
    expect(uploaded.indexOf(key(mine))).toBeGreaterThan(0)
    expect(uploaded.indexOf(key(mine))).toBeLessThan(4)
  })
})

describe('deleting cancels', () => {
  it("aborts a deleted request's search, stores nothing, says why, and reuses its slot", async () => {
    const h = harness({ transferSlots: 1, searchSlots: 1 })
    const [dead] = unreachable(1)
    const requestid = await h.request(dead!.root)
    await waitFor(() => h.worker.load.searching === 1)
    // The one search slot is taken: this waits in the queue.
    const dag = dagCborDag()
    h.ipfs.add(dag.blocks)
    await h.request(dag.root, 'bob')
    expect((await h.pin(dag.root))?.status).toBe('queued')

    await h.remove(requestid)
    await waitFor(async () => (await h.pin(dag.root))?.status === 'pinned')
    const pin = await h.pin(dead!.root)
    expect(pin).toMatchObject({ status: 'failed', error: CANCELLED_ERROR })
    expect(pin?.leaseExpires).toBeUndefined()
    expect(h.outcomes[0]).toMatchObject({ cid: dead!.root.toString(), outcome: { kind: 'cancelled' } })
    // Its message was deleted, not released for a retry; nothing of it was uploaded.
    await waitFor(() => h.queue.stats().invisible === 0)
    expect(h.queue.stats()).toEqual({ visible: 0, invisible: 0 })
    expect((await tempKeys(h.temp)).some((k) => k.startsWith(dead!.root.toString()))).toBe(false)
  })

  it('aborts a transfer in progress when its last request goes away', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 1 })
    // The root and some leaves arrive, one leaf never does: the job transfers, then waits for that block.
    const file = await unixfsFile(8 * 1024, { chunkSize: 1024, seed: 'half served' })
    const blocks = await blocksOf(file)
    h.ipfs.add(blocks.slice(1))
    const requestid = await h.request(file.root)
    await waitFor(async () => (await h.pin(file.root))?.progress?.phase === 'transferring')
    expect(h.worker.load.transferring).toBe(1)

    await h.remove(requestid)
    await waitFor(async () => (await h.pin(file.root))?.status === 'failed')
    expect(await h.pin(file.root)).toMatchObject({ status: 'failed', error: CANCELLED_ERROR })
    await waitFor(() => h.worker.load.transferring === 0)
    expect(await tempKeys(h.temp)).toEqual([])

    // The slot is free for the next job.
    const dag = dagCborDag()
    h.ipfs.add(dag.blocks)
    await h.request(dag.root)
    await waitFor(async () => (await h.pin(dag.root))?.status === 'pinned')
  })

  it('drops a queued job for deleted content without fetching it; a new request then pins it', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 4, start: false })
    const dag = dagCborDag()
    h.ipfs.add(dag.blocks)
    const requestid = await h.request(dag.root)
    await h.remove(requestid)
    h.worker.start()
    await waitFor(() => h.outcomes.length === 1)
    expect(h.outcomes[0]!.outcome).toEqual({ kind: 'cancelled' })
    expect(h.ipfs.gets).toBe(0)
    expect(await h.pin(dag.root)).toMatchObject({ status: 'failed', error: CANCELLED_ERROR, attempts: 0 })

    await h.request(dag.root)
    await waitFor(async () => (await h.pin(dag.root))?.status === 'pinned')
  })

  it('pins content deleted while it was searching and requested again', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 4 })
    const dag = dagCborDag()
    const first = await h.request(dag.root)
    await waitFor(async () => (await h.pin(dag.root))?.progress?.phase === 'searching')
    await h.remove(first)
    await waitFor(async () => (await h.pin(dag.root))?.status === 'failed')
    // Asked for again, now that a peer has it.
    h.ipfs.add(dag.blocks)
    await h.request(dag.root, 'bob')
    await waitFor(async () => (await h.pin(dag.root))?.status === 'pinned')
  })

  it('does not lose content asked for again between the abort and the cancel: it is fetched at once', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 4 })
    const dag = dagCborDag()
    // A new request lands just as the stopped attempt records its cancellation.
    const cancel = h.pins.cancel.bind(h.pins)
    h.pins.cancel = async (cid, attemptId, now) => {
      h.ipfs.add(dag.blocks)
      await h.request(dag.root, 'bob')
      return cancel(cid, attemptId, now)
    }
    const first = await h.request(dag.root)
    await waitFor(async () => (await h.pin(dag.root))?.progress?.phase === 'searching')
    await h.remove(first)
    await waitFor(async () => (await h.pin(dag.root))?.status === 'pinned')
    expect(h.outcomes[0]!.outcome).toMatchObject({ kind: 'failed', retryNow: true })
  })
})

describe('claims wait their turn; searches and found content do not', () => {
  /** Holds the claims of the given content until `open` is called (a backed-up pin table, say). */
  function holdClaims(h: Harness, held: Set<string>) {
    let open!: () => void
    const opened = new Promise<void>((r) => {
      open = r
    })
    const claim = h.pins.claim.bind(h.pins)
    h.pins.claim = async (cid, ...rest) => {
      if (held.has(cid)) await opened
      return claim(cid, ...rest)
    }
    return open
  }

  it('searches while its claim waits behind a backlog, and claims content that arrives ahead of it', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 32, claimConcurrency: 1 })
    const dead = unreachable(10)
    const open = holdClaims(h, new Set(dead.map((d) => d.root.toV1().toString())))
    for (const d of dead) await h.request(d.root)
    // One claim runs (held), nine wait their turn; every job searches meanwhile.
    await waitFor(() => h.worker.load.searching === 10 && h.claims.waiting === 9)

    const dag = dagCborDag()
    h.ipfs.add(dag.blocks)
    await h.request(dag.root, 'bob')
    await waitFor(async () => (await h.pin(dag.root))?.status === 'pinned')
    expect((await h.pin(dag.root))?.attempts).toBe(1)
    // Pinned while none of the backlog's claims has run: they are still waiting, the pins still queued.
    expect(h.claims.waiting).toBe(9)
    expect(h.worker.load).toMatchObject({ searching: 10, transferring: 0 })
    for (const d of dead) expect(await h.pin(d.root)).toMatchObject({ status: 'queued', attempts: 0 })

    // Once the table answers, every search is claimed in turn and says so.
    open()
    for (const d of dead) {
      await waitFor(async () => (await h.pin(d.root))?.status === 'pinning')
      expect((await h.pin(d.root))?.progress).toMatchObject({ phase: 'searching', blocks: 0 })
    }
    expect(h.claims.waiting).toBe(0)
  })

  it('records the cancellation of a search deleted before its claim ran, storing nothing', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 8, claimConcurrency: 1 })
    const [blocker, dead] = unreachable(2)
    const open = holdClaims(h, new Set([blocker!.root.toV1().toString()]))
    await h.request(blocker!.root)
    const requestid = await h.request(dead!.root)
    await waitFor(() => h.worker.load.searching === 2 && h.claims.waiting === 1)

    await h.remove(requestid)
    await waitFor(() => h.outcomes.length === 1)
    // Its claim was hurried: it found the content unwanted and recorded why.
    expect(h.outcomes[0]).toEqual({ cid: dead!.root.toV1().toString(), outcome: { kind: 'cancelled' } })
    expect(await h.pin(dead!.root)).toMatchObject({ status: 'failed', error: CANCELLED_ERROR, attempts: 0 })
    expect(await tempKeys(h.temp)).toEqual([])
    expect(h.claims.waiting).toBe(0)
    open()
  })

  it('waits out a busy lease found after the first block, holding no transfer slot, then pins', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 8, claimConcurrency: 1, start: false })
    // The lane's one place is taken by a claim the table does not answer: the job claims after its block.
    const [blocker] = unreachable(1)
    const open = holdClaims(h, new Set([blocker!.root.toV1().toString()]))
    await h.request(blocker!.root)
    const dag = dagCborDag()
    h.ipfs.add(dag.blocks)
    await h.request(dag.root, 'bob')
    // A worker that died holds the pin for a moment more.
    const key = dag.root.toV1().toString()
    const t = Date.now()
    expect((await h.pins.claim(key, 'dead', t + 300, t)).kind).toBe('claimed')
    h.worker.start()

    await waitFor(() => h.outcomes.some((o) => o.cid === key))
    expect(h.outcomes.find((o) => o.cid === key)?.outcome.kind).toBe('busy')
    // While it waits out the lease, its transfer slot is free.
    await waitFor(() => h.worker.load.transferring === 0)
    await waitFor(async () => (await h.pin(dag.root))?.status === 'pinned')
    expect(h.outcomes.filter((o) => o.cid === key).map((o) => o.outcome.kind)).toEqual(['busy', 'uploaded'])
    open()
  })

  it('claims a DAG held entirely in its CID before its upload completes, though it asks for no block', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 8, claimConcurrency: 1 })
    const [blocker] = unreachable(1)
    const open = holdClaims(h, new Set([blocker!.root.toV1().toString()]))
    await h.request(blocker!.root)
    await waitFor(() => h.claims.waiting === 0 && h.worker.load.searching === 1)
    const inline = CID.createV1(0x55, identity.digest(new TextEncoder().encode('held in the CID')))
    await h.request(inline)
    await waitFor(async () => (await h.pin(inline))?.status === 'pinned')
    expect(h.outcomes.find((o) => o.cid === inline.toString())?.outcome.kind).toBe('uploaded')
    expect((await h.pin(inline))?.attempts).toBe(1)
    open()
  })

  it('records a failure not worth a retry found before its claim ran (an unsupported codec)', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 8, claimConcurrency: 1 })
    const [blocker] = unreachable(1)
    const open = holdClaims(h, new Set([blocker!.root.toV1().toString()]))
    await h.request(blocker!.root)
    await waitFor(() => h.claims.waiting === 0 && h.worker.load.searching === 1)
    // git-raw (0x78): refused by the walk before any block is asked for.
    const unsupported = CID.createV1(0x78, blocker!.root.multihash)
    await h.request(unsupported)
    await waitFor(() => h.outcomes.length === 1)
    expect(h.outcomes[0]!.outcome).toMatchObject({
      kind: 'failed',
      code: 'UNSUPPORTED_CODEC',
      retryable: false,
    })
    expect(await h.pin(unsupported)).toMatchObject({ status: 'failed', attempts: 1 })
    open()
  })

  it('gives back the messages of searches stopped before their claims ran, recording nothing', async () => {
    const h = harness({ transferSlots: 1, searchSlots: 8, claimConcurrency: 1 })
    const dead = unreachable(4)
    const open = holdClaims(h, new Set(dead.map((d) => d.root.toV1().toString())))
    for (const d of dead) await h.request(d.root)
    await waitFor(() => h.worker.load.searching === 4 && h.claims.waiting === 3)

    const stopped = h.worker.stop(0)
    // The three that never claimed end at once and write nothing.
    await waitFor(() => h.outcomes.length === 3)
    for (const { outcome } of h.outcomes) {
      expect(outcome).toMatchObject({ kind: 'failed', code: 'SHUTDOWN', retryable: true, attempts: 0 })
    }
    const [first, ...rest] = dead
    for (const d of rest) expect(await h.pin(d.root)).toMatchObject({ status: 'queued', attempts: 0 })
    // The one whose claim the table was answering ends once it has its answer: claimed, then given back.
    open()
    await stopped
    expect(h.outcomes[3]).toMatchObject({
      cid: first!.root.toV1().toString(),
      outcome: { kind: 'failed', code: 'SHUTDOWN', attempts: 1 },
    })
    expect(await h.pin(first!.root)).toMatchObject({ status: 'queued', attempts: 1 })
    expect(h.queue.stats()).toEqual({ visible: 4, invisible: 0 })
  })
})
