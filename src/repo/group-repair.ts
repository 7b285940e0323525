/**
 * Putting a group's packs back to full redundancy (docs/placement-and-repair.md §7):
 *   placeLocalPacks  repair from zero: packs that live only on this disk go into the group, and
 *                    packs placed with one or two friends are widened once more answer
 *   repairPack       rebuilds given shares of one pack from any k others and puts them on new peers
 *                    (or back on the holder that lost them, when nobody else can take them); the
 *                    replaced holders are queued for release (delete once they answer)
 *   replaceShares    repairPack for every pack with a share on a peer that is gone (removed member)
 *   releaseShares    sends the queued deletes to old holders that answer now
 * Every step is durable before the next: the new placement is recorded only after the new shares
 * are stored, and the old holders' releases only after that, so a crash repeats work, never loses it.
 */
import { NotEnoughSharesError, OtherStripeError, PlacementFailedError, RefusedError, RetentionRefusedError, errorMessage } from '../errors.js'
import { keepsOwnCopy, planReplacements, type Candidate } from '../placement/index.js'
import type { PackId } from '../ids.js'
import type { AbortOptions, IndexDb, ShareStore } from '../store/index.js'
import { toHex } from '../util/bytes.js'
import type { PackPlacement, PutPackOptions } from './pack-store.js'
import { encodeShares, recordCommitments } from './shares.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('repo:repair')

/**
 * Whether a pruned pack is used again by a snapshot written since its delete was queued (docs/gc.md
 * §8); made once per `releaseShares` call, when the first such delete is due.
 */
export type StillNeededCheck = () => Promise<(pack: PackId) => Promise<boolean | undefined>>

/** What repair needs of the group pack store (erasure-pack-store.ts). */
export interface GroupPackStore {
  readonly index: IndexDb
  readonly peers: { readonly ownPersonId: string, storeFor: (peerId: string) => ShareStore }
  readonly init: { repairFetchTimeoutMs: number, releasesOldCopies: boolean }
  readonly localPacks: {
    getPack: (id: PackId, options?: AbortOptions) => Promise<Uint8Array>
    hasPack: (id: PackId, options?: AbortOptions) => Promise<boolean>
    deletePack: (id: PackId, options?: AbortOptions) => Promise<void>
  }
  onlineCandidates: () => Candidate[]
  personOf: (peer: string, candidates: Candidate[]) => string
  fetchAndDecodeWithScheme: (id: PackId, holders: Map<number, string>, options?: AbortOptions) => Promise<{ pack: Uint8Array, k: number, m: number }>
  /** this node's own copy of a pack placed in the group (keepsOwnCopy), if it has one that verifies */
  ownCopy?: (id: PackId, options?: AbortOptions) => Promise<Uint8Array | undefined>
  putPack: (id: PackId, pack: Uint8Array, options?: PutPackOptions) => Promise<PackPlacement>
  /** the stripe a pack put now would get; of a pack of `packBytes`: among the friends with room for it */
  schemeNow: (candidates?: Candidate[]) => { k: number, m: number }
  /** the friends who answer now with room for a share of a pack of `packBytes` (ErasurePackStore.candidatesWithRoom) */
  candidatesWithRoom: (packBytes: number) => Candidate[]
  syncRecords: (options?: AbortOptions) => Promise<number>
  /** widenings a friend refused, waiting before they are tried again */
  readonly refusedWidenings?: RefusalBackoff
}

/**
 * Packs whose widening a friend refused on purpose or for want of room (reciprocity, quota, a full disk, retention: a widening briefly
 * adds a share per friend while the old stripe is kept): each waits FIRST_MS, doubling up to MAX_MS,
 * before it is tried again, instead of uploading its new stripe and taking it back every round. Kept
 * in memory: a daemon that restarts tries once more. Other failures (a friend that stopped
 * answering) are tried again at the next round.
 */
export class RefusalBackoff {
  static readonly FIRST_MS = 10 * 60_000
  static readonly MAX_MS = 6 * 3600_000
  private readonly due = new Map<string, { refusals: number, at: number }>()

