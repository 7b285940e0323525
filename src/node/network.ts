/**
 * A running p2pbak node: the libp2p node plus everything the group needs from it. Composition only:
 * the rules live in peers/ (roster, invites, offers), placement/ and protocols/.
 *   - gater: a device on the roster may connect; while invites are outstanding, unknown peers may
 *     connect too, but every protocol except join refuses them, and identify and the DHT do not
 *     answer them
 *   - shard server: each member's shares and records in HOME/held/<userId>/ (a LocalShareStore)
 *   - group protocols: join, roster push/get, space; membership changes (membership.ts)
 *   - offers: roles and space, announced as signed records in the DHT (offer-book.ts)
 *   - a PeerDirectory for the erasure-coded pack store
 */
import { join } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { NotMemberError, RefusedError, errorMessage } from '../errors.js'
import { RefreshGate } from './refresh-gate.js'
import { scopedLogger } from '../util/log.js'
import { ProofCache, type ShareStore } from '../store/index.js'
import { decodeLedger, encodeLedger, isWriteOnlyCert, memberOfPeer, type DeviceCert, type OfferRecord, type Retention, type Roster } from '../peers/index.js'
import type { Candidate } from '../placement/index.js'
import { placementCandidates } from './candidates.js'
import type { PeerDirectory, TransferCounts } from '../repo/index.js'
import { fetchSpace, type SpaceAnswer, type SpaceInfo } from '../protocols/group.js'
import { recordProbes } from '../repair/index.js'
import { createP2pNode, type P2pNode } from './libp2p-node.js'
import { LedgerBook, reciprocityPolicy } from './ledger-book.js'
import { HeldSpace, REMOVED_DATA_GRACE_MS } from './held-space.js'
import { Membership } from './membership.js'
import { OfferBook, type OfferDht } from './offer-book.js'
import { ProvenBytes } from './proven-bytes.js'
import { dialMember } from './reachability.js'
import { startNodeProtocols } from './node-protocols.js'
import { DEFAULT_RELAY_POLICY, RelayBook, relayParts, relayRoleFor, type RelayMode } from './relay.js'
import { followsNetwork, listenerAccess, RoleFollower } from './role-follow.js'
import { RelayLink } from './relay-link.js'
import { RelayTally } from './relay-tally.js'
import { DirectLinks } from './direct-paths.js'
import { DialbackChecks } from './dialback.js'
import { RemoteStores } from './remote-stores.js'
import { addressServices } from './port-mapping.js'
import { whyLocalReason } from './why-local.js'
import type { Home } from './home.js'
import type { GroupState, Settings } from './group-state.js'

const log = scopedLogger('node')

export interface NetworkOptions {
  listen?: string[]
  /** addresses to give friends instead of the listen addresses (a forwarded public port) */
  announce?: string[]
  mdns?: boolean
  dht?: boolean
  /** the source address of outgoing connections (tests: tell nodes on one loopback apart) */
  dialFrom?: string
  /** the clock of reachability records and refresh ages (tests run it in virtual time). @default Date.now */
  now?: () => number
  /** relays among members (relay.ts): `auto` takes the role from the addresses given to friends. @default 'auto' */
  relay?: RelayMode
  /** behind NAT, ask the home router for a port mapping (UPnP, port-mapping.ts). @default true */
  portMapping?: boolean
  /**
   * The seam for tests and fault injection: the store the shard server answers a member's requests
   * from, given that member's held store (a lying persister, test/helpers/liar.ts). Audits still
   * answer from the held store. @default the held store
   */
  wrapHeldStore?: (owner: string, store: ShareStore) => ShareStore
  /** how long a command waits for a refresh a device stalls (refresh-gate.ts READY_PATIENCE_MS; tests shorten it) */
  readyPatienceMs?: number
}

export class NetworkNode {
  readonly directory: PeerDirectory
  private readonly held: HeldSpace
  private readonly space = new Map<string, SpaceAnswer>()
  /** set by stop(): a refresh still running saves nothing more */
  private stopping = false
  /** the member devices the running refresh asked that have not answered it yet (refreshOnce) */
  private unanswered = new Set<string>()
  readonly membership: Membership
  /** signed offers (roles, space) of every member device, and ours */
  readonly offers: OfferBook
  private stopShards: (() => Promise<void>) | undefined
  /** the reciprocity ledger: our statement and the members' */
  readonly ledger: LedgerBook
  /** leaf caches and damage reports of the shares this node holds */
  readonly proofs: ProofCache

