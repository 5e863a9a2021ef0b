/**
 * The glue between pickup and the two emulators local mode embeds, in one place: fauxqs (SQS and SNS) and
 * dynalite (DynamoDB). Local mode's S3 is pickup's own (./s3-server.ts), served on fauxqs's port.
 *
 * Both packages are pinned to exact versions in package.json (`FAUXQS_VERSION`, `DYNALITE_VERSION`), because
 * this module reaches into fauxqs's internals:
 * - `startFauxqs()` binds 0.0.0.0, so this module uses `buildApp()` and does what `startFauxqs()` does to
 *   enable persistence, with classes the package does not export (its `exports` only has `.`):
 *   `dist/sqs/sqsStore.js` (SqsStore), `dist/sns/snsStore.js` (SnsStore) and `dist/persistence.js`
 *   (PersistenceManager: `loadSqsAndSns`, `updateMessageReady`, `close`, and its private SQLite `db`), plus the
 *   stores' `persistence` fields and `SqsStore.allQueues()`/`createQueue()`. They are imported by URL relative
 *   to the package's entry point and checked on load: a release that moves them fails here, loudly.
 * - Fair delivery (`makeFair`) wraps each standard queue's `dequeue` and reorders its `messages`.
 * - A PersistenceManager bug is patched (`fixUpdateMessageReady`).
 * - S3 requests are taken from fauxqs's Fastify app in an `onRequest` hook (`reply.hijack()`), before fauxqs
 *   reads their bodies, and served by the S3 server.
 * dynalite is CommonJS without types: its factory is loaded with `require` and checked to be a function.
 *
 * test/adapters/local-services.test.ts exercises each of these (persistence and the patched release across a
 * restart, the S3 routing, the pinned versions), and test/e2e/fairness.test.ts the fair order: an upgrade that
 * breaks the glue fails them.
 */

import { mkdirSync, readFileSync } from 'node:fs'
import type { Server } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { type BuildAppOptions, buildApp } from 'fauxqs'
import { groupOfBody, pickFairly } from '../adapters/sqs/fair-order.ts'
import type { S3Server } from './s3-server.ts'

/** The versions this module is written against (package.json pins them exactly). */
export const FAUXQS_VERSION = '2.4.1'
export const DYNALITE_VERSION = '4.0.0'

const HOST = '127.0.0.1'

/** The installed version of a package, read from its package.json. */
export function installedVersion(name: 'fauxqs' | 'dynalite'): string {
  const entry = name === 'fauxqs' ? new URL('../package.json', import.meta.resolve('fauxqs')) : undefined
  const file = entry ?? createRequire(import.meta.url).resolve('dynalite/package.json')
  const pkg: unknown = JSON.parse(readFileSync(file, 'utf8'))
  return String(typeof pkg === 'object' && pkg !== null ? Reflect.get(pkg, 'version') : undefined)
}

// ---------------------------------------------------------------- fauxqs internals

type FauxqsStores = NonNullable<BuildAppOptions['stores']>

/** What this module uses of the stores (a subset of fauxqs's own classes). */
interface SqsStoreInternals {
  persistence?: unknown
  allQueues(): Iterable<{ persistence?: unknown }>
  createQueue(...args: unknown[]): unknown
}

/** A fauxqs standard queue, as `makeFair` uses it (fauxqs's SqsQueue). */
interface FauxqsQueueInternals {
  messages: Array<{ body: string }>
  inflightMessages: Map<string, { message: { body: string } }>
  processTimers(): void
  isFifo(): boolean
  dequeue(maxCount: number, ...rest: unknown[]): unknown
}
interface SnsStoreInternals {
  persistence?: unknown
}
interface PersistenceManagerInternals {
  loadSqsAndSns(sqsStore: unknown, snsStore: unknown): void
  updateMessageReady(messageId: string): void
  close(): void
}

interface FauxqsInternals {
  version: string
  createStores(): {
    stores: FauxqsStores
    sqs: SqsStoreInternals
    sns: SnsStoreInternals
  }
  createPersistenceManager(dir: string): PersistenceManagerInternals
}

function hasMethods<K extends string>(
  value: unknown,
  names: readonly K[],
): value is Record<K, (...args: unknown[]) => unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    names.every((n) => typeof Reflect.get(value, n) === 'function')
  )
}