  constructor (private readonly now: () => number) {}

  ready (id: PackId): boolean {
    const d = this.due.get(toHex(id))
    return d === undefined || this.now() >= d.at
  }

  refused (id: PackId): number {
    const refusals = (this.due.get(toHex(id))?.refusals ?? 0) + 1
    const wait = Math.min(RefusalBackoff.MAX_MS, RefusalBackoff.FIRST_MS * 2 ** (refusals - 1))
    this.due.set(toHex(id), { refusals, at: this.now() + wait })
    return wait
  }

  done (id: PackId): void { this.due.delete(toHex(id)) }
}

const LOCAL = 'local'
/** Rounds of puts one repair makes, leaving out a peer that refused in the round before. */
const REPAIR_PUT_ROUNDS = 3
const peerOf = (holder: string): string => holder.startsWith('peer:') ? holder.slice(5) : holder

/** What one placeLocalPacks call did: packs moved off this disk, widened, and left for next time. */
export interface LocalPacksResult { moved: number, widened: number, failed: number }

export interface LocalPacksOptions extends AbortOptions {
  /**
   * No pack starts after this time (Date.now() ms); the one on its way finishes, bounded by the
   * deadlines of its transfers (a pack cut off at a fixed time would start over, and on a link that
   * needs longer than that, never arrive). The rest waits for the next call.
   */
  startUntil?: number
}

/**
 * Repair from zero: packs that live only on this disk (backups from before the group existed, or
 * made while no friend was reachable) are placed into the group, then removed from the local
 * store. A pack that cannot be placed stays local and is tried again next time. Then packs placed
 * while only one or two friends answered are widened (widenPack).
 */
export async function placeLocalPacks (store: GroupPackStore, index: IndexDb, options?: LocalPacksOptions): Promise<LocalPacksResult> {
  const result = { moved: 0, widened: 0, failed: 0 }
  // a pack leaves this disk only for a stripe that survives losing a friend: with a single friend
  // online (k = 1, m = 0) the local copy would be traded for one that is no safer
  if (new Set(store.onlineCandidates().map(c => c.personId)).size < 2) return result
  const signalOnly = options?.signal !== undefined ? { signal: options.signal } : {}
  const late = (): boolean => options?.startUntil !== undefined && Date.now() > options.startUntil
  await store.syncRecords(signalOnly)
  /**
   * shares of a local pack that an earlier try placed and then gave up (queued releases): a friend may
   * keep them for a while (the group's retention policy), and a put of another stripe's share at the
   * same index there would be refused as a replace; the new stripe avoids those indexes
   */
  let leftovers: Map<string, Map<number, string>> | undefined
  const leftoversOf = (id: PackId): Map<number, string> | undefined => {
    if (leftovers === undefined) {
      leftovers = new Map()
      for (const [peer, refs] of index.audit.pendingReleases()) {
        for (const ref of refs) {
          const key = toHex(ref.pack)
          const m = leftovers.get(key) ?? new Map<number, string>()
          if (!m.has(ref.index)) m.set(ref.index, peer)
          leftovers.set(key, m)
        }
      }
    }
    return leftovers.get(toHex(id))
  }
  for (const info of [...index.listPacks()]) {
    options?.signal?.throwIfAborted()
    const placement = index.getPlacement(info.id)
    const local = placement === undefined ? await store.localPacks.hasPack(info.id) : placement.size === 1 && placement.get(0) === LOCAL
    if (!local) continue
    // the same rule among the friends with room for this pack (one whose disk is full does not count)
    if (new Set(store.candidatesWithRoom(info.size).map(c => c.personId)).size < 2) continue
    if (late()) return result
    try {
      const pack = await store.localPacks.getPack(info.id, signalOnly)
      const replacing = leftoversOf(info.id)
      const scheme = await store.putPack(info.id, pack, { ...signalOnly, keepLocalOnFailure: false, ...(replacing !== undefined ? { replacing } : {}) })
      if (scheme.k === 1 && scheme.m === 0 && index.getPlacement(info.id)?.get(0) === LOCAL) { result.failed++; continue }
      await index.setPackScheme(info.id, scheme.k, scheme.m)
      // a stripe that survives one loss only leaves its own copy here (placement-and-repair.md §4);
      // otherwise the copy goes once the new placement is on disk (lmdb commits before it flushes)
      if (scheme.ownCopy !== true) {
        await index.flush()
        await store.localPacks.deletePack(info.id, signalOnly)
      }
      result.moved++
    } catch (err: unknown) {
      if (options?.signal?.aborted === true) throw err
      log('local pack %s stays local this round: %s', toHex(info.id).slice(0, 16), errorMessage(err))
      result.failed++
    }
  }
  // widening: only to a stripe that needs no own copy (survives two losses among friends), and has
  // at least as many shares (each index of the old stripe is one of the new: no audit record stays behind)
  const now = store.schemeNow()
  if (keepsOwnCopy(now.m) || !store.init.releasesOldCopies) return result
  for (const info of [...index.listPacks()]) {
    options?.signal?.throwIfAborted()
    if (!keepsOwnCopy(info.m) || info.k + info.m > now.k + now.m) continue
    // the stripe the put will get: among the friends with room for this pack (one with a full disk is
    // left out until it has room again)
    const fits = store.schemeNow(store.candidatesWithRoom(info.size))
    if (keepsOwnCopy(fits.m) || info.k + info.m > fits.k + fits.m) continue
    if (store.refusedWidenings?.ready(info.id) === false) continue
    if (late()) return result
    try {
      if (await widenPack(store, info.id, { k: fits.k, m: fits.m }, signalOnly)) result.widened++
      store.refusedWidenings?.done(info.id)
    } catch (err: unknown) {
      if (options?.signal?.aborted === true) throw err
      // refused on purpose, or for want of room: trying again each round would not help sooner
      const wait = err instanceof PlacementFailedError && (err.refused || err.errors.some(e => e.noRoom === true)) ? store.refusedWidenings?.refused(info.id) : undefined
      log('pack %s keeps its %d+%d stripe and own copy %s: %s', toHex(info.id).slice(0, 16), info.k, info.m,
        wait === undefined ? 'this round' : `for ${Math.round(wait / 60_000)} min (a friend refused)`, errorMessage(err))
      result.failed++
    }
  }
  return result
}

