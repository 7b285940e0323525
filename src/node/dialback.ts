/**
 * Whether friends elsewhere can really connect to this node (docs/network.md §15.10, AutoNAT among
 * members): the addresses it gives friends that claim to be reachable from anywhere (a public listen
 * address, `--announce`, a port mapped on the home router) are dialled back by a member that reaches
 * this node over a direct TCP connection from outside its network (protocols/dialback.ts).
 *
 *   which addresses   direct TCP ones of the public class (not relayed, not WebRTC, not LAN)
 *   who checks        a connected member whose connection to us is direct and comes from a public
 *                     address (it is on another network); the one asked least recently first
 *   when              each refresh round, for any such address with no verdict, a confirmation
 *                     older than 30 min or a refutation older than 5 min, at most one request per
 *                     30 s (the checkers' own limit)
 *   what it changes   `status` says which addresses friends could connect to and who checked; an
 *                     address friends could not connect to is given to friends last (invites, DHT
 *                     order), after the relayed ones, and does not make the node count as reachable
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection } from '@libp2p/interface'
import { errorMessage } from '../errors.js'
import { directHost, MAX_DIALBACK_ADDRS, requestDialback } from '../protocols/dialback.js'
import { scopedLogger } from '../util/log.js'
import type { P2pNode } from './libp2p-node.js'
import { addrClass, isWebrtc } from './reachability.js'

const log = scopedLogger('dialback')

export interface DialbackVerdict {
  /** `/ip4|ip6/HOST/tcp/PORT` */
  addr: string
  /** the checker connected to us there */
  ok: boolean
  /** the member device that dialled */
  by: string
  atMs: number
  error?: string
}

export interface DialbackSchedule {
  /** a confirmation older than this is asked for again. @default 30 min */
  recheckMs: number
  /** a refutation older than this is asked for again (the owner may have opened the port since). @default 5 min */
  recheckRefutedMs: number
  /** the least time between two requests (the checkers refuse more often). @default 30 s */
  minIntervalMs: number
}

export const DEFAULT_DIALBACK_SCHEDULE: DialbackSchedule = { recheckMs: 30 * 60_000, recheckRefutedMs: 5 * 60_000, minIntervalMs: 30_000 }

/** An address on another network than this node's: a public one (tests on loopback widen it). */
export type Outside = (addr: string) => boolean
const PUBLIC: Outside = (addr) => addrClass(addr) === 'public'

/** `/ip4|ip6/HOST/tcp/PORT` of a direct TCP address `outside` accepts (its `/p2p/…` dropped), else undefined. */
export function checkable (addr: string, outside: Outside = PUBLIC): string | undefined {
  if (isWebrtc(addr) || addrClass(addr) === 'relayed' || !outside(addr)) return undefined
  const m = /^(\/ip[46]\/[^/]+\/tcp\/\d+)(\/p2p\/[^/]+)?$/.exec(addr)
  return m?.[1]
}

export class DialbackChecks {
  private readonly verdicts = new Map<string, DialbackVerdict>()
  /** addresses a checker gave no verdict on (another IP, a joined dial), and when: asked again after `recheckRefutedMs` */
  private readonly undecided = new Map<string, number>()
  /** when each checker was last asked */
  private readonly asked = new Map<string, number>()
  private lastRequestMs = -Infinity
  private running: Promise<void> | undefined

  constructor (
    private readonly node: P2pNode,
    private readonly isMember: (peerId: string) => boolean,
    private readonly now: () => number,
    private readonly schedule: DialbackSchedule = DEFAULT_DIALBACK_SCHEDULE,
    private readonly outside: Outside = PUBLIC
  ) {}

  /** Our addresses a checker could dial back (the addresses friends are given). */
  candidates (): string[] {
    return [...new Set(this.node.getMultiaddrs().map(a => checkable(a.toString(), this.outside)).filter((a): a is string => a !== undefined))]
  }

