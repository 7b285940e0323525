/**
 * Repair from zero (docs/placement-and-repair.md §4 and §7): packs that live only on this disk go
 * into the group once two friends with room answer, and packs placed while only one or two friends
 * answered are widened once more do. As in group-repair.ts, the new placement is recorded only after
 * the new shares are stored, and the local copy is deleted only after that.
 */
import { PlacementFailedError, errorMessage } from '../errors.js'
import { keepsOwnCopy } from '../placement/index.js'
import type { PackId } from '../ids.js'
import type { AbortOptions, IndexDb } from '../store/index.js'
import { toHex } from '../util/bytes.js'
import { answeringOf, peerOf, readFromHolders, type GroupPackStore } from './group-repair.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('repo:repair')

const LOCAL = 'local'

/** The people a pack on this disk waits for: two (a stripe that survives losing one), or the one other person of a group of two. */
function peopleNeeded (store: GroupPackStore): number { return Math.min(2, store.peopleInGroup()) }

/**
 * Why the packs on this disk only stay there at the daemon's next round (placeLocalPacks' rules), in
 * words for the user (`status`); null when they move then. `why`: the group's reason, when there is
 * one (PeerDirectory.whyLocal: in no group, alone in it, nobody answers, nobody offers space, failed audits).
 */
export function whyPacksStayLocal (store: GroupPackStore, why: string | null): string | null {
  if (why !== null) return why
  let largest = 0
  for (const info of store.index.listPacks()) {
    const placement = store.index.getPlacement(info.id)
    if (placement === undefined || (placement.size === 1 && placement.get(0) === LOCAL)) largest = Math.max(largest, info.size)
  }
  const needed = peopleNeeded(store)
  const withRoom = new Set(store.candidatesWithRoom(largest).map(c => c.personId)).size
  if (withRoom >= needed) return null
  if (withRoom === 0) return `the friends who answer have no room for a pack of ${(largest / (1 << 20)).toFixed(1)} MiB now (disks full or quotas used up, or one refused a share for want of room in the last 10 minutes): packs move to them once they have room`
  return `only one of the ${store.peopleInGroup()} friends who offer space answers with room now: packs move once two do`
}

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
  // a pack waits for two friends (a stripe that survives losing one) where the group has them: one
  // friend now would give a 1+0 stripe beside the copy here, widened again once a second answers. In
  // a group with one other person it goes to that friend (1+0), and the copy here stays (keepsOwnCopy)
  const needed = peopleNeeded(store)
  if (needed === 0 || new Set(store.onlineCandidates().map(c => c.personId)).size < needed) return result
  const signalOnly = options?.signal !== undefined ? { signal: options.signal } : {}
  const late = (): boolean => options?.startUntil !== undefined && Date.now() > options.startUntil
  await store.syncRecords(signalOnly)
  /**
   * shares of a local pack that an earlier try placed and then gave up (queued releases): a friend may
   * keep them for a while (the group's retention policy), and a put of another stripe's share at the
   * same index there would be refused as a replace; the new stripe avoids those indexes
   */
  let leftovers: Map<string, Map<number, Set<string>>> | undefined
  const leftoversOf = (id: PackId): Map<number, Set<string>> | undefined => {
    if (leftovers === undefined) {
      leftovers = new Map()
      for (const [peer, refs] of index.audit.pendingReleases()) {
        for (const ref of refs) {
          const key = toHex(ref.pack)
          const m = leftovers.get(key) ?? new Map<number, Set<string>>()
          m.set(ref.index, (m.get(ref.index) ?? new Set<string>()).add(peer))
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
    if (new Set(store.candidatesWithRoom(info.size).map(c => c.personId)).size < needed) continue
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
  // widening: to a stripe that needs no own copy (survives two losses among friends), or to one with
  // more parity beside the own copy (1+0, placed while one friend was all there was, once two friends
  // with room answer; widened again once m ≥ 2 is possible);
  // with at least as many shares (each index of the old stripe is one of the new: no audit record stays behind)
  const now = store.schemeNow()
  // with no parity to give (one friend answering), no stripe is wider than the one a pack has
  if (!store.init.releasesOldCopies || now.m === 0) return result
  const wider = (from: { k: number, m: number }, to: { k: number, m: number }): boolean =>
    (!keepsOwnCopy(to.m) || to.m > from.m) && from.k + from.m <= to.k + to.m
  for (const info of [...index.listPacks()]) {
    options?.signal?.throwIfAborted()
    if (!keepsOwnCopy(info.m) || !wider(info, now)) continue
    // the stripe the put will get: among the friends with room for this pack (one with a full disk is
    // left out until it has room again)
    const fits = store.schemeNow(store.candidatesWithRoom(info.size))
    if (!wider(info, fits)) continue
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
 * A pack whose own copy here is damaged (ownCopy said why), read from the friends of its stripe who
 * answer; undefined when too few do. The widening then writes a sound copy here if the new
 * stripe keeps one (putPack), and deletes the damaged file if not: before, it was read again and
 * refused at every round, and the pack kept its one-loss stripe.
 */
async function fromFriends (store: GroupPackStore, id: PackId, placement: Map<number, string>, options?: AbortOptions): Promise<Uint8Array | undefined> {
  const k = store.index.getPack(id)?.k
  const holders = answeringOf(placement, new Set(store.answeringHolders().map(c => c.peerId)))
  if (k === undefined || holders.size < k) return undefined
  return (await readFromHolders(store, id, holders, options)).pack
}

/**
 * Widening (placement-and-repair.md §4 step 6): a pack placed while only one or two friends answered
 * has a stripe that survives one loss at most (m ≤ 1) and its own copy on this disk. Once the friends
 * who answer allow a stripe that needs no own copy, or one with more parity (1+0 → 1+1), the pack is
 * placed again from that copy (or, if it is damaged, from the friends' shares) with the new stripe (no share at an index its peer holds in the old
 * one), the old shares are released, and the copy is deleted unless the new stripe keeps one. The
 * releases are queued before the put: until the new placement is recorded they name shares the
 * recorded stripe still has, which releaseShares never deletes, so a crash or a failed put leaves the
 * old stripe whole. The put gets exactly `stripe` (the one the step chose) or
 * fails. Returns false when the pack is not such a pack (any more).
 */
async function widenPack (store: GroupPackStore, id: PackId, stripe: { k: number, m: number }, options?: AbortOptions): Promise<boolean> {
  const index = store.index
  const old = index.getPlacement(id)
  if (old === undefined || old.size === 0 || ![...old.values()].every(h => h.startsWith('peer:'))) return false
  // a copy here that does not verify is read from the friends instead; no copy here at all is another
  // device's pack (its index knows the pack too), which only that device widens
  const own = await store.ownCopy?.(id, options) ??
    (await store.localPacks.hasPack(id, options) ? await fromFriends(store, id, old, options) : undefined)
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

