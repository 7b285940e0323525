/**
 * Where a node can be reached, and how a friend is reached now (docs/network.md §15): address
 * classes, the order in which a friend's addresses are worth trying, and a dial that tries them in
 * that order and names every address it tried when none worked.
 *
 *   loopback   127.0.0.0/8, ::1                       this machine only
 *   private    10/8, 172.16/12, 192.168/16, 100.64/10  a home or office network (LAN), behind a router
 *              (carrier-grade NAT), 169.254/16, fc00::/7, fe80::/10
 *   public     any other IP address, and DNS names     reachable from the internet (if no firewall)
 *   relayed    …/p2p/RELAY/p2p-circuit/…                through a member's relay (circuit relay v2)
 *
 * A WebRTC address (`…/p2p-circuit/webrtc/p2p/PEER`) is not dialled like the others: direct-paths.ts
 * tries it once a relayed connection is open, and it is left out of what friends are given.
 */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p, PeerId } from '@libp2p/interface'
import { ProtocolError, RefusedError, TimeoutError, errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('reachability')

export type AddrClass = 'loopback' | 'private' | 'public' | 'relayed'

const CIRCUIT = '/p2p-circuit'

/** The class of an IPv4 or IPv6 address written as text (not a multiaddr). */
export function ipClass (ip: string): Exclude<AddrClass, 'relayed'> {
  if (ip.includes(':')) {
    const v6 = ip.toLowerCase()
    if (v6 === '::1') return 'loopback'
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(v6)
    if (mapped?.[1] !== undefined) return ipClass(mapped[1])
    if (/^f[cd]/.test(v6) || /^fe[89ab]/.test(v6)) return 'private'
    return 'public'
  }
  const o = ip.split('.').map(Number)
  const [a = -1, b = -1] = o
  if (a === 127) return 'loopback'
  if (a === 10 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127) || a === 0) return 'private'
  return 'public'
}

/** The class of a multiaddr: relayed when it goes through a relay, else the class of its host. */
export function addrClass (addr: string | Multiaddr): AddrClass {
  const ma = typeof addr === 'string' ? multiaddr(addr) : addr
  const text = ma.toString()
  if (text.includes(CIRCUIT)) return 'relayed'
  const host = ma.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6' || c.name === 'dns' || c.name === 'dns4' || c.name === 'dns6')
  if (host === undefined || host.value === undefined) return 'private'
  if (host.name.startsWith('dns')) return host.value === 'localhost' ? 'loopback' : 'public'
  return ipClass(host.value)
}

/** The peer id of the relay a relayed address goes through, or undefined for a direct address. */
export function relayOf (addr: string | Multiaddr): string | undefined {
  const text = addr.toString()
  const at = text.indexOf(CIRCUIT)
  if (at < 0) return undefined
  const m = /\/p2p\/([^/]+)$/.exec(text.slice(0, at))
  return m?.[1]
}

/** The class of the relay's own address in a relayed address (public relays are worth more). */
function relayAddrClass (addr: string): AddrClass {
  const at = addr.indexOf(CIRCUIT)
  return addrClass(addr.slice(0, at))
}

const RANK: Record<AddrClass, number> = { public: 0, private: 1, relayed: 2, loopback: 4 }

/**
 * A friend's addresses in the order worth trying: direct public ones, direct LAN ones, relayed
 * through a public relay, relayed through a LAN relay, loopback last. Loopback addresses (and
 * relayed ones through a loopback relay address) are dropped unless nothing else is left: they
 * reach only the machine that dials them (tests on one machine have nothing else).
 */
export function orderForFriends (addrs: readonly string[]): string[] {
  const rank = (a: string): number => {
    const c = addrClass(a)
    if (c !== 'relayed') return RANK[c]
    const via = relayAddrClass(a)
    return via === 'public' ? 2 : via === 'private' ? 3 : 5
  }
  const unique = [...new Set(addrs)].filter(a => !isWebrtc(a))
  const useful = unique.filter(a => rank(a) < 4)
  const chosen = useful.length > 0 ? useful : unique
  return chosen.map((a, i) => ({ a, i, r: rank(a) })).sort((x, y) => x.r - y.r || x.i - y.i).map(x => x.a)
}

/** Whether an address or a connection's remote address is WebRTC's (a hole-punched path, direct-paths.ts). */
export function isWebrtc (addr: string | Multiaddr): boolean { return /\/webrtc(\/|$)/.test(addr.toString()) }

/** lan, direct: over TCP; holepunched: a direct WebRTC (UDP) connection through both routers; relayed: through a member's relay */
export type ReachKind = 'lan' | 'direct' | 'holepunched' | 'relayed' | 'loopback'

/** How a friend is reached over one connection. */
export interface Reach {
  how: ReachKind
  /** the relay's peer id when relayed */
  via?: string
  /** the address of the other end as this node sees it */
  addr: string
  direction: 'inbound' | 'outbound'
}

