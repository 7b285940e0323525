/**
 * A node's side of relays (docs/network.md §15): the addresses it gives friends (relayed ones once
 * it holds a reservation), keeping its reservations, telling its relays about open invites, and the
 * reachability report `status` prints.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection } from '@libp2p/interface'
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { errorMessage } from '../errors.js'
import { sendInvitesNotice } from '../protocols/relay.js'
import { directHost } from '../protocols/dialback.js'
import { LEDGER_RELAYED_WINDOW_MS } from '../peers/index.js'
import { scopedLogger } from '../util/log.js'
import { identifyConnection, type P2pNode } from './libp2p-node.js'
import { addrClass, bestReach, orderForFriends, type Reach } from './reachability.js'
import { hostPort, mappedAddrs, mappedBy } from './port-mapping.js'
import { relaysIn, reserves, type Carried, type RelayBook, type RelayRole } from './relay.js'
import type { DialbackChecks, DialbackVerdict } from './dialback.js'

const log = scopedLogger('relay')

/** The most addresses an invite carries (peers/constants.ts MAX_INVITE_ADDRS). */
const MAX_INVITE_ADDRS = 16

export interface Reachability {
  /** serve: friends can dial this node (a public address) and it relays for them; reserve: behind NAT, reached through relays; both: a public IPv6 address behind an IPv4 NAT; off: this machine only */
  role: RelayRole
  /** the addresses friends are given, best first */
  addrs: string[]
  /** whether a friend outside this network can reach this node now, and how */
  reachable: boolean
  how: string
  /** the members whose relays carry connections to this node */
  relays: string[]
  /** behind NAT: the public addresses a port mapping on the home router gives this node (UPnP, port-mapping.ts) */
  mapped: string[]
  /** bytes this node relayed, per member peer id (serve only) */
  carried: Record<string, Carried>
  /** what members found when they dialled our public addresses back (dialback.ts): which friends elsewhere can connect to */
  dialback: DialbackVerdict[]
}

export class RelayLink {
  /** the last invites notice sent to each relay */
  private readonly noticed = new Map<string, number>()

  constructor (
    private readonly node: P2pNode,
    readonly book: RelayBook,
    private readonly invitesOpenUntil: () => number,
    private readonly isMember: (peerId: string) => boolean,
    private readonly checks?: DialbackChecks,
    /** whether a connection counts as a path (a WebRTC one once a stream ran over it: webrtc-vetting.ts) */
    private readonly usable: (conn: Connection) => boolean = () => true
  ) {}

  /**
   * Our addresses, best first for a friend elsewhere (reachability.ts orderForFriends); an address a
   * member could not connect to when it dialled us back goes last (dialback.ts).
   */
  addrs (): string[] {
    const ordered = orderForFriends(this.node.getMultiaddrs().map(a => a.toString()))
    const checks = this.checks
    if (checks === undefined) return ordered
    return [...ordered.filter(a => !checks.refuted(a)), ...ordered.filter(a => checks.refuted(a))]
  }

  /** The members this node holds a relay reservation on now. */
  relays (): string[] { return relaysIn(this.addrs()) }

  /**
   * The addresses for an invite: behind NAT, waits (at most `waitMs`) for a relayed address first, so
   * that a friend elsewhere can reach us; then tells our relays that a stranger may come.
   */
  async inviteAddrs (waitMs = 15_000): Promise<string[]> {
    if (reserves(this.book.role) && this.relays().length === 0) {
      await this.upkeep()
      const deadline = Date.now() + waitMs
      while (this.relays().length === 0 && Date.now() < deadline) {
        await new Promise<void>(resolve => {
          const done = (): void => { clearTimeout(t); this.node.removeEventListener('self:peer:update', done); resolve() }
          const t = setTimeout(done, Math.max(1, deadline - Date.now()))
          this.node.addEventListener('self:peer:update', done)
        })
      }
      if (this.relays().length === 0) log('no relay reservation yet: the invite carries only addresses on this network')
    }
    return this.addrs().slice(0, MAX_INVITE_ADDRS)
  }

  /** Tells each relay until when we have an open invite (sent when it changed for that relay). */
  async notice (): Promise<void> {
    const until = this.invitesOpenUntil()
    await Promise.all(this.relays().map(async relay => {
      if ((this.noticed.get(relay) ?? 0) === until) return
      try {
        await sendInvitesNotice(this.node, peerIdFromString(relay), until)
        this.noticed.set(relay, until)
      } catch (err: unknown) {
        log('relay %s not told about our invites (next refresh): %s', relay, errorMessage(err))
      }
    }))
  }

  /**
   * Behind NAT with fewer reservations than wanted: offers every connected member that serves as a
   * relay to the relay transport again (a relay refuses a reservation until it has the roster that
   * names us). A reservation needs a direct TCP connection: a member that serves but is connected
   * only through a relay or WebRTC (a laptop that just moved to a network with a public address) is
   * dialled at its public address first. Then the invites notice.
   */
  async upkeep (): Promise<void> {
    if (reserves(this.book.role) && this.relays().length < this.book.policy.reservations) {
      const current = new Set(this.relays())
      const peers = new Map<string, Connection[]>()
      for (const conn of this.node.getConnections()) {
        const peer = conn.remotePeer.toString()
        if (current.has(peer) || !this.isMember(peer) || conn.status !== 'open') continue
        peers.set(peer, [...(peers.get(peer) ?? []), conn])
      }
      // one member at a time would hold up the round by up to 15 s each (dial, identify)
      await Promise.all([...peers].map(async ([peer, conns]) => { await this.offerRelay(peer, conns) }))
    }
    await this.notice()
  }

