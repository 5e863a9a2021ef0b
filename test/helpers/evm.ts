/**
 * A real EVM node for the collection tests: anvil (Foundry's node, from npm, Cancun by default) as a child
 * process, and NFT contracts compiled here from OpenZeppelin 5 sources by solc-js, deployed and driven through
 * anvil's unlocked accounts (eth_sendTransaction: no signing needed).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { type AbiArg, encodeArgs } from '../../adapters/evm/abi.ts'
import { createJsonRpc, type JsonRpc } from '../../adapters/evm/rpc.ts'
import { waitFor } from './wait.ts'

const require = createRequire(import.meta.url)

export const NFT_SOURCES = `// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC721Enumerable} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721Enumerable.sol";
import {ERC721URIStorage} from "@openzeppelin/contracts/token/ERC721/extensions/ERC721URIStorage.sol";
import {ERC1155} from "@openzeppelin/contracts/token/ERC1155/ERC1155.sol";

/** Enumerable; every token's URI is the base URI (a directory) followed by its id. */
contract Enumerable721 is ERC721Enumerable {
  string private base;
  constructor(string memory base_) ERC721("Enumerable", "E") { base = base_; }
  function _baseURI() internal view override returns (string memory) { return base; }
  function mint(uint256 first, uint256 count) external {
    for (uint256 i = 0; i < count; i++) _mint(msg.sender, first + i);
  }
}

/** Not enumerable; a URI per token. */
contract Plain721 is ERC721URIStorage {
  constructor() ERC721("Plain", "P") {}
  function mint(uint256 id, string calldata uri) external { _mint(msg.sender, id); _setTokenURI(id, uri); }
}

/** One URI with {id} for every token. */
contract Multi1155 is ERC1155 {
  constructor(string memory uri_) ERC1155(uri_) {}
  function mint(uint256 id, uint256 amount) external { _mint(msg.sender, id, amount, ""); }
  function mintRange(uint256 first, uint256 count) external {
    uint256[] memory ids = new uint256[](count);
    uint256[] memory amounts = new uint256[](count);
    for (uint256 i = 0; i < count; i++) { ids[i] = first + i; amounts[i] = 1; }
    _mintBatch(msg.sender, ids, amounts, "");
  }
}
`

export interface CompiledContract {
  bytecode: string
  /** Function signature -> 4-byte selector (hex, no 0x), as solc computes them. */
  methods: Record<string, string>
}

export function compileNftContracts(): Record<'Enumerable721' | 'Plain721' | 'Multi1155', CompiledContract> {
  const solc = require('solc') as { compile(input: string, opts: object): string }
  const ozRoot = dirname(dirname(dirname(require.resolve('@openzeppelin/contracts/package.json'))))
  const input = {
    language: 'Solidity',
    sources: { 'Nft.sol': { content: NFT_SOURCES } },
    settings: {
      evmVersion: 'cancun',
      optimizer: { enabled: false },
      outputSelection: { '*': { '*': ['evm.bytecode.object', 'evm.methodIdentifiers'] } },
    },
  }
  const findImports = (path: string) => {
    try {
      return { contents: readFileSync(join(ozRoot, path), 'utf8') }
    } catch {
      return { error: `not found: ${path}` }
    }
  }
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports })) as {
    errors?: Array<{ severity: string; formattedMessage: string }>
    contracts: Record<
      string,
      Record<string, { evm: { bytecode: { object: string }; methodIdentifiers: Record<string, string> } }>
    >
  }
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0) throw new Error(errors.map((e) => e.formattedMessage).join('\n'))
  const pick = (name: string): CompiledContract => {
    const c = output.contracts['Nft.sol']?.[name]
    if (c === undefined) throw new Error(`solc produced no ${name}`)
    return { bytecode: `0x${c.evm.bytecode.object}`, methods: c.evm.methodIdentifiers }
  }
  return { Enumerable721: pick('Enumerable721'), Plain721: pick('Plain721'), Multi1155: pick('Multi1155') }
}

export interface Anvil {
  url: string
  rpc: JsonRpc
  account: string
  deploy(contract: CompiledContract, args?: AbiArg[]): Promise<string>
  /** Sends a transaction calling `signature` (mined at once: one block per transaction). */
  send(contract: CompiledContract, address: string, signature: string, args?: AbiArg[]): Promise<void>
  /** Mines empty blocks. */
  mine(blocks: number): Promise<void>
  stop(): Promise<void>
}

function anvilBinary(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch
  const pkg = require.resolve(`@foundry-rs/anvil-${process.platform}-${arch}/package.json`)
  return join(dirname(pkg), 'bin', 'anvil')
}

export async function startAnvil(): Promise<Anvil> {
  const child: ChildProcess = spawn(
    anvilBinary(),
    ['--port', '0', '--hardfork', 'cancun', '--host', '127.0.0.1'],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const m = /Listening on (\S+:\d+)/.exec(out)
      if (m?.[1] !== undefined) resolve(`http://${m[1]}`)
    })
    child.once('exit', (code) =>
      reject(new Error(`anvil exited (${code}) before listening: ${out.slice(-500)}`)),
    )
  })
  child.stdout?.resume()
  const rpc = createJsonRpc({ url, retries: 0 })
  const accounts = (await rpc.call('eth_accounts', [])) as string[]
  const account = accounts[0]
  if (account === undefined) throw new Error('anvil has no accounts')

  async function transact(to: string | undefined, data: string): Promise<Record<string, unknown>> {
    const hash = await rpc.call('eth_sendTransaction', [
      { from: account, ...(to ? { to } : {}), data, gas: '0x1c9c380' },
    ])
    // Automining is asynchronous to the send: the receipt appears once the block is mined.
    const receipt = await waitFor('the transaction to be mined', async () => {
      const r = (await rpc.call('eth_getTransactionReceipt', [hash])) as Record<string, unknown> | null
      return r ?? undefined
    })
    if (receipt.status !== '0x1') throw new Error(`transaction failed: ${JSON.stringify(receipt)}`)
    return receipt
  }

  return {
    url,
    rpc,
    account,
    async deploy(contract, args = []) {
      const receipt = await transact(undefined, contract.bytecode + encodeArgs(args))
      return String(receipt.contractAddress)
    },
    async send(contract, address, signature, args = []) {
      const selector = contract.methods[signature]
      if (selector === undefined) throw new Error(`no method ${signature}`)
      await transact(address, `0x${selector}${encodeArgs(args)}`)
    },
    async mine(blocks) {
      await rpc.call('anvil_mine', [`0x${blocks.toString(16)}`])
    },
    async stop() {
      if (child.exitCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      await exited
    },
  }
}