/**
 * Widening (placement-and-repair.md §4 step 6): a pack placed while only one or two friends answered
 * has a stripe that survives one loss at most (m ≤ 1) and its own copy on this disk. Once the friends
 * who answer allow a stripe that needs no own copy, the pack is placed again from that copy with the
 * new stripe (no share at an index its peer holds in the old one), the old shares are released, and
 * the copy is deleted. The releases are queued before the put: until the new placement is recorded
 * they name shares the recorded stripe still has, which releaseShares never deletes, so a crash or a
 * failed put leaves the old stripe whole. The put gets exactly `stripe` (the one the step chose) or
 * fails. Returns false when the pack is not such a pack (any more).
 */
async function widenPack (store: GroupPackStore, id: PackId, stripe: { k: number, m: number }, options?: AbortOptions): Promise<boolean> {
  const index = store.index
  const old = index.getPlacement(id)
  if (old === undefined || old.size === 0 || ![...old.values()].every(h => h.startsWith('peer:'))) return false
  const own = await store.ownCopy?.(id, options)
  if (own === undefined) return false
  const replacing = new Map([...old].map(([i, h]) => [i, peerOf(h)]))
  for (const [i, peer] of replacing) await index.audit.addRelease(peer, { pack: id, index: i })
  // the stripe chosen for the step, or a failure: friends who went away since then must not make
  // the put narrower, or send it to this disk alone (the copy deleted below would be its only one)
  const scheme = await store.putPack(id, own, { ...options, keepLocalOnFailure: false, replacing, stripe })
  await index.setPackScheme(id, scheme.k, scheme.m)
  if (scheme.ownCopy !== true) {
    await index.flush() // the new placement on disk before the copy goes (lmdb commits before it flushes)
    await store.localPacks.deletePack(id, options)
  }
  log('pack %s widened to %d+%d', toHex(id).slice(0, 16), scheme.k, scheme.m)
  return true
}