  /** the clock of reachability records and refresh ages */
  readonly now: () => number
  /** relays: reservations, invite notices, how friends are reached (relay-link.ts) */
  readonly relay: RelayLink
  /** which of our public addresses members elsewhere could connect to (dialback.ts) */
  readonly dialback: DialbackChecks
  /** the relay role taken from the network now, for a daemon on every interface (role-follow.ts) */
  private follower: RoleFollower | undefined
  /** when to ask the friends again (refresh-gate.ts) */
  private readonly gate: RefreshGate
  /** friends' share stores, sharing the rate limits (`--limit-upload`, `--limit-download`) */
  private readonly remotes: RemoteStores
  /** what each peer proved it stores for us: caps the free space it may claim (placement P8) */
  private readonly proven: ProvenBytes

  private constructor (readonly home: Home, readonly state: GroupState, readonly node: P2pNode, book: RelayBook, readonly direct: DirectLinks, opts: NetworkOptions) {
    this.now = opts.now ?? Date.now
    this.membership = new Membership(home, state, node)
    this.membership.gate.strangersElsewhere = () => book.mayConnectStranger()
    this.dialback = new DialbackChecks(node, peer => this.deviceOf(peer) !== undefined, this.now)
    this.relay = new RelayLink(node, book, () => this.membership.invitesOpenUntil(this.now()), peer => this.deviceOf(peer) !== undefined, this.dialback, conn => direct.usable(conn))
    this.offers = new OfferBook(home, () => this.state.file.roster, node.peerId.toString())
    this.ledger = new LedgerBook(home, () => this.state.file.roster, reciprocityPolicy(state.file.settings ?? {}))
    this.remotes = new RemoteStores(node, () => {
      const sk = home.identity.signSecretKey
      return { userId: home.identity.userId, sign: sk === null ? null : (message) => Buffer.from(home.sodium.sign(message, sk)).toString('base64') }
    }, { uploadKiB: state.file.settings?.limitUploadKiB, downloadKiB: state.file.settings?.limitDownloadKiB }, this.now)
    this.proofs = new ProofCache(join(home.dir, 'proofs'))
    this.proven = new ProvenBytes(() => home.repo.index, this.now)
    this.held = new HeldSpace(home.dir, () => this.state.file.roles, this.ledger, opts.wrapHeldStore)
    this.gate = new RefreshGate({
      run: async (timeoutMs) => await this.refreshOnce(timeoutMs),
      serial: () => this.state.file.roster?.serial ?? -1,
      // friends only: this person's own other devices take no share of its packs
      nobody: () => this.candidates().every(c => !c.online) && this.memberDevices().length > 0,
      now: this.now,
      ...(opts.readyPatienceMs !== undefined ? { patienceMs: opts.readyPatienceMs } : {})
    })
    this.directory = {
      ownPersonId: home.identity.userId,
      hasOtherDevices: () => (this.state.file.roster?.members.find(m => m.userId === home.identity.userId)?.devices.length ?? 1) > 1,
      candidates: () => this.candidates(),
      holders: () => this.candidates({ anyReliability: true }),
      // the other people who offer space now (or have not said yet): one whose offer says no (contribute 0, or
      // an automatic quota of 0 on a full disk) takes no share until it offers again
      otherPeople: () => (this.state.file.roster?.members.filter(m => m.userId !== home.identity.userId && m.devices.some(d => this.offerOf(d.peerId)?.persister !== false)).length ?? 0),
      whyLocal: () => this.whyLocal(),
      now: this.now,
      transferCounts: () => this.transferCounts(),
      reconnect: async (peerId: string) => { await this.connect(peerIdFromString(peerId), this.state.peers[peerId]?.addrs ?? [], 5_000) },
      storeFor: (peerId: string) => this.remotes.storeFor(peerId)
    }
  }

  get peerId (): string { return this.node.peerId.toString() }

  /**
   * Whether a device may take shares now: connected, and not one that has kept a refresh waiting past
   * its patience (a suspended laptop whose connection is still open: refresh-gate.ts `overdue`).
   */
  private answering (peerId: string): boolean {
    return this.isOnline(peerId) && !(this.unanswered.has(peerId) && this.gate.overdue())
  }

  /** Whether a device has a connection to this node now (an invalid peer id: no). */
  isOnline (peerId: string): boolean {
    try { return this.node.getConnections(peerIdFromString(peerId)).length > 0 } catch { return false /* not a peer id: nobody is connected as it */ }
  }


