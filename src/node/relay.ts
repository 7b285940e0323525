/**
 * Relays among members (docs/network.md §15): circuit relay v2 (@libp2p/circuit-relay-v2) served by
 * every member that friends can dial, for the group's members only, and reservations kept by members
 * behind NAT on one or two of them.
 *
 *   role     when (the addresses the node gives friends: --announce, else the listen addresses)
 *   serve    a public IPv4 address (or any announced public address): run the relay server
 *   reserve  only private (LAN) addresses: keep RESERVATIONS reservations on members that serve,
 *            and announce the relayed addresses (identify, DHT, invites, peer books)
 *   both     a public IPv6 address but only private IPv4 ones (a usual home line: IPv6 friends may
 *            reach it, unless the router's firewall drops them; IPv4 friends cannot): both
 *   off      loopback only (tests, commands without a daemon): neither; relayed addresses can
 *            still be dialled
 *
 * Who may use a relay (the gater hooks and the hop meter below): a reservation only a member's
 * device; a relayed connection only between two members, or from a stranger to a member that told
 * this relay it has an open invite (protocols/relay.ts), within the stranger limits. Bytes carried
 * are counted per member; a member over its daily budget has its relayed connections closed.
 */
import { networkInterfaces } from 'node:os'
import { circuitRelayServer, circuitRelayTransport, RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { peerIdFromString } from '@libp2p/peer-id'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import type { Connection, ConnectionGater, PeerId, Startable, Stream, StreamHandler, StreamHandlerOptions, TopologyFilter } from '@libp2p/interface'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import { addrClass, relayOf } from './reachability.js'
import type { RelayTally } from './relay-tally.js'

const log = scopedLogger('relay')

export type RelayRole = 'serve' | 'reserve' | 'both' | 'off'
/** `auto`: the role from the node's own addresses (above) */
export type RelayMode = 'auto' | RelayRole

export interface RelayPolicy {
  /** reservations a node behind NAT keeps (on different members). @default 2 */
  reservations: number
  /** reservations a relay holds at once (one per member device behind NAT). @default 64 */
  maxReservations: number
  /** how long a reservation lasts; clients renew it before then. @default 2 h (libp2p's) */
  reservationTtlMs: number
  /** relayed connections (hop streams) open at once through this relay. @default 64 */
  maxRelayedConnections: number
  /** bytes one member may move through this relay per day, both directions. @default 64 GiB */
  memberDailyBytes: number
  /** a stranger redeeming an invite: bytes per relayed connection. @default 1 MiB (a join moves a few KiB) */
  strangerBytes: number
  /** a stranger redeeming an invite: lifetime of a relayed connection. @default 2 min */
  strangerMs: number
  /** strangers' relayed connections open at once. @default 4 */
  maxStrangerConnections: number
}

/**
 * Sized for backups among friends: a first backup of a few hundred GB goes over a relay in days, so
 * a member's relayed connections have no byte or time limit of their own (libp2p's defaults, 128 KiB
 * and 2 min, reset a share transfer mid-way; a "limited" connection is also never reused by libp2p's
 * dialer), and the relay's owner is protected by the daily budget per member instead.
 */
export const DEFAULT_RELAY_POLICY: RelayPolicy = {
  reservations: 2,
  maxReservations: 64,
  reservationTtlMs: 2 * 3_600_000,
  maxRelayedConnections: 64,
  memberDailyBytes: 64 * 1024 ** 3,
  strangerBytes: 1024 * 1024,
  strangerMs: 120_000,
  maxStrangerConnections: 4
}

/** The relay role a node takes from the addresses it gives friends (0.0.0.0 and :: expand to the interfaces'). */
export function relayRoleFor (listen: readonly string[], announce: readonly string[] | undefined, interfaces = networkInterfaces()): RelayRole {
  const local = Object.values(interfaces).flatMap(list => (list ?? []).map(i => i.family === 'IPv6' ? `/ip6/${i.address}/tcp/0` : `/ip4/${i.address}/tcp/0`))
  const addrs = (announce !== undefined && announce.length > 0 ? announce : listen).flatMap(a =>
    a.startsWith('/ip4/0.0.0.0/') ? local.filter(l => l.startsWith('/ip4/')) : a.startsWith('/ip6/::/') ? local.filter(l => l.startsWith('/ip6/')) : [a])
  const classOf = (a: string): string => { try { return addrClass(a) } catch { return 'loopback' /* not a multiaddr: nothing a friend could dial */ } }
  const announced = announce !== undefined && announce.length > 0
  const publicV4 = addrs.some(a => classOf(a) === 'public' && (announced || !a.startsWith('/ip6/')))
  const publicV6 = addrs.some(a => classOf(a) === 'public')
  if (publicV4) return 'serve'
  if (publicV6) return 'both'
  if (addrs.some(a => classOf(a) === 'private')) return 'reserve'
  return 'off'
}

/** Whether a role runs the relay server, and whether it keeps reservations. */
export const serves = (role: RelayRole): boolean => role === 'serve' || role === 'both'
export const reserves = (role: RelayRole): boolean => role === 'reserve' || role === 'both'

/** What one member moved through this relay (connections it opened or was the destination of). */
export interface Carried { bytes: number, connections: number, today: number, day: string }

export interface RelayHooks {
  /** is this peer id a device on the roster */
  isMember: (peerId: string) => boolean
  now: () => number
  /** where carried bytes are also counted across restarts, per day (relay-tally.ts) */
  tally?: RelayTally
}

/**
 * The relay's state: who said they have open invites, what was carried for whom, and the pieces
 * libp2p is built with (gater hooks, discovery filter, hop meter).
 */
export class RelayBook {
  private readonly inviting = new Map<string, number>()
  private readonly carried = new Map<string, Carried>()
  private strangers = 0
  /** peers the relay discovery was told about (libp2p's topology filter semantics) */
  private readonly offered = new Set<string>()

  /**
   * `role`: the role now. `follows`: the role follows the network (role-follow.ts changes `role`
   * while the daemon runs), so the node is built able to take any role.
   */
  constructor (public role: RelayRole, private readonly hooks: RelayHooks, readonly policy: RelayPolicy = DEFAULT_RELAY_POLICY, readonly follows = false) {}

  /** the carried bytes per day, kept across restarts (absent: in memory only) */
  get tally (): RelayTally | undefined { return this.hooks.tally }

  /** A member's notice: strangers may be relayed to it until `untilMs` (capped at 7 days, an invite's longest life). */
  invitesOpen (peerId: string, untilMs: number): void {
    const cap = this.hooks.now() + 7 * 86_400_000
    if (untilMs <= this.hooks.now()) this.inviting.delete(peerId)
    else this.inviting.set(peerId, Math.min(untilMs, cap))
  }

  private isInviting (peerId: string): boolean { return (this.inviting.get(peerId) ?? 0) > this.hooks.now() }

  /** Whether a stranger may connect to this node at all: only to be relayed to an inviting member. */
  mayConnectStranger (): boolean {
    if (!serves(this.role)) return false
    for (const peer of this.inviting.keys()) if (this.isInviting(peer) && this.hooks.isMember(peer)) return true
    return false
  }

  /** The connection gater's relay hooks. */
  gater (): Pick<ConnectionGater, 'denyInboundRelayReservation' | 'denyOutboundRelayedConnection' | 'denyInboundRelayedConnection'> {
    return {
      // only members' devices hold a slot here, and only while this node serves
      denyInboundRelayReservation: async (peer: PeerId) => !serves(this.role) || !this.hooks.isMember(peer.toString()),
      // members to members; a stranger only to a member with an open invite
      denyOutboundRelayedConnection: async (source: PeerId, destination: PeerId) => {
        const dst = destination.toString()
        if (!this.hooks.isMember(dst)) return true
        return !this.hooks.isMember(source.toString()) && !this.isInviting(dst)
      },
      // we take relayed connections only through a member's relay (the peer itself is gated like every other)
      denyInboundRelayedConnection: async (relay: PeerId) => !this.hooks.isMember(relay.toString())
    }
  }

  /** Which relays the discovery of the relay transport may reserve on: members only, each offered once per connection. */
  discoveryFilter (): TopologyFilter {
    return {
      has: (peer: PeerId) => this.offered.has(peer.toString()) || !this.hooks.isMember(peer.toString()),
      add: (peer: PeerId) => { this.offered.add(peer.toString()) },
      remove: (peer: PeerId) => { this.offered.delete(peer.toString()) }
    }
  }

  /** Lets the discovery offer `peer` again (a reservation it refused before we were on its roster). */
  reoffer (peer: string): void { this.offered.delete(peer) }

  /** What was carried per member since the daemon started. */
  carriedFor (): ReadonlyMap<string, Carried> { return this.carried }

  private count (peer: string | undefined, bytes: number, newConnection = false): Carried | undefined {
    if (peer === undefined) return undefined
    const day = new Date(this.hooks.now()).toISOString().slice(0, 10)
    const c = this.carried.get(peer) ?? { bytes: 0, connections: 0, today: 0, day }
    if (c.day !== day) { c.day = day; c.today = 0 }
    c.bytes += bytes
    c.today += bytes
    this.hooks.tally?.add(peer, bytes, this.hooks.now())
    if (newConnection) c.connections++
    this.carried.set(peer, c)
    return c
  }

  /**
   * Called with every hop stream a peer opens on this relay, before libp2p's relay server reads it:
   * counts the bytes both ways for the source and (once the request names it) the destination, and
   * enforces the daily budget of members and the limits of strangers.
   */
  meter (stream: Stream, connection: Connection): boolean {
    const source = connection.remotePeer.toString()
    // a joiner becomes a member during its relayed connection: its limits end then
    const member = (): boolean => this.hooks.isMember(source)
    const stranger = !member()
    if (stranger && this.strangers >= this.policy.maxStrangerConnections) {
      stream.abort(new Error('too many strangers relayed at once'))
      return false
    }
    let destination: string | undefined
    let first = true
    let total = 0
    if (stranger) {
      this.strangers++
      const timer = setTimeout(() => {
        if (!member()) stream.abort(new Error(`a stranger's relayed connection lasts at most ${this.policy.strangerMs} ms`))
      }, this.policy.strangerMs)
      timer.unref?.()
      stream.addEventListener('close', () => { this.strangers--; clearTimeout(timer) }, { once: true })
    }
    const add = (bytes: number): void => {
      total += bytes
      const isMember = member()
      const s = isMember ? this.count(source, bytes) : undefined
      const d = this.count(destination, bytes)
      const over = [s, d].find(c => c !== undefined && c.today > this.policy.memberDailyBytes)
      if (over !== undefined) stream.abort(new Error(`relay budget of ${this.policy.memberDailyBytes} bytes a day used up`))
      else if (!isMember && total > this.policy.strangerBytes) stream.abort(new Error(`a stranger's relayed connection carries at most ${this.policy.strangerBytes} bytes`))
    }
    stream.addEventListener('message', (evt) => {
      const data = evt.data
      if (first) {
        first = false
        destination = connectDestination(data.subarray())
        if (destination !== undefined) this.count(destination, 0, true)
        if (member()) this.count(source, 0, true)
      }
      add(data.byteLength)
    })
    const send = stream.send.bind(stream)
    stream.send = (data) => { add(data.byteLength); return send(data) }
    return true
  }
}

/**
 * The destination of a hop CONNECT request (circuit relay v2 HopMessage: a varint length, then
 * field 1 type = CONNECT (1), field 2 peer { field 1 id: multihash }), or undefined for anything else
 * (a reservation, a request split across messages).
 */
export function connectDestination (bytes: Uint8Array): string | undefined {
  try {
    let [len, i] = readVarint(bytes, 0)
    const end = i + len
    let type = -1
    let peer: Uint8Array | undefined
    while (i < end) {
      let tag: number
      [tag, i] = readVarint(bytes, i)
      if ((tag & 7) === 0) {
        let v: number
        [v, i] = readVarint(bytes, i)
        if (tag >> 3 === 1) type = v
      } else if ((tag & 7) === 2) {
        [len, i] = readVarint(bytes, i)
        if (tag >> 3 === 2) peer = bytes.subarray(i, i + len)
        i += len
      } else {
        return undefined
      }
    }
    // Peer { bytes id = 1; repeated bytes addrs = 2; }: the id comes first
    if (type !== 1 || peer === undefined || peer[0] !== 0x0a) return undefined
    const [idLen, at] = readVarint(peer, 1)
    // a peer id's text form is the base58btc of its multihash
    return peerIdFromString(uint8ArrayToString(peer.subarray(at, at + idLen), 'base58btc')).toString()
  } catch (err: unknown) {
    log('hop request not understood: %s', errorMessage(err))
    return undefined
  }
}

/** An unsigned protobuf varint at `pos`: [value, position after it]. */
function readVarint (bytes: Uint8Array, pos: number): [number, number] {
  let v = 0
  for (let shift = 0; shift < 35; shift += 7) {
    const b = bytes[pos++]
    if (b === undefined) throw new RangeError('truncated varint')
    v += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) return [v, pos]
  }
  throw new RangeError('varint too long')
}

