/**
 * The ipfs-cluster-compatible API, driven by the real `@nftstorage/ipfs-cluster` client (v5, for cluster
 * >= 1.0) against local mode, plus the response shapes field by field and every bad input.
 */
import { Cluster } from '@nftstorage/ipfs-cluster'
import { CID } from 'multiformats/cid'
import type { MultihashDigest } from 'multiformats/hashes/interface'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { contentKey } from '../../core/cid.ts'
import { clusterRequestId } from '../../core/cluster.ts'
import { dagCborDag, rawBlock } from '../fixtures/dags.ts'
import { listKeys, startTestSystem, TEST_TOKEN, type TestSystem } from '../helpers/system.ts'

let t: TestSystem
let cluster: Cluster
let peerId: string
beforeAll(async () => {
  t = await startTestSystem({ FETCH_CHUNK_TIMEOUT_MS: '60000' })
  cluster = new Cluster(t.system.url, { headers: { Authorization: `Basic ${TEST_TOKEN}` } })
  peerId = t.system.helia!.libp2p.peerId.toString()
})
afterAll(async () => {
  await t?.stop()
})

async function waitForPeerStatus(cid: string, status: string) {
  for (let i = 0; i < 600; i++) {
    const s = await cluster.status(cid)
    if (s.peerMap[peerId]?.status === status) return s
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`${cid} never became ${status}`)
}

