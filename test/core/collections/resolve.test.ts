import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import {
  groupByRoot,
  mediaRefs,
  parseMetadata,
  resolveUri,
  substituteId,
} from '../../../core/collections/resolve.ts'

const v0 = 'QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n'
const key = CID.parse(v0).toV1().toString()
const b36 = CID.parse(v0).toV1().toString(base36)

describe('token URIs resolve to what they point at', () => {
  it.each([
    ['ipfs://<cid>', `ipfs://${key}`, ''],
    ['ipfs://<cidv0>/<path>', `ipfs://${v0}/1.json`, '1.json'],
    ['ipfs://ipfs/<cid>/<path>', `ipfs://ipfs/${key}/a/b.png`, 'a/b.png'],
    ['ipfs:/<cid>', `ipfs:/${key}`, ''],
    ['IPFS://<cid> in capitals', `IPFS://${key}/x`, 'x'],
    ['a bare CIDv0', v0, ''],
    ['a bare CID with a path', `${key}/7`, '7'],
    ['/ipfs/<cid>/<path>', `/ipfs/${key}/7.json`, '7.json'],
    ['a path gateway', `https://ipfs.io/ipfs/${v0}/12.json`, '12.json'],
    ['a path gateway with a query', `https://gw.example/ipfs/${key}/12.json?filename=x.json#a`, '12.json'],
    ['a subdomain gateway', `https://${key}.ipfs.dweb.link/img/1.png`, 'img/1.png'],
    ['a subdomain gateway in base36', `https://${b36}.ipfs.w3s.link/`, ''],
    ['percent-encoded names', `ipfs://${key}/my%20file%231.png`, 'my file#1.png'],
    ['empty and dot segments', `ipfs://${key}//a/./b/`, 'a/b'],
    ['surrounding spaces', `  ipfs://${key}/1  `, '1'],
  ])('%s', (_, uri, path) => {
    const r = resolveUri(uri)
    expect(r).toMatchObject({ kind: 'ipfs', cid: key, path })
  })

  it('a gateway path that is not a CID is a web URL', () => {
    expect(resolveUri('https://example.com/ipfs/not-a-cid/1.png')).toEqual({
      kind: 'web',
      uri: 'https://example.com/ipfs/not-a-cid/1.png',
      url: 'https://example.com/ipfs/not-a-cid/1.png',
    })
    expect(resolveUri('https://api.example.com/token/1')).toMatchObject({
      kind: 'web',
      url: 'https://api.example.com/token/1',
    })
    expect(resolveUri('http://127.0.0.1:8080/a.png')).toMatchObject({ kind: 'web' })
  })

  it('ar:// is fetched through an Arweave gateway', () => {
    expect(resolveUri('ar://abcDEF_123/1.json')).toMatchObject({
      kind: 'web',
      url: 'https://arweave.net/abcDEF_123/1.json',
      via: 'arweave',
    })
    expect(resolveUri('ar://x', { arweaveGateway: 'https://ar.example/' })).toMatchObject({
      url: 'https://ar.example/x',
    })
  })

  it('data: URIs carry their bytes: base64, percent-encoded and raw JSON', () => {
    const json = '{"name":"A","image":"ipfs://x"}'
    const b64 = resolveUri(`data:application/json;base64,${Buffer.from(json).toString('base64')}`)
    expect(b64).toMatchObject({ kind: 'data', mediaType: 'application/json' })
    expect(b64.kind === 'data' && new TextDecoder().decode(b64.bytes)).toBe(json)
    const pct = resolveUri(`data:application/json,${encodeURIComponent(json)}`)
    expect(pct.kind === 'data' && new TextDecoder().decode(pct.bytes)).toBe(json)
    // Raw, with a bare % that is not an escape: taken as written.
    const raw = resolveUri('data:application/json;utf8,{"name":"100% on chain"}')
    expect(raw.kind === 'data' && new TextDecoder().decode(raw.bytes)).toBe('{"name":"100% on chain"}')
    expect(resolveUri('data:,hi')).toMatchObject({ kind: 'data', mediaType: 'text/plain' })
    // A long data: URI is recorded clipped, its bytes whole.
    const big = resolveUri(`data:image/svg+xml;base64,${Buffer.alloc(3000, 1).toString('base64')}`)
    expect(big.kind === 'data' && big.bytes.length).toBe(3000)
    expect(big.uri.length).toBeLessThan(300)
  })

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['ipns://k51qzi5uqu5dlvj2baxnqndepeb86cbk3ng7n3i46uzyxzyqj2xjonzllnv0v8/1', /mutable/],
    ['ipfs://not-a-cid/1', /without a valid CID/],
    ['ftp://example.com/1.json', /unsupported scheme ftp/],
    ['hello world', /neither a URL nor a CID/],
    [`ipfs://${key}/../etc/passwd`, /climbs out/],
    ['data:application/json;base64', /without a comma/],
    ['data:application/json;base64,@@@', /base64 is not valid/],
    ['ar://', /without a transaction id/],
    ['https://', /not a valid URL/],
    [`https://example.com/${'a'.repeat(9000)}`, /longer than/],
  ])('%j is reported, not archived', (uri, reason) => {
    const r = resolveUri(uri)
    expect(r.kind).toBe('unsupported')
    expect(r.kind === 'unsupported' && r.reason).toMatch(reason)
  })
})