  /** Offers a member that serves as a relay to the relay transport again, over a direct connection (upkeep). */
  private async offerRelay (peer: string, conns: Connection[]): Promise<void> {
    const known = await this.node.peerStore.get(conns[0]?.remotePeer ?? peerIdFromString(peer)).catch(() => undefined)
    if (known?.protocols.includes(RELAY_V2_HOP_CODEC) !== true) return
    let direct = conns.find(c => directHost(c.remoteAddr) !== undefined)
    if (direct === undefined) {
      const addr = known.addresses.map(a => a.multiaddr.toString()).find(a => directHost(multiaddr(a)) !== undefined && addrClass(a) === 'public')
      if (addr === undefined) return
      try {
        direct = await this.node.dial(multiaddr(addr.includes('/p2p/') ? addr : `${addr}/p2p/${peer}`), { force: true, signal: AbortSignal.timeout(5_000) })
      } catch (err: unknown) {
        log('relay %s not reached directly at %s (a reservation needs a direct connection): %s', peer, addr, errorMessage(err))
        return
      }
      // libp2p may have joined a dial under way, which connected another way
      if (directHost(direct.remoteAddr) === undefined) { log('relay %s: the dial to %s gave %s, not a direct connection', peer, addr, direct.remoteAddr.toString()); return }
    }
    // libp2p reserves over the first open connection it finds: one through a relay (or WebRTC
    // signalled through one) is refused, so the idle others go once the TCP one is there
    for (const c of conns) {
      if (c !== direct && directHost(c.remoteAddr) === undefined && c.streams.length === 0) {
        await c.close().catch((err: unknown) => { log('closing the indirect connection to relay %s: %s', peer, errorMessage(err)) })
      }
    }
    this.book.reoffer(peer)
    await identifyConnection(this.node, direct)
  }

  /**
   * Bytes relayed per member device in the ledger's window (30 days) before `now`, after saving the
   * tally (a failed save is logged: the counts stay in memory for the next try).
   */
  async relayedLately (now: number): Promise<Map<string, number>> {
    await this.saveTally(now)
    return this.book.tally?.within(now, LEDGER_RELAYED_WINDOW_MS) ?? new Map()
  }

  async saveTally (now: number): Promise<void> {
    await this.book.tally?.save(now).catch((err: unknown) => { log.error('cannot save what this node relayed: %s', errorMessage(err)) })
  }

  /** How a member device is reached now (undefined: not connected). */
  reachOf (peerId: string): Reach | undefined {
    try { return bestReach(this.node.getConnections(peerIdFromString(peerId)).filter(this.usable)) } catch { return undefined /* not a peer id: not connected */ }
  }

  report (): Reachability {
    const addrs = this.addrs()
    const relays = relaysIn(addrs)
    const carried = Object.fromEntries(this.book.carriedFor())
    const role = this.book.role
    const mapped = mappedAddrs(this.node)
    const dialback = this.checks?.report() ?? []
    const base = { role, addrs, relays, mapped, carried, dialback }
    const refuted = (a: string): boolean => this.checks?.refuted(a) === true
    const confirmed = dialback.filter(v => v.ok).map(v => `${v.by} connected to ${hostPort(v.addr)} at ${new Date(v.atMs).toISOString()}`)
    const checked = confirmed.length > 0 ? `; checked by dial-back: ${confirmed.join(', ')}` : ''
    const failures = dialback.filter(v => !v.ok).map(v => `${v.by} could not connect to ${hostPort(v.addr)} (${v.error ?? 'failed'})`)
    const publicAddrs = addrs.filter(a => addrClass(a) === 'public' && relaysIn([a]).length === 0)
    if (role === 'serve') {
      const open = publicAddrs.filter(a => !refuted(a))
      if (publicAddrs.length > 0 && open.length === 0) {
        return { ...base, reachable: false, how: `friends elsewhere cannot connect: ${failures.join('; ')}; open that port in the firewall in front of this machine, or run the daemon with --relay reserve to be reached through a member's relay` }
      }
      return { ...base, reachable: true, how: `directly at ${(open.length > 0 ? open : addrs).join(', ')}; relays for members${checked}` }
    }
    if (role === 'reserve' || role === 'both') {
      const ways: string[] = []
      const openMapped = mapped.filter(a => !refuted(a))
      if (openMapped.length > 0) ways.push(`directly at ${openMapped.map(hostPort).join(', ')} (port mapped on the router by ${mappedBy(this.node)})`)
      // both: a public IPv6 address behind an IPv4 NAT, or a public address beside reservations kept from before (role-follow.ts)
      const ownPublic = publicAddrs.filter(a => !mapped.some(m => a.startsWith(m)) && !refuted(a))
      if (role === 'both' && ownPublic.length > 0) ways.push(`directly at ${ownPublic.map(a => a.startsWith('/ip6/') ? `${a} (IPv6, unless a firewall drops it)` : a).join(', ')}; relays for members`)
      ways.push(relays.length > 0 ? `behind NAT, through the relay of ${relays.join(', ')}` : 'behind NAT, no relay reservation yet (no member with a public address answered)')
      if (failures.length > 0) ways.push(`not directly: ${failures.join('; ')}`)
      return { ...base, reachable: openMapped.length > 0 || relays.length > 0 || ownPublic.length > 0, how: ways.join('; ') + checked }
    }
    return { ...base, reachable: false, how: 'on this machine only (loopback)' }
  }
}
