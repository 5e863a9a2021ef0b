/**
 * Which EVM chains pickup can enumerate, and through which JSON-RPC endpoint: `CHAIN_RPC_<chainId>=<url>`
 * per chain, or `CHAIN_RPC` holding a JSON map `{"<chainId>": "<url>"}` (one variable for a secret store);
 * a per-chain variable wins over the map. Parsed once at start; every problem is reported together.
 */

export class ChainConfigError extends Error {
  override readonly name = 'ChainConfigError'
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`invalid chain configuration: ${problems.join('; ')}`)
    this.problems = problems
  }
}

export function parseChainRpc(env: Readonly<Record<string, string | undefined>>): Map<number, string> {
  const problems: string[] = []
  const chains = new Map<number, string>()
  const add = (source: string, id: string, url: unknown) => {
    const chainId = Number(id)
    if (!/^[1-9][0-9]{0,15}$/.test(id) || !Number.isSafeInteger(chainId)) {
      problems.push(`${source}: ${JSON.stringify(id)} is not a chain id (a positive integer)`)
      return
    }
    if (typeof url !== 'string' || !isHttpUrl(url)) {
      problems.push(`${source}: the endpoint must be an http(s) URL`)
      return
    }
    chains.set(chainId, url)
  }
  const map = env.CHAIN_RPC
  if (map !== undefined && map.trim() !== '') {
    let parsed: unknown
    try {
      parsed = JSON.parse(map)
    } catch {
      parsed = undefined
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      problems.push('CHAIN_RPC: must be a JSON object mapping chain ids to URLs')
    else for (const [id, url] of Object.entries(parsed)) add(`CHAIN_RPC["${id}"]`, id, url)
  }
  for (const [name, value] of Object.entries(env)) {
    const m = /^CHAIN_RPC_(.+)$/.exec(name)
    if (m?.[1] !== undefined && value !== undefined && value !== '') add(name, m[1], value)
  }
  if (problems.length > 0) throw new ChainConfigError(problems)
  return chains
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text)
    return url.protocol === 'https:' || url.protocol === 'http:'
  } catch {
    return false
  }
}
