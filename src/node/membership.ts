/**
 * Group membership on a running node: creating a group, invites and joins (both sides), taking a
 * newer roster, removing members and devices. The rules (signatures, who may change what) live in
 * peers/; this class applies them to the node's group.json and its connections.
 */
import { hostname } from 'node:os'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { NotMemberError, RefusedError, UntrustedPeerError, errorMessage } from '../errors.js'
import {
  InviteBook, createInvite, createRoster, decodeInviteCode, decodeRosterChain, encodeRoster, encodeRosterChain, inviteClaim, issueDeviceCert,
  memberOfPeer, oldestThatFit, removeDevice, rosterHash, removeMember, setAdmin, setRetention, verifyJoinChain, type DeviceCert, type Retention, type Roster
} from '../peers/index.js'
import { dialFailure } from '../protocols/framing.js'
import { fetchRosterChain, pushRoster, requestJoin, type JoinRequest } from '../protocols/group.js'
import { withRetry } from '../protocols/retry.js'
import { identifyConnection, type P2pNode } from './libp2p-node.js'
import { dialInOrder } from './reachability.js'
import { relaysIn } from './relay.js'
import type { Home } from './home.js'
import type { GroupState } from './group-state.js'
import { RosterKeeper, unlinkedError, type RosterTaken } from './roster-keeper.js'
import { InviteGate } from './invite-gate.js'
import { admitNewcomer } from './admission.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('membership')

const DAY_MS = 86_400_000
/** one attempt to reach an inviter: its direct addresses (5 s), then its relayed ones (15 s) */
const DIAL_TIMEOUT_MS = 20_000
/** pages of a member's roster run one sync asks for (each up to 8 MiB or MAX_ROSTER_CHAIN versions) */
const MAX_SYNC_PAGES = 8

export class Membership {
  /** this node's invites, and who may connect because of them */
  readonly gate: InviteGate
  private readonly invites: InviteBook
  /** the roster and the versions before it */
  readonly rosters: RosterKeeper
  /** the inviter's device and the relays its invite names, while this node joins (its gater lets them through) */
  private joiningVia = new Set<string>()

  constructor (private readonly home: Home, private readonly state: GroupState, private readonly node: P2pNode) {
    this.rosters = new RosterKeeper(home, state)
    this.gate = new InviteGate(home, state, node, peer => this.isMember(peer))
    this.invites = this.gate.book
  }

  /** Closes strangers' connections once nothing lets strangers in any more (InviteGate). */
  async shutGateIfClosed (now = Date.now()): Promise<void> { await this.gate.shutIfClosed(now) }

  /** Stops the invite timer (the node is stopping). */
  close (): void { this.gate.close() }

  /** Withdraws this node's invites not used yet: the one whose code is given, or all of them (InviteGate). */
  async revokeInvites (code?: string): Promise<number> { return await this.gate.revoke(code) }

  get peerId (): string { return this.node.peerId.toString() }

  isMember (peerId: string): boolean {
    const r = this.state.file.roster
    return r !== null && memberOfPeer(r, peerId) !== undefined
  }

  /** The gate: devices on the roster, the inviter we are joining through, and anyone while an invite is open. */
  mayConnect (peerId: string): boolean {
    return this.isMember(peerId) || this.joiningVia.has(peerId) || this.invites.outstanding(Date.now()) > 0
  }

  requireRoster (): Roster {
    const r = this.state.file.roster
    if (r === null) throw new NotMemberError('this node is in no group yet')
    return r
  }

  /** Every device on the roster but this one. */
  memberDevices (): string[] {
    const r = this.state.file.roster
    if (r === null) return []
    return r.members.flatMap(m => m.devices.map(d => d.peerId)).filter(p => p !== this.peerId)
  }

  deviceCert (): DeviceCert {
    let cert = this.state.file.deviceCert
    if (cert === null || cert.peerId !== this.peerId) {
      cert = issueDeviceCert(this.home.sodium, this.home.identity, this.peerId, hostname(), Date.now())
      this.state.file.deviceCert = cert
    }
    return cert
  }

