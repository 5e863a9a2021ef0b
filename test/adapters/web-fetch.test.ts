/**
 * Web fetches of token content (adapters/web/guarded-http.ts, adapters/web/importer.ts) against a real local
 * HTTP server. The refusing setting (outside local mode) is exercised with the server's own address,
 * 127.0.0.1, permitted as the stand-in for a public server (nothing public can be served here); every other
 * non-public address stays refused, and names resolve through a table (`resolve`) standing in for DNS.
 */
import { readdir } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { unixfs } from '@helia/unixfs'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CID } from 'multiformats/cid'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { type GuardedGetOptions, guardedGet } from '../../adapters/web/guarded-http.ts'
import { createWebImporter } from '../../adapters/web/importer.ts'
import { collectBytes } from '../../core/bytes.ts'
import { pseudoRandomBytes } from '../fixtures/dags.ts'

let server: Server
let port: number
/** Paths the server was asked for, in order. */
let asked: string[]
const body = pseudoRandomBytes(10_000, 'web-fetch-body')

beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/'
    asked.push(path)
    const hop = /^\/hops\/(\d+)$/.exec(path)
    if (hop) {
      const n = Number(hop[1])
      res.writeHead(302, { location: n === 0 ? '/file' : `/hops/${n - 1}` }).end()
    } else if (path.startsWith('/to/')) {
      res.writeHead(302, { location: decodeURIComponent(path.slice('/to/'.length)) }).end()
    } else if (path === '/file') {
      res.writeHead(200, { 'content-length': body.byteLength }).end(body)
    } else if (path === '/big-chunked') {
      // No Content-Length: the size is only known as the body streams.
      for (let i = 0; i < 20; i++) res.write(body)
      res.end()
    } else if (path === '/silent') {
      // Headers never come.
    } else res.writeHead(404).end()
  })
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  port = (server.address() as AddressInfo).port
})
afterAll(async () => {
  server.closeAllConnections()
  await new Promise((ok) => server.close(ok))
})
beforeEach(() => {
  asked = []
})

const names: Record<string, Array<{ address: string; family: number }>> = {
  'public.test': [{ address: '127.0.0.1', family: 4 }],
  'private.test': [{ address: '10.0.0.5', family: 4 }],
  'mixed.test': [
    { address: '127.0.0.1', family: 4 },
    { address: '192.168.1.20', family: 4 },
  ],
  'v6-loopback.test': [{ address: '::1', family: 6 }],
}

/** Outside local mode: 127.0.0.1 stands for a public server; nothing else non-public is permitted. */
const refusing: Omit<GuardedGetOptions, 'maxBytes'> = {
  allowPrivate: false,
  permit: ['127.0.0.1'],
  timeoutMs: 5_000,
  maxRedirects: 3,
  resolve: async (hostname) => {
    const found = names[hostname]
    if (!found) throw Object.assign(new Error(`no ${hostname}`), { code: 'ENOTFOUND' })
    return found
  },
}

async function fetchAll(url: string, opts: Partial<GuardedGetOptions> = {}) {
  const res = await guardedGet(url, { ...refusing, maxBytes: 1024 * 1024, ...opts })
  return { url: res.url, bytes: await collectBytes(res.body) }
}

