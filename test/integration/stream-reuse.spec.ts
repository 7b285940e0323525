/**
 * Many exchanges on one stream (docs/protocols/framing.md §2.1) between real libp2p nodes on
 * 127.0.0.1: a share's parts go on the stream their first part opened; a peer that knows only the
 * one-exchange protocol is still served and served by; a kept stream the server closed is not used,
 * one that breaks under a request fails it as transient (the client's retry policy sends it again,
 * counted); a stream kept from a relayed connection is dropped once a direct one is open; a
 * cancelled request is not sent; a stopped server ends its kept streams; a peer that
 * left the group is refused its next request on a kept stream before its body is read.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PeerId, Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { createP2pNode, newDeviceKey } from '../../src/node/libp2p-node.js'
import type { P2pNode } from '../../src/node/libp2p-node.js'
import { ProtocolError } from '../../src/errors.js'
import { exchange, serve, type PooledStream } from '../../src/protocols/framing.js'
import { StreamPool } from '../../src/protocols/stream-pool.js'
import { RemoteShareStore, SHARD_PROTOCOL, SHARD_PROTOCOL_STREAMS, shardServer } from '../../src/protocols/shard/index.js'
import type { ShardServer } from '../../src/protocols/shard/index.js'
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

  /** A persister serving `publisher` (user OWNER) from a fresh local store. */
  async function persisterFor (persister: P2pNode, publisher: P2pNode): Promise<{ server: ShardServer, close: () => Promise<void> }> {
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
    return { server, close: async () => { await server.stop(); await held.close() } }
  }

  const keptStreams = (from: P2pNode, to: P2pNode): Stream[] =>
    from.getConnections(to.peerId).flatMap((c) => c.streams).filter((s) => s.protocol === SHARD_PROTOCOL_STREAMS)

  it('a stream kept from a relayed connection is not used once a direct connection is open', async () => {
    const a = await node()
    const b = await node()
    await echo(b, 30_000)
    await connected(a, b)
    const pool = new StreamPool<PooledStream>({ idleMs: 60_000, maxIdle: 4 })
    const reuse = { protocol: ECHO_STREAMS, pool }
    assert.equal((await exchange(a, b.peerId, ECHO, { n: 1 }, undefined, { reuse })).header.echo, 1)
    const kept = pool.take() as PooledStream
    assert.equal(kept.relayed, false, 'a stream on the direct connection is not relayed')
    // the same stream as if it had been opened while a relay was the only way to b
    pool.give({ ...kept, relayed: true })
    const dials = countDials(a)
    assert.equal((await exchange(a, b.peerId, ECHO, { n: 2 }, undefined, { reuse })).header.echo, 2)
    assert.equal(dials.opened(), 1, 'the request went on a new stream')
    await until(() => kept.stream.status !== 'open', 5_000, 'the relayed stream to be closed')
    pool.close()
  })

  /** Serves ECHO on `on` (and ECHO_STREAMS with `idleMs`): answers OK with the request's `n`. */
  async function echo (on: P2pNode, idleMs?: number): Promise<void> {
    await serve(on, ECHO, async (req) => ({ header: { status: 'OK', echo: (req.header as { n: number }).n } }),
      idleMs !== undefined ? { reuse: { protocol: ECHO_STREAMS, idleMs } } : {})
  }

  /**
   * A raw server of `protocols` on `on`: answers the first request of each stream with `answer(its
   * header)`, and resets the stream when the second request's header arrives.
   */
  async function answerOnceThenReset (on: P2pNode, protocols: string[], answer: (header: { n?: number }) => object): Promise<{ requests: () => number, resets: () => number }> {
    let requests = 0
    let resets = 0
    await on.handle(protocols, async (stream: Stream) => {
      const lp = lpStream(stream)
      for (let i = 0; ; i++) {
        let header: { n?: number }
        try {
          header = JSON.parse(new TextDecoder().decode((await lp.read()).subarray())) as { n?: number }
          if (i === 0) await lp.read()
        } catch { return }
        requests++
        if (i > 0) { resets++; stream.abort(new Error('reset by the test')); return }
        await lp.write(Buffer.from(JSON.stringify(answer(header))))
        await lp.write(new Uint8Array(0))
      }
    }, { runOnLimitedConnection: true })
    return { requests: () => requests, resets: () => resets }
  }

  it('a share put and read in parts opens one stream, not one per part', async () => {
    const persister = await node()
    const publisher = await node()
    const p = await persisterFor(persister, publisher)
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
    await until(() => keptStreams(persister, publisher).length === 0, 5_000, 'the kept stream to close with the store')
    await p.close()
  })

  it('a client that knows only one exchange per stream is served, and a server that knows only that serves', async () => {
    const a = await node()
    const b = await node()
    // b serves the old way only: one request per stream
    await echo(b)
    // a serves both ways
    await echo(a, 30_000)
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
    await echo(b, 100)
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

  it('a kept stream that breaks as the next request goes out: the request fails as a broken way, for the caller to retry, and the stream is not kept', async () => {
    const a = await node()
    const b = await node()
    const server = await answerOnceThenReset(b, [ECHO_STREAMS, ECHO], (h) => ({ status: 'OK', echo: h.n }))
    await connected(a, b)
    const pool = new StreamPool<PooledStream>({ idleMs: 60_000, maxIdle: 4 })
    const dials = countDials(a)
    const reuse = { protocol: ECHO_STREAMS, pool }
    assert.equal((await exchange(a, b.peerId, ECHO, { n: 1 }, undefined, { reuse, timeoutMs: 5_000 })).header.echo, 1)
    await assert.rejects(exchange(a, b.peerId, ECHO, { n: 2 }, undefined, { reuse, timeoutMs: 5_000 }),
      (err: unknown) => err instanceof ProtocolError && err.transport === 'broken')
    assert.equal(pool.size, 0, 'the broken stream was not kept')
    assert.equal((await exchange(a, b.peerId, ECHO, { n: 3 }, undefined, { reuse, timeoutMs: 5_000 })).header.echo, 3)
    assert.equal(dials.opened(), 2)
    assert.equal(server.resets(), 1)
    pool.close()
  })

  it('a stopped server ends the streams kept for it', async () => {
    const persister = await node()
    const publisher = await node()
    const p = await persisterFor(persister, publisher)
    const store = new RemoteShareStore({ node: publisher, peer: persister.peerId, addrs: persister.getMultiaddrs(), ownerUserId: OWNER, signDelete: () => '' })
    await store.usage()
    assert.equal(keptStreams(publisher, persister).length, 1)
    await p.close()
    // not at the server's idle limit (30 s): at once
    await until(() => keptStreams(publisher, persister).length === 0, 5_000, 'the kept stream to end with the server')
    await store.close()
  })

  it('a peer that left the group since its stream opened is refused its next request, which never reaches the handler', async () => {
    const a = await node()
    const b = await node()
    let member = true
    const bodies: number[] = []
    await serve(b, ECHO, async (req) => { bodies.push(req.body.byteLength); return { header: { status: 'OK' } } }, {
      reuse: { protocol: ECHO_STREAMS, idleMs: 30_000 },
      authorize: () => member
    })
    await connected(a, b)
    const pool = new StreamPool<PooledStream>({ idleMs: 5_000, maxIdle: 4 })
    assert.equal((await exchange(a, b.peerId, ECHO, { n: 1 }, new Uint8Array(10), { reuse: { protocol: ECHO_STREAMS, pool } })).header.status, 'OK')
    member = false
    const res = await exchange(a, b.peerId, ECHO, { n: 2 }, new Uint8Array(4 << 20), { reuse: { protocol: ECHO_STREAMS, pool } })
    assert.equal(res.header.status, 'NOT_MEMBER')
    assert.deepEqual(bodies, [10], 'the removed peer\'s request never reached the handler')
    pool.close()
  })

  it('a reset kept stream is counted as a retry', async () => {
    const a = await node()
    const b = await node()
    const server = await answerOnceThenReset(b, [SHARD_PROTOCOL_STREAMS, SHARD_PROTOCOL], () => ({ status: 'OK', shares: 0, bytes: 0 }))
    await connected(a, b)
    const store = new RemoteShareStore({ node: a, peer: b.peerId, ownerUserId: OWNER, signDelete: () => '' })
    for (let i = 0; i < 4; i++) assert.deepEqual(await store.usage(), { shares: 0, bytes: 0 })
    assert.equal(server.requests(), 7, 'three calls went once on a kept stream that reset, then, retried, on a new one')
    assert.equal(store.stats.attempts, 7)
    assert.equal(store.stats.retries, 3)
    await store.close()
  })

  it('a cancelled request is not sent on a kept stream', async () => {
    const a = await node()
    const b = await node()
    let handled = 0
    await serve(b, ECHO, async () => { handled++; return { header: { status: 'OK' } } }, { reuse: { protocol: ECHO_STREAMS, idleMs: 30_000 } })
    await connected(a, b)
    const pool = new StreamPool<PooledStream>({ idleMs: 5_000, maxIdle: 4 })
    await exchange(a, b.peerId, ECHO, { n: 1 }, undefined, { reuse: { protocol: ECHO_STREAMS, pool } })
    const cancel = new AbortController()
    cancel.abort(new Error('cancelled by the test'))
    await assert.rejects(exchange(a, b.peerId, ECHO, { n: 2 }, undefined, { reuse: { protocol: ECHO_STREAMS, pool }, signal: cancel.signal }), /cancelled by the test/)
    // the kept stream is still there, unused: a request sent on it would have been answered before this one
    assert.equal((await exchange(a, b.peerId, ECHO, { n: 3 }, undefined, { reuse: { protocol: ECHO_STREAMS, pool } })).header.status, 'OK')
    assert.equal(handled, 2)
    pool.close()
  })
})