  /**
   * Takes a roster a member pushed: at once when it follows ours; otherwise the sender's run of
   * versions is fetched and settled (a catch-up over several versions, or a fork: §5.6).
   */
  async acceptRoster (next: Roster, from?: PeerId): Promise<boolean> {
    const taken = await this.rosters.takeOne(next, Date.now())
    if (taken.kind !== 'unlinked' || from === undefined || taken.final === true) return await this.afterTaken(taken, from)
    const changed = await this.syncRoster(from)
    // the sender's own history did not lead to what it pushed: a made-up version (a huge serial, say)
    if (!this.rosters.chain().some(r => rosterHash(r) === rosterHash(next))) throw unlinkedError(taken.reason)
    return changed
  }

  /**
   * Fetches a member's versions from our oldest kept one on and takes them (refresh, a push that did
   * not follow ours). An answer is cut at its size limit from the end (chainFrom): while a page's
   * last version is one this node holds, the next page is asked from there.
   */
  async syncRoster (from: PeerId): Promise<boolean> {
    let ask = this.rosters.chain()[0]?.serial ?? 1
    let changed = false
    for (let page = 0; page < MAX_SYNC_PAGES; page++) {
      const chain = decodeRosterChain(await fetchRosterChain(this.node, from, ask))
      changed = await this.afterTaken(await this.rosters.take(chain, Date.now()), from) || changed
      // a page that ends on a version this node holds (one it had, or one it just took) may have
      // been cut at its size: ask on from there (a page of versions it already had moves nothing)
      const last = chain.at(-1) as Roster
      if (chain.length === 1 || last.serial <= ask || !this.rosters.holds(last)) break
      ask = last.serial
    }
    return changed
  }

  /** The versions kept from `serial` on, as a roster chain answer (the oldest that fit: it links to what the asker holds). */
  chainFrom (serial: number): Uint8Array {
    return encodeRosterChain(oldestThatFit(this.rosters.from(serial)))
  }

  private async afterTaken (taken: RosterTaken, from?: PeerId): Promise<boolean> {
    switch (taken.kind) {
      case 'current': return false
      case 'unlinked': throw unlinkedError(taken.reason)
      case 'kept':
        // the sender is on the branch the group drops: our head makes it switch
        if (from !== undefined) await this.push(from.toString(), encodeRoster(this.requireRoster()))
        return false
      case 'changed': {
        const next = this.requireRoster()
        const now = Date.now()
        this.noteRetention(taken.before, next, now)
        await this.state.save()
        // a removed member's devices lose their connections at once; new members get identified
        if (this.invites.outstanding(now) === 0) await this.gate.dropStrangers()
        const before = taken.before
        await this.identifyNew(peer => before !== null && memberOfPeer(before, peer) !== undefined)
        // forwarded to every member (group.md §7): a version its signer could send to only some of us still reaches all
        void this.broadcastRoster(taken.pushNew ? undefined : from?.toString())
        return true
      }
    }
  }

  /** the broadcast under way, and whether the roster changed again since it began */
  private broadcasting: Promise<void> | undefined
  private broadcastAgain = false

  /**
   * Pushes the current roster to every member device (but `except`, the one it came from). One at a
   * time: a burst of versions becomes one more pass with the newest, not one pass per version.
   */
  async broadcastRoster (except?: string): Promise<void> {
    if (this.broadcasting !== undefined) {
      this.broadcastAgain = true
      return await this.broadcasting
    }
    this.broadcasting = (async () => {
      let skip = except
      try {
        do {
          this.broadcastAgain = false
          const bytes = encodeRoster(this.requireRoster())
          await Promise.all(this.memberDevices().filter(d => d !== skip).map(async d => { await this.push(d, bytes) }))
          skip = undefined
        } while (this.broadcastAgain)
      } finally {
        this.broadcasting = undefined
      }
    })()
    return await this.broadcasting
  }

  async createGroup (name: string, retention?: Retention): Promise<Roster> {
    if (this.state.file.roster !== null) throw new RefusedError(`this node is already in group "${this.state.file.roster.name}"`)
    const roster = createRoster(this.home.sodium, this.home.identity, name, this.deviceCert(), Date.now(), retention !== undefined ? { retention } : {})
    this.rosters.setChain([roster])
    await this.state.save()
    return roster
  }

