/**
 * Enumerates an NFT collection's tokens and their URIs from an EVM JSON-RPC endpoint.
 *
 * - ERC-165 tells the standard: ERC-1155, or ERC-721 (enumerable or not).
 * - ERC-721 Enumerable: `totalSupply`, then `tokenByIndex(i)` for every index.
 * - ERC-721 otherwise, and ERC-1155: mint logs (`Transfer` / `TransferSingle` / `TransferBatch` from the zero
 *   address) in block ranges that adapt to the provider: halved when it refuses a range as too large, grown
 *   again (never past the smallest range refused) when it answers.
 * - URIs: `tokenURI(id)`, or ERC-1155's `uri(id)` with `{id}` substituted.
 *
 * It yields pages of at most `pageSize` tokens, each with a checkpoint (plain JSON) from which enumeration
 * resumes after a crash or a Lambda timeout: a page is yielded only once its URIs are read, and the
 * checkpoint moves past a block range only with its last page, so a resumed run may yield a page again (its
 * consumer upserts by token id) and never skips one. Memory is bounded by one page and one range's token ids.
 */

import type {
  CollectionEnumerator,
  EnumeratedToken,
  EnumerationCheckpoint,
  EnumerationPage,
  Standard,
} from '../../core/collections/enumeration.ts'
import { substituteId } from '../../core/collections/resolve.ts'
import {
  decodeBool,
  decodeString,
  decodeUint,
  decodeUintArray,
  encodeCall,
  INTERFACES,
  SELECTORS,
  TOPICS,
} from './abi.ts'
import {
  createJsonRpc,
  isLogRangeError,
  type JsonRpc,
  type JsonRpcOptions,
  LogRangeTooLargeError,
  RpcError,
  type RpcRequest,
} from './rpc.ts'

export type { EnumeratedToken, EnumerationCheckpoint, EnumerationPage, Standard }

export class NotAnNftContractError extends Error {
  override readonly name = 'NotAnNftContractError'
  readonly code = 'NOT_AN_NFT_CONTRACT'
}

export interface EnumerateOptions {
  rpc: JsonRpc
  /** The contract, 0x-prefixed. */
  address: string
  /** Where a previous run stopped; absent: from the start. */
  checkpoint?: EnumerationCheckpoint
  /** Tokens per page (and per batch of URI calls). Default 100. */
  pageSize?: number
  /** First block scanned for mint logs (the contract's deployment block, when known). Default 0. */
  startBlock?: bigint
  /** First log range tried, in blocks. Default 10,000. */
  initialSpan?: number
  /**
   * A range whose logs (or token ids) number more than this is followed by one half as long: the logs of
   * one range are held at once, so a provider without a cap of its own does not hand over a dense range's
   * 100,000 mints in one answer twice. Default 10,000.
   */
  maxLogsPerRange?: number
  /** Logs are read up to this block; default the head when enumeration starts. */
  toBlock?: bigint
  signal?: AbortSignal
}

export async function detectStandard(
  rpc: JsonRpc,
  address: string,
  opts: { signal?: AbortSignal } = {},
): Promise<{ standard: Standard; enumerable: boolean }> {
  const code = await rpc.call('eth_getCode', [address, 'latest'], opts)
  if (typeof code !== 'string' || code === '0x' || code === '0x0')
    throw new NotAnNftContractError(`no contract at ${address}`)
  const ids = [
    SELECTORS.supportsInterface,
    INTERFACES.invalid,
    INTERFACES.erc721,
    INTERFACES.erc721Enumerable,
    INTERFACES.erc1155,
  ]
  const answers = await rpc.batch(
    ids.map((id) => ethCall(address, encodeCall(SELECTORS.supportsInterface, [{ bytes4: id }]))),
    opts,
  )
  const yes = answers.map(
    (a) => a.error === undefined && typeof a.result === 'string' && decodeBool(a.result),
  )
  const [erc165, invalid, erc721, enumerable, erc1155] = yes
  if (!erc165 || invalid) throw new NotAnNftContractError(`${address} does not implement ERC-165`)
  if (erc1155) return { standard: 'erc1155', enumerable: false }
  if (erc721) return { standard: 'erc721', enumerable: enumerable === true }
  throw new NotAnNftContractError(`${address} is neither ERC-721 nor ERC-1155`)
}

