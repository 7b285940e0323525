/**
 * Direct paths between homes (docs/network.md §15.7): a member behind NAT that reaches another
 * member behind NAT only through a relay tries to replace that relayed connection with a direct one,
 * a WebRTC connection (@libp2p/webrtc, private to private: UDP through both routers, ICE, signalled
 * over the relayed connection). Each home learns its router's public UDP mapping from the STUN
 * responders of the members whose relays it uses (node/stun-server.ts): nobody outside the group is
 * asked. Where a router maps every connection to a new port (symmetric NAT), ICE fails and the relay
 * keeps carrying the connection; the failure is remembered per friend and tried again later, less
 * and less often.
 *
 * Once a direct connection is open, libp2p opens every new stream on it (its dialer prefers a direct
 * connection to a relayed one), and the relayed connection is closed as soon as no stream is left on
 * it, so shares between the two homes do not cost the relay's owner any bandwidth.
 *
 * A friend that announces a public address of its own (a port its router maps to it by UPnP,
 * node/port-mapping.ts, or a forwarded one) is dialled there over TCP first, which works through any
 * NAT on this side; WebRTC is tried when that fails. Of two friends, the one that sees a public
 * address of the other tries; when both or neither do, the one with the smaller peer id (both trying
 * at once would make two connections).
 */
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, IdentifyResult } from '@libp2p/interface'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import { WEBRTC_SIGNALING_PROTOCOL, type P2pNode, type P2pTransport } from './libp2p-node.js'
import { addrClass, isWebrtc, reachOf } from './reachability.js'
import { reserves, serves, type RelayRole } from './relay.js'
import { StunServer } from './stun-server.js'
import { WebrtcVetting } from './webrtc-vetting.js'

const log = scopedLogger('direct')


export interface DirectPathPolicy {
  /** how long one WebRTC dial may take (signalling, ICE, DTLS, SCTP). @default 30 s */
  attemptMs: number
  /** how long a TCP dial of a friend's public (mapped) address may take. @default 10 s */
  tcpAttemptMs: number
  /** the wait before the second attempt after a failure; doubled after every further failure. @default 2 min */
  retryMs: number
  /** the longest wait between attempts. @default 2 h */
  maxRetryMs: number
  /** how often an idle relayed connection to a friend reached directly is looked at again. @default 10 s */
  relayedCloseCheckMs: number
}

export const DEFAULT_DIRECT_PATH_POLICY: DirectPathPolicy = {
  attemptMs: 30_000,
  tcpAttemptMs: 10_000,
  retryMs: 120_000,
  maxRetryMs: 2 * 3_600_000,
  relayedCloseCheckMs: 10_000
}

/** What this node knows of its direct path to one friend. */
export interface DirectPathState {
  /** direct: a direct connection is open; trying: an attempt runs; waiting: the last attempt failed, the next is at `nextAttemptAt` */
  state: 'direct' | 'trying' | 'waiting'
  /** when direct: over TCP to the friend's public (mapped) address, or WebRTC (hole-punched) */
  via?: 'tcp' | 'webrtc'
  attempts: number
  failures: number
  lastError?: string
  /** ms since the epoch */
  nextAttemptAt?: number
}

export interface DirectPathHooks {
  isMember: (peerId: string) => boolean
  now: () => number
}

/** The STUN servers (ICE `stun:` URLs) of the public relays among `addrs`: `/ip4/IP/tcp/PORT/p2p/R/p2p-circuit…` → `stun:IP:PORT`. */
export function stunServersOf (addrs: readonly string[]): string[] {
  const out = new Set<string>()
  for (const a of addrs) {
    const at = a.indexOf('/p2p-circuit')
    if (at < 0) continue
    const relayAddr = a.slice(0, at)
    const m = /^\/(ip4|ip6)\/([^/]+)\/tcp\/(\d+)\//.exec(relayAddr)
    if (m === null || m[2] === undefined || m[3] === undefined) continue
    if (addrClass(relayAddr) !== 'public') continue
    out.add(m[1] === 'ip6' ? `stun:[${m[2]}]:${m[3]}` : `stun:${m[2]}:${m[3]}`)
  }
  return [...out]
}

/**
 * The WebRTC transport, with ICE servers read at every connection: the STUN responders of the
 * members `stunServers` names (never the public servers @libp2p/webrtc would use by default).
 * Imported on demand: its native part is loaded only by daemons that need it.
 */