  async invite (ttlMs: number, addrs: string[]): Promise<string> {
    const roster = this.requireRoster()
    const own = addrs.map(a => a.includes('/p2p/') ? a : `${a}/p2p/${this.peerId}`)
    const { invite, code } = createInvite(this.home.sodium, this.home.identity, roster, this.deviceCert(), own, ttlMs, Date.now())
    this.invites.add(invite)
    this.state.file.invites = this.invites.toJSON()
    await this.state.save()
    this.gate.watch()
    return code
  }

  /**
   * Inviter side of join: checks the invite proof (a stranger without the code gets nothing signed),
   * then the newcomer's device certificate, adds them, uses the invite up, and answers the run of
   * versions from the one the invite pinned to the new one.
   */
  async admit (req: JoinRequest, peer: PeerId): Promise<Uint8Array> {
    const { roster, answer } = await admitNewcomer({ home: this.home, state: this.state, rosters: this.rosters, invites: this.invites }, req, peer)
    // the newcomer was a stranger until now: identify it, then keep its listen addresses
    await this.identifyNew(p => memberOfPeer(roster, p) !== undefined)
    await this.rememberFromPeerStore(peer)
    this.gate.watch()
    // that was the last open invite: the strangers it let in (anyone could connect) are shown out
    await this.shutGateIfClosed()
    void this.broadcastRoster()
    return answer
  }

  /** Joiner side: redeems an invite code with the inviter and takes the roster it answers with. */
  async join (code: string): Promise<Roster> {
    if (this.state.file.roster !== null) throw new RefusedError(`this node is already in group "${this.state.file.roster.name}"`)
    const invite = decodeInviteCode(this.home.sodium, code, Date.now())
    const inviterPeer = invite.inviterDevice.peerId
    this.joiningVia = new Set([inviterPeer, ...relaysIn(invite.addrs)])
    try {
      try {
        // a lossy link may reset the first tries: retried (protocols/retry.ts), at most 15 s each
        await withRetry('reaching the inviter', async ({ remainingMs }) => {
          const deadline = AbortSignal.timeout(Math.max(1, Math.min(DIAL_TIMEOUT_MS, remainingMs)))
          try {
            // direct addresses first, then through the relays the invite names; the error names every address tried
            await dialInOrder(this.node, invite.addrs, { signal: deadline })
          } catch (err: unknown) {
            throw dialFailure('dial', err, deadline.aborted)
          }
        }, { policy: { budgetMs: 45_000 } })
      } catch (err: unknown) {
        throw new RefusedError(`cannot reach the inviter (${errorMessage(err)}). Their daemon may not be running, their address may have changed, or the invite was already used or has expired (an inviter with no open invite accepts no strangers): ask for a new invite`, { cause: err })
      }
      const claim = inviteClaim(invite, this.peerId, this.home.identity.userId)
      const bytes = await requestJoin(this.node, peerIdFromString(inviterPeer), {
        groupId: invite.groupId,
        inviteId: claim.inviteId,
        proof: claim.proof,
        userId: this.home.identity.userId,
        name: hostname(),
        deviceCert: this.deviceCert(),
        ...(invite.rosterSerial !== undefined ? { rosterSerial: invite.rosterSerial } : {})
      })
      // the history must start at the version the invite pins; the inviter and our device on the newest
      let chain: Roster[]
      let roster: Roster
      try {
        chain = decodeRosterChain(bytes)
        roster = verifyJoinChain(this.home.sodium, invite, chain, this.home.identity.userId, this.peerId, { now: Date.now() })
      } catch (err: unknown) {
        throw new UntrustedPeerError(`the inviter answered with a roster we cannot accept: ${errorMessage(err)}`, { cause: err })
      }
      this.rosters.setChain(chain)
      this.state.rememberAddrs(inviterPeer, invite.addrs)
      await this.state.save()
      await this.state.savePeers()
      // identify was refused while we were a stranger (and we skipped the inviter's): now both are members
      await this.identifyNew(() => false)
      return roster
    } finally {
      this.joiningVia = new Set()
    }
  }

  /** The latest expiry of the invites not yet redeemed (0: none open): relays let strangers through to us until then. */
  invitesOpenUntil (now: number): number { return this.gate.openUntil(now) }

