/**
 * Many exchanges on one stream (docs/protocols/framing.md §4) between real libp2p nodes on
 * 127.0.0.1: a share's parts go on the stream their first part opened; a peer that knows only the
 * one-exchange protocol is still served and served by; a kept stream the server closed, or broke as
 * the next request went out, costs no failed request.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { createP2pNode, newDeviceKey } from '../../src/node/libp2p-node.js'
import type { P2pNode } from '../../src/node/libp2p-node.js'
import { exchange, serve, type PooledStream } from '../../src/protocols/framing.js'
import { StreamPool } from '../../src/protocols/stream-pool.js'
import { RemoteShareStore, SHARD_PROTOCOL, SHARD_PROTOCOL_STREAMS, shardServer } from '../../src/protocols/shard/index.js'
import { LocalShareStore } from '../../src/store/index.js'
import { toHex } from '../../src/util/bytes.js'
import { seededBytes, testRef } from '../compliance/share-store.js'

const OWNER = 'ab'.repeat(32)
const ECHO = '/p2pbak-test/echo/1.0.0'
const ECHO_STREAMS = '/p2pbak-test/echo/1.1.0'

/** Counts the streams `node` opens, by the protocols it offered first. */
function countDials (node: P2pNode): { opened: () => number } {
  let n = 0
  const dial = node.dialProtocol.bind(node)
  node.dialProtocol = (async (...args: Parameters<P2pNode['dialProtocol']>) => { n++; return await dial(...args) }) as P2pNode['dialProtocol']
  return { opened: () => n }
}

