import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { addrClass, bestReach, ipClass, isWebrtc, orderForFriends, reachOf, relayOf, withPeerId } from '../../../src/node/reachability.js'
import { stunServersOf, triesDirectPath } from '../../../src/node/direct-paths.js'
import { hostPort } from '../../../src/node/port-mapping.js'
import { connectDestination, relayRoleFor, RelayBook } from '../../../src/node/relay.js'
import { multiaddr } from '@multiformats/multiaddr'

const R = '12D3KooWNycJ5ChYiLRtEtBvWVt8mW8sYFEo37jgJmkTHhS6T6db'
const B = '12D3KooWHihsc7Y9Rg6PCyBUD3vHm5dWQEZCsjV9jM3ZV2GzJBVV'

describe('node/reachability: address classes and the order friends try them in', () => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1', 'loopback'], ['::1', 'loopback'], ['10.0.1.2', 'private'], ['172.16.5.1', 'private'], ['172.32.0.1', 'public'],
    ['192.168.1.10', 'private'], ['100.64.0.1', 'private'], ['169.254.1.1', 'private'], ['198.18.0.2', 'public'], ['203.0.113.7', 'public'],
    ['fd00::1', 'private'], ['fe80::1', 'private'], ['2001:db8::1', 'public'], ['::ffff:10.0.0.1', 'private']
  ]
  for (const [ip, cls] of cases) it(`${ip} is ${cls}`, () => { assert.equal(ipClass(ip), cls) })

  it('a relayed address is relayed, and names its relay', () => {
    const a = `/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`
    assert.equal(addrClass(a), 'relayed')
    assert.equal(relayOf(a), R)
    assert.equal(relayOf(`/ip4/10.0.2.2/tcp/4737/p2p/${B}`), undefined)
  })

  it('orders direct public, direct LAN, relayed through a public relay, through a LAN relay; drops loopback unless nothing else is left', () => {
    const lo = `/ip4/127.0.0.1/tcp/4737/p2p/${B}`
    const lan = `/ip4/10.0.2.2/tcp/4737/p2p/${B}`
    const pub = `/ip4/198.18.0.12/tcp/4737/p2p/${B}`
    const viaPub = `/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`
    const viaLan = `/ip4/10.0.0.9/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`
    const viaLo = `/ip4/127.0.0.1/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`
    assert.deepEqual(orderForFriends([lo, viaLo, viaLan, viaPub, lan, pub]), [pub, lan, viaPub, viaLan])
    assert.deepEqual(orderForFriends([lo]), [lo])
  })

  it('says how a connection reaches its peer', () => {
    assert.deepEqual(reachOf({ remoteAddr: multiaddr(`/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`), direction: 'outbound' }).how, 'relayed')
    assert.equal(reachOf({ remoteAddr: multiaddr('/ip4/10.0.1.3/tcp/4737'), direction: 'inbound' }).how, 'lan')
    assert.equal(reachOf({ remoteAddr: multiaddr('/ip4/198.18.0.11/tcp/40001'), direction: 'inbound' }).how, 'direct')
    // a WebRTC connection: the dialer sees the relay it signalled through, the other side only /webrtc
    assert.equal(reachOf({ remoteAddr: multiaddr(`/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/webrtc/p2p/${B}`), direction: 'outbound' }).how, 'holepunched')
    assert.equal(reachOf({ remoteAddr: multiaddr(`/webrtc/p2p/${B}`), direction: 'inbound' }).how, 'holepunched')
  })

  it('prefers a hole-punched connection to a relayed one, and a TCP one to both', () => {
    const relayed = { remoteAddr: multiaddr(`/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`), direction: 'outbound' as const, status: 'open' as const }
    const punched = { remoteAddr: multiaddr(`/webrtc/p2p/${B}`), direction: 'inbound' as const, status: 'open' as const }
    const direct = { remoteAddr: multiaddr('/ip4/198.18.0.12/tcp/4737'), direction: 'outbound' as const, status: 'open' as const }
    assert.equal(bestReach([relayed, punched])?.how, 'holepunched')
    assert.equal(bestReach([punched, relayed, direct])?.how, 'direct')
    assert.equal(bestReach([{ ...punched, status: 'closed' as const }, relayed])?.how, 'relayed')
  })

  it('gives friends no WebRTC address (direct paths are tried from a relayed connection, not dialled)', () => {
    const viaPub = `/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`
    assert.deepEqual(orderForFriends([`/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/webrtc/p2p/${B}`, viaPub]), [viaPub])
    assert.equal(isWebrtc('/ip4/1.2.3.4/udp/1/webrtc-direct'), false)
  })

  it('asks the STUN responders of public relays only, at their TCP port number', () => {
    assert.deepEqual(stunServersOf([
      `/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`,
      `/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit`,
      `/ip4/10.0.0.9/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`,
      `/ip6/2001:db8::7/tcp/5000/p2p/${R}/p2p-circuit/p2p/${B}`,
      '/ip4/198.18.0.12/tcp/4737',
      `/ip4/127.0.0.1/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`
    ]), ['stun:198.18.0.2:4737', 'stun:[2001:db8::7]:5000'])
  })

  it('puts a port mapped on the router first, and lets the friend who sees a public address dial it', () => {
    const mapped = `/ip4/198.51.100.7/tcp/4737/p2p/${B}`
    const relayed = `/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`
    assert.deepEqual(orderForFriends([`/ip4/10.0.1.2/tcp/4737/p2p/${B}`, relayed, mapped]), [mapped, `/ip4/10.0.1.2/tcp/4737/p2p/${B}`, relayed])
    assert.equal(hostPort('/ip4/198.51.100.7/tcp/4737'), '198.51.100.7:4737')
    assert.equal(hostPort('/ip6/2001:db8::7/tcp/4737'), '[2001:db8::7]:4737')
    // only one of two friends tries: the one that sees a public address of the other, else the smaller id
    for (const [theirs, ours] of [[true, false], [false, true], [true, true], [false, false]] as const) {
      const a = triesDirectPath('A', 'B', theirs, ours)
      const b = triesDirectPath('B', 'A', ours, theirs)
      assert.equal(a !== b, true, `exactly one tries (theirs ${String(theirs)}, ours ${String(ours)})`)
      if (theirs !== ours) assert.equal(a, theirs, 'the side that sees a public address of the other')
      else assert.equal(a, true, 'the smaller peer id')
    }
  })

  it('makes every address of a peer end with its id (a relayed listen address ends with the relay\'s)', () => {
    assert.equal(withPeerId(`/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit`, B), `/ip4/198.18.0.2/tcp/4737/p2p/${R}/p2p-circuit/p2p/${B}`)
    assert.equal(withPeerId(`/ip4/198.51.100.7/tcp/4737/p2p/${B}`, B), `/ip4/198.51.100.7/tcp/4737/p2p/${B}`)
    assert.equal(withPeerId('/ip4/198.51.100.7/tcp/4737', B), `/ip4/198.51.100.7/tcp/4737/p2p/${B}`)
  })
})