export async function loadFauxqsInternals(): Promise<FauxqsInternals> {
  const entry = import.meta.resolve('fauxqs')
  const version = installedVersion('fauxqs')
  const load = async (path: string, exportName: string): Promise<new (...args: unknown[]) => unknown> => {
    const mod: unknown = await import(new URL(path, entry).href)
    const ctor: unknown = typeof mod === 'object' && mod !== null ? Reflect.get(mod, exportName) : undefined
    if (typeof ctor !== 'function') {
      throw new Error(
        `fauxqs ${version}: ${path} no longer exports ${exportName}; local/emulators.ts is written against fauxqs ${FAUXQS_VERSION}`,
      )
    }
    return ctor as new (
      ...args: unknown[]
    ) => unknown
  }
  const [SqsStore, SnsStore, PersistenceManager] = await Promise.all([
    load('./sqs/sqsStore.js', 'SqsStore'),
    load('./sns/snsStore.js', 'SnsStore'),
    load('./persistence.js', 'PersistenceManager'),
  ])
  const check = <T>(value: unknown, what: string, methods: readonly string[]): T => {
    if (!hasMethods(value, methods)) {
      throw new Error(
        `fauxqs ${version}: ${what} lacks ${methods.join(', ')}; written against fauxqs ${FAUXQS_VERSION}`,
      )
    }
    return value as T
  }
  return {
    version,
    createStores() {
      const sqs = new SqsStore()
      const sns = new SnsStore()
      return {
        // The constructors are fauxqs's own classes, which buildApp's `stores` option is typed with.
        stores: { sqsStore: sqs, snsStore: sns } as FauxqsStores,
        sqs: check<SqsStoreInternals>(sqs, 'SqsStore', ['allQueues', 'createQueue']),
        sns: check<SnsStoreInternals>(sns, 'SnsStore', ['createTopic']),
      }
    },
    createPersistenceManager(dir) {
      const manager = check<PersistenceManagerInternals>(new PersistenceManager(dir), 'PersistenceManager', [
        'loadSqsAndSns',
        'updateMessageReady',
        'close',
      ])
      fixUpdateMessageReady(manager, version)
      syncLikeDynalite(manager, version)
      return manager
    },
  }
}

/**
 * fauxqs's SQLite runs in WAL mode with `synchronous = FULL`: an fsync for every message sent, received,
 * deleted or made visible again, on local mode's one thread (3 ms each on this project's machine, ~10 ms per
 * job; the largest cost per job started once dynalite's was cut). `NORMAL` commits to the WAL without the
 * fsync: nothing is lost when local mode's process crashes or is killed, only the last moments' changes on an
 * OS crash or power loss, as dynalite's LevelDB (which writes without syncing) already can lose pins and
 * requests; the reconciler re-enqueues a pin left queued without a message.
 */
function syncLikeDynalite(manager: PersistenceManagerInternals, version: string): void {
  const db: unknown = Reflect.get(manager, 'db')
  if (!hasMethods(db, ['exec'])) {
    throw new Error(
      `fauxqs ${version}: PersistenceManager has no SQLite db; written against fauxqs ${FAUXQS_VERSION}`,
    )
  }
  db.exec('PRAGMA synchronous = NORMAL')
}

/**
 * fauxqs 2.4.1 bug: `PersistenceManager.updateMessageReady` (run by ChangeMessageVisibility with a timeout of
 * 0, i.e. every `release(receipt, 0)`) writes NULL into the NOT NULL column `approximate_receive_count`, so
 * with persistence on the request fails with a 500, and the SDK's retry then gets MessageNotInflight.
 * Replaced by a statement that only clears the delivery (receipt and visibility deadline), which is what the
 * loader reads to restore the message as ready. Uses the manager's private `db` (node:sqlite DatabaseSync).
 */
function fixUpdateMessageReady(manager: PersistenceManagerInternals, version: string): void {
  const db: unknown = Reflect.get(manager, 'db')
  if (!hasMethods(db, ['prepare'])) {
    throw new Error(
      `fauxqs ${version}: PersistenceManager has no SQLite db; written against fauxqs ${FAUXQS_VERSION}`,
    )
  }
  const statement = db.prepare(
    'UPDATE sqs_messages SET receipt_handle = NULL, visibility_deadline = NULL WHERE message_id = ?',
  )
  if (!hasMethods(statement, ['run'])) throw new Error('node:sqlite prepare() returned no statement')
  manager.updateMessageReady = (messageId) => {
    statement.run(messageId)
  }
}

/**
 * SQS fair queues on fauxqs, which ignores the MessageGroupId of a standard queue: before each receive, the
 * visible messages the receive will take are moved to the front in fair order (adapters/sqs/fair-order.ts;
 * a message's group is its job's requester, read from the body, where the adapter takes MessageGroupId
 * from). Only the order of deliveries changes: visibility, receive counts, the dead-letter queue and
 * persistence are fauxqs's own. Uses the queue's `messages` (visible, oldest first), `inflightMessages` and
 * `processTimers` (which makes due messages visible).
 */