interface HandlerRegistry {
  getHandler: (protocol: string) => { handler: StreamHandler, options: StreamHandlerOptions }
  handle: (protocol: string, handler: StreamHandler, options?: StreamHandlerOptions) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
}

/** The relay server's switch (relayMeter): whether it answers hop streams. */
export interface RelaySwitch { setServing: (on: boolean) => Promise<void>, serving: () => boolean }

/**
 * A libp2p service that puts {@link RelayBook.meter} in front of the relay server's hop handler (as
 * the guard in libp2p-node.ts wraps identify), and switches the relay on and off while the node runs
 * (role-follow.ts): off unregisters the hop protocol (identify push tells the members, whose relay
 * transports then stop asking), on registers the metered handler again. The server service itself
 * is never stopped: libp2p's relay server cannot be started again after a stop.
 */
function relayMeter (book: RelayBook): (components: { registrar: HandlerRegistry }) => Startable & RelaySwitch {
  return ({ registrar }) => {
    let metered: { handler: StreamHandler, options: StreamHandlerOptions } | undefined
    let serving = false
    const setServing = async (on: boolean): Promise<void> => {
      if (metered === undefined || on === serving) return
      if (on) await registrar.handle(RELAY_V2_HOP_CODEC, metered.handler, { ...metered.options, force: true })
      else await registrar.unhandle(RELAY_V2_HOP_CODEC)
      serving = on
    }
    return {
      start: () => {},
      stop: () => {},
      setServing,
      serving: () => serving,
      afterStart: async () => {
        let record: { handler: StreamHandler, options: StreamHandlerOptions }
        try { record = registrar.getHandler(RELAY_V2_HOP_CODEC) } catch (err: unknown) { log.error('no relay server to meter: %s', errorMessage(err)); return }
        const inner = record.handler
        const handler: StreamHandler = (stream: Stream, connection: Connection) => {
          if (!book.meter(stream, connection)) return
          return inner(stream, connection)
        }
        metered = { handler, options: record.options }
        serving = true
        await registrar.handle(RELAY_V2_HOP_CODEC, handler, { ...record.options, force: true }).catch((err: unknown) => { log.error('cannot meter the relay: %s', errorMessage(err)) })
        if (!serves(book.role)) await setServing(false).catch((err: unknown) => { log.error('cannot switch the relay off: %s', errorMessage(err)) })
      }
    }
  }
}