  /**
   * Members that reach us over a direct TCP connection from a public address, least recently asked
   * first, each with that connection (the request goes over it: the checker compares our addresses
   * with its remote address).
   */
  checkers (): Array<{ peer: string, conn: Connection }> {
    const seen = new Map<string, Connection>()
    for (const conn of this.node.getConnections()) {
      const peer = conn.remotePeer.toString()
      if (seen.has(peer) || conn.status !== 'open' || !this.isMember(peer) || directHost(conn.remoteAddr) === undefined || !this.outside(conn.remoteAddr.toString())) continue
      seen.set(peer, conn)
    }
    return [...seen].map(([peer, conn]) => ({ peer, conn })).sort((a, b) => (this.asked.get(a.peer) ?? -Infinity) - (this.asked.get(b.peer) ?? -Infinity))
  }

  /** The verdicts on the addresses we give friends now. */
  report (): DialbackVerdict[] {
    const now = this.candidates()
    return now.map(a => this.verdicts.get(a)).filter((v): v is DialbackVerdict => v !== undefined)
  }

  /** The verdict on one of our addresses (its `/p2p/…` ignored), if any. */
  verdictOf (addr: string): DialbackVerdict | undefined {
    const key = checkable(addr, this.outside)
    return key === undefined ? undefined : this.verdicts.get(key)
  }

  /** Whether friends could not connect to this address when a member last tried. */
  refuted (addr: string): boolean { return this.verdictOf(addr)?.ok === false }

  /** One round: asks a checker about the addresses without a fresh verdict (concurrent calls share one). */
  async upkeep (): Promise<void> {
    this.running ??= this.round().finally(() => { this.running = undefined })
    await this.running
  }

  private async round (): Promise<void> {
    const t = this.now()
    if (t - this.lastRequestMs < this.schedule.minIntervalMs) return
    const current = this.candidates()
    // verdicts on addresses we no longer have (a network left behind) are forgotten after a while
    for (const [a, v] of this.verdicts) if (!current.includes(a) && t - v.atMs >= this.schedule.recheckMs) this.verdicts.delete(a)
    for (const [a, at] of this.undecided) if (t - at >= this.schedule.recheckRefutedMs) this.undecided.delete(a)
    const stale = current.filter(a => {
      if (this.undecided.has(a)) return false
      const v = this.verdicts.get(a)
      return v === undefined || t - v.atMs >= (v.ok ? this.schedule.recheckMs : this.schedule.recheckRefutedMs)
    })
    if (stale.length === 0) return
    // an address of the family the checker sees us by (it dials only the IP a request comes from)
    const family = (a: string): string => a.split('/')[1] ?? ''
    const choice = this.checkers().find(c => stale.some(a => family(a) === family(c.conn.remoteAddr.toString())))
    if (choice === undefined) { log('no member reaches us from outside yet: %s not checked', stale.join(', ')); return }
    const { peer: checker, conn } = choice
    this.lastRequestMs = t
    this.asked.set(checker, t)
    const addrs = stale.filter(a => family(a) === family(conn.remoteAddr.toString())).slice(0, MAX_DIALBACK_ADDRS)
    try {
      const results = await requestDialback(this.node, peerIdFromString(checker), addrs, undefined, conn)
      for (const r of results) {
        if (r.inconclusive === true) { log('%s gave no verdict on %s (%s): asked again in a few minutes', checker, r.addr, r.error ?? ''); this.undecided.set(r.addr, this.now()); continue }
        this.verdicts.set(r.addr, { addr: r.addr, ok: r.ok, by: checker, atMs: this.now(), ...(r.error !== undefined ? { error: r.error } : {}) })
        if (r.ok) log('%s dialled us back at %s', checker, r.addr)
        else log.error('%s could not connect to us at %s: %s (friends are given this address last)', checker, r.addr, r.error ?? 'failed')
      }
    } catch (err: unknown) {
      log('dial-back by %s not done (another member next round): %s', checker, errorMessage(err))
    }
  }
}
