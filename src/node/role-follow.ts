/**
 * A relay role that follows the network (docs/network.md §15.11): a daemon listening on every
 * interface (`0.0.0.0`, `::`, the default) with `--relay auto` and no `--announce` takes its role
 * (relay.ts relayRoleFor) from the interfaces it has now, not once at start. A laptop carried from
 * home (`reserve`) to a network where it has a public address starts relaying for members, and one
 * carried from there into a home starts keeping reservations; one started before its network was
 * up (`off`) takes a role once it is.
 *
 * The node of such a daemon is built able to take any role (relay server, WebRTC transport, port
 * mappings); what changes with the role:
 *
 *   serve      the relay server answers hop streams (relay.ts RelaySwitch; identify push tells the
 *              members), its gater takes reservations, and the STUN responder runs (direct-paths.ts)
 *   reserve    `/p2p-circuit` listeners, one per reservation wanted (libp2p's transport manager),
 *              opened the first time: the relay transport finds members that serve. They are kept
 *              when the role no longer reserves (a node that serves and keeps them is `both`):
 *              friends dial its public address first, the relayed ones are a spare
 *
 * A `serve` role whose every public address members could not connect to (dialback.ts: a firewall
 * in front of the machine) becomes `both`: it keeps reservations too, so friends elsewhere reach it
 * through a member's relay.
 *
 * The role is looked at every `checkMs` (5 s) and after each refresh round; a change is logged.
 */
import { networkInterfaces } from 'node:os'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId, Startable } from '@libp2p/interface'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import type { DialbackChecks } from './dialback.js'
import type { DirectLinks } from './direct-paths.js'
import type { P2pNode } from './libp2p-node.js'
import { relayRoleFor, reserves, serves, type RelayBook, type RelayRole, type RelaySwitch } from './relay.js'

const log = scopedLogger('relay')

/** Whether a daemon's role follows its network: `auto`, no announced addresses, a wildcard listen address. */
export function followsNetwork (mode: string, listen: readonly string[], announce: readonly string[] | undefined): boolean {
  return mode === 'auto' && (announce === undefined || announce.length === 0) && listen.some(a => a.startsWith('/ip4/0.0.0.0/') || a.startsWith('/ip6/::/'))
}

/** The part of libp2p's transport manager that opens and lists listeners. */
interface Listeners {
  listen: (addrs: ReturnType<typeof multiaddr>[]) => Promise<void>
}

/** A libp2p service that hands the transport manager to {@link RoleFollower} (it is not public on the node). */
export function listenerAccess (): (components: { transportManager: Listeners }) => Startable & { listeners: Listeners } {
  return ({ transportManager }) => ({ start: () => {}, stop: () => {}, listeners: transportManager })
}

export interface RoleFollowerOptions {
  listen: readonly string[]
  checks: DialbackChecks
  /** @default 5000 */
  checkMs?: number
  /** the interfaces now (tests) */
  interfaces?: () => ReturnType<typeof networkInterfaces>
}

export class RoleFollower {
  private timer: ReturnType<typeof setInterval> | undefined
  private applying: Promise<void> | undefined
  /** whether this follower opened the `/p2p-circuit` listeners */
  private reserving = false
  private stopped = false

  constructor (private readonly node: P2pNode, private readonly book: RelayBook, private readonly direct: DirectLinks, private readonly opts: RoleFollowerOptions) {}

  /** The role for the network now. */
  wanted (): RelayRole {
    const role = relayRoleFor(this.opts.listen, undefined, (this.opts.interfaces ?? networkInterfaces)())
    if (role !== 'serve') return role
    // a firewall in front of every public address: be reached through relays as well
    const publics = this.opts.checks.candidates()
    if (publics.length > 0 && publics.every(a => this.opts.checks.refuted(a))) return 'both'
    return role
  }

  start (): void {
    void this.follow()
    this.timer = setInterval(() => { void this.follow() }, this.opts.checkMs ?? 5_000)
    this.timer.unref?.()
  }

  /** Stops following; waits for a change under way (nothing is switched once this returns). */
  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== undefined) clearInterval(this.timer)
    await this.applying
  }

  /** Takes the role the network asks for now (concurrent calls share one; none after stop). */
  async follow (): Promise<void> {
    if (this.stopped) return
    this.applying ??= this.apply().finally(() => { this.applying = undefined })
    await this.applying
  }

  private async apply (): Promise<void> {
    const was = this.book.role
    let role: RelayRole = was
    try {
      role = this.wanted()
      const serving = serves(role)
      // the gater takes reservations by the book's role: it must agree before the hop protocol is
      // announced (and refuse them once it goes)
      if (serving) this.book.role = role === 'serve' && this.reserving ? 'both' : role
      await this.setServing(serving)
      await this.setReserving(reserves(role))
      // reservations once made are kept (setReserving): serving as well is `both`
      const now = role === 'serve' && this.reserving ? 'both' : role
      if (now !== was) log('relay role %s → %s (the network changed)', was, now)
      this.book.role = now
    } catch (err: unknown) {
      log.error('cannot take relay role %s (now %s; tried again in a few seconds): %s', role, this.book.role, errorMessage(err))
    }
  }

  private async setServing (on: boolean): Promise<void> {
    const relaySwitch = (this.node.services as { relayMeter?: RelaySwitch }).relayMeter
    if (relaySwitch !== undefined && !on && relaySwitch.serving()) {
      await relaySwitch.setServing(false)
      // members holding a reservation here would keep announcing a relayed address that no longer
      // works until their refresh (about 2 h): their connections are closed, and they reserve elsewhere
      await this.dropReservations()
    } else {
      await relaySwitch?.setServing(on)
    }
    await this.direct.setServing(on, this.node)
  }

  private async dropReservations (): Promise<void> {
    const server = (this.node.services as { relay?: { reservations?: { keys: () => Iterable<PeerId> } } }).relay
    const holders = [...(server?.reservations?.keys() ?? [])]
    await Promise.all(holders.flatMap(peer => this.node.getConnections(peer).map(async conn => {
      await conn.close().catch((err: unknown) => { log('closing the connection of %s, which held a reservation here: %s', peer.toString(), errorMessage(err)) })
    })))
    if (holders.length > 0) log('no longer a relay: closed the connections of %d member device(s) that held a reservation here', holders.length)
  }

  /**
   * Opens the `/p2p-circuit` listeners (one per reservation wanted) the first time the role
   * reserves. They stay open when the role no longer does: libp2p 3's relay transport forgets a
   * closed listener's reservations but not its wish for one, and would reserve again with no
   * listener to announce it. A node with a public address that keeps them has role `both`.
   */
  private async setReserving (on: boolean): Promise<void> {
    const access = (this.node.services as { listenerAccess?: { listeners: Listeners } }).listenerAccess
    if (access === undefined || !on || this.reserving) return
    await access.listeners.listen(Array.from({ length: this.book.policy.reservations }, () => multiaddr('/p2p-circuit')))
    this.reserving = true
  }
}
