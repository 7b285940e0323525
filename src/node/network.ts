/**
 * A running p2pbak node: the libp2p node plus everything the group needs from it. Composition only:
 * the rules live in peers/ (roster, invites), placement/ and protocols/.
 *   - gater: a device on the roster may connect; while invites are outstanding, unknown peers may
 *     connect too, but every protocol except join refuses them
 *   - shard server: each member's shares and records in HOME/held/<userId>/ (a LocalShareStore)
 *   - group protocols: join, roster push/get, space
 *   - a PeerDirectory for the erasure-coded pack store
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { InvalidInviteError, NotMemberError, RefusedError, UntrustedPeerError, errorMessage } from '../errors.js'
import { fromHex } from '../util/bytes.js'
import { ProofCache, type ShareStore } from '../store/index.js'
import {
  InviteBook, addMember, createInvite, createRoster, decodeInviteCode, decodeLedger, decodeRoster, encodeLedger, encodeRoster,
  inviteClaim, issueDeviceCert, memberOfPeer, removeDevice, removeMember, verifyDeviceCert, verifyJoinRoster, verifyRosterUpdate, type DeviceCert, type Roster
} from '../peers/index.js'
import type { Candidate } from '../placement/index.js'
import type { PeerDirectory } from '../repo/index.js'
import { RemoteShareStore, shardServer } from '../protocols/shard/index.js'
import { fetchRoster, fetchSpace, pushRoster, requestJoin, startGroupProtocols, type JoinRequest, type SpaceInfo } from '../protocols/group.js'
import { startAuditServer } from '../protocols/audit.js'
import { RELIABILITY_THRESHOLD, recordProbes, reliabilityOf } from '../repair/index.js'
import { createP2pNode, type P2pNode } from './libp2p-node.js'
import { LedgerBook, reciprocityPolicy } from './ledger-book.js'
import { HeldSpace } from './held-space.js'
import type { Home } from './home.js'
import type { GroupState, Settings } from './group-state.js'

export interface NetworkOptions {
  listen?: string[]
  mdns?: boolean
  dht?: boolean
}

export class NetworkNode {
  readonly directory: PeerDirectory
  private readonly held: HeldSpace
  private readonly space = new Map<string, SpaceInfo>()
  private readonly remotes = new Map<string, ShareStore>()
  private invites: InviteBook
  private stopShards: (() => Promise<void>) | undefined
  /** the reciprocity ledger: our statement and the members' */
  readonly ledger: LedgerBook
  /** leaf caches and damage reports of the shares this node holds */
  readonly proofs: ProofCache

  private constructor (readonly home: Home, readonly state: GroupState, readonly node: P2pNode) {
    this.invites = new InviteBook(state.file.invites)
    this.ledger = new LedgerBook(home, () => this.state.file.roster, reciprocityPolicy(state.file.settings ?? {}))
    this.proofs = new ProofCache(join(home.dir, 'proofs'))
    this.held = new HeldSpace(home.dir, () => this.state.file.roles, this.ledger)
    this.directory = {
      ownPersonId: home.identity.userId,
      candidates: () => this.candidates(),
      storeFor: (peerId: string) => this.remoteStore(peerId)
    }
  }

  get peerId (): string { return this.node.peerId.toString() }

  /** What each member device offers, as last fetched. */
  spaceOf (): ReadonlyMap<string, SpaceInfo> { return this.space }

  /** Settings for this run (group.json's, with the daemon's flags on top). */
  applySettings (settings: Settings): void {
    this.ledger.policy = reciprocityPolicy(settings)
  }
  get roster (): Roster | null { return this.state.file.roster }
  addrs (): string[] { return this.node.getMultiaddrs().map(a => a.toString()) }

  static async start (home: Home, state: GroupState, opts: NetworkOptions = {}): Promise<NetworkNode> {
    let self: NetworkNode | undefined
    const node = await createP2pNode({
      privateKey: state.deviceKey,
      ...(opts.listen !== undefined ? { listen: opts.listen } : {}),
      mdns: opts.mdns === true,
      dht: opts.dht !== false,
      allowPeer: (peer: PeerId) => self === undefined || self.mayConnect(peer)
    })
    self = new NetworkNode(home, state, node)
    await self.startProtocols()
    node.addEventListener('peer:identify', (evt) => {
      const id = evt.detail.peerId.toString()
      if (self?.deviceOf(id) !== undefined) self.state.rememberAddrs(id, evt.detail.listenAddrs.map(a => `${a.toString()}/p2p/${id}`))
    })
    return self
  }

  private deviceOf (peerId: string): { userId: string } | undefined {
    const r = this.state.file.roster
    if (r === null) return undefined
    const m = memberOfPeer(r, peerId)
    return m === undefined ? undefined : { userId: m.userId }
  }

  private mayConnect (peer: PeerId): boolean {
    const id = peer.toString()
    if (this.deviceOf(id) !== undefined) return true
    if (this.joiningVia === id) return true
    return this.invites.outstanding(Date.now()) > 0
  }

  private joiningVia: string | undefined

  private async startProtocols (): Promise<void> {
    const server = shardServer({
      node: this.node,
      storeFor: async (userId: string) => await this.held.store(userId),
      authorize: (peer: PeerId) => this.deviceOf(peer.toString()),
      verifyDeleteSignature: (owner: string, message: Uint8Array, sig: string) => {
        try { return this.home.sodium.verify(Buffer.from(sig, 'base64'), message, fromHex(owner)) } catch { return false }
      },
      quota: (owner: string, addBytes: number) => this.held.admit(owner, addBytes)
    })
    await server.start()
    await startAuditServer({
      node: this.node,
      authorize: (peer: PeerId) => this.deviceOf(peer.toString()),
      storeFor: async (userId: string) => await this.held.store(userId),
      cache: this.proofs
    })
    this.stopShards = async () => { await server.stop() }
    await this.held.refresh()
    await startGroupProtocols(this.node, {
      isMember: (peer) => this.deviceOf(peer.toString()) !== undefined,
      getRoster: () => encodeRoster(this.requireRoster()),
      pushRoster: async (bytes) => { await this.acceptRoster(decodeRoster(bytes)) },
      space: () => this.spaceInfo(),
      join: async (req, peer) => await this.admit(req, peer)
    })
  }

  /** The persister quota: what the user set with `contribute`, or a share of the free disk. */
  quotaBytes (): number { return this.held.quotaBytes() }

  /** The share store of every member we hold anything for. */
  async heldStores (): Promise<Array<{ owner: string, store: ShareStore }>> { return await this.held.stores() }

  private spaceInfo (): SpaceInfo {
    const quota = this.quotaBytes()
    const used = this.held.usedBytes
    const own = this.ledger.current()
    return {
      persister: quota > 0, publisher: this.state.file.roles.publish !== null, quotaBytes: quota, usedBytes: used, freeBytes: Math.max(0, quota - used),
      ...(own !== undefined ? { ledger: encodeLedger(own) } : {})
    }
  }

  private requireRoster (): Roster {
    const r = this.state.file.roster
    if (r === null) throw new NotMemberError('this node is in no group yet')
    return r
  }

  /** Takes a roster pushed by a member if it validly succeeds ours. */
  async acceptRoster (next: Roster): Promise<boolean> {
    const current = this.state.file.roster
    if (current !== null && next.serial <= current.serial) return false
    verifyRosterUpdate(this.home.sodium, current ?? undefined, next)
    this.state.file.roster = next
    await this.state.save()
    // a removed member's devices lose their connections at once
    for (const conn of this.node.getConnections()) {
      if (this.deviceOf(conn.remotePeer.toString()) === undefined && this.invites.outstanding(Date.now()) === 0) await conn.close().catch(() => {})
    }
    return true
  }

  /** Inviter side of join: checks the invite proof and the newcomer's device certificate, adds them. */
  private async admit (req: JoinRequest, peer: PeerId): Promise<Uint8Array> {
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
    // the newcomer's listen addresses came with identify, before it was a member: keep them now
    await this.rememberFromPeerStore(peer)
    void this.broadcastRoster()
    return encodeRoster(next)
  }

  private async rememberFromPeerStore (peer: PeerId): Promise<void> {
    try {
      const p = await this.node.peerStore.get(peer)
      this.state.rememberAddrs(peer.toString(), p.addresses.map(a => `${a.multiaddr.toString()}/p2p/${peer.toString()}`))
      await this.state.savePeers()
    } catch {}
  }

  async broadcastRoster (): Promise<void> {
    const r = this.requireRoster()
    const bytes = encodeRoster(r)
    await Promise.all(this.memberDevices().map(async d => { await pushRoster(this.node, peerIdFromString(d), bytes).catch(() => {}) }))
  }

  /** Every device on the roster but this one. */
  memberDevices (): string[] {
    const r = this.state.file.roster
    if (r === null) return []
    return r.members.flatMap(m => m.devices.map(d => d.peerId)).filter(p => p !== this.peerId)
  }

  private candidates (): Candidate[] {
    const r = this.state.file.roster
    if (r === null) return []
    const out: Candidate[] = []
    for (const m of r.members) {
      for (const d of m.devices) {
        if (d.peerId === this.peerId) continue
        const space = this.space.get(d.peerId)
        const online = this.node.getConnections(peerIdFromString(d.peerId)).length > 0
        if (space === undefined || !space.persister) continue
        // peers that fail audits or are rarely reachable get no new shares (they keep serving theirs)
        const reliability = reliabilityOf(this.home.repo.index.audit.getPeer(d.peerId))
        if (reliability < RELIABILITY_THRESHOLD) continue
        out.push({ peerId: d.peerId, personId: m.userId, online, freeBytes: space.freeBytes, reliability })
      }
    }
    return out
  }

  private remoteStore (peerId: string): ShareStore {
    let s = this.remotes.get(peerId)
    if (s === undefined) {
      const identity = this.home.identity
      const sk = identity.signSecretKey
      s = new RemoteShareStore({
        node: this.node,
        peer: peerIdFromString(peerId),
        ownerUserId: identity.userId,
        signDelete: (message: Uint8Array) => {
          if (sk === null) throw new RefusedError('a write-only key cannot delete')
          return Buffer.from(this.home.sodium.sign(message, sk)).toString('base64')
        }
      })
      this.remotes.set(peerId, s)
    }
    return s
  }

  /** Dials every member device we know an address for and asks what it offers. */
  async refresh (timeoutMs = 5_000): Promise<void> {
    // the quota check counts bytes before a put is known to succeed: correct it from what is stored
    const held = await this.held.refresh()
    if (held !== undefined) this.ledger.update(this.peerId, held)
    const seen = new Map<string, boolean>()
    await Promise.all(this.memberDevices().map(async id => {
      const known = this.state.peers[id]
      seen.set(id, false)
      try {
        const pid = peerIdFromString(id)
        if (this.node.getConnections(pid).length === 0) await this.connect(pid, known?.addrs ?? [], timeoutMs)
        const space = await fetchSpace(this.node, pid)
        seen.set(id, true)
        this.space.set(id, space)
        if (space.ledger !== undefined) { try { this.ledger.accept(decodeLedger(space.ledger)) } catch {} }
        // catch up with roster changes made while we were away
        const theirs = decodeRoster(await fetchRoster(this.node, pid))
        await this.acceptRoster(theirs).catch(() => false)
      } catch {
        this.space.delete(id)
      }
    }))
    await recordProbes(this.home.repo.index.audit, seen, Date.now()).catch(() => {})
    await this.state.savePeers()
  }

  /** Dials a member device: its last known addresses first, then whatever the DHT knows. */
  private async connect (pid: PeerId, addrs: string[], timeoutMs: number): Promise<void> {
    if (addrs.length > 0) {
      try {
        await this.node.dial(addrs.map(a => multiaddr(a)), { signal: AbortSignal.timeout(timeoutMs) })
        return
      } catch {
        // stale addresses (the peer moved or restarted on another port): ask the DHT
      }
    }
    const dht = (this.node.services as { dht?: unknown }).dht
    if (dht === undefined) throw new RefusedError(`no address known for ${pid.toString()}`)
    const info = await this.node.peerRouting.findPeer(pid, { signal: AbortSignal.timeout(Math.min(timeoutMs, 3000)) })
    await this.node.dial(info.multiaddrs, { signal: AbortSignal.timeout(timeoutMs) })
    this.state.rememberAddrs(pid.toString(), info.multiaddrs.map(a => `${a.toString()}/p2p/${pid.toString()}`))
  }

  // ---- group management -------------------------------------------------------------------

  deviceCert (): DeviceCert {
    let cert = this.state.file.deviceCert
    if (cert === null || cert.peerId !== this.peerId) {
      cert = issueDeviceCert(this.home.sodium, this.home.identity, this.peerId, hostname(), Date.now())
      this.state.file.deviceCert = cert
    }
    return cert
  }

  async createGroup (name: string): Promise<Roster> {
    if (this.state.file.roster !== null) throw new RefusedError(`this node is already in group "${this.state.file.roster.name}"`)
    const roster = createRoster(this.home.sodium, this.home.identity, name, this.deviceCert(), Date.now())
    this.state.file.roster = roster
    await this.state.save()
    return roster
  }

  async invite (ttlMs: number): Promise<string> {
    const roster = this.requireRoster()
    const addrs = this.addrs().map(a => a.includes('/p2p/') ? a : `${a}/p2p/${this.peerId}`)
    const { invite, code } = createInvite(this.home.sodium, this.home.identity, roster, this.deviceCert(), addrs, ttlMs, Date.now())
    this.invites.add(invite)
    this.state.file.invites = this.invites.toJSON()
    await this.state.save()
    return code
  }

  async join (code: string): Promise<Roster> {
    if (this.state.file.roster !== null) throw new RefusedError(`this node is already in group "${this.state.file.roster.name}"`)
    const invite = decodeInviteCode(this.home.sodium, code, Date.now())
    const inviterPeer = invite.inviterDevice.peerId
    this.joiningVia = inviterPeer
    try {
      try {
        await this.node.dial(invite.addrs.map(a => multiaddr(a)), { signal: AbortSignal.timeout(15_000) })
      } catch (err: unknown) {
        throw new RefusedError(`cannot reach the inviter at ${invite.addrs.join(', ')} (${errorMessage(err)}). Their daemon may not be running, their address may have changed, or the invite was already used or has expired (an inviter with no open invite accepts no strangers): ask for a new invite`, { cause: err })
      }
      const bytes = await requestJoin(this.node, peerIdFromString(inviterPeer), {
        groupId: invite.groupId,
        ...inviteClaimFields(invite, this.peerId, this.home.identity.userId),
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
      return roster
    } finally {
      this.joiningVia = undefined
    }
  }

  async remove (userId: string): Promise<Roster> {
    return await this.adoptAndTell(removeMember(this.home.sodium, this.requireRoster(), this.home.identity, userId, Date.now()))
  }

  /** Revokes one device (a lost laptop, say): it can no longer connect; what it held is re-placed by the caller. */
  async removeDevice (peerId: string): Promise<Roster> {
    return await this.adoptAndTell(removeDevice(this.home.sodium, this.requireRoster(), this.home.identity, peerId, Date.now()))
  }

  /** Saves a roster that drops someone, tells every device that was on the old one, then drops the removed devices. */
  private async adoptAndTell (next: Roster): Promise<Roster> {
    const before = this.memberDevices()
    this.state.file.roster = next
    await this.state.save()
    const bytes = encodeRoster(next)
    await Promise.all(before.map(async d => { await pushRoster(this.node, peerIdFromString(d), bytes).catch(() => {}) }))
    for (const conn of this.node.getConnections()) if (this.deviceOf(conn.remotePeer.toString()) === undefined) await conn.close().catch(() => {})
    return next
  }

  async freeDiskBytes (): Promise<number> { return await this.held.freeDiskBytes() }

  async stop (): Promise<void> {
    await this.state.savePeers().catch(() => {})
    await this.stopShards?.()
    await this.node.stop()
    await this.held.close()
  }
}

function inviteClaimFields (invite: Parameters<typeof inviteClaim>[0], peerId: string, userId: string): { inviteId: string, proof: string } {
  const c = inviteClaim(invite, peerId, userId)
  return { inviteId: c.inviteId, proof: c.proof }
}
