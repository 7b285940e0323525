/**
 * Packs as erasure-coded shares on friends' share stores. putPack picks (k, m) from the people who
 * offer storage, codes the pack into k + m shares and puts each on a different person's node, in
 * parallel, replacing peers that fail; getPack fetches shares from every holder at once and decodes
 * from the first k that verify. With nobody to place on it falls back to the local store (k = 1,
 * m = 0): the embedded default. Snapshot records are replicated to every reachable peer and the
 * local store. It sees peers only as ShareStores and plain placement data: no network code here.
 */
import { CorruptDataError, NotFoundError, PlacementFailedError, RetentionRefusedError, errorMessage } from '../errors.js'
import { decodeShareHeader, SHARE_HEADER_BYTES } from '../format/share.js'
import { chooseScheme, keepsOwnCopy, type Candidate } from '../placement/index.js'
import { asPackId, type PackId } from '../ids.js'
import type { AbortOptions, IndexDb, ShareRef, ShareStore } from '../store/index.js'
import { fromHex, toHex } from '../util/bytes.js'
import type { ErasurePackStoreInit, PeerDirectory } from './group-directory.js'
import { friendsShares } from './group-listing.js'
import { GroupRecords } from './group-records.js'
import type { PackPlacement, PackStore, PutPackOptions, RecordListOptions } from './pack-store.js'
import { SingleStorePackStore } from './pack-store.js'
import { encodeSharePieces } from './shares.js'
import { RefusalBackoff, replaceShares } from './group-repair.js'
import { placeLocalPacks, whyPacksStayLocal, type LocalPacksOptions, type LocalPacksResult } from './local-packs.js'
import { ShareBufferPool } from './share-buffers.js'
import { personOf, SharePlacer } from './share-placement.js'
import { PlacementTally } from './placement-tally.js'
import type { HolderList, PackScheme } from './share-decoder.js'
import { decodeWithScheme, readFromFriends, type GroupReads } from './group-reads.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('repo:group')
export { NO_ROOM_WAIT_MS } from './share-placement.js'

export type { ErasurePackStoreInit, PeerDirectory } from './group-directory.js'

const LOCAL = 'local'

export class ErasurePackStore implements PackStore {
  readonly description: string
  /** peers may be offline: a pack missing from the listing is not gone */
  readonly listIsAuthoritative = false
  readonly localPacks: SingleStorePackStore
  private readonly cache = new Map<string, Uint8Array>()
  /** holders found by listing peers (recovery) before they are in the index */
  private readonly discovered = new Map<string, Array<[number, string]>>()
  /** erasure schemes learned from share headers (for packs indexed from a listing) */
  private readonly schemes = new Map<string, PackScheme>()
  /** share buffers of packs whose puts have all settled, for the next pack */
  private readonly shareBuffers = new ShareBufferPool()
  readonly init: Required<ErasurePackStoreInit>
  /** tallies open now (a job's summary): each placed or kept pack is counted in all of them */
  private readonly tallies = new Set<PlacementTally>()
  private readonly records: GroupRecords
  /** what reading from friends needs (group-reads.ts) */
  private readonly reads: GroupReads
  readonly refusedWidenings: RefusalBackoff
  /** puts a pack's shares on friends, and keeps the no-room rule (share-placement.ts) */
  private readonly placer: SharePlacer

