/**
 * `/p2pbak/dialback/1.0.0` (docs/network.md §15.10) over real libp2p nodes on loopback: a member's
 * listening address is confirmed by a new connection that proves its peer id; a closed port, an
 * address where another peer answers, an address on another IP than the request came from, and a
 * request over a relay are not; strangers, malformed requests and requests too often are refused;
 * DialbackChecks keeps the verdicts and gives friends a refuted address last (RelayLink).
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { multiaddr } from '@multiformats/multiaddr'
import { createP2pNode, newDeviceKey, type P2pNode } from '../../src/node/libp2p-node.js'
import { DialbackChecks } from '../../src/node/dialback.js'
import { RelayBook } from '../../src/node/relay.js'
import { RelayLink } from '../../src/node/relay-link.js'
import { DIALBACK_PROTOCOL, directHost, requestDialback, startDialbackServer, type DialbackPolicy } from '../../src/protocols/dialback.js'
import { exchange, serve } from '../../src/protocols/framing.js'
import { NotMemberError, RefusedError } from '../../src/errors.js'

const LOOPBACK_OK = (): boolean => true
const tcpAddr = (node: P2pNode): string => {
  const a = node.getMultiaddrs().map(m => m.toString()).find(m => m.startsWith('/ip4/127.0.0.1/tcp/'))
  if (a === undefined) throw new Error('no loopback TCP address')
  return a.replace(/\/p2p\/.*$/, '')
}

describe('integration: the dial-back protocol (AutoNAT among members)', function () {
  this.timeout(30_000)
  const nodes: P2pNode[] = []
  let asker: P2pNode
  let checker: P2pNode
  let other: P2pNode
  let stranger: P2pNode
  let closed: Server
  let closedPort: number
  let members: Set<string>
  let now = 1_000_000
  const policy: DialbackPolicy = { minIntervalMs: 30_000, dialTimeoutMs: 2_000 }

  const node = async (listen = '/ip4/127.0.0.1/tcp/0'): Promise<P2pNode> => {
    const n = await createP2pNode({ privateKey: await newDeviceKey(), dht: false, listen: [listen] })
    nodes.push(n)
    return n
  }

  before(async () => {
    asker = await node()
    checker = await node()
    other = await node()
    stranger = await node()
    members = new Set([asker.peerId.toString(), checker.peerId.toString(), other.peerId.toString()])
    await startDialbackServer(checker, { isMember: (p) => members.has(p.toString()), mayDial: LOOPBACK_OK, now: () => now, policy })
    await asker.dial(multiaddr(`${tcpAddr(checker)}/p2p/${checker.peerId.toString()}`))
    await stranger.dial(multiaddr(`${tcpAddr(checker)}/p2p/${checker.peerId.toString()}`))
    // a port that takes connections but is no libp2p node: bound, listening, then closed for "nothing listens"
    closed = createServer()
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
    closedPort = (closed.address() as { port: number }).port
    await new Promise<void>(resolve => closed.close(() => { resolve() }))
  })

  after(async () => { await Promise.all(nodes.map(async n => { await n.stop() })) })

  it('confirms the asker\'s listening address on a new connection, and fails a closed port and another peer\'s address', async () => {
    const before = checker.getConnections(asker.peerId).length
    const results = await requestDialback(asker, checker.peerId, [tcpAddr(asker), `/ip4/127.0.0.1/tcp/${closedPort}`, tcpAddr(other)])
    assert.deepEqual(results[0], { addr: tcpAddr(asker), ok: true })
    assert.equal(results[1]?.ok, false)
    assert.ok((results[1]?.error ?? '').length > 0)
    assert.equal(results[2]?.ok, false, 'another peer listening there cannot prove the asker\'s peer id')
    assert.equal(checker.getConnections(asker.peerId).length, before, 'the dial-back connection is closed again')
    now += policy.minIntervalMs
  })

  it('does not dial an address on another IP than the request came from, and gives no verdict on it', async () => {
    const port = tcpAddr(asker).split('/').pop() ?? ''
    const [elsewhere] = await requestDialback(asker, checker.peerId, [`/ip4/127.0.0.2/tcp/${port}`])
    assert.equal(elsewhere?.ok, false)
    assert.equal(elsewhere?.inconclusive, true, 'no verdict: the checker does not dial other IPs, which says nothing of the address')
    assert.match(elsewhere?.error ?? '', /not the address this request came from \(127\.0\.0\.1\)/)
    now += policy.minIntervalMs
  })

  it('refuses a second request within the interval, a stranger and malformed requests', async () => {
    await requestDialback(asker, checker.peerId, [tcpAddr(asker)])
    await assert.rejects(requestDialback(asker, checker.peerId, [tcpAddr(asker)]), (err: unknown) => err instanceof RefusedError && /ask again after 30 s/.test(err.message))
    now += policy.minIntervalMs
    await assert.rejects(requestDialback(stranger, checker.peerId, [tcpAddr(stranger)]), NotMemberError)
    for (const addrs of [[], ['/ip4/127.0.0.1/tcp/1', '/ip4/127.0.0.1/tcp/2', '/ip4/127.0.0.1/tcp/3', '/ip4/127.0.0.1/tcp/4', '/ip4/127.0.0.1/tcp/5'], ['/dns4/example.org/tcp/1'], ['/ip4/127.0.0.1/udp/1'], [`/ip4/127.0.0.1/tcp/1/p2p/${other.peerId.toString()}`], [42]]) {
      const res = await exchange(asker, checker.peerId, DIALBACK_PROTOCOL, { op: 'dialback', addrs }, undefined, { maxBodyBytes: 0 })
      assert.equal(res.header.status, 'INVALID', JSON.stringify(addrs))
      now += policy.minIntervalMs
    }
    await assert.rejects(requestDialback(asker, checker.peerId, []), RangeError)
  })

  it('knows the host of a direct TCP connection only (a relayed or WebRTC one shows none)', () => {
    assert.equal(directHost(multiaddr('/ip4/203.0.113.9/tcp/4001')), '203.0.113.9')
    assert.equal(directHost(multiaddr('/ip6/2001:db8::1/tcp/4001')), '2001:db8::1')
    assert.equal(directHost(multiaddr(`/ip4/203.0.113.9/tcp/4001/p2p/${checker.peerId.toString()}/p2p-circuit`)), undefined)
    assert.equal(directHost(multiaddr('/ip4/203.0.113.9/udp/4001/webrtc-direct')), undefined)
  })

  it('DialbackChecks asks a member that reaches it from outside, keeps the verdict and rechecks it when it is old', async () => {
    let t = now + policy.minIntervalMs
    const checks = new DialbackChecks(asker, p => p === checker.peerId.toString(), () => t, { recheckMs: 60_000, recheckRefutedMs: 60_000, minIntervalMs: policy.minIntervalMs }, LOOPBACK_OK)
    assert.deepEqual(checks.checkers().map(c => c.peer), [checker.peerId.toString()], 'the checker is connected directly; the stranger is no member')
    now = t
    await checks.upkeep()
    const v = checks.report()
    assert.equal(v.length, 1, JSON.stringify(v))
    assert.deepEqual({ ...v[0], atMs: 0 }, { addr: tcpAddr(asker), ok: true, by: checker.peerId.toString(), atMs: 0 })
    assert.equal(checks.refuted(`${tcpAddr(asker)}/p2p/${asker.peerId.toString()}`), false)
    // a fresh verdict is not asked for again
    t += 1_000
    await checks.upkeep()
    assert.equal(checks.report()[0]?.atMs, v[0]?.atMs)
    // an old one is
    t += 60_000
    now = t
    await checks.upkeep()
    assert.equal(checks.report()[0]?.atMs, t)
  })

  it('a checker that lies (every address refuted) holds only until the next check, which asks the other member', async () => {
    const liar = await node()
    await serve(liar, DIALBACK_PROTOCOL, async (req: { header: { addrs?: unknown } }) => ({
      header: { status: 'OK', results: (req.header.addrs as string[]).map(addr => ({ addr, ok: false, error: 'no connection within 5000 ms' })) }
    }), { maxBodyBytes: 0 })
    const key = await newDeviceKey()
    const asking = await createP2pNode({ privateKey: key, dht: false, listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(asking)
    members.add(asking.peerId.toString())
    for (const n of [liar, checker]) await asking.dial(multiaddr(`${tcpAddr(n)}/p2p/${n.peerId.toString()}`))
    let t = now + policy.minIntervalMs
    now = t
    const trusted = new Set([liar.peerId.toString(), checker.peerId.toString()])
    const checks = new DialbackChecks(asking, p => trusted.has(p), () => t, { recheckMs: 60_000, recheckRefutedMs: 60_000, minIntervalMs: 1_000 }, LOOPBACK_OK)
    const own = tcpAddr(asking)
    // whichever is asked first, the other is asked at the next check
    await checks.upkeep()
    const first = checks.verdictOf(own)
    t += 60_000
    now = t
    await checks.upkeep()
    const second = checks.verdictOf(own)
    assert.notEqual(first?.by, second?.by, 'the next check asks the member asked least recently')
    const byChecker = [first, second].find(v => v?.by === checker.peerId.toString())
    const byLiar = [first, second].find(v => v?.by === liar.peerId.toString())
    assert.equal(byChecker?.ok, true)
    assert.equal(byLiar?.ok, false)
  })

  it('an announced address nobody can connect to is refuted, reported, and given to friends last', async () => {
    const key = await newDeviceKey()
    const probe = await createP2pNode({ privateKey: key, dht: false, listen: ['/ip4/127.0.0.1/tcp/0'] })
    nodes.push(probe)
    const dead = `/ip4/127.0.0.1/tcp/${closedPort}`
    // the node's own address first, then one where nothing listens (a port forward that is not there)
    const live = tcpAddr(probe)
    await probe.stop()
    const ann = await createP2pNode({ privateKey: key, dht: false, listen: [live], announce: [dead, live] })
    nodes.push(ann)
    members.add(ann.peerId.toString())
    await ann.dial(multiaddr(`${tcpAddr(checker)}/p2p/${checker.peerId.toString()}`))
    const checks = new DialbackChecks(ann, p => p === checker.peerId.toString(), () => now, undefined, LOOPBACK_OK)
    await checks.upkeep()
    assert.equal(checks.refuted(dead), true, `candidates ${JSON.stringify(checks.candidates())}, checkers ${JSON.stringify(checks.checkers().map(c => c.peer))}, verdicts ${JSON.stringify(checks.report())}`)
    assert.equal(checks.refuted(live), false)
    const link = new RelayLink(ann, new RelayBook('off', { isMember: () => true, now: () => now }), () => 0, () => true, checks)
    const addrs = link.addrs().map(a => a.replace(/\/p2p\/.*$/, ''))
    assert.deepEqual(addrs, [live, dead], 'the refuted address comes last')
    const report = link.report()
    assert.deepEqual(report.dialback.map(v => [v.addr, v.ok]), [[dead, false], [live, true]])
  })
})