describe('web fetches of token content', () => {
  it('fetch from a permitted address, by address and by name', async () => {
    expect(await fetchAll(`http://127.0.0.1:${port}/file`)).toEqual({
      url: `http://127.0.0.1:${port}/file`,
      bytes: body,
    })
    expect((await fetchAll(`http://public.test:${port}/file`)).bytes).toEqual(body)
    expect(asked).toEqual(['/file', '/file'])
  })

  it.each([
    ['loopback', '127.0.0.2'],
    ['loopback, IPv6', '[::1]'],
    ['private 10/8', '10.1.2.3'],
    ['private 172.16/12', '172.16.5.4'],
    ['private 192.168/16', '192.168.1.1'],
    ['link-local (cloud metadata)', '169.254.169.254'],
    ['link-local, IPv6', '[fe80::1]'],
    ['unique local (ULA)', '[fd12:3456::1]'],
    ['CGNAT', '100.64.0.1'],
    ['multicast', '224.0.0.1'],
    ['multicast, IPv6', '[ff02::1]'],
    ['unspecified', '0.0.0.0'],
    ['unspecified, IPv6', '[::]'],
    ['v4-mapped loopback', '[::ffff:127.0.0.1]'],
    ['v4-mapped private', '[::ffff:10.0.0.1]'],
    ['NAT64 of loopback', '[64:ff9b::7f00:1]'],
    ['NAT64 of private', '[64:ff9b::c0a8:101]'],
    ['6to4 of loopback', '[2002:7f00:1::]'],
    ['loopback as one decimal number (127.0.0.2)', '2130706434'],
    ['private in hex and short form (10.0.0.1)', '0xa.1'],
    ['unspecified as 0', '0'],
  ])('refuse %s (%s) before anything is sent', async (_what, host) => {
    await expect(fetchAll(`http://${host}:${port}/file`)).rejects.toMatchObject({
      code: 'WEB_ADDRESS_REFUSED',
    })
    expect(asked).toEqual([])
  })

  it('refuse names whose lookup gives a non-public address (any of them)', async () => {
    for (const name of ['private.test', 'mixed.test', 'v6-loopback.test'])
      await expect(fetchAll(`http://${name}:${port}/file`)).rejects.toMatchObject({
        code: 'WEB_ADDRESS_REFUSED',
        message: expect.stringContaining(name),
      })
    expect(asked).toEqual([])
  })

  it('check every redirect again: to a private address or name, refused', async () => {
    for (const target of [
      `http://10.0.0.7:${port}/file`,
      `http://[::1]:${port}/file`,
      `http://private.test:${port}/file`,
      `http://127.0.0.3:${port}/file`,
    ]) {
      asked = []
      await expect(
        fetchAll(`http://public.test:${port}/to/${encodeURIComponent(target)}`),
      ).rejects.toMatchObject({
        code: 'WEB_ADDRESS_REFUSED',
      })
      expect(asked).toHaveLength(1) // the redirect only
    }
    // A redirect to another scheme is not followed either.
    await expect(
      fetchAll(`http://public.test:${port}/to/${encodeURIComponent('file:///etc/passwd')}`),
    ).rejects.toMatchObject({
      code: 'WEB_INVALID_URL',
    })
  })

  it('follow at most maxRedirects redirects', async () => {
    expect(await fetchAll(`http://127.0.0.1:${port}/hops/2`)).toEqual({
      url: `http://127.0.0.1:${port}/file`,
      bytes: body,
    })
    expect(asked).toEqual(['/hops/2', '/hops/1', '/hops/0', '/file'])
    asked = []
    await expect(fetchAll(`http://127.0.0.1:${port}/hops/3`)).rejects.toMatchObject({
      code: 'WEB_TOO_MANY_REDIRECTS',
    })
    expect(asked).toEqual(['/hops/3', '/hops/2', '/hops/1', '/hops/0'])
  })

  it('refuse a body over maxBytes: declared, or counted as it streams', async () => {
    await expect(fetchAll(`http://127.0.0.1:${port}/file`, { maxBytes: 9_999 })).rejects.toMatchObject({
      code: 'WEB_TOO_LARGE',
    })
    expect(await fetchAll(`http://127.0.0.1:${port}/file`, { maxBytes: 10_000 })).toMatchObject({
      bytes: body,
    })
    await expect(
      fetchAll(`http://127.0.0.1:${port}/big-chunked`, { maxBytes: 150_000 }),
    ).rejects.toMatchObject({
      code: 'WEB_TOO_LARGE',
    })
  })

  it('report an HTTP error and a server that never answers', async () => {
    await expect(fetchAll(`http://127.0.0.1:${port}/nothing`)).rejects.toMatchObject({
      code: 'WEB_HTTP_ERROR',
      message: expect.stringMatching(/^HTTP 404 /),
    })
    await expect(fetchAll(`http://127.0.0.1:${port}/silent`, { timeoutMs: 200 })).rejects.toMatchObject({
      code: 'WEB_TIMEOUT',
    })
  })

  it('local mode reaches loopback', async () => {
    expect(
      (await fetchAll(`http://127.0.0.2:${port}/file`, { allowPrivate: true, permit: [] }).catch((e) => e))
        .code,
    ).not.toBe('WEB_ADDRESS_REFUSED')
    const res = await fetchAll(`http://[::ffff:127.0.0.1]:${port}/file`, { allowPrivate: true, permit: [] })
    expect(res.bytes).toEqual(body)
  })
})

describe('the web importer', () => {
  it('imports a file as UnixFS (CIDv1, raw leaves) on disk, and removes its blocks on close', async () => {
    const before = new Set(await readdir(tmpdir()))
    const importer = createWebImporter({ ...refusing })
    const imported = await importer.import(`http://public.test:${port}/big-chunked`, {
      maxBytes: 1024 * 1024,
    })
    const whole = new Uint8Array(body.byteLength * 20)
    for (let i = 0; i < 20; i++) whole.set(body, i * body.byteLength)
    const expected = await unixfs({ blockstore: new MemoryBlockstore() }).addBytes(whole)
    expect(imported).toMatchObject({ cid: expected.toString(), bytes: whole.byteLength })
    const cid = CID.parse(imported.cid)
    expect(cid.version).toBe(1)
    expect(cid.code).toBe(0x55) // 200,000 bytes: one raw leaf under 1 MiB chunks
    expect(await imported.get(cid)).toEqual(whole)
    const dirs = (await readdir(tmpdir())).filter((d) => d.startsWith('pickup-web-') && !before.has(d))
    expect(dirs).toHaveLength(1)
    await imported.close()
    expect((await readdir(tmpdir())).filter((d) => dirs.includes(d))).toEqual([])
  })

  it('leaves nothing on disk when the fetch is refused', async () => {
    const before = (await readdir(tmpdir())).filter((d) => d.startsWith('pickup-web-')).length
    const importer = createWebImporter({ ...refusing })
    await expect(
      importer.import(`http://private.test:${port}/file`, { maxBytes: 1024 }),
    ).rejects.toMatchObject({
      code: 'WEB_ADDRESS_REFUSED',
    })
    expect((await readdir(tmpdir())).filter((d) => d.startsWith('pickup-web-')).length).toBe(before)
  })
})