describe('with the @nftstorage/ipfs-cluster client', () => {
  it('pins with origins and reports pinned', async () => {
    const dag = dagCborDag()
    await t.addToOrigin(dag.blocks)
    const cid = dag.root.toString()
    const pin = await cluster.pin(cid, { name: 'cbor', origins: t.originAddrs(), metadata: { app: 'test' } })
    expect(pin.cid).toBe(cid)
    expect(pin.name).toBe('cbor')
    expect(pin.expireAt.getTime()).toBe(new Date('0001-01-01T00:00:00Z').getTime())
    expect(pin.metadata?.app).toBe('test')
    // Live workers' multiaddrs, so the client's node can connect to one at once.
    expect(pin.metadata?.delegates?.split(',').every((a) => a.includes('/p2p/'))).toBe(true)
    const status = await waitForPeerStatus(cid, 'pinned')
    expect(status.cid).toBe(cid)
    expect(status.name).toBe('cbor')
    expect(status.peerMap[peerId]?.error).toBe('')
  })

  it('statusAll with pinned, queued and unknown CIDs answers one line each, in request order', async () => {
    const pinned = rawBlock(300, 'status-all')
    await t.addToOrigin(pinned.blocks)
    await cluster.pin(pinned.root.toString(), { origins: t.originAddrs() })
    await waitForPeerStatus(pinned.root.toString(), 'pinned')
    const nowhere = rawBlock(300, 'status-all-nowhere').root.toString()
    await cluster.pin(nowhere)
    const unknown = rawBlock(300, 'never-asked').root.toString()

    const all = await cluster.statusAll({ cids: [unknown, pinned.root.toString(), nowhere] })
    expect(all.map((s) => s.cid)).toEqual([unknown, pinned.root.toString(), nowhere])
    expect(all.map((s) => s.peerMap[peerId]?.status)).toEqual([
      'unpinned',
      'pinned',
      expect.stringMatching(/^(pin_queued|pinning)$/),
    ])

    const onlyPinned = await cluster.statusAll({
      cids: [unknown, pinned.root.toString(), nowhere],
      filter: ['pinned'],
    })
    expect(onlyPinned.map((s) => s.cid)).toEqual([pinned.root.toString()])
  })

  it('lists the pinset by status without cids', async () => {
    const listed = await cluster.statusAll({ filter: ['pinned'] })
    expect(listed.length).toBeGreaterThanOrEqual(2)
    expect(listed.every((s) => s.peerMap[peerId]?.status === 'pinned')).toBe(true)
    const queued = await cluster.statusAll({ filter: ['pin_queued', 'pinning'] })
    expect(queued.map((s) => s.cid)).toContain(contentKey(rawBlock(300, 'status-all-nowhere').root))
  })

  it('an empty result is 200 with an empty body', async () => {
    const res = await t.api(`/pins?filter=unpin_queued`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('')
    expect(await cluster.statusAll({ filter: ['unpin_queued'] })).toEqual([])
  })

  it('unpins: the claim is gone, the stored CAR stays for now', async () => {
    const dag = rawBlock(500, 'unpin')
    await t.addToOrigin(dag.blocks)
    const cid = dag.root.toString()
    await cluster.pin(cid, { origins: t.originAddrs() })
    await waitForPeerStatus(cid, 'pinned')
    const cars = (await listKeys(t.destination)).length
    const removed = await cluster.unpin(cid)
    expect(removed.cid).toBe(cid)
    expect((await cluster.status(cid)).peerMap[peerId]?.status).toBe('unpinned')
    expect((await listKeys(t.destination)).length).toBe(cars)
    // Nobody else wants it: marked unreferenced, so the sweep removes the CAR after the retention period.
    expect((await t.pins.get(contentKey(dag.root)))?.unreferencedSince).toBeTypeOf('number')
    await expect(cluster.unpin(cid)).rejects.toThrow(/^404: Not Found$/)
  })

  it('shows content a worker still searches for as pin_queued, and unpinning it stops the search', async () => {
    // Nobody serves this block: the worker searches for it (the stall timeout here is a minute).
    const cid = rawBlock(64, `nobody serves ${Math.random()}`).root.toString()
    await cluster.pin(cid)
    const key = contentKey(CID.parse(cid))
    for (let i = 0; i < 300 && (await t.pins.get(key))?.progress?.phase !== 'searching'; i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(await t.pins.get(key)).toMatchObject({ status: 'pinning', progress: { phase: 'searching' } })
    expect((await cluster.status(cid)).peerMap[peerId]?.status).toBe('pin_queued')
    const listed = async (filter: 'pin_queued' | 'pinning') =>
      (await cluster.statusAll({ filter: [filter] })).map((s) => s.cid.toString())
    expect(await listed('pin_queued')).toContain(cid)
    expect(await listed('pinning')).not.toContain(cid)

    await cluster.unpin(cid)
    for (let i = 0; i < 300 && (await t.pins.get(key))?.status === 'pinning'; i++) {
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(await t.pins.get(key)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^CANCELLED: /),
    })
  })

  it('CIDv0 and CIDv1 of the same content are one pin', async () => {
    // A dag-pb CID whose content nobody has: it stays queued or pinning.
    const v0 = CID.createV0(rawBlock(10, 'v0-v1').root.multihash as MultihashDigest<0x12>)
    const v1 = v0.toV1()
    await cluster.pin(v0.toString(), { name: 'as-v0' })
    const byV1 = await cluster.status(v1.toString())
    expect(byV1.name).toBe('as-v0')
    expect(byV1.peerMap[peerId]?.status).toMatch(/^(pin_queued|pinning)$/)
    const claim = clusterRequestId(v1.toString())
    const first = await t.requests.get(claim)
    expect(first).toMatchObject({ name: 'as-v0', sourceCid: v0.toString() })
    // Pinning it again as CIDv1 updates the one claim instead of adding a second, and keeps when it was made.
    await cluster.pin(v1.toString(), { name: 'as-v1' })
    expect((await cluster.status(v0.toString())).name).toBe('as-v1')
    expect(await t.requests.get(claim)).toMatchObject({
      name: 'as-v1',
      sourceCid: v1.toString(),
      created: first!.created,
    })
    const both = await cluster.statusAll({ cids: [v0.toString(), v1.toString()] })
    expect(both.map((s) => s.name)).toEqual(['as-v1', 'as-v1'])
  })

  it('answers id and version like a cluster peer', async () => {
    expect(await cluster.version()).toMatch(/^1\.0\.0\+pickup\./)
    const info = await cluster.info()
    expect(info.id).toBe(peerId)
    expect(info.clusterPeers).toEqual([peerId])
    expect(info.peerName).toBe('pickup')
  })

  it('refuses requests without the right credentials', async () => {
    const anonymous = new Cluster(t.system.url)
    await expect(anonymous.status(rawBlock(1).root.toString())).rejects.toThrow(/^401: Unauthorized$/)
    const wrong = new Cluster(t.system.url, { headers: { Authorization: 'Basic d3Jvbmc6d3Jvbmc=' } })
    await expect(wrong.pin(rawBlock(1).root.toString())).rejects.toThrow(/^401: Unauthorized$/)
  })
})

describe('shapes and bad input', () => {
  it('POST /pins/{cid} answers the cluster Pin shape, echoing every option', async () => {
    const cid = rawBlock(64, 'shape').root.toString()
    const q = new URLSearchParams({
      name: 'shape',
      mode: 'recursive',
      'replication-min': '2',
      'replication-max': '3',
      'shard-size': '0',
      'user-allocations': 'peerA,peerB',
      'expire-at': '2030-01-01T00:00:00Z',
      'meta-k': 'v',
    })
    const res = await t.api(`/pins/${cid}?${q}`, { method: 'POST' })
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual(
      [
        'replication_factor_min',
        'replication_factor_max',
        'name',
        'mode',
        'shard_size',
        'user_allocations',
        'expire_at',
        'metadata',
        'pin_update',
        'origins',
        'cid',
        'type',
        'allocations',
        'max_depth',
        'reference',
        'timestamp',
      ].sort(),
    )
    expect(body).toMatchObject({
      replication_factor_min: 2,
      replication_factor_max: 3,
      name: 'shape',
      mode: 'recursive',
      shard_size: 0,
      user_allocations: ['peerA', 'peerB'],
      expire_at: '2030-01-01T00:00:00.000Z',
      pin_update: null,
      origins: [],
      cid,
      type: 'pin',
      allocations: [peerId],
      max_depth: -1,
      reference: null,
    })
    expect((body.metadata as Record<string, string>).k).toBe('v')
    expect(Number.isNaN(Date.parse(body.timestamp as string))).toBe(false)
  })

  it('GET /pins/{cid} answers GlobalPinInfo with one peer_map entry, unpinned for unknown content', async () => {
    const cid = rawBlock(64, 'unknown-shape').root.toString()
    const res = await t.api(`/pins/${cid}`)
    expect(res.status).toBe(200)
    const body = (await res.json()) as Record<string, unknown>
    expect(Object.keys(body).sort()).toEqual([
      'allocations',
      'cid',
      'created',
      'metadata',
      'name',
      'origins',
      'peer_map',
    ])
    const peers = body.peer_map as Record<string, Record<string, unknown>>
    expect(Object.keys(peers)).toEqual([peerId])
    expect(Object.keys(peers[peerId]!).sort()).toEqual([
      'attempt_count',
      'error',
      'ipfs_peer_addresses',
      'ipfs_peer_id',
      'peername',
      'priority_pin',
      'status',
      'timestamp',
    ])
    expect(peers[peerId]).toMatchObject({
      status: 'unpinned',
      attempt_count: 0,
      error: '',
      priority_pin: false,
    })
  })

  it('drops origins that are not multiaddrs', async () => {
    const cid = rawBlock(64, 'origins').root.toString()
    const good = t.originAddrs()[0]!
    const res = await t.api(
      `/pins/${cid}?origins=${encodeURIComponent(`${good},nonsense,/ip4/1.2.3.4/tcp/x`)}`,
      {
        method: 'POST',
      },
    )
    expect(((await res.json()) as { origins: string[] }).origins).toEqual([good])
  })

  const bad = rawBlock(2, 'bad').root
  const cases: Array<[label: string, method: string, path: string, reason: string]> = [
    ['invalid CID (POST)', 'POST', '/pins/not-a-cid', 'not a valid CID'],
    ['invalid CID (GET)', 'GET', '/pins/not-a-cid', 'not a valid CID'],
    ['invalid CID (DELETE)', 'DELETE', '/pins/not-a-cid', 'not a valid CID'],
    ['invalid CID in cids', 'GET', `/pins?cids=${rawBlock(1).root},nope`, 'not a valid CID'],
    ['unknown mode', 'POST', `/pins/${bad}?mode=shallow`, 'unknown mode'],
    ['malformed replication-min', 'POST', `/pins/${bad}?replication-min=two`, 'replication-min'],
    ['negative shard-size', 'POST', `/pins/${bad}?shard-size=-5`, 'shard-size'],
    ['malformed expire-at', 'POST', `/pins/${bad}?expire-at=tomorrow`, 'expire-at'],
    ['malformed pin-update', 'POST', `/pins/${bad}?pin-update=nope`, 'not a valid CID'],
    ['oversize name', 'POST', `/pins/${bad}?name=${'n'.repeat(256)}`, 'name'],
    ['oversize metadata value', 'POST', `/pins/${bad}?meta-k=${'v'.repeat(2049)}`, 'metadata'],
    [
      'oversize query',
      'POST',
      `/pins/${bad}?meta-a=${'v'.repeat(2000)}&meta-b=${'v'.repeat(2000)}&meta-c=${'v'.repeat(2000)}&meta-d=${'v'.repeat(2000)}&meta-e=${'v'.repeat(500)}`,
      'query string',
    ],
    ['unknown filter', 'GET', '/pins?filter=sideways', 'unknown filter'],
    [
      'too many CIDs',
      'GET',
      `/pins?cids=${Array.from({ length: 101 }, () => rawBlock(1).root).join(',')}`,
      'at most 100',
    ],
  ]
  it.each(cases)('%s -> 400, nothing stored or enqueued', async (_label, method, path, reason) => {
    const before = await t.pins.get(contentKey(bad))
    const res = await t.api(path, { method })
    expect(res.status).toBe(400)
    expect(res.headers.get('content-type')).toMatch(/application\/json/)
    const body = (await res.json()) as { code: number; message: string }
    expect(body.code).toBe(400)
    expect(body.message).toContain(reason)
    expect(await t.pins.get(contentKey(bad))).toEqual(before)
  })

  it('401 carries WWW-Authenticate, the standard reason phrase and a JSON body', async () => {
    const res = await fetch(`${t.system.url}/pins/${rawBlock(1).root}`)
    expect(res.status).toBe(401)
    expect(res.statusText).toBe('Unauthorized')
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/)
    expect(await res.json()).toEqual({ code: 401, message: 'Unauthorized' })
  })
})