  constructor (
    readonly local: ShareStore,
    readonly peers: PeerDirectory,
    readonly index: IndexDb,
    init: ErasurePackStoreInit = {}
  ) {
    this.localPacks = new SingleStorePackStore(local)
    this.records = new GroupRecords(local, () => this.answeringHolders(), (peer) => peers.storeFor(peer), this.tallies, init.listBounds ?? {}, () => peers.hasOtherDevices?.() ?? true)
    this.description = `group (local: ${local.id})`
    this.init = { targetYearlyLoss: init.targetYearlyLoss ?? 1e-9, maxExpansion: init.maxExpansion ?? 3, placementRounds: init.placementRounds ?? 3, cachedPacks: init.cachedPacks ?? 3, repairFetchTimeoutMs: init.repairFetchTimeoutMs ?? 30_000, scheme: init.scheme ?? null, now: init.now ?? peers.now ?? Date.now, listBounds: init.listBounds ?? {}, releasesOldCopies: init.releasesOldCopies ?? true }
    this.reads = { index, schemes: this.schemes, discovered: this.discovered, storeOf: (holder) => this.storeOf(holder) }
    this.refusedWidenings = new RefusalBackoff(this.init.now)
    this.placer = new SharePlacer({
      peers, index, placementRounds: this.init.placementRounds, now: this.init.now, online: () => this.onlineCandidates(), tallies: this.tallies,
      release: async (peer, ref) => { await this.release(peer, ref) }
    })
  }

  /** Peers of other people that answer now and offer space. */
  onlineCandidates (): Candidate[] {
    return this.peers.candidates().filter(c => c.online && c.personId !== this.peers.ownPersonId)
  }

  /**
   * Friends' devices that answer now, whatever their reliability: a friend that was away for long, or
   * failed audits, gets no new shares but still holds shares and records to read, list and delete.
   */
  answeringHolders (): Candidate[] {
    return (this.peers.holders?.() ?? this.peers.candidates()).filter(c => c.online && c.personId !== this.peers.ownPersonId)
  }

  /** How many other people the group has, answering or not (the roster's, where the directory knows it). */
  peopleInGroup (): number {
    return this.peers.otherPeople?.() ?? new Set(this.peers.candidates().filter(c => c.personId !== this.peers.ownPersonId).map(c => c.personId)).size
  }

  /** The friends who answer now with room for a share of a pack of `packBytes` (share-placement.ts SharePlacer.withRoom). */
  candidatesWithRoom (packBytes: number): Candidate[] { return this.placer.withRoom(packBytes) }

  /** The friends who answer now, less those that refused a share for want of room lately (share-placement.ts). */
  eligibleCandidates (): Candidate[] { return this.placer.eligible() }

  /** A friend refused a share for want of room: it gets none for a while (NO_ROOM_WAIT_MS). */
  noRoom (peer: string): void { this.placer.noRoom(peer) }

  /** The stripe a pack put now would get, and how many other people answer now. */
  schemeNow (candidates: Candidate[] = this.onlineCandidates()): { k: number, m: number, people: number } {
    const people = new Set(candidates.map(c => c.personId)).size
    const fixed = this.init.scheme
    const { k, m } = fixed !== null && people >= fixed.k + fixed.m ? fixed : chooseScheme(people, { targetYearlyLoss: this.init.targetYearlyLoss, maxExpansion: this.init.maxExpansion })
    return { k, m, people }
  }