function makeFair(queue: unknown, version: string): void {
  const q = queue as Partial<FauxqsQueueInternals> & { [FAIR]?: true }
  if (q[FAIR]) return
  if (
    !hasMethods(queue, ['dequeue', 'processTimers', 'isFifo']) ||
    !Array.isArray(q.messages) ||
    !(q.inflightMessages instanceof Map)
  ) {
    throw new Error(
      `fauxqs ${version}: SqsQueue lacks dequeue, processTimers, isFifo, messages or inflightMessages`,
    )
  }
  const fq = queue as unknown as FauxqsQueueInternals
  if (fq.isFifo()) return
  const dequeue = fq.dequeue.bind(fq)
  const groups = new WeakMap<object, string>()
  const groupOf = (m: { body: string }) => {
    let g = groups.get(m)
    if (g === undefined) {
      g = groupOfBody(m.body)
      groups.set(m, g)
    }
    return g
  }
  fq.dequeue = (maxCount, ...rest) => {
    fq.processTimers()
    const visible = fq.messages
    if (visible.length > 1) {
      const inFlight = new Map<string, number>()
      for (const { message } of fq.inflightMessages.values()) {
        const g = groupOf(message)
        inFlight.set(g, (inFlight.get(g) ?? 0) + 1)
      }
      const picked = pickFairly(visible.map(groupOf), inFlight, Math.min(10, maxCount))
      const first = new Set(picked)
      fq.messages = [...picked.map((i) => visible[i]!), ...visible.filter((_, i) => !first.has(i))]
    }
    return dequeue(maxCount, ...rest)
  }
  q[FAIR] = true
}
const FAIR = Symbol('pickup fair queue')

// ---------------------------------------------------------------- dynalite

type DynaliteFactory = (options: {
  path?: string
  createTableMs?: number
  deleteTableMs?: number
  updateTableMs?: number
}) => Server

/** dynalite is CommonJS without types. */
function loadDynalite(): DynaliteFactory {
  const factory: unknown = createRequire(import.meta.url)('dynalite')
  if (typeof factory !== 'function') throw new Error('dynalite does not export a function')
  return factory as DynaliteFactory
}

async function listen(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, HOST, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return (server.address() as AddressInfo).port
}

export interface Emulator {
  endpoint: string
  close(): Promise<void>
}

/** dynalite on 127.0.0.1: in memory, or LevelDB under `dataDir`. */
export async function startDynalite(options: { path?: string; port?: number }): Promise<Emulator> {
  const server = loadDynalite()({
    ...(options.path ? { path: options.path } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  })
  const port = await listen(server, options.port ?? 0)
  return {
    endpoint: `http://${HOST}:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      }),
  }
}

/**
 * fauxqs (SQS, SNS) on 127.0.0.1, every standard queue delivering like an SQS fair queue, persisted in SQLite
 * under `<dataDir>/sqs` when `dataDir` is given; the requests `s3` accepts are served by it on the same port.
 */
export async function startFauxqs(options: {
  dataDir?: string
  region: string
  port?: number
  s3: S3Server
}): Promise<Emulator> {
  const fauxqs = await loadFauxqsInternals()
  const { stores, sqs, sns } = fauxqs.createStores()
  let sqlite: PersistenceManagerInternals | undefined
  if (options.dataDir) {
    // As startFauxqs({ dataDir }) does: load persisted state first, then attach persistence (attaching first
    // would make the load write everything back).
    mkdirSync(options.dataDir, { recursive: true })
    sqlite = fauxqs.createPersistenceManager(join(options.dataDir, 'sqs'))
    sqlite.loadSqsAndSns(stores.sqsStore, stores.snsStore)
    sqs.persistence = sqlite
    sns.persistence = sqlite
    for (const queue of sqs.allQueues()) queue.persistence = sqlite
  }
  try {
    for (const queue of sqs.allQueues()) makeFair(queue, fauxqs.version)
    const createQueue = sqs.createQueue.bind(sqs)
    sqs.createQueue = (...args: unknown[]) => {
      const queue = createQueue(...args)
      makeFair(queue, fauxqs.version)
      return queue
    }
    const app = buildApp({ logger: false, defaultRegion: options.region, stores })
    const { s3 } = options
    app.addHook('onRequest', async (request, reply) => {
      if (!s3.accepts(request.raw)) return
      reply.hijack()
      s3.handle(request.raw, reply.raw)
    })
    const address = await app.listen({ host: HOST, port: options.port ?? 0 })
    return {
      endpoint: new URL(address).origin,
      async close() {
        await app.close()
        sqlite?.close()
      },
    }
  } catch (err) {
    sqlite?.close()
    throw err
  }
}
