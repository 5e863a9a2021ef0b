/**
 * BlockSource over a kubo node's RPC API. kubo fetches over bitswap itself; the bytes it returns are hashed
 * here again and compared with the CID, so a faulty or hostile RPC endpoint cannot slip a wrong block into
 * a CAR. A block get that goes unanswered is cancelled and issued again (core/reask.ts): kubo then wants it
 * anew, from its connected peers and through a provider lookup.
 *
 * `get` is the hot path (one RPC per block, FETCH_CONCURRENCY at once): it is a plain node:http POST to
 * `block/get` over a keep-alive agent, the answer collected as Buffers. kubo-rpc-client's `block.get`
 * (undici fetch, a WHATWG stream, an ArrayBuffer copy) cost the sidecar 2-3x the CPU for the same bytes
 * (bench/kubo-fetch.ts). The rest (connects, addresses) goes through kubo-rpc-client.
 *
 * **Prefetch.** Each `block/get` is its own bitswap session in kubo (a want broadcast, then the block), so a
 * walk of block/gets alone could run at a fraction of kubo's own DAG fetch. With `prefetch` (off by default), the
 * first get of a walk also starts `refs?recursive=true&unique=true` on that block (the walk's root), which
 * makes kubo fetch the whole DAG itself, in parallel, in one session, pinning nothing; the walk's gets then
 * mostly find their blocks already in kubo's blockstore. A walk is recognised by its AbortSignal: exportCar
 * passes one signal to every get of an export and aborts it when the export ends (done, failed, too large,
 * stalled, timed out or abandoned), which cancels the prefetch too. The walk stays the source of truth:
 * progress, MAX_CAR_BYTES, the stall and time limits and block verification all work on it as before; kubo
 * may hold blocks the prefetch fetched ahead of a walk that was stopped (until `repo gc`). Measured by
 * bench/kubo-fetch.ts it did not make walks faster on loopback (the per-block RPCs, not bitswap, bound the
 * walk there), so it stays off until it is measured against remote origins.
 */
import { Agent, type IncomingMessage, request } from 'node:http'
import { multiaddr } from '@multiformats/multiaddr'
import { create } from 'kubo-rpc-client'
import type { CID } from 'multiformats/cid'
import { IpfsUnavailableError } from '../../core/errors.ts'
import { checkHash, verifyBlock } from '../../core/hash-policy.ts'
import type { BlockSource, Logger } from '../../core/ports.ts'
import { type ReaskingBlockSource, type ReaskOptions, withReasking } from '../../core/reask.ts'

export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000
/** The largest answer to a block/get accepted: kubo itself refuses blocks over 2 MiB from bitswap. */
export const MAX_BLOCK_BYTES = 8 * 1024 * 1024

export interface KuboBlockSourceOptions {
  /** The RPC API, e.g. `http://127.0.0.1:5001`. */
  url: string
  log: Logger
  /** Each `swarm/connect` gives up after this long. Default 10 s. */
  connectTimeoutMs?: number
  /**
   * Have kubo fetch the DAG under a walk's first block itself (`refs -r --unique`). Default false. A walk is
   * recognised by the signal its gets share: use it with `reask: false` (re-asking gives each get its own).
   */
  prefetch?: boolean
  /** Asking again for unanswered blocks (core/reask.ts); `false` turns it off. */
  reask?: ReaskOptions | false
}

/**
 * Throws unless `bytes` are the block the CID names, under pickup's one hash policy (core/hash-policy.ts):
 * kubo can fetch blocks hashed with functions the validator refuses; those fail here, permanently.
 */
export { verifyBlock } from '../../core/hash-policy.ts'