  async putPack (id: PackId, pack: Uint8Array, options?: PutPackOptions): Promise<PackPlacement> {
    const candidates = this.candidatesWithRoom(pack.byteLength)
    const scheme = this.schemeNow(candidates)
    const wanted = options?.stripe
    if (wanted !== undefined && (scheme.k !== wanted.k || scheme.m !== wanted.m)) {
      throw new PlacementFailedError(`pack ${toHex(id).slice(0, 16)}: the ${scheme.people} friend(s) who answer now give a ${scheme.k}+${scheme.m} stripe, not the ${wanted.k}+${wanted.m} it was to get`, { errors: [], refused: false })
    }
    if (scheme.people === 0) {
      const p = await this.localPacks.putPack(id, pack, options)
      await this.index.setPlacement(id, new Map([[0, LOCAL]]))
      if (this.tallies.size > 0) {
        const why = this.onlineCandidates().length > 0 ? `no friend who answers has room for a pack of ${pack.byteLength} bytes (disks full or quotas used up); it moves to friends when they have room` : this.peers.whyLocal?.() ?? null
        for (const t of this.tallies) t.keptLocal(why)
      }
      return p
    }
    const { k, m } = scheme
    const shares = await encodeSharePieces(id, pack, k, m, { headroom: options?.headroom ?? 0, alloc: (bytes) => this.shareBuffers.take(bytes) })
    let failed: PlacementFailedError
    try {
      const placed = await this.placer.place(id, shares, k, m, candidates, options)
      if (!keepsOwnCopy(m)) return placed
      // a stripe that survives one loss only: this disk keeps a copy too (placement-and-repair.md §4);
      // a pack moved from this disk has it already, checked (written again, a disk at its reserve would
      // refuse it); a damaged file left there is written over
      const signalOnly = options?.signal !== undefined ? { signal: options.signal } : {}
      if (await this.ownCopy(id, signalOnly) === undefined) await this.localPacks.putPack(id, pack, signalOnly)
      for (const t of this.tallies) t.ownCopy()
      return { ...placed, ownCopy: true }
    } catch (err: unknown) {
      // a refusal (objects per person, reciprocity) is for the user to act on: the backup fails and says why
      if (!(err instanceof PlacementFailedError) || err.refused || options?.keepLocalOnFailure === false) throw err
      failed = err
    } finally {
      // every put has settled (placeShares awaits them all, also on failure): no store holds these now
      this.shareBuffers.give(shares.flat())
    }
    // a friend went away during the job, or has no room: the pack stays on this disk (the daemon moves
    // it into the group when enough friends answer again) rather than failing a backup whose data is safe here
    const away = failed.errors.filter(e => e.noRoom !== true).map(e => `…${e.peer.slice(-8)}`)
    const full = failed.errors.filter(e => e.noRoom === true).map(e => `…${e.peer.slice(-8)}`)
    const why = [...(away.length > 0 ? [`no answer from ${away.join(', ')}`] : []), ...(full.length > 0 ? [`no room on ${full.join(', ')}: disk full or quota used up`] : [])]
    log('pack %s kept local: %s (%s)', toHex(id).slice(0, 16), failed.message, failed.errors.map(e => `${e.peer}: ${e.error}`).join('; '))
    const p = await this.localPacks.putPack(id, pack, options)
    await this.index.setPlacement(id, new Map([[0, LOCAL]]))
    for (const t of this.tallies) t.keptLocal(`${failed.message}${why.length === 0 ? '' : ` (${why.join('; ')})`}; it moves to friends when they ${full.length > 0 ? 'have room or ' : ''}answer again`)
    return p
  }

  /**
   * Counts where every pack goes from now until the returned tally is closed (`end()`), for a
   * job's summary.
   */
  openTally (): { tally: PlacementTally, end: () => void } {
    const tally = new PlacementTally(this.peers.transferCounts)
    this.tallies.add(tally)
    return { tally, end: () => { this.tallies.delete(tally) } }
  }

  personOf (peer: string, candidates: Candidate[]): string { return personOf(peer, candidates) }

  /** The one peer a listing names as holding every share of a pack the index does not know. */
  soleClaimant (id: PackId): string | undefined {
    if (this.index.getPlacement(id) !== undefined) return undefined
    const peers = new Set((this.discovered.get(toHex(id)) ?? []).map(([, h]) => h))
    return peers.size === 1 ? [...peers][0] : undefined
  }

  /** Who holds which share: the index's placement, else every claim a listing made (recovery). */
  private holdersOf (id: PackId): Array<[number, string]> | undefined {
    const placed = this.index.getPlacement(id)
    if (placed !== undefined) return [...placed]
    return this.discovered.get(toHex(id))
  }

  /** The share store of a holder as the index names it (`local` or `peer:<id>`). */
  storeOf (holder: string): ShareStore {
    return holder === LOCAL ? this.local : this.peers.storeFor(holder.startsWith('peer:') ? holder.slice(5) : holder)
  }