export async function* enumerateTokens(opts: EnumerateOptions): AsyncGenerator<EnumerationPage> {
  const { rpc, address, signal } = opts
  const pageSize = opts.pageSize ?? 100
  let cp = opts.checkpoint
  if (cp === undefined) {
    const { standard, enumerable } = await detectStandard(rpc, address, { signal })
    if (enumerable) {
      const total = decodeUint(
        String(await rpc.call('eth_call', ethCall(address, SELECTORS.totalSupply).params, { signal })),
      )
      cp = { standard: 'erc721', method: 'index', total: total.toString(), next: '0' }
    } else {
      const head = opts.toBlock ?? BigInt(String(await rpc.call('eth_blockNumber', [], { signal })))
      const span = opts.initialSpan ?? 10_000
      cp = {
        standard,
        method: 'logs',
        fromBlock: (opts.startBlock ?? 0n).toString(),
        toBlock: head.toString(),
        span,
        maxSpan: span,
      }
    }
  } else {
    const moved = await continueFinished(rpc, address, cp, opts.toBlock, signal)
    if (moved === undefined) return // nothing new on chain
    if (moved !== cp && moved.method === 'index' && BigInt(moved.next) >= BigInt(moved.total)) {
      // The supply shrank (burns): resume from the smaller total, so the next mints' indexes are read.
      yield { standard: 'erc721', tokens: [], checkpoint: moved }
      return
    }
    cp = moved
  }
  if (cp.method === 'index') yield* byIndex(rpc, address, cp, pageSize, signal)
  else yield* byLogs(rpc, address, cp, pageSize, opts.maxLogsPerRange ?? MAX_LOGS_PER_RANGE, signal)
}

/**
 * A checkpoint whose enumeration had finished continues to what the chain holds now (following a collection,
 * or posting it again): a log scan from the block after its last one up to the head; an index scan from the
 * last total up to `totalSupply`. Undefined when nothing was added since. An index scan cannot see a token
 * minted after a burn until the supply grows past the old total (ERC721Enumerable fills a burnt token's index
 * with the last token): posting the collection again starts its index scan over.
 */
async function continueFinished(
  rpc: JsonRpc,
  address: string,
  cp: EnumerationCheckpoint,
  toBlock: bigint | undefined,
  signal?: AbortSignal,
): Promise<EnumerationCheckpoint | undefined> {
  if (cp.method === 'logs') {
    if (BigInt(cp.fromBlock) <= BigInt(cp.toBlock)) return cp
    const head = toBlock ?? BigInt(String(await rpc.call('eth_blockNumber', [], { signal })))
    return head >= BigInt(cp.fromBlock) ? { ...cp, toBlock: head.toString() } : undefined
  }
  if (BigInt(cp.next) < BigInt(cp.total)) return cp
  const total = decodeUint(
    String(await rpc.call('eth_call', ethCall(address, SELECTORS.totalSupply).params, { signal })),
  )
  if (total > BigInt(cp.total)) return { ...cp, total: total.toString() }
  if (total < BigInt(cp.total)) return { ...cp, total: total.toString(), next: total.toString() }
  return undefined
}

async function* byIndex(
  rpc: JsonRpc,
  address: string,
  start: Extract<EnumerationCheckpoint, { method: 'index' }>,
  pageSize: number,
  signal?: AbortSignal,
): AsyncGenerator<EnumerationPage> {
  const total = BigInt(start.total)
  for (let next = BigInt(start.next); next < total; ) {
    const end = next + BigInt(pageSize) < total ? next + BigInt(pageSize) : total
    const indexes: bigint[] = []
    for (let i = next; i < end; i++) indexes.push(i)
    const answers = await rpc.batch(
      indexes.map((i) => ethCall(address, encodeCall(SELECTORS.tokenByIndex, [{ uint256: i }]))),
      { signal },
    )
    const ids: bigint[] = []
    answers.forEach((a, k) => {
      // An index past the supply (tokens burnt since totalSupply was read) reverts: nothing there.
      if (a.error === undefined && typeof a.result === 'string' && a.result.length > 2)
        ids.push(decodeUint(a.result))
      else if (a.error !== undefined && !isRevert(a.error))
        throw new RpcError(a.error.code, `tokenByIndex(${indexes[k]}): ${a.error.message}`)
    })
    const tokens = await readUris(rpc, address, 'erc721', ids, signal)
    next = end
    yield { standard: 'erc721', tokens, checkpoint: { ...start, next: next.toString() } }
  }
}

async function* byLogs(
  rpc: JsonRpc,
  address: string,
  start: Extract<EnumerationCheckpoint, { method: 'logs' }>,
  pageSize: number,
  maxLogs: number,
  signal?: AbortSignal,
): AsyncGenerator<EnumerationPage> {
  const { standard } = start
  const to = BigInt(start.toBlock)
  let from = BigInt(start.fromBlock)
  let span = start.span
  let maxSpan = start.maxSpan
  const topics =
    standard === 'erc721'
      ? [TOPICS.transfer, TOPICS.zeroAddress]
      : [[TOPICS.transferSingle, TOPICS.transferBatch], null, TOPICS.zeroAddress]
  while (from <= to) {
    const end = from + BigInt(span) - 1n < to ? from + BigInt(span) - 1n : to
    let logs: unknown
    try {
      logs = await getLogs(rpc, { address, fromBlock: hex(from), toBlock: hex(end), topics }, signal)
    } catch (err) {
      if (!(err instanceof LogRangeTooLargeError)) throw err
      if (span <= 1)
        throw new RpcError(-32005, `the provider refuses even a one-block log query: ${err.message}`)
      maxSpan = Math.max(1, Math.min(maxSpan, Number(end - from)))
      span = Math.max(1, Math.floor(span / 2))
      continue
    }
    const ids = mintedIds(standard, logs)
    const dense = Math.max(ids.length, Array.isArray(logs) ? logs.length : 0) > maxLogs
    const nextSpan = dense ? Math.max(1, Math.floor(span / 2)) : Math.min(span * 2, maxSpan)
    const next = { ...start, fromBlock: (end + 1n).toString(), span: nextSpan, maxSpan }
    const here = { ...start, fromBlock: from.toString(), span, maxSpan }
    for (let i = 0; i < ids.length; i += pageSize) {
      const last = i + pageSize >= ids.length
      const tokens = await readUris(rpc, address, standard, ids.slice(i, i + pageSize), signal)
      yield { standard, tokens, checkpoint: last ? next : here }
    }
    if (ids.length === 0) yield { standard, tokens: [], checkpoint: next }
    from = end + 1n
    span = next.span
  }
}