/** Polls `ok` until it holds, or fails after `ms`. */
async function until (ok: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe('integration: many exchanges on one stream', function () {
  this.timeout(30_000)
  const nodes: P2pNode[] = []
  const dirs: string[] = []

  async function node (): Promise<P2pNode> {
    const n = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    nodes.push(n)
    return n
  }

  async function connected (a: P2pNode, b: P2pNode): Promise<void> {
    await a.peerStore.merge(b.peerId, { multiaddrs: b.getMultiaddrs() })
    await a.dial(b.peerId)
  }

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async (n) => { await n.stop() }))
    await Promise.all(dirs.splice(0).map(async (d) => { await rm(d, { recursive: true, force: true }) }))
  })

  it('a share put and read in parts opens one stream, not one per part', async () => {
    const persister = await node()
    const publisher = await node()
    const dir = await mkdtemp(join(tmpdir(), 'p2pbak-reuse-'))
    dirs.push(dir)
    const held = await LocalShareStore.open(dir)
    const server = shardServer({
      node: persister,
      storeFor: async () => held,
      authorize: (peer: PeerId) => (peer.equals(publisher.peerId) ? { userId: OWNER } : undefined),
      verifyDeleteSignature: () => false
    })
    await server.start()
    const inbound: string[] = []
    const store = new RemoteShareStore({ node: publisher, peer: persister.peerId, addrs: persister.getMultiaddrs(), ownerUserId: OWNER, signDelete: () => '', partBytes: 64 * 1024, maxPartBytes: 64 * 1024 })
    const dials = countDials(publisher)
    const share = seededBytes(7, 1024 * 1024) // 16 parts of 64 KiB
    await store.put(testRef(1), share)
    assert.equal(toHex(await store.get(testRef(1))), toHex(share))
    // 16 putPart and 16 ranged gets, in order: every one after the first on the first one's stream
    assert.equal(dials.opened(), 1, `${dials.opened()} streams opened for 32 requests`)
    for (const c of persister.getConnections(publisher.peerId)) for (const s of c.streams) inbound.push(s.protocol ?? '')
    assert.ok(inbound.includes(SHARD_PROTOCOL_STREAMS), `the persister's streams: ${inbound.join(', ')}`)
    assert.equal(store.stats.retries, 0)
    await store.close()
    await until(() => persister.getConnections(publisher.peerId).every((c) => c.streams.every((s) => s.protocol !== SHARD_PROTOCOL_STREAMS)), 5_000, 'the kept stream to close with the store')
    await server.stop()
    await held.close()
  })

  it('a client that knows only one exchange per stream is served, and a server that knows only that serves', async () => {
    const a = await node()
    const b = await node()
    // b serves the old way only: one request per stream
    await serve(b, ECHO, async (req) => ({ header: { status: 'OK', echo: (req.header as { n: number }).n } }))
    // a serves both ways
    await serve(a, ECHO, async (req) => ({ header: { status: 'OK', echo: (req.header as { n: number }).n } }), { reuse: { protocol: ECHO_STREAMS, idleMs: 30_000 } })
    await connected(a, b)
    const pool = new StreamPool<PooledStream>({ idleMs: 5_000, maxIdle: 4 })
    const fromA = countDials(a)
    for (let n = 0; n < 3; n++) {
      const res = await exchange(a, b.peerId, ECHO, { n }, undefined, { reuse: { protocol: ECHO_STREAMS, pool } })
      assert.equal(res.header.echo, n)
    }
    assert.equal(fromA.opened(), 3, 'the old server agrees on the old protocol: a stream per exchange')
    assert.equal(pool.size, 0)
    await connected(b, a)
    for (let n = 0; n < 3; n++) {
      // an old client: the old protocol only, no pool
      const res = await exchange(b, a.peerId, ECHO, { n })
      assert.equal(res.header.echo, n)
    }
    pool.close()
  })

  it('a kept stream the server closed as idle is not used; the next request goes on a new one', async () => {
    const a = await node()
    const b = await node()
    await serve(b, ECHO, async (req) => ({ header: { status: 'OK', echo: (req.header as { n: number }).n } }), { reuse: { protocol: ECHO_STREAMS, idleMs: 100 } })
    await connected(a, b)
    const pool = new StreamPool<PooledStream>({ idleMs: 60_000, maxIdle: 4 })
    const dials = countDials(a)
    assert.equal((await exchange(a, b.peerId, ECHO, { n: 1 }, undefined, { reuse: { protocol: ECHO_STREAMS, pool } })).header.echo, 1)
    assert.equal(pool.size, 1)
    // the server closes the stream when no request came 100 ms after its answer
    const kept = a.getConnections(b.peerId).flatMap((c) => c.streams).find((s) => s.protocol === ECHO_STREAMS) as Stream
    await until(() => kept.remoteWriteStatus !== 'writable', 10_000, 'the server to close the idle stream')
    assert.equal((await exchange(a, b.peerId, ECHO, { n: 2 }, undefined, { reuse: { protocol: ECHO_STREAMS, pool }, timeoutMs: 5_000 })).header.echo, 2)
    assert.equal(dials.opened(), 2)
    pool.close()
  })

  it('a kept stream that breaks as the next request goes out: the request is sent again on a new stream', async () => {
    const a = await node()
    const b = await node()
    // a server that answers the first request of a stream and resets the stream at the second
    let resets = 0
    await b.handle([ECHO_STREAMS, ECHO], async (stream: Stream) => {
      const lp = lpStream(stream)
      const header = JSON.parse(new TextDecoder().decode((await lp.read()).subarray())) as { n: number }
      await lp.read()
      await lp.write(Buffer.from(JSON.stringify({ status: 'OK', echo: header.n })))
      await lp.write(new Uint8Array(0))
      await lp.read()
      resets++
      stream.abort(new Error('reset by the test'))
    }, { runOnLimitedConnection: true })
    await connected(a, b)
    const pool = new StreamPool<PooledStream>({ idleMs: 60_000, maxIdle: 4 })
    const dials = countDials(a)
    for (let n = 0; n < 3; n++) {
      assert.equal((await exchange(a, b.peerId, ECHO, { n }, undefined, { reuse: { protocol: ECHO_STREAMS, pool }, timeoutMs: 5_000 })).header.echo, n)
    }
    assert.equal(dials.opened(), 3, 'each reset stream was replaced once')
    await until(() => resets === 2, 5_000, 'the server to see the two second requests')
    pool.close()
  })
})