  async getPack (id: PackId, options?: AbortOptions): Promise<Uint8Array> {
    const key = toHex(id)
    const cached = this.cache.get(key)
    if (cached !== undefined) return cached
    const holders = this.holdersOf(id)
    let pack: Uint8Array
    if (holders === undefined || isLocal(holders)) {
      pack = await this.localPacks.getPack(id, options)
    } else {
      pack = await this.ownCopy(id, options) ?? await readFromFriends(this.reads, id, holders, options)
    }
    this.cache.set(key, pack)
    if (this.cache.size > this.init.cachedPacks) this.cache.delete(this.cache.keys().next().value as string)
    return pack
  }

  async hasOwnCopy (id: PackId, options?: AbortOptions): Promise<boolean> {
    const holders = this.holdersOf(id)
    return holders !== undefined && !isLocal(holders) && await this.localPacks.hasPack(id, options)
  }

  /** This node's own copy of a pack placed in the group (keepsOwnCopy), when it has one and it verifies. */
  async ownCopy (id: PackId, options?: AbortOptions): Promise<Uint8Array | undefined> {
    if (!await this.localPacks.hasPack(id, options)) return undefined
    try {
      return await this.localPacks.getPack(id, options)
    } catch (err: unknown) {
      log.error('own copy of pack %s: %s; reading it from the group', toHex(id).slice(0, 16), errorMessage(err))
      return undefined
    }
  }

  /** The pack decoded from `holders`' shares with its scheme (group-reads.ts decodeWithScheme). */
  async fetchAndDecodeWithScheme (id: PackId, holders: HolderList, options?: AbortOptions): Promise<{ pack: Uint8Array, k: number, m: number }> {
    return await decodeWithScheme(this.reads, id, holders, options)
  }

  async getPackRange (id: PackId, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    const holders = this.holdersOf(id)
    if (holders === undefined || isLocal(holders)) return await this.localPacks.getPackRange(id, offset, length, options)
    const pack = await this.getPack(id, options)
    if (offset < 0 || offset + length > pack.byteLength) throw new CorruptDataError(`range [${offset}, ${offset + length}) outside pack ${toHex(id).slice(0, 16)}`)
    return pack.subarray(offset, offset + length)
  }

  async packSize (id: PackId, options?: AbortOptions): Promise<number> {
    const known = this.index.getPack(id)
    if (known !== undefined) return known.size
    // a verified decode knows the length; a holder's header is only its word
    const learned = this.schemes.get(toHex(id))
    if (learned !== undefined) return learned.packLength
    const holders = this.holdersOf(id)
    if (holders === undefined || holders.some(([i, h]) => i === 0 && h === LOCAL)) return await this.localPacks.packSize(id, options)
    for (const [index, holder] of holders) {
      try {
        return decodeShareHeader(await this.storeOf(holder).getRange({ pack: id, index }, 0, SHARE_HEADER_BYTES, options)).packLength
      } catch (err: unknown) {
        log('header of share %d of pack %s from %s: %s', index, toHex(id).slice(0, 16), holder, errorMessage(err))
      }
    }
    throw new NotFoundError(`no holder of pack ${toHex(id).slice(0, 16)} answers`)
  }

  async hasPack (id: PackId, options?: AbortOptions): Promise<boolean> {
    const holders = this.holdersOf(id)
    if (holders === undefined) return await this.localPacks.hasPack(id, options)
    return holders.length > 0
  }

  async deletePack (id: PackId, options?: AbortOptions): Promise<void> {
    const holders: Array<[number, string]> = [...(this.holdersOf(id) ?? [[0, LOCAL]])]
    if (!isLocal(holders) && await this.localPacks.hasPack(id, options)) holders.push([0, LOCAL]) // the own copy
    await Promise.all(holders.map(async ([index, holder]) => {
      if (holder.startsWith('peer:')) await this.release(holder.slice(5), { pack: id, index }, options)
      else await this.storeOf(holder).delete({ pack: id, index }, options).catch((err: unknown) => { log.error('cannot delete local share of pack %s: %s', toHex(id).slice(0, 16), errorMessage(err)) })
    }))
    this.cache.delete(toHex(id))
  }

