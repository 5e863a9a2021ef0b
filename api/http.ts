/**
 * Lambda entry point of the HTTP API (API Gateway v2, payload format 2.0): the Hono app of api/http/app.ts
 * (the cluster API, and the Pinning Service API under /psa), composed from the environment. The cluster
 * API's credentials come from the SST secret `CLUSTER_BASIC_AUTH_TOKEN` (comma-separated tokens; read from
 * SSM at cold start by `sst/node/config`), so they never appear in the template or the function's
 * configuration.
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
import { httpEnvSchema } from './lambda/env.ts'

declare module 'sst/node/config' {
  export interface SecretResources {
    CLUSTER_BASIC_AUTH_TOKEN: string
  }
}

/** Builds the app from an environment and the accepted Basic auth tokens. */
export function createHttpAppFromEnv(
  env: Record<string, string | undefined>,
  basicAuthTokens: string[],
): Hono {
  const cfg = parseConfig(httpEnvSchema, env)
  const stores = createStores(createAwsClients(cfg), resourcesFromEnv(cfg))
  const clock = { now: () => Date.now() }
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
      log: createLogger('pickup-http'),
      metrics: createEmfMetrics({ namespace: cfg.METRICS_NAMESPACE }),
      health: () => ({ ok: true }),
      workers: stores.workers(),
    },
  )
}

const tokens = Config.CLUSTER_BASIC_AUTH_TOKEN.split(',')
  .map((t) => t.trim())
  .filter((t) => t.length > 0)
export const handler = handle(createHttpAppFromEnv(process.env, tokens))
