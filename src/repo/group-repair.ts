/**
 * Putting a group's packs back to full redundancy (docs/placement-and-repair.md §7):
 *   repairPack       rebuilds given shares of one pack from any k others and puts them on new peers
 *                    (or back on the holder that lost them, when nobody else can take them); the
 *                    replaced holders are queued for release (delete once they answer)
 *   replaceShares    repairPack for every pack with a share on a peer that is gone (removed member)
 *   releaseShares    sends the queued deletes to old holders that answer now
 * Every step is durable before the next: the new placement is recorded only after the new shares
 * are stored, and the old holders' releases only after that, so a crash repeats work, never loses it.
 * Repair from zero (packs only on this disk, and narrow stripes widened) is local-packs.ts.
 */
import { NotEnoughSharesError, OtherStripeError, PlacementFailedError, RefusedError, RetentionRefusedError, errorMessage } from '../errors.js'
import { planReplacements, type Candidate } from '../placement/index.js'
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
  /** friends' devices that answer now, whatever their reliability: whom shares are read from and deletes sent to */
  answeringHolders: () => Candidate[]
  /** how many other people the group has, answering or not */
  peopleInGroup: () => number
  /** the friends who answer now, less those that refused a share for want of room lately: whom a rebuilt share may go to (share-placement.ts) */
  eligibleCandidates: () => Candidate[]
  /** a friend refused a share for want of room: it gets none for a while */
  noRoom: (peer: string) => void
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

/** Rounds of puts one repair makes, leaving out a peer that refused in the round before. */
const REPAIR_PUT_ROUNDS = 3
/** The peer id in a placement's holder (`peer:<id>`). */
export const peerOf = (holder: string): string => holder.startsWith('peer:') ? holder.slice(5) : holder

/** The holders of `placement` that are friends' peers answering now (`online`): whom a pack is read from. */
export function answeringOf (placement: ReadonlyMap<number, string>, online: ReadonlySet<string>): Map<number, string> {
  return new Map([...placement].filter(([, h]) => h.startsWith('peer:') && online.has(peerOf(h))))
}

/** The pack decoded from `holders`' shares, within the repair's fetch deadline (and the caller's signal). */
export async function readFromHolders (store: GroupPackStore, id: PackId, holders: Map<number, string>, options?: AbortOptions): Promise<{ pack: Uint8Array, k: number, m: number }> {
  const deadline = AbortSignal.timeout(store.init.repairFetchTimeoutMs)
  const signal = options?.signal !== undefined ? AbortSignal.any([options.signal, deadline]) : deadline
  return await store.fetchAndDecodeWithScheme(id, holders, { signal })
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
  // reads go to every holder that answers, also one that gets no new shares (a low uptime)
  const candidates = store.answeringHolders()
  const online = new Set(candidates.map(c => c.peerId))
  // read only from holders that answer now; one unresponsive holder must not stall the repair
  const reachable = answeringOf(good, online)
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
  // a rebuilt share goes to a friend that answers, not to one that refused a share for want of room lately
  if (shareBytes !== undefined) planReplacements([...badSet], held, shareBytes, store.eligibleCandidates(), { ...plan, ...(known !== undefined ? { maxNewcomerShares: known.m } : {}) })
  // one deadline for reading the pack and putting the rebuilt shares
  const deadline = AbortSignal.timeout(store.init.repairFetchTimeoutMs)
  const signal = options?.signal !== undefined ? AbortSignal.any([options.signal, deadline]) : deadline
  const { pack, k, m } = own !== undefined && known !== undefined ? { pack: own, k: known.k, m: known.m } : await store.fetchAndDecodeWithScheme(id, reachable, { signal })
  const shares = await encodeShares(id, pack, k, m)
  // shares that found no new home keep their old holder in the placement (still to be repaired)
  const next = new Map(placement)
  const placed: number[] = []
  const errors: Array<{ peer: string, error: string, noRoom?: boolean }> = []
  // a peer that refuses (its quota, a share of another stripe it holds for another device) is left
  // out and the share planned again, a few rounds at most
  let todo = [...badSet]
  for (let round = 0; round < REPAIR_PUT_ROUNDS && todo.length > 0; round++) {
    const heldNow = new Map([...held, ...placed.map(i => [i, { peerId: peerOf(next.get(i) ?? ''), personId: store.personOf(peerOf(next.get(i) ?? ''), candidates) }] as const)])
    let targets: Map<number, string>
    try {
      targets = planReplacements(todo, heldNow, shares[0]?.byteLength ?? 0, store.eligibleCandidates(), { ...plan, maxNewcomerShares: m })
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
        const noRoom = err instanceof RefusedError && err.noRoom
        errors.push({ peer, error: errorMessage(err), ...(noRoom ? { noRoom } : {}) })
        if (noRoom) store.noRoom(peer)
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
  const online = new Set(store.answeringHolders().map(c => c.peerId))
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
  const online = new Set(store.answeringHolders().map(c => c.peerId))
  for (const info of [...index.listPacks()]) {
    if (done >= max) break
    options?.signal?.throwIfAborted()
    const placement = index.getPlacement(info.id)
    if (placement === undefined) continue
    const known = index.audit.sharesOf(info.id)
    const missing = [...placement].filter(([i, h]) => h.startsWith('peer:') && !known.has(i)).map(([i]) => i)
    if (missing.length === 0) continue
    try {
      const { pack, k, m } = await readFromHolders(store, info.id, answeringOf(placement, online), options)
      await recordCommitments(index, info.id, await encodeShares(info.id, pack, k, m), missing, options?.now)
      done++
    } catch (err: unknown) {
      if (options?.signal?.aborted === true) throw err
      log('no commitments for pack %s yet (not readable now, next time): %s', toHex(info.id).slice(0, 16), errorMessage(err))
    }
  }
  return done
}