  /**
   * Deletes a share a peer holds for us; when the peer is away or refuses (its retention policy keeps
   * young shares), the delete is queued and `releaseShares` sends it again on later rounds, so no
   * share is forgotten on a friend's disk.
   */
  private async release (peer: string, ref: ShareRef, options?: AbortOptions): Promise<void> {
    try {
      await this.peers.storeFor(peer).delete(ref, options)
    } catch (err: unknown) {
      await this.index.audit.addRelease(peer, ref)
      if (err instanceof RetentionRefusedError) this.index.audit.deferRelease(peer, ref, err.notBefore)
    }
  }

  /**
   * Local packs, then every share any peer holds for us (their holders are remembered for reading).
   * A peer's listing is its word: it is bounded (LIST_MAX_SHARES_PER_PEER entries, LIST_BUDGET_MS of
   * waiting for it), so a peer that lists forever or drips its answer cannot hang the command; and
   * every holder that claims a share is kept, so a peer claiming others' shares cannot hide them.
   */
  async * listPacks (options?: AbortOptions): AsyncIterable<PackId> {
    const seen = new Set<string>()
    for await (const id of this.localPacks.listPacks(options)) {
      seen.add(toHex(id))
      yield id
    }
    const found = await friendsShares(this.answeringHolders(), {
      storeFor: (peer) => this.peers.storeFor(peer),
      released: (peer, ref) => this.index.audit.hasRelease(peer, ref),
      discovered: this.discovered,
      seen,
      bounds: this.init.listBounds
    }, options)
    for (const key of found) yield asPackId(fromHex(key))
  }

  // snapshot records: group-records.ts
  async putRecord (id: Uint8Array, data: Uint8Array, options?: AbortOptions): Promise<void> { await this.records.put(id, data, options) }
  async getRecord (id: Uint8Array, options?: AbortOptions): Promise<Uint8Array> { return await this.records.get(id, options) }
  async deleteRecord (id: Uint8Array, options?: AbortOptions): Promise<void> { await this.records.delete(id, options) }
  listRecords (options?: RecordListOptions): AsyncIterable<Uint8Array> { return this.records.list(options) }
  recordClaimant (id: Uint8Array): string | undefined { return this.records.claimant(id) }
  async syncRecords (options?: AbortOptions): Promise<number> { return await this.records.sync(options) }

  dropCaches (): void {
    this.cache.clear()
    this.shareBuffers.clear()
  }

  /** The (k, m) of a pack read from the group, as its shares say. */
  packScheme (id: PackId): { k: number, m: number } | undefined {
    const s = this.schemes.get(toHex(id))
    return s === undefined ? undefined : { k: s.k, m: s.m }
  }

  /** Why the packs on this disk only stay there at the next round, for the user; null when they move then (local-packs.ts). */
  whyStaysLocal (): string | null { return whyPacksStayLocal(this, this.peers.whyLocal?.() ?? null) }

  /** Repair from zero: see local-packs.ts placeLocalPacks. */
  async placeLocalPacks (options?: LocalPacksOptions): Promise<LocalPacksResult> {
    return await placeLocalPacks(this, this.index, options)
  }

  /** Re-places the shares held by peers that are gone: see group-repair.ts replaceShares. */
  async replaceShares (isGone: (peerId: string) => boolean, options?: AbortOptions): Promise<{ packs: number, shares: number, failed: number }> {
    return await replaceShares(this, this.index, isGone, options)
  }

  async usage (options?: AbortOptions): Promise<{ shares: number, bytes: number }> { return await this.local.usage(options) }
  async close (): Promise<void> { await this.local.close() }
}

/** Whether the holders say "this disk only" (the embedded default's placement). */
function isLocal (holders: ReadonlyArray<readonly [number, string]>): boolean {
  return holders.length === 1 && holders[0]?.[0] === 0 && holders[0]?.[1] === LOCAL
}
