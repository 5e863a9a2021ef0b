/**
 * The enumeration port: what archiving needs of a chain. The EVM adapter (adapters/evm/enumerate.ts)
 * implements it over JSON-RPC.
 */

export type Standard = 'erc721' | 'erc1155'

/** Where enumeration resumes; plain JSON (block numbers and counts as decimal strings), stored as is. */
export type EnumerationCheckpoint =
  | { standard: 'erc721'; method: 'index'; total: string; next: string }
  | { standard: Standard; method: 'logs'; fromBlock: string; toBlock: string; span: number; maxSpan: number }

export interface EnumeratedToken {
  /** Decimal. */
  tokenId: string
  /** As the contract returns it (`{id}` substituted for ERC-1155). */
  uri?: string
  /** Why the URI could not be read (the call reverted, say). */
  error?: string
}

export interface EnumerationPage {
  standard: Standard
  tokens: EnumeratedToken[]
  /** Resume from here: this page's tokens are included before it. */
  checkpoint: EnumerationCheckpoint
}

export interface CollectionEnumerator {
  /**
   * Pages of tokens from `checkpoint` (from the start without one). A checkpoint whose enumeration had
   * finished continues to what the chain holds now: the tokens minted since (none: no page).
   */
  enumerate(
    input: { chainId: number; address: string; checkpoint?: EnumerationCheckpoint },
    opts?: { signal?: AbortSignal },
  ): AsyncIterable<EnumerationPage>
}