  /** Settings for this run (group.json's, with the daemon's flags on top). */
  applySettings (settings: Settings): void {
    this.ledger.policy = reciprocityPolicy(settings)
    this.remotes.setLimits({ uploadKiB: settings.limitUploadKiB, downloadKiB: settings.limitDownloadKiB })
  }
  get roster (): Roster | null { return this.state.file.roster }
  addrs (): string[] { return this.node.getMultiaddrs().map(a => a.toString()) }

  static async start (home: Home, state: GroupState, opts: NetworkOptions = {}): Promise<NetworkNode> {
    let self: NetworkNode | undefined
    const mode = opts.relay ?? 'auto'
    const listen = opts.listen ?? ['/ip4/127.0.0.1/tcp/0']
    // a daemon on every interface takes its role from the network it is on now (role-follow.ts)
    const follows = followsNetwork(mode, listen, opts.announce)
    const book = new RelayBook(mode === 'auto' ? relayRoleFor(listen, opts.announce) : mode, {
      isMember: (peer) => self?.deviceOf(peer) !== undefined,
      now: opts.now ?? Date.now,
      tally: await RelayTally.load(join(home.dir, 'relayed.json'))
    }, DEFAULT_RELAY_POLICY, follows)
    const direct = await DirectLinks.prepare(book.role, () => self?.relay.addrs() ?? [], follows)
    const node = await createP2pNode({
      privateKey: state.deviceKey,
      ...(opts.listen !== undefined ? { listen: opts.listen } : {}),
      ...(opts.announce !== undefined ? { announce: opts.announce } : {}),
      mdns: opts.mdns === true,
      dht: opts.dht !== false,
      ...(opts.dialFrom !== undefined ? { dialFrom: opts.dialFrom } : {}),
      // a relay also lets in a stranger while a member it relays for has an open invite (relay.ts)
      allowPeer: (peer: PeerId) => self === undefined || self.membership.mayConnect(peer.toString()) || book.mayConnectStranger(),
      relay: relayParts(book),
      transports: direct.transports,
      services: { ...(await addressServices(follows ? 'both' : book.role, opts.portMapping !== false)), ...(follows ? { listenerAccess: listenerAccess() } : {}) },
      // identify and the DHT answer members only (a node in no group yet answers anyone)
      servePeer: (peer: PeerId) => state.file.roster === null || memberOfPeer(state.file.roster, peer.toString()) !== undefined,
      records: {
        validate: (key, value) => { if (self === undefined) throw new RefusedError('starting'); self.offers.validate(key, value) },
        select: (key, values) => self?.offers.select(key, values) ?? 0
      }
    })
    self = new NetworkNode(home, state, node, book, direct, opts)
    const me = self
    me.stopShards = await startNodeProtocols({
      node, home, held: me.held, membership: me.membership, relay: me.relay, proofs: me.proofs, now: me.now,
      deviceOf: (peer) => me.deviceOf(peer),
      space: () => me.spaceInfo()
    })
    await direct.start(node, { isMember: (peer) => self?.deviceOf(peer) !== undefined, now: opts.now ?? Date.now })
    if (follows) {
      self.follower = new RoleFollower(node, book, direct, { listen, checks: self.dialback })
      self.follower.start()
    }
    node.addEventListener('peer:identify', (evt) => {
      const id = evt.detail.peerId.toString()
      if (self?.deviceOf(id) !== undefined) self.state.rememberAddrs(id, evt.detail.listenAddrs.map(a => `${a.toString()}/p2p/${id}`))
    })
    return self
  }

  /** The person a device belongs to, and whether its certificate marks it write-only (persisters refuse its deletes and overwrites). */
  private deviceOf (peerId: string): { userId: string, writeOnly: boolean } | undefined {
    const r = this.state.file.roster
    if (r === null) return undefined
    const m = memberOfPeer(r, peerId)
    if (m === undefined) return undefined
    const cert = m.devices.find(d => d.peerId === peerId)
    return { userId: m.userId, writeOnly: cert !== undefined && isWriteOnlyCert(cert) }
  }

  /** The persister quota: what the user set with `contribute`, or a share of the free disk. */
  quotaBytes (): number { return this.held.quotaBytes() }

  /** The share store of every member we hold anything for. */
  async heldStores (): Promise<Array<{ owner: string, store: ShareStore }>> { return await this.held.stores() }

