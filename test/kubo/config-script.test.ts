/**
 * The kubo image's config script (docker/kubo/001-pickup-config.sh) applied to a real kubo repo initialised as
 * the ECS task's is (`--profile=server`), without overrides: the settings the task runs with. The daemon is not
 * started (it would bind the task's fixed ports); test/kubo/topology.test.ts runs one configured by the same
 * script. The image ships the kubo version the tests build.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { KUBO_CONFIG_SCRIPT } from '../../adapters/kubo/daemon.ts'
import { KUBO_VERSION, kuboBinary } from '../helpers/kubo.ts'

const run = promisify(execFile)
const repos: string[] = []
afterAll(async () => {
  for (const r of repos) await rm(r, { recursive: true, force: true })
})

it('the kubo image is the version the tests build and run', () => {
  const dockerfile = readFileSync(join(import.meta.dirname, '../../docker/kubo/Dockerfile'), 'utf8')
  expect(/^FROM ipfs\/kubo:(\S+)$/m.exec(dockerfile)?.[1]).toBe(KUBO_VERSION)
})

describe.skipIf(!kuboBinary)(`the kubo image's config script on kubo ${KUBO_VERSION}`, () => {
  it('configures a server-profile repo as the worker task needs, and applies again on every start', async () => {
    const repo = await mkdtemp(join(tmpdir(), 'pickup-kubo-server-'))
    repos.push(repo)
    const env = { ...process.env, IPFS_PATH: repo, PATH: `${dirname(kuboBinary!)}:${process.env.PATH}` }
    await run(kuboBinary!, ['init', '--profile=server', '--empty-repo'], { env })
    // The image's entrypoint runs it on every start: it must apply twice.
    await run('sh', [KUBO_CONFIG_SCRIPT], { env })
    await run('sh', [KUBO_CONFIG_SCRIPT], { env })
    const { stdout } = await run(kuboBinary!, ['config', 'show'], { env })
    const config = JSON.parse(stdout)
    expect(config.Addresses.API).toBe('/ip4/127.0.0.1/tcp/5001')
    expect(config.Addresses.Gateway).toBe('/ip4/127.0.0.1/tcp/8080')
    expect(config.Addresses.Swarm).toEqual([
      '/ip4/0.0.0.0/tcp/4001',
      '/ip4/0.0.0.0/udp/4001/quic-v1',
      '/ip4/0.0.0.0/udp/4001/quic-v1/webtransport',
      '/ip4/0.0.0.0/udp/4001/webrtc-direct',
    ])
    expect(config.Provide.Enabled).toBe(false)
    expect(config.Routing.Type).toBe('autoclient')
    expect(config.Swarm.ConnMgr).toMatchObject({ LowWater: 100, HighWater: 400, GracePeriod: '30s' })
    expect(config.Discovery.MDNS.Enabled).toBe(false)
    // The server profile's filters of private ranges stay.
    expect(config.Swarm.AddrFilters).toContain('/ip4/10.0.0.0/ipcidr/8')
    // kubo accepts the result: a config it cannot parse would fail here.
    await run(kuboBinary!, ['config', 'Routing.Type'], { env })
  })
})