/** What libp2p-node.ts adds to the node for relays. */
export interface RelayParts {
  transport: ReturnType<typeof circuitRelayTransport>
  services: Record<string, unknown>
  /** extra listen addresses (`/p2p-circuit`: one reservation each) */
  listen: string[]
  gater: Partial<ConnectionGater>
}

/**
 * The pieces of the libp2p node for the book's role: the transport (always), the server (serve, or
 * a role that follows the network: switched by role-follow.ts), reservations (reserve; role-follow.ts
 * adds and removes them for a role that follows the network).
 */
export function relayParts (book: RelayBook): RelayParts {
  const p = book.policy
  const services: Record<string, unknown> = serves(book.role) || book.follows
    ? {
        relay: circuitRelayServer({
          maxInboundHopStreams: p.maxRelayedConnections,
          reservations: { maxReservations: p.maxReservations, reservationTtl: p.reservationTtlMs, applyDefaultLimit: false }
        }),
        relayMeter: relayMeter(book)
      }
    : {}
  return {
    transport: circuitRelayTransport({ discoveryFilter: book.discoveryFilter(), reservationCompletionTimeout: 10_000 }),
    services,
    // each `/p2p-circuit` listen address is one reservation the transport looks for
    // (a role that follows the network: role-follow.ts opens and closes them)
    listen: reserves(book.role) && !book.follows ? Array.from({ length: p.reservations }, () => '/p2p-circuit') : [],
    gater: book.gater()
  }
}

/** The relays this node holds a reservation on, from its own relayed addresses. */
export function relaysIn (addrs: readonly string[]): string[] {
  return [...new Set(addrs.map(relayOf).filter((r): r is string => r !== undefined))]
}
