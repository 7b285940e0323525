/**
 * Finding this person's packs on friends again (an index rebuilt, another device's packs, a backup
 * killed between its puts and its index write): every share each friend lists, then the placement
 * such a pack gets once it is read. Used by ErasurePackStore.listPacks and fetchAndDecodeWithScheme.
 */
import type { Candidate } from '../placement/index.js'
import type { AbortOptions, ShareRef, ShareStore } from '../store/index.js'
import { toHex } from '../util/bytes.js'
import { boundedList, type ListBounds } from './bounded-list.js'
import type { HolderList } from './share-decoder.js'

const LOCAL = 'local'

export interface FriendsListing {
  storeFor: (peerId: string) => ShareStore
  /** whether a delete of this copy is queued (it is not ours to find again) */
  released: (peerId: string, ref: ShareRef) => boolean
  /** pack (hex) → every (index, `peer:<id>`) that claims a share of it; added to here */
  discovered: Map<string, Array<[number, string]>>
  /** packs (hex) already yielded; added to here */
  seen: Set<string>
  bounds: ListBounds
}

/**
 * Every friend's listing first, then the packs found (hex): a pack read as soon as the first friend
 * listed it would be recovered with that friend as its only holder, and a device that indexes another
 * device's packs would then send its prune's deletes to that friend alone. A friend's listing is its
 * word: bounded in entries and time (bounded-list.ts), and every holder that claims a share is kept,
 * so a friend claiming others' shares cannot hide them.
 */
export async function friendsShares (friends: readonly Candidate[], l: FriendsListing, options?: AbortOptions): Promise<string[]> {
  const found: string[] = []
  for (const c of friends) {
    const holder = `peer:${c.peerId}`
    const store = l.storeFor(c.peerId)
    for await (const ref of boundedList((o) => store.list(o), `the shares on ${c.peerId}`, options, l.bounds)) {
      // a copy whose delete is queued (a pruned pack a friend keeps under the retention policy, an
      // old copy moved elsewhere) is not ours to find again: re-indexing it would let new snapshots
      // use data that is about to go
      if (l.released(c.peerId, ref)) continue
      const key = toHex(ref.pack)
      let h = l.discovered.get(key)
      if (h === undefined) { h = []; l.discovered.set(key, h) }
      if (!h.some(([i, p]) => i === ref.index && p === holder)) h.push([ref.index, holder])
      if (!l.seen.has(key)) { l.seen.add(key); found.push(key) }
    }
  }
  return found
}

/**
 * The placement of a pack found again: the holders whose shares proved to be the pack's, then one
 * claimant per index still unheld that served no wrong share (the audits prove those next; an index
 * nobody holds is repaired: placement-and-repair.md §9).
 */
export function recoveredPlacement (good: ReadonlyMap<number, string>, claimed: HolderList, bad: ReadonlyArray<{ index: number, holder: string }>): Map<number, string> {
  const placement = new Map(good)
  const wrong = new Set(bad.map(b => `${b.index} ${b.holder}`))
  for (const [i, h] of claimed) if (h !== LOCAL && !placement.has(i) && !wrong.has(`${i} ${h}`)) placement.set(i, h)
  return placement
}