export async function webrtcTransport (stunServers: () => string[]): Promise<P2pTransport> {
  const { webRTC } = await import('@libp2p/webrtc')
  return webRTC({ rtcConfiguration: () => ({ iceServers: stunServers().map(url => ({ urls: [url] })) }) })
}

/**
 * Whether this node (`self`) is the one of two friends that tries a direct path to the other: the one
 * that sees a public direct address of the other (`theirsPublic`: a mapped or forwarded port); when
 * both or neither do, the one with the smaller peer id (both trying at once would make two connections).
 */
export function triesDirectPath (self: string, peer: string, theirsPublic: boolean, oursPublic: boolean): boolean {
  return theirsPublic !== oursPublic ? theirsPublic : self < peer
}

/** How many attempts dial a friend's new public address before it waits like any other. */
export const FRESH_ADDRESS_TRIES = 2

export class DirectPaths {
  private readonly paths = new Map<string, DirectPathState>()
  private readonly running = new Set<string>()
  /** how many attempts dialled each public address of each friend over TCP */
  private readonly triedTcp = new Map<string, Map<string, number>>()
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    void this.consider(evt.detail.peerId.toString())
  }

  constructor (private readonly node: P2pNode, private readonly hooks: DirectPathHooks, readonly policy: DirectPathPolicy = DEFAULT_DIRECT_PATH_POLICY, private readonly vetting?: WebrtcVetting) {}

  start (): void {
    this.node.addEventListener('peer:identify', this.onIdentify)
    this.timer = setInterval(() => { this.closeIdleRelayed() }, this.policy.relayedCloseCheckMs)
    this.timer.unref?.()
  }

  stop (): void {
    this.node.removeEventListener('peer:identify', this.onIdentify)
    if (this.timer !== undefined) clearInterval(this.timer)
  }

  /** Every connected member reached only through a relay is considered again (each refresh). */
  async upkeep (): Promise<void> {
    const peers = new Set(this.node.getConnections().map(c => c.remotePeer.toString()))
    await Promise.all([...peers].map(async p => { await this.consider(p) }))
    this.closeIdleRelayed()
  }

  /** What is known of each friend's direct path. */
  report (): Record<string, DirectPathState> {
    for (const [peer, s] of this.paths) if (s.state === 'direct' && !this.hasDirect(peer)) this.paths.set(peer, { ...s, state: 'waiting', nextAttemptAt: this.hooks.now() })
    return Object.fromEntries(this.paths)
  }

  private open (peer: string): Connection[] {
    return this.node.getConnections().filter(c => c.remotePeer.toString() === peer && c.status === 'open')
  }

  /** a direct connection: not relayed, and not a WebRTC one no stream ran over yet (webrtc-vetting.ts) */
  private directOf (peer: string): Connection | undefined { return this.open(peer).find(c => reachOf(c).how !== 'relayed' && (this.vetting?.usable(c) ?? true)) }
  private hasDirect (peer: string): boolean { return this.directOf(peer) !== undefined }

  /** A friend's public direct TCP addresses (a mapped or forwarded port), as identify gave them. */
  private async publicAddrsOf (peer: string, relayed: Connection): Promise<string[]> {
    const known = await this.node.peerStore.get(relayed.remotePeer).then(p => p.addresses.map(a => a.multiaddr.toString()), () => [] as string[])
    return known.filter(a => addrClass(a) === 'public' && !isWebrtc(a) && /\/tcp\/\d+$/.test(a)).map(a => `${a}/p2p/${peer}`)
  }

  /**
   * Tries a direct connection to `peer` when it is a member reached only through a relay, it is our
   * turn, and its wait is over: TCP to its public address when it announces one, else (or when that
   * fails) WebRTC.
   */
  private async consider (peer: string): Promise<void> {
    if (this.running.has(peer) || !this.hooks.isMember(peer)) return
    const conns = this.open(peer)
    const relayed = conns.find(c => reachOf(c).how === 'relayed')
    if (relayed === undefined || this.hasDirect(peer)) return
    const theirs = await this.publicAddrsOf(peer, relayed)
    const ours = this.node.getMultiaddrs().some(a => addrClass(a) === 'public' && !isWebrtc(a))
    if (!triesDirectPath(this.node.peerId.toString(), peer, theirs.length > 0, ours)) return
    const protocols = await this.node.peerStore.get(relayed.remotePeer).then(p => p.protocols, () => [] as string[])
    const webrtc = protocols.includes(WEBRTC_SIGNALING_PROTOCOL)
    if (theirs.length === 0 && !webrtc) return
    const prev = this.paths.get(peer)
    // a public address not tried twice yet (a port its router just mapped) is worth a try before the
    // wait is over: twice, because the first dial of a new address can fail for a reason of the moment
    // (another dial of the same address won the race, see below; a router answering before its rule is in)
    const tried = this.triedTcp.get(peer) ?? new Map<string, number>()
    const fresh = theirs.some(a => (tried.get(a) ?? 0) < FRESH_ADDRESS_TRIES)
    if (!fresh && prev?.nextAttemptAt !== undefined && prev.nextAttemptAt > this.hooks.now()) return
    // counts are kept for addresses that drop out of identify and come back: no fresh tries again
    this.triedTcp.set(peer, new Map([...tried, ...theirs.map((a): [string, number] => [a, (tried.get(a) ?? 0) + 1])]))
    this.running.add(peer)
    const attempts = (prev?.attempts ?? 0) + 1
    const failures = prev?.failures ?? 0
    this.paths.set(peer, { state: 'trying', attempts, failures })
    const started = this.hooks.now()
    const errors: string[] = []
    try {
      // an open WebRTC connection not proven yet (one being proven, or the dead one a failed punch
      // left on this side, webrtc-vetting.ts): libp2p's dial would hand it back instead of dialling,
      // so its verdict comes first
      for (const c of this.open(peer).filter(c => isWebrtc(c.remoteAddr.toString()))) await this.vetting?.whenProven(c)
      const already = this.directOf(peer)
      if (already !== undefined) { this.reached(peer, already, attempts, failures); return }
      for (const via of ['tcp', 'webrtc'] as const) {
        if (via === 'tcp' ? theirs.length === 0 : !webrtc) continue
        // WebRTC: the relayed connection's address with /webrtc before the friend's id, signalled through the same relay
        const addrs = via === 'tcp' ? theirs : [relayed.remoteAddr.toString().replace(/\/p2p\/([^/]+)$/, '/webrtc/p2p/$1')]
        let error: unknown
        try {
          const conn = await this.node.dial(addrs.map(a => multiaddr(a)), { signal: AbortSignal.timeout(via === 'tcp' ? this.policy.tcpAttemptMs : this.policy.attemptMs) })
          if (this.vetting !== undefined && !await this.vetting.whenProven(conn)) throw new Error('no stream ran over the new connection')
        } catch (err: unknown) {
          error = err
        }
        // reached when a direct connection is open, whichever dial made it: of two dials of one address at
        // once (this one and a refresh's dial of the member), libp2p keeps the first connection and aborts
        // the second, and a caller joined to the second gets "Remote closed connection during opening"
        const direct = this.directOf(peer)
        if (direct !== undefined) {
          this.reached(peer, direct, attempts, failures)
          log('direct (%s) connection to %s after %d ms%s', via, peer, this.hooks.now() - started, error === undefined ? '' : ` (our own dial failed: ${errorMessage(error)})`)
          return
        }
        errors.push(`${via === 'tcp' ? `TCP to ${theirs.join(', ')}` : 'WebRTC'}: ${error === undefined ? 'the dial returned the relayed connection' : errorMessage(error)}`)
      }
      const wait = Math.min(this.policy.maxRetryMs, this.policy.retryMs * 2 ** failures)
      this.paths.set(peer, { state: 'waiting', attempts, failures: failures + 1, lastError: errors.join('; '), nextAttemptAt: this.hooks.now() + wait })
      log('no direct connection to %s (%s); the relay carries it, next attempt in %d s', peer, errors.join('; '), Math.round(wait / 1000))
    } finally {
      this.running.delete(peer)
    }
  }

  /** A direct connection to `peer` is open: so says its state, and its idle relayed connections go. */
  private reached (peer: string, conn: Connection, attempts: number, failures: number): void {
    this.paths.set(peer, { state: 'direct', via: isWebrtc(conn.remoteAddr.toString()) ? 'webrtc' : 'tcp', attempts, failures })
    this.closeIdleRelayed()
  }

  /** Closes relayed connections without streams to friends that have a direct connection too. */
  private closeIdleRelayed (): void {
    for (const conn of this.node.getConnections()) {
      if (conn.status !== 'open' || reachOf(conn).how !== 'relayed' || conn.streams.length > 0) continue
      const peer = conn.remotePeer.toString()
      if (!this.hasDirect(peer)) continue
      log('closing the relayed connection to %s: a direct one is open', peer)
      void conn.close().catch((err: unknown) => { log('closing the relayed connection to %s: %s', peer, errorMessage(err)) })
    }
  }
}