  private spaceInfo (): SpaceAnswer {
    const quota = this.quotaBytes()
    const used = this.held.usedBytes
    const own = this.ledger.current()
    return {
      persister: quota > 0, publisher: this.state.file.roles.publish !== null, quotaBytes: quota, usedBytes: used, freeBytes: Math.min(Math.max(0, quota - used), this.held.roomOnDisk ?? Number.POSITIVE_INFINITY),
      ...(own !== undefined ? { ledger: encodeLedger(own) } : {}),
      ...(this.state.file.roster !== null ? { rosterSerial: this.state.file.roster.serial, rosterHash: this.membership.rosters.hash() } : {})
    }
  }

  /** `anyReliability`: also the devices that get no new shares (failed audits, rarely reachable), for reads and listings (candidates.ts). */
  private candidates (opts: { anyReliability?: boolean } = {}): Candidate[] {
    return placementCandidates(this.state.file.roster, {
      self: this.peerId, now: this.now(), space: (peer) => this.space.get(peer), online: (peer) => this.answering(peer),
      audit: this.home.repo.index.audit, provenBytes: (peer) => this.proven.of(peer)
    }, opts)
  }

  /**
   * What the group's commands wait for before they place or look for anything: the members' offers
   * learned since the roster last changed (refresh-gate.ts says when a refresh is due).
   */
  async ready (opts: { retryAfterMs?: number, timeoutMs?: number } = {}): Promise<void> { await this.gate.ready(opts) }

  /**
   * Why packs stay on this disk now (no friend's node can take a share), in words for the user; null
   * when some friend offers space and answers.
   */
  whyLocal (): string | null {
    return whyLocalReason(this.state.file.roster, this.home.identity.userId, id => this.space.get(id), () => this.candidates().some(c => c.online && c.personId !== this.home.identity.userId))
  }

  /** Dials every member device we know an address for and asks what it offers; concurrent calls share one run. */
  async refresh (timeoutMs = 5_000): Promise<void> { await this.gate.refresh(timeoutMs) }

  /** The same, waited for at most the gate's patience once a friend who may take shares answered (the daemon's round). */
  async refreshPatiently (timeoutMs = 5_000): Promise<void> { await this.gate.refreshPatiently(timeoutMs) }

  private async refreshOnce (timeoutMs: number): Promise<ReadonlySet<string>> {
    // every member device counts as not having answered this refresh until it does (the patience's
    // clock starts with the refresh, before the counting below)
    const asked = new Set(this.membership.memberDevices())
    this.unanswered = asked
    // the quota check counts bytes before a put is known to succeed: correct it from what is stored
    const removed = this.state.file.roster?.removed ?? []
    if (removed.length > 0) {
      const gone = await this.held.releaseRemoved(removed, Math.max(REMOVED_DATA_GRACE_MS, this.membership.minShareAgeMs(this.now())), this.now())
      for (const owner of gone) await this.proofs.forget(owner).catch((err: unknown) => { log.error('the proof cache of %s, removed, stays: %s', owner.slice(0, 12), errorMessage(err)) })
    }
    // a relay's stranger window that ended with a notice's expiry (no event marks it)
    await this.membership.shutGateIfClosed()
    const held = await this.held.refresh()
    if (held !== undefined) this.ledger.update(this.peerId, held, this.now(), await this.relay.relayedLately(this.now()))
    const seen = new Map<string, boolean>()
    const joining = new Set<string>()
    await Promise.all([...asked].map(async id => {
      const known = this.state.peers[id]
      seen.set(id, false)
      try {
        const pid = peerIdFromString(id)
        if (this.node.getConnections(pid).length === 0) await this.connect(pid, known?.addrs ?? [], timeoutMs)
        const space = await fetchSpace(this.node, pid)
        seen.set(id, true)
        this.space.set(id, space)
        asked.delete(id)
        if (space.ledger !== undefined) {
          try { this.ledger.accept(decodeLedger(space.ledger)) } catch (err: unknown) { log('ledger statement of %s refused: %s', id, errorMessage(err)) }
        }
        // catch up with roster changes made while we were away, and settle a fork (same serial, another hash)
        const ours = this.state.file.roster
        if (space.rosterSerial === undefined || space.rosterSerial > (ours?.serial ?? 0) || (space.rosterSerial === ours?.serial && space.rosterHash !== this.membership.rosters.hash())) {
          await this.membership.syncRoster(pid).catch((err: unknown) => { log('roster %s of %s not taken: %s', String(space.rosterSerial), id, errorMessage(err)) })
        }
      } catch (err: unknown) {
        log('member device %s did not answer: %s', id, errorMessage(err))
        this.space.delete(id)
        if (err instanceof NotMemberError) joining.add(id)
      } finally {
        asked.delete(id)
      }
    }))
    if (this.stopping) return joining
    await this.relay.upkeep().catch((err: unknown) => { log('relay upkeep failed (next refresh): %s', errorMessage(err)) })
    // in the background: a checker that stalls must not hold up the round (it logs its own failures)
    void this.dialback.upkeep().then(async () => { await this.follower?.follow() })
    await this.direct.paths?.upkeep()
    await recordProbes(this.home.repo.index.audit, seen, this.now()).catch((err: unknown) => { log.error('cannot record reachability: %s', errorMessage(err)) })
    await this.state.savePeers()
    this.announceSoon(timeoutMs, [...seen].filter(([, ok]) => !ok).map(([id]) => id))
    return joining
  }

