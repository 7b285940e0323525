/**
 * The libp2p stack on this machine's Node, proven with real data over a real stream on 127.0.0.1:
 * TCP + Noise + yamux, length-prefixed framing with back pressure, and the connection gater.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { DHT_PROTOCOL, createP2pNode, newDeviceKey, type P2pNode } from '../../src/node/libp2p-node.js'
import { bodyLength, copyBody, exchange, serve } from '../../src/protocols/framing.js'

interface Services {
  identify: { identify: (c: import('@libp2p/interface').Connection, o?: { signal?: AbortSignal }) => Promise<{ listenAddrs: unknown[] }> }
  ping: { ping: (p: PeerId, o?: { signal?: AbortSignal }) => Promise<number> }
}
const services = (n: P2pNode): Services => n.services as unknown as Services

const PROTOCOL = '/p2pbak/test-echo-hash/1.0.0'

describe('integration: the libp2p stack', function () {
  this.timeout(60_000)
  const nodes: P2pNode[] = []
  after(async () => { await Promise.all(nodes.map(async n => await n.stop())) })

  it('moves 64 MiB over a real stream and the receiver hashes exactly what was sent', async () => {
    const a = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    const b = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    nodes.push(a, b)
    await b.handle(PROTOCOL, async (stream) => {
      const lp = lpStream(stream, { maxDataLength: 4 << 20 })
      const h = createHash('sha256')
      let total = 0
      for (;;) {
        const msg = await lp.read({ signal: AbortSignal.timeout(30_000) })
        if (msg.byteLength === 0) break
        h.update(msg.subarray())
        total += msg.byteLength
      }
      await lp.write(Buffer.from(JSON.stringify({ total, sha256: h.digest('hex') })))
      await stream.close()
    })
    const data = randomBytes(64 << 20)
    const stream = await a.dialProtocol(multiaddr(b.getMultiaddrs()[0]?.toString() ?? ''), PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    const lp = lpStream(stream, { maxDataLength: 4 << 20 })
    for (let off = 0; off < data.byteLength; off += 1 << 20) await lp.write(data.subarray(off, off + (1 << 20)))
    await lp.write(new Uint8Array(0))
    const reply = JSON.parse(Buffer.from((await lp.read({ signal: AbortSignal.timeout(30_000) })).subarray()).toString()) as { total: number, sha256: string }
    assert.equal(reply.total, data.byteLength)
    assert.equal(reply.sha256, createHash('sha256').update(data).digest('hex'))
  })

  it('a message body arrives in the pieces the transport made, joined only when asked, byte-exact both ways', async () => {
    const a = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    const b = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    nodes.push(a, b)
    const sent = randomBytes(3 << 20)
    let seen: { pieces: number, length: number, same: boolean } | undefined
    await serve(b, '/p2pbak/test-pieces/1.0.0', async (req) => {
      const pieces = req.bodyChunks ?? []
      seen = { pieces: pieces.length, length: bodyLength(req), same: Buffer.from(req.body).equals(sent) }
      return { header: { status: 'OK' }, body: req.body }
    })
    const res = await exchange(a, multiaddr(b.getMultiaddrs()[0]?.toString() ?? ''), '/p2pbak/test-pieces/1.0.0', {}, sent)
    assert.ok(seen !== undefined && seen.pieces > 1, `the body came in ${seen?.pieces} piece(s)`)
    assert.equal(seen.length, sent.byteLength)
    assert.ok(seen.same, 'the joined body is what was sent')
    const back = new Uint8Array(bodyLength(res))
    copyBody(res, back, 0)
    assert.ok(Buffer.from(back).equals(sent) && Buffer.from(res.body).equals(sent), 'the answer, copied piece by piece and joined, is what was sent')
  })

  it('a body sent in many tiny frames is joined on receipt, not kept as thousands of pieces', async () => {
    const a = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    const b = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    nodes.push(a, b)
    let seen: { pieces: number, body: Uint8Array } | undefined
    await serve(b, '/p2pbak/test-tiny/1.0.0', async (req) => {
      seen = { pieces: req.bodyChunks?.length ?? 0, body: req.body.slice() }
      return { header: { status: 'OK' } }
    })
    const stream = await a.dialProtocol(multiaddr(b.getMultiaddrs()[0]?.toString() ?? ''), '/p2pbak/test-tiny/1.0.0', { signal: AbortSignal.timeout(10_000) })
    const body = randomBytes(3000)
    // the header frame, then the body frame's length and its bytes ten at a time, each its own write
    const head = Buffer.from('{}')
    stream.send(Uint8Array.from([head.byteLength, ...head]))
    stream.send(Uint8Array.from([0xb8, 0x17])) // varint 3000
    for (let off = 0; off < body.byteLength; off += 10) {
      stream.send(body.subarray(off, off + 10))
      await new Promise(resolve => setImmediate(resolve))
    }
    const lp = lpStream(stream)
    const answer = JSON.parse(Buffer.from((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray()).toString()) as { status: string }
    assert.equal(answer.status, 'OK')
    assert.ok(seen !== undefined && Buffer.from(seen.body).equals(body), 'the body arrived whole')
    assert.equal(seen.pieces, 1, 'one joined piece, not one per frame')
  })

  it('the connection gater refuses a stranger: no protocol stream ever works', async () => {
    const friendKey = await newDeviceKey()
    const guarded = await createP2pNode({ privateKey: await newDeviceKey(), dht: false, allowPeer: p => p.equals(friend.peerId) })
    const friend = await createP2pNode({ privateKey: friendKey, dht: false })
    const stranger = await createP2pNode({ privateKey: await newDeviceKey(), dht: false })
    nodes.push(guarded, friend, stranger)
    await guarded.handle(PROTOCOL, async (stream) => { await lpStream(stream).write(Buffer.from('hello')); await stream.close() })
    const addr = multiaddr(guarded.getMultiaddrs()[0]?.toString() ?? '')
    const ok = await friend.dialProtocol(addr, PROTOCOL, { signal: AbortSignal.timeout(10_000) })
    assert.equal(Buffer.from((await lpStream(ok).read()).subarray()).toString(), 'hello')
    await assert.rejects(async () => {
      const s = await stranger.dialProtocol(addr, PROTOCOL, { signal: AbortSignal.timeout(5_000) })
      await lpStream(s).read({ signal: AbortSignal.timeout(5_000) })
    })
  })

  it('a stranger let in to join gets no identify or DHT answer (ping only); a member gets all', async () => {
    const memberKey = await newDeviceKey()
    const members = new Set<string>()
    // the gate is open to all (as while an invite is outstanding); only the service guard decides
    const guarded = await createP2pNode({ privateKey: await newDeviceKey(), servePeer: p => members.has(p.toString()) })
    const member = await createP2pNode({ privateKey: memberKey })
    const stranger = await createP2pNode({ privateKey: await newDeviceKey() })
    nodes.push(guarded, member, stranger)
    members.add(member.peerId.toString())
    const addr = multiaddr(guarded.getMultiaddrs()[0]?.toString() ?? '')

    const identified = new Promise<string[]>(resolve => {
      member.addEventListener('peer:identify', (evt) => { if (evt.detail.peerId.equals(guarded.peerId)) resolve(evt.detail.protocols) })
    })
    await member.dial(addr, { signal: AbortSignal.timeout(10_000) })
    assert.ok((await identified).includes(DHT_PROTOCOL), 'the member learns the protocols by identify')
    assert.ok(await services(member).ping.ping(guarded.peerId, { signal: AbortSignal.timeout(5_000) }) >= 0)

    const sConn = await stranger.dial(addr, { signal: AbortSignal.timeout(10_000) })
    await assert.rejects(services(stranger).identify.identify(sConn, { signal: AbortSignal.timeout(5_000) }), 'identify answered a stranger')
    // ping stays open (a failed ping makes libp2p's connection monitor drop a joiner's connection)
    assert.ok(await services(stranger).ping.ping(guarded.peerId, { signal: AbortSignal.timeout(5_000) }) >= 0)
    // neither the automatic identify on connect nor ours told the stranger the node's addresses or
    // anything of its members (protocol names alone show in multistream negotiation: that is all)
    const addrsKnown = (await stranger.peerStore.get(guarded.peerId)).addresses.map(a => a.multiaddr.toString())
    assert.deepEqual(addrsKnown.map(a => a.split('/p2p/')[0]), [addr.toString().split('/p2p/')[0]])
    assert.equal(await stranger.peerStore.has(member.peerId), false)
    // a DHT stream is reset at once (an unguarded server would wait for the query)
    const started = Date.now()
    await assert.rejects(async () => {
      const s = await stranger.dialProtocol(addr, DHT_PROTOCOL, { signal: AbortSignal.timeout(5_000) })
      s.send(new Uint8Array([0]))
      await lpStream(s).read({ signal: AbortSignal.timeout(8_000) })
    })
    assert.ok(Date.now() - started < 7_000, 'the DHT stream was not refused but timed out')
    // nor does the DHT tell the stranger where the member is
    await assert.rejects(stranger.peerRouting.findPeer(member.peerId, { signal: AbortSignal.timeout(2_000) }))
    assert.equal(await stranger.peerStore.has(member.peerId), false)
  })
})
