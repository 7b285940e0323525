/**
 * Group membership on a running node: creating a group, invites and joins (both sides), taking a
 * newer roster, removing members and devices. The rules (signatures, who may change what) live in
 * peers/; this class applies them to the node's group.json and its connections.
 */
import { hostname } from 'node:os'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { InvalidInviteError, NotMemberError, RefusedError, UntrustedPeerError, errorMessage } from '../errors.js'
import {
  InviteBook, addMember, createInvite, createRoster, decodeInviteCode, decodeRoster, encodeRoster, inviteClaim, issueDeviceCert, memberOfPeer,
  removeDevice, removeMember, setRetention, verifyDeviceCert, verifyJoinRoster, verifyRosterUpdate, type DeviceCert, type Retention, type Roster
} from '../peers/index.js'
import { dialFailure } from '../protocols/framing.js'
import { pushRoster, requestJoin, type JoinRequest } from '../protocols/group.js'
import { withRetry } from '../protocols/retry.js'
import { identifyConnection, type P2pNode } from './libp2p-node.js'
import { dialInOrder } from './reachability.js'
import { relaysIn } from './relay.js'
import type { Home } from './home.js'
import type { GroupState } from './group-state.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('membership')

const DAY_MS = 86_400_000
/** one attempt to reach an inviter: its direct addresses (5 s), then its relayed ones (15 s) */
const DIAL_TIMEOUT_MS = 20_000

export class Membership {
  private readonly invites: InviteBook
  /** the inviter's device and the relays its invite names, while this node joins (its gater lets them through) */
  private joiningVia = new Set<string>()

  constructor (private readonly home: Home, private readonly state: GroupState, private readonly node: P2pNode) {
    this.invites = new InviteBook(state.file.invites)
  }

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

  /** Takes a roster pushed or fetched from a member if it validly succeeds ours. */
  async acceptRoster (next: Roster): Promise<boolean> {
    const current = this.state.file.roster
    if (current !== null && next.serial <= current.serial) return false
    verifyRosterUpdate(this.home.sodium, current ?? undefined, next)
    this.noteRetention(current, next, Date.now())
    this.state.file.roster = next
    await this.state.save()
    // a removed member's devices lose their connections at once; new members get identified
    if (this.invites.outstanding(Date.now()) === 0) await this.dropStrangers()
    await this.identifyNew(peer => current !== null && memberOfPeer(current, peer) !== undefined)
    return true
  }

  async broadcastRoster (): Promise<void> {
    const bytes = encodeRoster(this.requireRoster())
    await Promise.all(this.memberDevices().map(async d => { await this.push(d, bytes) }))
  }

  async createGroup (name: string, retention?: Retention): Promise<Roster> {
    if (this.state.file.roster !== null) throw new RefusedError(`this node is already in group "${this.state.file.roster.name}"`)
    const roster = createRoster(this.home.sodium, this.home.identity, name, this.deviceCert(), Date.now(), retention !== undefined ? { retention } : {})
    this.state.file.roster = roster
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
    return code
  }

  /** Inviter side of join: checks the invite proof and the newcomer's device certificate, adds them. */
  async admit (req: JoinRequest, peer: PeerId): Promise<Uint8Array> {
    const roster = this.requireRoster()
    if (req.groupId !== roster.groupId) throw new InvalidInviteError('the invite is for another group')
    const cert = req.deviceCert as DeviceCert
    if (!verifyDeviceCert(this.home.sodium, cert) || cert.peerId !== peer.toString() || cert.userId !== req.userId) {
      throw new UntrustedPeerError('the device certificate does not match the connecting device')
    }
    const now = Date.now()
    // build the new roster first (it may refuse, e.g. a banned user): only then use the invite up
    const next = addMember(this.home.sodium, roster, this.home.identity, { userId: req.userId, name: req.name, device: cert }, now)
    this.invites.redeem({ inviteId: req.inviteId, joinerPeerId: peer.toString(), joinerUserId: req.userId, proof: req.proof }, now)
    this.state.file.roster = next
    this.state.file.invites = this.invites.toJSON()
    await this.state.save()
    // the newcomer was a stranger until now: identify it, then keep its listen addresses
    await this.identifyNew(p => memberOfPeer(roster, p) !== undefined)
    await this.rememberFromPeerStore(peer)
    void this.broadcastRoster()
    return encodeRoster(next)
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
        deviceCert: this.deviceCert()
      })
      const roster = decodeRoster(bytes)
      verifyRosterUpdate(this.home.sodium, undefined, roster)
      // the inviter must be on it, and our device filed under our own user id
      try {
        verifyJoinRoster(this.home.sodium, invite, roster, this.home.identity.userId, this.peerId)
      } catch (err: unknown) {
        throw new UntrustedPeerError(`the inviter answered with a roster we cannot accept: ${errorMessage(err)}`, { cause: err })
      }
      this.state.file.roster = roster
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
  invitesOpenUntil (now: number): number {
    return this.state.file.invites.filter(i => i.redeemed === undefined && i.expiresAt > now).reduce((m, i) => Math.max(m, i.expiresAt), 0)
  }

  async remove (userId: string): Promise<Roster> {
    return await this.adoptAndTell(removeMember(this.home.sodium, this.requireRoster(), this.home.identity, userId, Date.now()))
  }

  /** Revokes one device (a lost laptop, say): it can no longer connect; what it held is re-placed by the caller. */
  async removeDevice (peerId: string): Promise<Roster> {
    return await this.adoptAndTell(removeDevice(this.home.sodium, this.requireRoster(), this.home.identity, peerId, Date.now()))
  }

  /** An admin changes the retention policy; a lower minimum age applies only after the old one has passed. */
  async setRetention (retention: Retention): Promise<Roster> {
    return await this.adoptAndTell(setRetention(this.home.sodium, this.requireRoster(), this.home.identity, retention, Date.now()))
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

  /** Saves a roster that drops someone, tells every device that was on the old one, then drops the removed devices. */
  private async adoptAndTell (next: Roster): Promise<Roster> {
    const before = this.memberDevices()
    this.noteRetention(this.state.file.roster, next, Date.now())
    this.state.file.roster = next
    await this.state.save()
    const bytes = encodeRoster(next)
    await Promise.all(before.map(async d => { await this.push(d, bytes) }))
    await this.dropStrangers()
    return next
  }

  /** Closes the connections of devices not on the roster. */
  private async dropStrangers (): Promise<void> {
    for (const conn of this.node.getConnections()) {
      if (!this.isMember(conn.remotePeer.toString())) await conn.close().catch((err: unknown) => { log('closing a stranger\'s connection: %s', errorMessage(err)) })
    }
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
    await pushRoster(this.node, peerIdFromString(device), bytes).catch((err: unknown) => { log('roster not pushed to %s (it catches up later): %s', device, errorMessage(err)) })
  }

  /** Identifies (for the DHT and the peer book) the open connections of devices that were not members before. */
  private async identifyNew (wasMember: (peerId: string) => boolean): Promise<void> {
    await Promise.all(this.node.getConnections()
      .filter(c => this.isMember(c.remotePeer.toString()) && !wasMember(c.remotePeer.toString()))
      .map(async c => { await identifyConnection(this.node, c) }))
  }
}