  /** Our offer into the DHT, and the offers of the devices we could not reach, in the background (offer-book.ts). */
  private announceSoon (timeoutMs: number, away: string[]): void {
    const dht = (this.node.services as { dht?: OfferDht }).dht
    if (dht === undefined || this.state.file.roster === null) return
    const { ledger: _l, rosterSerial: _r, rosterHash: _h, ...info } = this.spaceInfo()
    this.offers.announceSoon(dht, info, away, timeoutMs)
  }

  /**
   * What a device offers: its space answer while it is reachable, else the newest offer it announced
   * in the DHT (`announcedAt`). Our own device answers from here.
   */
  offerOf (peerId: string): (SpaceInfo & { announcedAt: number | null }) | undefined {
    if (peerId === this.peerId) { const { ledger: _l, rosterSerial: _r, rosterHash: _h, ...info } = this.spaceInfo(); return { ...info, announcedAt: null } }
    const live = this.space.get(peerId)
    if (live !== undefined) { const { ledger: _l, rosterSerial: _r, rosterHash: _h, ...info } = live; return { ...info, announcedAt: null } }
    const o: OfferRecord | undefined = this.offers.get(peerId)
    return o === undefined ? undefined : { persister: o.persister, publisher: o.publisher, quotaBytes: o.quotaBytes, usedBytes: o.usedBytes, freeBytes: o.freeBytes, announcedAt: o.time }
  }

  // ---- group management (membership.ts) ----

  deviceCert (): DeviceCert { return this.membership.deviceCert() }
  memberDevices (): string[] { return this.membership.memberDevices() }
  async createGroup (name: string, retention?: Retention): Promise<Roster> { return await this.membership.createGroup(name, retention) }
  /** An invite with the addresses a friend elsewhere can use (behind NAT: through a member's relay), best first. */
  async invite (ttlMs: number): Promise<string> {
    const code = await this.membership.invite(ttlMs, await this.relay.inviteAddrs())
    await this.relay.notice()
    return code
  }
  /**
   * Joins through an invite, then learns at once what every member offers (the first backup right
   * after `join` goes to friends, and a recovered machine sees their snapshot records).
   */
  async join (code: string): Promise<Roster> {
    const roster = await this.membership.join(code)
    await this.refreshPatiently()
    return roster
  }

  async remove (userId: string): Promise<Roster> { return await this.membership.remove(userId) }
  async removeDevice (peerId: string): Promise<Roster> { return await this.membership.removeDevice(peerId) }
  async setAdmin (userId: string, admin: boolean): Promise<Roster> { return await this.membership.setAdmin(userId, admin) }

  /** Requests to friends' shard servers so far, with their retries (every remote store's counters summed). */
  transferCounts (): TransferCounts { return this.remotes.transferCounts() }

  /** Dials a member device (reachability.ts dialMember) and remembers the addresses the DHT gave for it. */
  private async connect (pid: PeerId, addrs: string[], timeoutMs: number): Promise<void> {
    const found = await dialMember(this.node, pid, addrs, timeoutMs)
    if (found !== undefined) this.state.rememberAddrs(pid.toString(), found)
  }

  async freeDiskBytes (): Promise<number> { return await this.held.freeDiskBytes() }

  async stop (): Promise<void> {
    // a refresh a command stopped waiting for (the patience) writes the peer book, the roster and the
    // index as it ends: it ends before they close
    this.stopping = true
    if (!await this.gate.idle(2_000)) log('a refresh still runs as the node stops: its last answers are not saved')
    // an offer put or lookup still running ends with the node (its errors are ignored)
    await this.state.savePeers().catch((err: unknown) => { log.error('cannot save the peer book: %s', errorMessage(err)) })
    await this.stopShards?.()
    this.membership.close()
    await this.relay.saveTally(this.now())
    await this.follower?.stop()
    await this.direct.stop()
    await this.remotes.close()
    await this.node.stop()
    await this.held.close()
  }
}

