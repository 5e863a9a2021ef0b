import { describe, expect, it } from 'vitest'
import { ChainConfigError, parseChainRpc } from '../../../core/collections/chains.ts'

describe('chain endpoints from the environment', () => {
  it('reads CHAIN_RPC_<id> and the CHAIN_RPC map; a per-chain variable wins', () => {
    const chains = parseChainRpc({
      CHAIN_RPC: '{"1":"https://map.example/1","137":"https://map.example/137"}',
      CHAIN_RPC_1: 'https://eth.example/key',
      CHAIN_RPC_31337: 'http://127.0.0.1:8545',
      OTHER: 'x',
    })
    expect(chains).toEqual(
      new Map([
        [1, 'https://eth.example/key'],
        [137, 'https://map.example/137'],
        [31337, 'http://127.0.0.1:8545'],
      ]),
    )
    expect(parseChainRpc({})).toEqual(new Map())
  })

  it('reports every problem together', () => {
    let err: unknown
    try {
      parseChainRpc({
        CHAIN_RPC: '[1]',
        CHAIN_RPC_0: 'https://x',
        CHAIN_RPC_abc: 'https://x',
        CHAIN_RPC_5: 'ftp://x',
      })
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(ChainConfigError)
    expect((err as ChainConfigError).problems).toHaveLength(4)
    expect((err as ChainConfigError).message).toMatch(/CHAIN_RPC: must be a JSON object/)
    expect((err as ChainConfigError).message).toMatch(/CHAIN_RPC_5: the endpoint must be an http\(s\) URL/)
  })
})