/**
 * What a node's relay role brings for direct paths: behind NAT (`reserve`, `both`) the WebRTC
 * transport and the {@link DirectPaths} that use it; with a public address (`serve`, `both`) the STUN
 * responder, on UDP at the port number of its TCP listen address (docs/network.md §15.7).
 */
export class DirectLinks {
  paths: DirectPaths | undefined
  stun: StunServer | undefined
  /** WebRTC connections count once a stream ran over them (with the WebRTC transport only) */
  vetting: WebrtcVetting | undefined
  private node: P2pNode | undefined
  /** a UDP port the STUN responder could not take, and when (tried again after 10 min, not every few seconds) */
  private stunRefused: { port: number, atMs: number } | undefined

  private constructor (private readonly role: RelayRole, readonly transports: Array<P2pTransport>) {}

  /**
   * Before the libp2p node is built: its extra transports. `ownAddrs`: this node's addresses for
   * friends (its relayed ones name the STUN servers to ask). `follows`: the role follows the network
   * (role-follow.ts): the WebRTC transport is there whatever the role is now.
   */
  static async prepare (role: RelayRole, ownAddrs: () => readonly string[], follows = false): Promise<DirectLinks> {
    let links: DirectLinks | undefined
    // the relays we hold reservations on, and those our relayed connections go through (a friend who
    // just joined signals through a relay before it holds a reservation there)
    const stun = (): string[] => stunServersOf([...ownAddrs(), ...(links?.node?.getConnections().map(c => c.remoteAddr.toString()) ?? [])])
    const transports = reserves(role) || follows ? [await webrtcTransport(stun)] : []
    links = new DirectLinks(role, transports)
    return links
  }