/**
 * Rebuilds the shares `bad` of pack `id` from k good shares read from holders that answer now,
 * places them on other people's peers (never two of a stripe on one person; a bad share's holder
 * only takes back its own share that failed an audit, and only when nobody else can: P7), records
 * the new placement and commitments, and queues the copies of the bad holders that were replaced by
 * someone else for release. Places what it can (the rest waits for the next round). Returns how many
 * shares were placed; throws NotEnoughSharesError, or PlacementFailedError when none could be.
 */
export async function repairPack (store: GroupPackStore, id: PackId, bad: readonly number[], options?: AbortOptions & { now?: number }): Promise<number> {
  const index = store.index
  const placement = index.getPlacement(id)
  if (placement === undefined || bad.length === 0) return 0
  const badSet = new Set(bad)
  const badHolders = new Map([...placement].filter(([i, h]) => badSet.has(i) && h.startsWith('peer:')).map(([i, h]) => [i, peerOf(h)]))
  const good = new Map([...placement].filter(([i]) => !badSet.has(i)))
  const candidates = store.onlineCandidates()
  const online = new Set(candidates.map(c => c.peerId))
  // read only from holders that answer now; one unresponsive holder must not stall the repair
  const reachable = new Map([...good].filter(([, h]) => h.startsWith('peer:') && online.has(peerOf(h))))
  const known = index.getPack(id)
  // the publisher's own copy (keepsOwnCopy) rebuilds the stripe whoever is online
  const own = known === undefined ? undefined : await store.ownCopy?.(id, options)
  if (known !== undefined && own === undefined && reachable.size < known.k) {
    throw new NotEnoughSharesError(`pack ${toHex(id).slice(0, 16)}: ${reachable.size} of its ${known.k} needed shares are on peers that answer now`)
  }
  // know where the rebuilt shares go before downloading anything (a small group at night may have nowhere)
  const committed = index.audit.sharesOf(id)
  const shareBytes = [...committed.values()][0]?.length
  const held = new Map([...good].map(([i, h]) => { const peer = peerOf(h); return [i, { peerId: peer, personId: store.personOf(peer, candidates) }] }))
  const exclude = new Set(badHolders.values())
  // a share that failed its audit may go back to the holder that lost it, when nobody else can take it
  // (P7: a wiped folder, a replaced disk); a holder that is gone or away past the grace may not
  const previous = new Map([...badHolders].filter(([i]) => index.audit.getShare(id, i)?.state === 'failed'))
  const plan = { ownPersonId: store.peers.ownPersonId, exclude, previous, partial: true }
  if (shareBytes !== undefined) planReplacements([...badSet], held, shareBytes, candidates, { ...plan, ...(known !== undefined ? { maxNewcomerShares: known.m } : {}) })
  const deadline = AbortSignal.timeout(store.init.repairFetchTimeoutMs)
  const signal = options?.signal !== undefined ? AbortSignal.any([options.signal, deadline]) : deadline
  const { pack, k, m } = own !== undefined && known !== undefined ? { pack: own, k: known.k, m: known.m } : await store.fetchAndDecodeWithScheme(id, reachable, { signal })
  const shares = await encodeShares(id, pack, k, m)
  // shares that found no new home keep their old holder in the placement (still to be repaired)
  const next = new Map(placement)
  const placed: number[] = []
  const errors: Array<{ peer: string, error: string }> = []
  // a peer that refuses (its quota, a share of another stripe it holds for another device) is left
  // out and the share planned again, a few rounds at most
  let todo = [...badSet]
  for (let round = 0; round < REPAIR_PUT_ROUNDS && todo.length > 0; round++) {
    const heldNow = new Map([...held, ...placed.map(i => [i, { peerId: peerOf(next.get(i) ?? ''), personId: store.personOf(peerOf(next.get(i) ?? ''), candidates) }] as const)])
    let targets: Map<number, string>
    try {
      targets = planReplacements(todo, heldNow, shares[0]?.byteLength ?? 0, store.onlineCandidates(), { ...plan, maxNewcomerShares: m })
    } catch (err: unknown) {
      if (round === 0) throw err
      break // nobody else can take what is left: it waits for the next round
    }
    const refused: number[] = []
    await Promise.all([...targets].map(async ([i, peer]) => {
      try {
        await store.peers.storeFor(peer).put({ pack: id, index: i }, shares[i] as Uint8Array, { signal })
        next.set(i, `peer:${peer}`)
        placed.push(i)
      } catch (err: unknown) {
        errors.push({ peer, error: err instanceof Error ? err.message : String(err) })
        if (err instanceof RefusedError || err instanceof RetentionRefusedError || err instanceof OtherStripeError) { exclude.add(peer); refused.push(i) }
      }
    }))
    todo = refused
  }
  if (placed.length === 0) throw new PlacementFailedError(`pack ${toHex(id).slice(0, 16)}: no replacement share could be placed`, { errors })
  await index.setPlacement(id, next)
  await recordCommitments(index, id, shares, placed, options?.now)
  // a share put back on the holder that lost it is that holder's again: no release (the fresh
  // commitment above makes it due for a challenge at once)
  for (const i of placed) {
    const old = badHolders.get(i)
    if (old === undefined || old === peerOf(next.get(i) ?? '')) continue
    // a write-only machine cannot delete: the old copy stays until a full machine prunes the pack
    if (store.init.releasesOldCopies) await index.audit.addRelease(old, { pack: id, index: i })
    else log('share %d of pack %s moved from %s; its old copy stays there (a write-only machine cannot delete it)', i, toHex(id).slice(0, 16), old)
  }
  return placed.length
}