  async remove (userId: string): Promise<Roster> {
    return await this.adoptAndTell(current => removeMember(this.home.sodium, current, this.home.identity, userId, Date.now()))
  }

  /** An admin makes a member an admin (who may then invite new people, remove members…), or revokes it. */
  async setAdmin (userId: string, admin: boolean): Promise<Roster> {
    return await this.adoptAndTell(current => setAdmin(this.home.sodium, current, this.home.identity, userId, admin, Date.now()))
  }

  /** Revokes one device (a lost laptop, say): it can no longer connect; what it held is re-placed by the caller. */
  async removeDevice (peerId: string): Promise<Roster> {
    return await this.adoptAndTell(current => removeDevice(this.home.sodium, current, this.home.identity, peerId, Date.now()))
  }

  /** An admin changes the retention policy; a lower minimum age applies only after the old one has passed. */
  async setRetention (retention: Retention): Promise<Roster> {
    return await this.adoptAndTell(current => setRetention(this.home.sodium, current, this.home.identity, retention, Date.now()))
  }

  /**
   * The minimum age (ms) of a share before this persister deletes it: the roster's policy, or the
   * higher one it replaced while that one's period runs (GroupFile.retentionFloor).
   */
  minShareAgeMs (now: number): number {
    const days = this.state.file.roster?.retention.minShardAgeDays ?? 0
    const floor = this.state.file.retentionFloor
    const effective = floor !== undefined && now < floor.untilMs ? Math.max(days, floor.minShardAgeDays) : days
    return effective * DAY_MS
  }

  /** When `next` lowers the policy of `before`, the old minimum age keeps applying for its own period. */
  private noteRetention (before: Roster | null, next: Roster, now: number): void {
    if (before === null) return
    const was = Math.max(before.retention.minShardAgeDays, this.minShareAgeMs(now) / DAY_MS)
    if (next.retention.minShardAgeDays >= was) return
    const untilMs = now + before.retention.minShardAgeDays * DAY_MS
    const floor = this.state.file.retentionFloor
    if (floor !== undefined && now < floor.untilMs && floor.untilMs > untilMs) return
    this.state.file.retentionFloor = { minShardAgeDays: was, untilMs }
  }

  /**
   * Signs a change on top of the current roster and saves it (one roster change at a time with the
   * versions members send: RosterKeeper.exclusive), tells every device that was on the old one,
   * then drops the removed devices.
   */
  private async adoptAndTell (build: (current: Roster) => Roster): Promise<Roster> {
    const { next, before } = await this.rosters.exclusive(async () => {
      const current = this.requireRoster()
      const next = build(current)
      const before = this.memberDevices()
      this.noteRetention(current, next, Date.now())
      this.rosters.append(next)
      await this.state.save()
      return { next, before }
    })
    const bytes = encodeRoster(next)
    await Promise.all(before.map(async d => { await this.push(d, bytes) }))
    await this.gate.dropStrangers()
    return next
  }

  private async rememberFromPeerStore (peer: PeerId): Promise<void> {
    try {
      const p = await this.node.peerStore.get(peer)
      this.state.rememberAddrs(peer.toString(), p.addresses.map(a => `${a.multiaddr.toString()}/p2p/${peer.toString()}`))
      await this.state.savePeers()
    } catch (err: unknown) {
      log('no addresses of %s to keep: %s', peer.toString(), errorMessage(err))
    }
  }

  /** Pushes a roster to one device; one that is away learns it at its next refresh (the space answer names the serial). */
  private async push (device: string, bytes: Uint8Array): Promise<void> {
    try {
      await pushRoster(this.node, peerIdFromString(device), bytes)
    } catch (err: unknown) {
      // an unreachable device, or one whose peer id is not a real key (a made-up member's): it catches up later, or never
      log('roster not pushed to %s (it catches up later): %s', device, errorMessage(err))
    }
  }


  /** Identifies (for the DHT and the peer book) the open connections of devices that were not members before. */
  private async identifyNew (wasMember: (peerId: string) => boolean): Promise<void> {
    await Promise.all(this.node.getConnections()
      .filter(c => this.isMember(c.remotePeer.toString()) && !wasMember(c.remotePeer.toString()))
      .map(async c => { await identifyConnection(this.node, c) }))
  }
}