export function createKuboBlockSource(opts: KuboBlockSourceOptions): ReaskingBlockSource {
  const { log } = opts
  const connectTimeoutMs = opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  const client = create({ url: opts.url })
  const api = new URL(opts.url)
  // Keep-alive: a connection per block in flight, reused from block to block and job to job.
  const agent = new Agent({ keepAlive: true })
  const prefetch = opts.prefetch ?? false
  /** The signals of the walks a prefetch was started for (one signal per export). */
  const walks = new WeakSet<AbortSignal>()

  /** Streams `refs` of the DAG under `root` to nowhere, until it ends or `signal` aborts. Never throws. */
  async function prefetchDag(root: CID, signal: AbortSignal): Promise<void> {
    const started = Date.now()
    try {
      const query = { arg: root.toString(), recursive: 'true', unique: 'true' }
      const res = await post(api, agent, 'refs', query, signal)
      let refs = 0
      for await (const chunk of res as AsyncIterable<Buffer>) {
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) refs++
      }
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`)
      log.debug({ root: root.toString(), refs, ms: Date.now() - started }, 'kubo prefetched the DAG')
    } catch (err) {
      if (signal.aborted) return
      const reason = err instanceof Error ? err.message : String(err)
      log.debug({ root: root.toString(), ms: Date.now() - started, err: reason }, 'kubo prefetch ended early')
    }
  }

  async function connectOne(addr: string, signal: AbortSignal | undefined): Promise<void> {
    const started = Date.now()
    try {
      const timeout = AbortSignal.timeout(connectTimeoutMs)
      await client.swarm.connect(multiaddr(addr), {
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      })
      log.debug({ addr, ms: Date.now() - started }, 'kubo connected to origin')
    } catch (err) {
      log.warn(
        { addr, ms: Date.now() - started, err: err instanceof Error ? err.message : String(err) },
        'kubo could not connect to origin',
      )
    }
  }

  const source: BlockSource = {
    async connect(addrs, connectOpts) {
      await Promise.all(addrs.map((addr) => connectOne(addr, connectOpts?.signal)))
    },

    async get(cid, getOpts) {
      // A hash the validator would refuse is refused before kubo spends a fetch on it.
      checkHash(cid)
      const signal = getOpts?.signal
      if (prefetch && signal && !signal.aborted && !walks.has(signal)) {
        walks.add(signal)
        void prefetchDag(cid, signal)
      }
      let bytes: Uint8Array
      try {
        bytes = await blockGet(api, agent, cid, getOpts?.signal)
      } catch (err) {
        throw unreachable(err) ?? err
      }
      verifyBlock(cid, bytes)
      return bytes
    },

    async multiaddrs() {
      const { id, addresses } = await client.id().catch((err: unknown) => {
        throw unreachable(err) ?? err
      })
      const peer = id.toString()
      return addresses.map((ma) => {
        const text = ma.toString()
        return text.includes('/p2p/') ? text : `${text}/p2p/${peer}`
      })
    },
  }
  if (opts.reask === false) return Object.assign(source, { reasks: () => 0 })
  return withReasking(source, { log, ...opts.reask })
}

/**
 * POST /api/v0/block/get?arg=<cid>: the block's bytes, or kubo's error (`{ Message }` with a 500) as an
 * Error with that message. A keep-alive connection kubo closed while idle is retried once on a new one.
 */
async function blockGet(
  api: URL,
  agent: Agent,
  cid: CID,
  signal: AbortSignal | undefined,
): Promise<Uint8Array> {
  for (let attempt = 0; ; attempt++) {
    const reused = { value: false }
    try {
      const res = await post(api, agent, 'block/get', { arg: cid.toString() }, signal, reused)
      const chunks: Buffer[] = []
      let length = 0
      for await (const chunk of res as AsyncIterable<Buffer>) {
        length += chunk.length
        if (length > MAX_BLOCK_BYTES) {
          res.destroy()
          throw new Error(`kubo block/get ${cid}: an answer over ${MAX_BLOCK_BYTES} bytes`)
        }
        chunks.push(chunk)
      }
      // kubo went away mid-answer (killed, restarting): a lost connection, not a short block.
      if (!res.complete) {
        throw Object.assign(new Error(`kubo closed the connection during block/get ${cid}`), {
          code: 'ECONNRESET',
        })
      }
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length)
      if (res.statusCode !== 200)
        throw new Error(`kubo block/get ${cid}: ${kuboMessage(res.statusCode, body)}`)
      const streamError = res.trailers['x-stream-error']
      if (streamError) throw new Error(`kubo block/get ${cid}: ${streamError}`)
      return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
    } catch (err) {
      // Cancelled: the caller's reason, not the reset connection it looks like.
      if (signal?.aborted) throw signal.reason
      const code = (err as { code?: unknown }).code
      if (attempt === 0 && reused.value && code === 'ECONNRESET') continue
      throw err
    }
  }
}

/** POST /api/v0/<path>?<query> over `agent`: the response, once its head has arrived. */
function post(
  api: URL,
  agent: Agent,
  path: string,
  query: Record<string, string>,
  signal: AbortSignal | undefined,
  reused?: { value: boolean },
): Promise<IncomingMessage> {
  const url = new URL(`api/v0/${path}`, api.href.endsWith('/') ? api : `${api.href}/`)
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v)
  return new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, signal }, resolve)
    req.once('socket', () => {
      if (reused) reused.value = req.reusedSocket
    })
    req.once('error', reject)
    req.end()
  })
}

/** kubo's error answer `{ Message, Code, Type }`, or the status and the start of whatever it was. */
function kuboMessage(status: number | undefined, body: Buffer): string {
  const text = body.toString('utf8')
  try {
    const message = (JSON.parse(text) as { Message?: unknown }).Message
    if (typeof message === 'string') return message
  } catch {
    // not kubo's JSON
  }
  return `HTTP ${status}: ${text.slice(0, 200)}`
}

/** Errors of the HTTP connection to kubo itself (refused, reset, closed mid-answer), as a connection error. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
])

/** An IpfsUnavailableError when `err` says kubo's RPC API could not be reached or dropped the connection. */
function unreachable(err: unknown): IpfsUnavailableError | undefined {
  for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && CONNECTION_CODES.has(code))
      return new IpfsUnavailableError(`${code}: ${e.message}`)
  }
  return undefined
}