const MAX_LOGS_PER_RANGE = 10_000

async function getLogs(rpc: JsonRpc, filter: object, signal?: AbortSignal): Promise<unknown> {
  try {
    return await rpc.call('eth_getLogs', [filter], { signal })
  } catch (err) {
    if (err instanceof RpcError && isLogRangeError(err)) throw new LogRangeTooLargeError(err.message)
    throw err
  }
}

/** Token ids minted in these logs, each once, in log order. */
function mintedIds(standard: Standard, logs: unknown): bigint[] {
  if (!Array.isArray(logs)) throw new RpcError(-32603, 'eth_getLogs answered with no array')
  const seen = new Set<bigint>()
  for (const log of logs) {
    if (typeof log !== 'object' || log === null) continue
    const { topics, data } = log as { topics?: unknown; data?: unknown }
    if (!Array.isArray(topics) || typeof topics[0] !== 'string') continue
    const topic0 = topics[0].toLowerCase()
    if (standard === 'erc721') {
      // ERC-20's Transfer has the same signature but 3 topics (the amount is data): not a token.
      if (topic0 === TOPICS.transfer && topics.length === 4 && typeof topics[3] === 'string')
        seen.add(BigInt(topics[3]))
    } else if (typeof data === 'string') {
      if (topic0 === TOPICS.transferSingle) seen.add(decodeUint(data, 0))
      else if (topic0 === TOPICS.transferBatch) for (const id of decodeUintArray(data, 0)) seen.add(id)
    }
  }
  return [...seen]
}

async function readUris(
  rpc: JsonRpc,
  address: string,
  standard: Standard,
  ids: readonly bigint[],
  signal?: AbortSignal,
): Promise<EnumeratedToken[]> {
  if (ids.length === 0) return []
  const selector = standard === 'erc721' ? SELECTORS.tokenURI : SELECTORS.uri
  const answers = await rpc.batch(
    ids.map((id) => ethCall(address, encodeCall(selector, [{ uint256: id }]))),
    { signal },
  )
  return ids.map((id, k): EnumeratedToken => {
    const a = answers[k]
    const tokenId = id.toString()
    if (a === undefined) return { tokenId, error: 'no answer' }
    if (a.error !== undefined) {
      if (!isRevert(a.error))
        throw new RpcError(a.error.code, `reading the URI of token ${tokenId}: ${a.error.message}`)
      return { tokenId, error: `the URI call reverted: ${a.error.message}` }
    }
    try {
      const uri = decodeString(String(a.result))
      return standard === 'erc1155' ? { tokenId, uri: substituteId(uri, id) } : { tokenId, uri }
    } catch (err) {
      return { tokenId, error: `the URI is not an ABI string: ${(err as Error).message}` }
    }
  })
}

/** A call the contract refused (revert, invalid opcode): an answer about the token, not a provider failure. */
function isRevert(err: RpcError): boolean {
  return err.code === 3 || /revert|execution|invalid opcode|out of gas/i.test(err.message)
}

function ethCall(to: string, data: string): RpcRequest {
  return { method: 'eth_call', params: [{ to, data }, 'latest'] }
}

function hex(n: bigint): string {
  return `0x${n.toString(16)}`
}

/** The enumeration port over the configured endpoints (core/collections/chains.ts), one client per chain. */
export function createEvmEnumerator(opts: {
  chains: ReadonlyMap<number, string>
  pageSize?: number
  rpc?: Omit<JsonRpcOptions, 'url'>
}): CollectionEnumerator {
  const clients = new Map<number, JsonRpc>()
  const client = (chainId: number): JsonRpc => {
    const url = opts.chains.get(chainId)
    if (url === undefined)
      throw new NotAnNftContractError(`no JSON-RPC endpoint is configured for chain ${chainId}`)
    let rpc = clients.get(chainId)
    if (!rpc) {
      rpc = createJsonRpc({ ...opts.rpc, url })
      clients.set(chainId, rpc)
    }
    return rpc
  }
  return {
    enumerate(input, callOpts = {}) {
      return enumerateTokens({
        rpc: client(input.chainId),
        address: input.address,
        ...(input.checkpoint ? { checkpoint: input.checkpoint } : {}),
        ...(opts.pageSize ? { pageSize: opts.pageSize } : {}),
        ...(callOpts.signal ? { signal: callOpts.signal } : {}),
      })
    },
  }
}