describe('ERC-1155 {id}', () => {
  it('is the id as 64 lowercase hex digits, every occurrence', () => {
    expect(substituteId('ipfs://root/{id}.json', 10n)).toBe(`ipfs://root/${'0'.repeat(63)}a.json`)
    expect(substituteId('https://x/{id}/{id}', 0xabcn)).toBe(
      `https://x/${'abc'.padStart(64, '0')}/${'abc'.padStart(64, '0')}`,
    )
    expect(substituteId('ipfs://root/1.json', 5n)).toBe('ipfs://root/1.json')
    expect(substituteId('{id}', 2n ** 256n - 1n)).toBe('f'.repeat(64))
  })
})

describe('media in metadata', () => {
  it('finds every media field, top level, under properties and in files, once per URI', () => {
    const refs = mediaRefs({
      name: 'x',
      image: 'ipfs://a/1.png',
      image_url: 'ipfs://a/1.png',
      animation_url: ' https://example.com/1.mp4 ',
      external_url: 'https://example.com/page',
      image_data: '<svg/>',
      properties: {
        image: { type: 'string', description: 'ipfs://b' },
        files: [{ uri: 'ipfs://c', type: 'image/png' }, 'ipfs://d', { src: 'ar://e' }, 7, null],
      },
      files: [{ url: 'ipfs://f' }],
    })
    expect(refs).toEqual([
      { field: 'image', uri: 'ipfs://a/1.png' },
      { field: 'animation_url', uri: 'https://example.com/1.mp4' },
      { field: 'properties.image', uri: 'ipfs://b' },
      { field: 'properties.files[0].uri', uri: 'ipfs://c' },
      { field: 'properties.files[1]', uri: 'ipfs://d' },
      { field: 'properties.files[2].src', uri: 'ar://e' },
      { field: 'files[0].url', uri: 'ipfs://f' },
    ])
  })

  it('finds nothing in what is not an object', () => {
    expect(mediaRefs(null)).toEqual([])
    expect(mediaRefs(['ipfs://a'])).toEqual([])
    expect(mediaRefs({ image: 7, properties: [] })).toEqual([])
  })

  it('parses metadata only when it is a JSON object', () => {
    const enc = (s: string) => new TextEncoder().encode(s)
    expect(parseMetadata(enc('{"image":"ipfs://a"}'))).toEqual({ image: 'ipfs://a' })
    expect(parseMetadata(enc('[1]'))).toBeUndefined()
    expect(parseMetadata(enc('<html>'))).toBeUndefined()
  })
})

describe('shared roots', () => {
  it('groups references by root: one pin per root, each token with its path', async () => {
    const refs = ['1.json', '2.json', '3.json'].map((p) => resolveUri(`ipfs://${key}/${p}`))
    const otherKey = CID.create(1, raw.code, await sha256.digest(new Uint8Array([1]))).toString()
    const other = resolveUri(`https://${otherKey}.ipfs.dweb.link/`)
    const ipfs = [...refs, other].flatMap((r) => (r.kind === 'ipfs' ? [r] : []))
    expect(ipfs).toHaveLength(4)
    const roots = groupByRoot(ipfs)
    expect([...roots.keys()]).toEqual([key, otherKey])
    expect(roots.get(key)?.map((r) => r.path)).toEqual(['1.json', '2.json', '3.json'])
    expect(roots.get(otherKey)?.map((r) => r.path)).toEqual([''])
  })
})