  /** Once the node listens: the direct paths (behind NAT) and the STUN responder (public address; a taken port is logged, not fatal). */
  async start (node: P2pNode, hooks: DirectPathHooks): Promise<void> {
    this.node = node
    if (this.transports.length > 0) {
      this.vetting = new WebrtcVetting(node)
      this.vetting.start(node.getConnections())
      this.paths = new DirectPaths(node, hooks, DEFAULT_DIRECT_PATH_POLICY, this.vetting)
      this.paths.start()
    }
    await this.setServing(serves(this.role), node)
  }

  /** Runs the STUN responder (a role that serves) or stops it (role-follow.ts switches it with the role). */
  async setServing (on: boolean, node: P2pNode): Promise<void> {
    if (!on) {
      const stun = this.stun
      this.stun = undefined
      await stun?.stop()
      return
    }
    if (this.stun !== undefined) return
    const tcp = node.getMultiaddrs().map(a => /^\/ip4\/([^/]+)\/tcp\/(\d+)/.exec(a.toString())).find(m => m !== null && addrClass(`/ip4/${m[1] ?? ''}`) !== 'loopback')
    const port = Number(tcp?.[2] ?? 0)
    if (port === 0 || (port === this.stunRefused?.port && Date.now() - this.stunRefused.atMs < 600_000)) return
    try {
      this.stun = await StunServer.start({ port })
    } catch (err: unknown) {
      this.stunRefused = { port, atMs: Date.now() }
      log.error('no STUN responder on udp port %d (friends behind NAT cannot find direct paths through this node): %s', port, errorMessage(err))
    }
  }

  /** Whether a connection may count as a path to its peer (a WebRTC one once proven). */
  usable (conn: Pick<Connection, 'remoteAddr'>): boolean { return this.vetting?.usable(conn) ?? true }

  async stop (): Promise<void> {
    this.paths?.stop()
    this.vetting?.stop()
    await this.stun?.stop()
  }
}
