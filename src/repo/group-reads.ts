/**
 * Reading a pack from friends' shares (ErasurePackStore.getPack, and repair's decode): the scheme the
 * index recorded is tried first; a holder whose answer is not the pack's share counts as failing it;
 * a pack found again on friends gets its placement from the holders whose shares proved to be its own.
 */
import { NotEnoughSharesError, errorMessage } from '../errors.js'
import type { PackId } from '../ids.js'
import type { AbortOptions, IndexDb, ShareStore } from '../store/index.js'
import { toHex } from '../util/bytes.js'
import { scopedLogger } from '../util/log.js'
import { recoveredPlacement } from './group-listing.js'
import { fetchAndDecode, type HolderList, type PackScheme } from './share-decoder.js'

const log = scopedLogger('repo:group')

/** The group store's state that reads use. */
export interface GroupReads {
  readonly index: IndexDb
  /** pack (hex) → the scheme a verified decode found; added to here */
  readonly schemes: Map<string, PackScheme>
  /** pack (hex) → every (index, `peer:<id>`) the last listing found claiming a share of it */
  readonly discovered: ReadonlyMap<string, ReadonlyArray<readonly [number, string]>>
  storeOf: (holder: string) => ShareStore
}

/**
 * Fetches shares from `holders` and decodes the pack with its scheme (share-decoder.ts). The
 * scheme the index recorded is tried first; a holder whose answer does not belong to the pack is
 * counted as failing that share (its last challenge is marked failed, so repair replaces it).
 */
export async function decodeWithScheme (r: GroupReads, id: PackId, holders: HolderList, options?: AbortOptions): Promise<{ pack: Uint8Array, k: number, m: number }> {
  const d = await fetchAndDecode(id, holders, r.storeOf, expectedScheme(r, id), options)
  r.schemes.set(toHex(id), { k: d.k, m: d.m, packLength: d.packLength })
  // recovery (a pack found on friends that the index did not know: a backup killed between its
  // puts and its index write, or an index rebuilt): the holders whose shares proved to be the
  // pack's, and every other holder that claims an index and served nothing wrong, become its
  // placement. The decode stops after k good shares; recording only those left the stripe at
  // k holders for good. The audits prove the rest next; an index nobody holds is repaired.
  if (r.index.getPlacement(id) === undefined) await r.index.setPlacement(id, recoveredPlacement(d.good, holders, d.bad))
  for (const b of d.bad) await markFailed(r.index, id, b.index, b.holder, b.reason)
  return { pack: d.pack, k: d.k, m: d.m }
}

/**
 * The pack from friends: the recorded holders, and when they cannot give it (another device of this
 * person widened or moved the stripe since this index recorded it, and the old shares are gone),
 * also every other holder the last listing found claiming a share of it. That read changes no
 * record: audits and repair go on with the placement this index knows (network.md §9.1).
 */
export async function readFromFriends (r: GroupReads, id: PackId, holders: ReadonlyArray<readonly [number, string]>, options?: AbortOptions): Promise<Uint8Array> {
  try {
    return (await decodeWithScheme(r, id, holders, options)).pack
  } catch (err: unknown) {
    const more = (r.discovered.get(toHex(id)) ?? []).filter(([i, h]) => !holders.some(([j, g]) => j === i && g === h))
    if (!(err instanceof NotEnoughSharesError) || more.length === 0) throw err
    log('pack %s: its recorded holders cannot give it (%s); asking the %d other holder(s) friends listed', toHex(id).slice(0, 16), errorMessage(err), more.length)
    return (await fetchAndDecode(id, [...holders, ...more], r.storeOf, undefined, options)).pack
  }
}

/** The scheme a pack was placed with: the index's record, or a scheme a verified decode found. */
function expectedScheme (r: GroupReads, id: PackId): PackScheme | undefined {
  const learned = r.schemes.get(toHex(id))
  if (learned !== undefined) return learned
  const info = r.index.getPack(id)
  return info === undefined ? undefined : { k: info.k, m: info.m, packLength: info.size }
}

/** A holder served a share that is not the pack's: its share fails as an audit would fail it. */
async function markFailed (index: IndexDb, id: PackId, i: number, holder: string, reason: string): Promise<void> {
  log.error('share %d of pack %s from %s: %s', i, toHex(id).slice(0, 16), holder, reason)
  const placed = index.getPlacement(id)?.get(i)
  const audit = index.audit.getShare(id, i)
  if (placed !== holder || audit === undefined || audit.state === 'failed') return
  await index.audit.putShare(id, i, { ...audit, state: 'failed', strikes: audit.strikes + 1, reason: `served on read: ${reason}` })
}
