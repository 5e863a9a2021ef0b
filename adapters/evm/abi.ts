/**
 * The little of the Solidity ABI that enumerating an NFT collection needs: calls taking uint256 / bytes4 /
 * string arguments, and uint256, bool, string and uint256[] results. Selectors and event topics are fixed
 * constants (keccak-256 of the signatures), so no hashing library is needed at run time.
 */

export const SELECTORS = {
  /** supportsInterface(bytes4) */
  supportsInterface: '0x01ffc9a7',
  /** totalSupply() */
  totalSupply: '0x18160ddd',
  /** tokenByIndex(uint256) */
  tokenByIndex: '0x4f6ccce7',
  /** tokenURI(uint256) */
  tokenURI: '0xc87b56dd',
  /** uri(uint256) */
  uri: '0x0e89341c',
} as const

/** ERC-165 interface ids. */
export const INTERFACES = {
  erc721: '0x80ac58cd',
  erc721Enumerable: '0x780e9d63',
  erc721Metadata: '0x5b5e139f',
  erc1155: '0xd9b67a26',
  erc1155MetadataUri: '0x0e89341c',
  /** Must be refused by any ERC-165 contract (EIP-165's second check). */
  invalid: '0xffffffff',
} as const

export const TOPICS = {
  /** Transfer(address,address,uint256): ERC-721's, with the token id indexed (ERC-20's has 3 topics). */
  transfer: '0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef',
  /** TransferSingle(address,address,address,uint256,uint256) */
  transferSingle: '0xc3d58168c5ae7397731d063d5bbf3d657854427343f4c083240f7aacaa2d0f62',
  /** TransferBatch(address,address,address,uint256[],uint256[]) */
  transferBatch: '0x4a39dc06d4c0dbc64b70af90fd698a233a518aa5d07e595d983b8c0526c8f7fb',
  /** The zero address as a topic: `from` of a mint. */
  zeroAddress: `0x${'0'.repeat(64)}`,
} as const

export type AbiArg = { uint256: bigint } | { bytes4: string } | { string: string }

/** `selector` followed by the ABI encoding of `args` (static heads, then the dynamic tails). */
export function encodeCall(selector: string, args: readonly AbiArg[] = []): string {
  return `${selector}${encodeArgs(args)}`
}

export function encodeArgs(args: readonly AbiArg[]): string {
  const heads: string[] = []
  const tails: string[] = []
  let tailOffset = args.length * 32
  for (const arg of args) {
    if ('uint256' in arg) heads.push(word(arg.uint256))
    else if ('bytes4' in arg) heads.push(arg.bytes4.replace(/^0x/, '').padEnd(64, '0'))
    else {
      heads.push(word(BigInt(tailOffset)))
      const bytes = Buffer.from(arg.string, 'utf8')
      const padded = bytes.toString('hex').padEnd(Math.ceil(bytes.length / 32) * 64, '0')
      tails.push(word(BigInt(bytes.length)) + padded)
      tailOffset += 32 + Math.ceil(bytes.length / 32) * 32
    }
  }
  return heads.join('') + tails.join('')
}

function word(n: bigint): string {
  if (n < 0n || n >= 2n ** 256n) throw new RangeError(`not a uint256: ${n}`)
  return n.toString(16).padStart(64, '0')
}

export class AbiDecodeError extends Error {
  override readonly name = 'AbiDecodeError'
}

function hexBody(data: string): string {
  const body = data.replace(/^0x/, '')
  if (body.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(body)) throw new AbiDecodeError('not hex data')
  return body
}

function wordAt(body: string, index: number): bigint {
  const start = index * 64
  if (body.length < start + 64) throw new AbiDecodeError('data shorter than its encoding says')
  return BigInt(`0x${body.slice(start, start + 64)}`)
}

export function decodeUint(data: string, index = 0): bigint {
  return wordAt(hexBody(data), index)
}

export function decodeBool(data: string): boolean {
  const body = hexBody(data)
  // A contract without the function may answer with empty data, or fall back to something else: only a
  // well-formed `true` counts.
  return body.length === 64 && wordAt(body, 0) === 1n
}

/** Longest string result decoded (a token URI can be an on-chain data: URI of some size). */
const MAX_STRING_BYTES = 4 * 1024 * 1024

/** A `string` return value (ABI: offset, length, bytes). */
export function decodeString(data: string): string {
  const body = hexBody(data)
  const offset = Number(wordAt(body, 0))
  if (offset % 32 !== 0) throw new AbiDecodeError('misaligned string offset')
  const length = wordAt(body, offset / 32)
  if (length > BigInt(MAX_STRING_BYTES))
    throw new AbiDecodeError(`string longer than ${MAX_STRING_BYTES} bytes`)
  const start = (offset + 32) * 2
  const end = start + Number(length) * 2
  if (body.length < end) throw new AbiDecodeError('data shorter than its string length')
  return Buffer.from(body.slice(start, end), 'hex').toString('utf8')
}

/** The `index`th dynamic `uint256[]` of a tuple (TransferBatch's data: ids, values). */
export function decodeUintArray(data: string, index: number): bigint[] {
  const body = hexBody(data)
  const offset = Number(wordAt(body, index))
  if (offset % 32 !== 0) throw new AbiDecodeError('misaligned array offset')
  const first = offset / 32
  const length = Number(wordAt(body, first))
  if (body.length < (first + 1 + length) * 64) throw new AbiDecodeError('data shorter than its array length')
  const out: bigint[] = []
  for (let i = 0; i < length; i++) out.push(wordAt(body, first + 1 + i))
  return out
}