/**
 * Re-places the shares held by peers that are gone (a removed member, a revoked device). One call
 * repairs what it can in a bounded time; the rest waits for the next call.
 */
export async function replaceShares (store: GroupPackStore, index: IndexDb, isGone: (peerId: string) => boolean, options?: AbortOptions): Promise<{ packs: number, shares: number, failed: number }> {
  const result = { packs: 0, shares: 0, failed: 0 }
  const budgetEnds = Date.now() + 4 * store.init.repairFetchTimeoutMs
  for (const info of [...index.listPacks()]) {
    options?.signal?.throwIfAborted()
    const placement = index.getPlacement(info.id)
    if (placement === undefined) continue
    const bad = [...placement].filter(([, h]) => h.startsWith('peer:') && isGone(peerOf(h))).map(([i]) => i)
    if (bad.length === 0) continue
    if (Date.now() > budgetEnds) { result.failed++; continue }
    try {
      result.shares += await repairPack(store, info.id, bad, options)
      result.packs++
    } catch (err: unknown) {
      log('the shares of pack %s on gone holders were not re-placed (next round): %s', toHex(info.id).slice(0, 16), errorMessage(err))
      result.failed++
    }
  }
  const online = new Set(store.onlineCandidates().map(c => c.peerId))
  await releaseShares(store, peer => online.has(peer), options)
  return result
}

/**
 * Sends the queued deletes to the old holders for which `reachable` says yes. A share that a later
 * placement put back on the same peer is not deleted. A holder that keeps a share under the group's
 * retention policy says until when: that release waits (in memory) and the others of that holder go
 * on; any other failure leaves the holder's releases for a later round. Returns how many copies were
 * released.
 */