/** How a connection reaches its peer: through a relay, on this machine, on a LAN, or directly over the internet. */
export function reachOf (conn: Pick<Connection, 'remoteAddr' | 'direction'>): Reach {
  const addr = conn.remoteAddr.toString()
  const via = relayOf(addr)
  const base = { addr, direction: conn.direction }
  // the dialer sees …/p2p/RELAY/p2p-circuit/webrtc/p2p/PEER (signalled through RELAY), the other side /webrtc/p2p/PEER
  if (isWebrtc(addr)) return { how: 'holepunched', ...base }
  if (via !== undefined) return { how: 'relayed', via, ...base }
  const c = addrClass(conn.remoteAddr)
  return { how: c === 'loopback' ? 'loopback' : c === 'private' ? 'lan' : 'direct', ...base }
}

/** The best way a peer is reached now over its open connections (direct before relayed), or undefined. */
export function bestReach (conns: ReadonlyArray<Pick<Connection, 'remoteAddr' | 'direction' | 'status'>>): Reach | undefined {
  const order: Record<ReachKind, number> = { loopback: 0, lan: 1, direct: 2, holepunched: 3, relayed: 4 }
  return conns.filter(c => c.status === 'open').map(reachOf).sort((a, b) => order[a.how] - order[b.how])[0]
}

/** One address tried by {@link dialInOrder}, and why it failed. */
export interface DialAttempt { addrs: string[], error: string }

export interface DialInOrderOptions {
  /** deadline of the direct addresses (tried together). @default 5000 */
  directMs?: number
  /** deadline of the relayed addresses (tried together). @default 15000 */
  relayedMs?: number
  signal?: AbortSignal
}

/**
 * Dials a peer by its addresses in {@link orderForFriends} order: every direct address at once
 * (libp2p races them), and only when none answers within `directMs`, the relayed ones. Throws a
 * ProtocolError (`transport: 'unreachable'`) or a TimeoutError whose message names every address
 * tried and why each group failed.
 */
export async function dialInOrder (node: Pick<Libp2p, 'dial'>, addrs: readonly string[], opts: DialInOrderOptions = {}): Promise<Connection> {
  const ordered = orderForFriends(addrs)
  const direct = ordered.filter(a => addrClass(a) !== 'relayed')
  const relayed = ordered.filter(a => addrClass(a) === 'relayed')
  const tried: DialAttempt[] = []
  let timedOut = false
  for (const [group, ms] of [[direct, opts.directMs ?? 5_000], [relayed, opts.relayedMs ?? 15_000]] as const) {
    if (group.length === 0) continue
    const deadline = AbortSignal.timeout(ms)
    const signal = opts.signal !== undefined ? AbortSignal.any([opts.signal, deadline]) : deadline
    try {
      return await node.dial(group.map(a => multiaddr(a)), { signal })
    } catch (err: unknown) {
      if (opts.signal?.aborted === true) throw err
      timedOut = deadline.aborted
      tried.push({ addrs: [...group], error: deadline.aborted ? `no answer within ${ms} ms` : errorMessage(err) })
    }
  }
  const what = tried.length === 0 ? 'no address to dial' : tried.map(t => `${t.addrs.join(', ')}: ${t.error}`).join('; ')
  if (timedOut && tried.length === 1) throw new TimeoutError(`tried ${what}`)
  throw new ProtocolError(`tried ${what}`, { transport: 'unreachable' })
}

/**
 * Dials a member device: its last known addresses first (direct ones, then relayed), then whatever
 * the DHT knows. Returns the addresses the DHT gave (to remember), or undefined when the known ones
 * answered.
 */
export async function dialMember (node: Libp2p, pid: PeerId, addrs: readonly string[], timeoutMs: number): Promise<string[] | undefined> {
  if (addrs.length > 0) {
    try {
      await dialInOrder(node, addrs, { directMs: timeoutMs, relayedMs: timeoutMs })
      return undefined
    } catch (err: unknown) {
      // stale addresses (the peer moved or restarted on another port): ask the DHT
      log('%s not reached at its known addresses: %s', pid.toString(), errorMessage(err))
    }
  }
  const dht = (node.services as { dht?: unknown }).dht
  if (dht === undefined) throw new RefusedError(`no address known for ${pid.toString()}`)
  const info = await node.peerRouting.findPeer(pid, { signal: AbortSignal.timeout(Math.min(timeoutMs, 3000)) })
  // a relayed listen address comes as …/p2p/RELAY/p2p-circuit: every address must end with the peer's id
  const addrsOfPeer = info.multiaddrs.map(a => withPeerId(a.toString(), pid.toString()))
  await node.dial(addrsOfPeer.map(a => multiaddr(a)), { signal: AbortSignal.timeout(timeoutMs) })
  return addrsOfPeer
}

/** `addr` ending with `/p2p/PEER` (added unless it already ends so). */
export function withPeerId (addr: string, peer: string): string {
  return addr.endsWith(`/p2p/${peer}`) ? addr : `${addr}/p2p/${peer}`
}