describe('node/relay: roles, who may use a relay, hop requests', () => {
  const ifaces = (addrs: string[]): NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]> =>
    ({ eth0: addrs.map((address): import('node:os').NetworkInterfaceInfo => address.includes(':')
      ? { address, family: 'IPv6', scopeid: 0, internal: false, netmask: 'ffff:ffff:ffff:ffff::', mac: '00:00:00:00:00:00', cidr: null }
      : { address, family: 'IPv4', internal: false, netmask: '255.255.255.0', mac: '00:00:00:00:00:00', cidr: null }) })

  it('serves with a public address, reserves behind NAT, neither on loopback', () => {
    assert.equal(relayRoleFor(['/ip4/0.0.0.0/tcp/4737'], undefined, ifaces(['127.0.0.1', '198.18.0.2'])), 'serve')
    assert.equal(relayRoleFor(['/ip4/0.0.0.0/tcp/4737'], undefined, ifaces(['127.0.0.1', '10.0.1.2'])), 'reserve')
    assert.equal(relayRoleFor(['/ip4/127.0.0.1/tcp/0'], undefined, ifaces(['10.0.1.2'])), 'off')
    assert.equal(relayRoleFor(['/ip4/0.0.0.0/tcp/4737'], ['/ip4/203.0.113.7/tcp/4737'], ifaces(['10.0.1.2'])), 'serve')
    // a usual home line: a global IPv6 address, IPv4 behind NAT
    assert.equal(relayRoleFor(['/ip4/0.0.0.0/tcp/4737', '/ip6/::/tcp/4737'], undefined, ifaces(['192.168.1.20', '2001:db8::20', 'fe80::1'])), 'both')
  })

  it('gives reservations to members only, relays members to members and strangers only to an inviting member', async () => {
    const [m1, m2, s] = await Promise.all([1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
    if (m1 === undefined || m2 === undefined || s === undefined) throw new Error('keys')
    let now = 1_000_000
    const members = new Set([m1.toString(), m2.toString()])
    const book = new RelayBook('serve', { isMember: p => members.has(p), now: () => now })
    const g = book.gater()
    assert.equal(await g.denyInboundRelayReservation?.(m1), false)
    assert.equal(await g.denyInboundRelayReservation?.(s), true)
    assert.equal(await g.denyOutboundRelayedConnection?.(m1, m2), false)
    assert.equal(await g.denyOutboundRelayedConnection?.(m1, s), true)
    assert.equal(await g.denyOutboundRelayedConnection?.(s, m2), true)
    assert.equal(book.mayConnectStranger(), false)
    book.invitesOpen(m2.toString(), now + 60_000)
    assert.equal(book.mayConnectStranger(), true)
    assert.equal(await g.denyOutboundRelayedConnection?.(s, m2), false)
    assert.equal(await g.denyOutboundRelayedConnection?.(s, m1), true)
    now += 61_000
    assert.equal(book.mayConnectStranger(), false)
    assert.equal(await g.denyOutboundRelayedConnection?.(s, m2), true)
  })

  it('reads the destination of a hop CONNECT request, and nothing from anything else', async () => {
    const dst = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const id = dst.toMultihash().bytes
    const peer = Uint8Array.from([0x0a, id.byteLength, ...id])
    const msg = Uint8Array.from([0x08, 0x01, 0x12, peer.byteLength, ...peer])
    assert.equal(connectDestination(Uint8Array.from([msg.byteLength, ...msg])), dst.toString())
    const reserve = Uint8Array.from([0x08, 0x00])
    assert.equal(connectDestination(Uint8Array.from([reserve.byteLength, ...reserve])), undefined)
    assert.equal(connectDestination(Uint8Array.from([0x80])), undefined)
  })
})
