/**
 * Lambda entry point of the HTTP API (API Gateway v2, payload format 2.0): the Hono app of api/http/app.ts
 * (the cluster API, the Pinning Service API under /psa and the Collections API under /collections), composed
 * from the environment. The cluster API's credentials come from the SST secret `CLUSTER_BASIC_AUTH_TOKEN`
 * (comma-separated tokens) and the chains collections can be archived from from the SST secret `CHAIN_RPC`
 * (api/lambda/chain-rpc.ts), both read from SSM at cold start by `sst/node/config`, so they never appear in
 * the template or the function's configuration.
 */
import type { Hono } from 'hono'
import { handle } from 'hono/aws-lambda'
import { Config } from 'sst/node/config'
import { createAwsClients } from '../adapters/aws-clients.ts'
import { createStores, resourcesFromEnv } from '../adapters/compose.ts'
import { createLogger } from '../adapters/log.ts'
import { createEmfMetrics } from '../adapters/metrics/emf.ts'
import { parseConfig } from '../core/config.ts'
import { PICKUP_VERSION } from '../core/version.ts'
import { createHttpApp } from './http/app.ts'
import { createCollectionsApi } from './http/collections.ts'
import { chainRpcFromSecret } from './lambda/chain-rpc.ts'
import { httpEnvSchema } from './lambda/env.ts'

declare module 'sst/node/config' {
  export interface SecretResources {
    CLUSTER_BASIC_AUTH_TOKEN: string
  }
}

/**
 * Builds the app from an environment, the accepted Basic auth tokens and the chain ids collections can be
 * archived from (the API only needs to know which; the consumer calls their endpoints).
 */
export function createHttpAppFromEnv(
  env: Record<string, string | undefined>,
  basicAuthTokens: string[],
  chains: ReadonlySet<number>,
): Hono {
  const cfg = parseConfig(httpEnvSchema, env)
  const stores = createStores(createAwsClients(cfg), resourcesFromEnv(cfg))
  const clock = { now: () => Date.now() }
  const log = createLogger('pickup-http')
  const metrics = createEmfMetrics({ namespace: cfg.METRICS_NAMESPACE })
  const fallbackDelegates = cfg.PSA_DELEGATES.split(',')
    .map((a) => a.trim())
    .filter((a) => a.length > 0)
  return createHttpApp(
    {
      cluster: {
        basicAuthTokens,
        peerId: 'pickup',
        peerName: 'pickup',
        allowPrivateOrigins: false,
        version: PICKUP_VERSION,
      },
      psa: { allowPrivateOrigins: false },
      delegates: { cacheMs: 5_000, fallback: () => fallbackDelegates },
    },
    {
      pins: stores.pins(),
      requests: stores.requests(),
      tokens: stores.tokens(),
      queue: stores.pinQueue(),
      clock,
      log,
      metrics,
      health: () => ({ ok: true }),
      workers: stores.workers(),
      collectionsApi: createCollectionsApi({
        collections: stores.collections(),
        requests: stores.requests(),
        pins: stores.pins(),
        queue: stores.pinQueue(),
        clock,
        tokens: stores.tokens(),
        jobs: stores.collectionJobs(),
        chains,
        log: log.child({ fn: 'collections' }),
        metrics,
      }),
    },
  )
}

const tokens = Config.CLUSTER_BASIC_AUTH_TOKEN.split(',')
  .map((t) => t.trim())
  .filter((t) => t.length > 0)
export const handler = handle(createHttpAppFromEnv(process.env, tokens, new Set(chainRpcFromSecret().keys())))
