/**
 * The chains' JSON-RPC endpoints in AWS: the SST secret `CHAIN_RPC`, a JSON map `{"<chainId>": "<url>"}`
 * (`npx sst secrets set CHAIN_RPC '{"1":"https://…"}' --stage <stage>`), fetched from SSM at cold start by
 * `sst/node/config` for the functions it is bound to (the HTTP API, the collection jobs consumer). The URLs
 * often carry a provider's API key: they are never put in the environment nor logged (a ChainConfigError
 * names the entry, never its value). `{}` configures no chain: every collection is then refused.
 */
import { Config } from 'sst/node/config'
import { parseChainRpc } from '../../core/collections/chains.ts'

declare module 'sst/node/config' {
  export interface SecretResources {
    CHAIN_RPC: string
  }
}

/** The endpoints by chain id; throws a ChainConfigError when the secret is not such a map. */
export function chainRpcFromSecret(): Map<number, string> {
  return parseChainRpc({ CHAIN_RPC: Config.CHAIN_RPC })
}