export async function releaseShares (store: GroupPackStore, reachable: (peerId: string) => boolean, options?: AbortOptions & { now?: number, stillNeeded?: StillNeededCheck }): Promise<number> {
  let released = 0
  let needed: ((pack: PackId) => Promise<boolean | undefined>) | undefined
  const now = options?.now ?? Date.now()
  const audit = store.index.audit
  if (!store.init.releasesOldCopies) {
    // queued before this machine knew it cannot delete (its persisters refuse): dropped, not retried forever
    for (const [peer, refs] of audit.pendingReleases()) for (const ref of refs) await audit.removeRelease(peer, ref)
    return 0
  }
  for (const [peer, refs] of audit.pendingReleases()) {
    if (!reachable(peer)) continue
    for (const ref of refs) {
      options?.signal?.throwIfAborted()
      if (audit.releaseDeferredUntil(peer, ref) > now) continue
      const placed = store.index.getPlacement(ref.pack)?.get(ref.index)
      // a pruned pack (no longer indexed): checked against every device's snapshots just before its
      // delete goes out; one a snapshot uses again keeps its shares
      if (options?.stillNeeded !== undefined && store.index.getPack(ref.pack) === undefined) {
        needed ??= await options.stillNeeded()
        const verdict = await needed(ref.pack)
        // the snapshots cannot all be read now: the delete waits, queued, for a round that can tell
        if (verdict === undefined) continue
        if (verdict) {
          // every queued delete of the pack, not only those due now: one left for a holder away now (or
          // waiting on its retention) would go out later, once the pack is indexed again and no longer checked
          const cancelled = await cancelReleasesOf(store.index, ref.pack)
          log.error('the %d queued delete(s) of pack %s are cancelled: a snapshot written since uses that pack', cancelled, toHex(ref.pack).slice(0, 16))
          continue
        }
      }
      try {
        if (placed !== `peer:${peer}`) await store.peers.storeFor(peer).delete(ref, { signal: AbortSignal.timeout(10_000) })
        await audit.removeRelease(peer, ref)
        released++
      } catch (err: unknown) {
        if (err instanceof RetentionRefusedError) { audit.deferRelease(peer, ref, err.notBefore); continue }
        // refused for this request alone (a clock skew, a policy): the holder's other releases go on
        if (err instanceof RefusedError) continue
        // unreachable now: the holder's releases stay queued for a later round
        break
      }
    }
  }
  return released
}

/** Removes every queued release of a pack, on every peer; returns how many there were. */
async function cancelReleasesOf (index: IndexDb, pack: PackId): Promise<number> {
  const hex = toHex(pack)
  let cancelled = 0
  for (const [peer, refs] of index.audit.pendingReleases()) {
    for (const ref of refs) {
      if (toHex(ref.pack) !== hex) continue
      await index.audit.removeRelease(peer, ref)
      cancelled++
    }
  }
  return cancelled
}

/**
 * Commitments for shares placed before this node kept them (older placements, or an index rebuilt
 * after a recovery): the pack is decoded from k shares and re-encoded (byte-identical shares), and
 * each placed share gets its root. At most `max` packs per call. Returns how many packs got them.
 */
export async function commitPlacedPacks (store: GroupPackStore, max: number, options?: AbortOptions & { now?: number }): Promise<number> {
  const index = store.index
  let done = 0
  const online = new Set(store.onlineCandidates().map(c => c.peerId))
  for (const info of [...index.listPacks()]) {
    if (done >= max) break
    options?.signal?.throwIfAborted()
    const placement = index.getPlacement(info.id)
    if (placement === undefined) continue
    const known = index.audit.sharesOf(info.id)
    const missing = [...placement].filter(([i, h]) => h.startsWith('peer:') && !known.has(i)).map(([i]) => i)
    if (missing.length === 0) continue
    const reachable = new Map([...placement].filter(([, h]) => h.startsWith('peer:') && online.has(peerOf(h))))
    try {
      const deadline = AbortSignal.timeout(store.init.repairFetchTimeoutMs)
      const { pack, k, m } = await store.fetchAndDecodeWithScheme(info.id, reachable, { signal: options?.signal !== undefined ? AbortSignal.any([options.signal, deadline]) : deadline })
      await recordCommitments(index, info.id, await encodeShares(info.id, pack, k, m), missing, options?.now)
      done++
    } catch (err: unknown) {
      if (options?.signal?.aborted === true) throw err
      log('no commitments for pack %s yet (not readable now, next time): %s', toHex(info.id).slice(0, 16), errorMessage(err))
    }
  }
  return done
}
