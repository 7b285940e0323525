/**
 * Putting the shares of one pack on friends (docs/placement-and-repair.md §4): the first plan, then
 * a few rounds of replacements for the peers that failed, and the rule both placement and repair
 * follow for a friend that refused for want of room (it gets no share for NO_ROOM_WAIT_MS). It sees
 * peers only as ShareStores: no network code here.
 */
import { OtherStripeError, PlacementFailedError, ProtocolError, RefusedError, RetentionRefusedError, errorMessage } from '../errors.js'
import { SHARE_HEADER_BYTES } from '../format/share.js'
import { avoidHeldIndexes, creditedFreeBytes, holdsIndex, planPlacement, planReplacements, type Candidate } from '../placement/index.js'
import type { PackId } from '../ids.js'
import type { AbortOptions, IndexDb, ShareRef, ShareStore } from '../store/index.js'
import { concatBytes, toHex } from '../util/bytes.js'
import type { PeerDirectory } from './group-directory.js'
import type { PackPlacement, PutPackOptions } from './pack-store.js'
import type { PlacementTally } from './placement-tally.js'
import { piecesLength, recordCommitments, type SharePieces } from './shares.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('repo:group')
/** How long a peer that refused a share for want of room gets no share of this node's packs (placement-and-repair.md §4 step 7). */
export const NO_ROOM_WAIT_MS = 10 * 60_000

/** The person a peer belongs to among `candidates` (a peer not among them: itself). */
export function personOf (peer: string, candidates: readonly Candidate[]): string {
  return candidates.find(c => c.peerId === peer)?.personId ?? peer
}

export interface SharePlacerParts {
  peers: PeerDirectory
  index: IndexDb
  /** rounds of puts one pack gets, leaving out the peers that failed the round before */
  placementRounds: number
  now: () => number
  /** peers of other people that answer now and offer space */
  online: () => Candidate[]
  /** the tallies open now (a job's summary) */
  tallies: ReadonlySet<PlacementTally>
  /** deletes a share placed for a pack that failed, or queues the delete (ErasurePackStore.release) */
  release: (peer: string, ref: ShareRef) => Promise<void>
}

export class SharePlacer {
  /**
   * Peers that refused a share for want of room (`"reason":"FULL"`), and until when they get none: a
   * friend whose disk filled, or one that offers room and refuses everything, is left out of stripes
   * and repairs for NO_ROOM_WAIT_MS instead of failing every pack (kept in memory)
   */
  private readonly noRoomUntil = new Map<string, number>()

  constructor (private readonly p: SharePlacerParts) {}

  /** A peer refused a share for want of room: it gets none for NO_ROOM_WAIT_MS. */
  noRoom (peer: string): void { this.noRoomUntil.set(peer, this.p.now() + NO_ROOM_WAIT_MS) }

  /** The friends who answer now, less those waiting after a refusal for want of room: whom placement and repair may give a share. */
  eligible (): Candidate[] {
    const now = this.p.now()
    return this.p.online().filter(c => (this.noRoomUntil.get(c.peerId) ?? 0) <= now)
  }

  /**
   * The eligible friends with room for a share of a pack of `packBytes` (a whole copy, the largest
   * share any k gives, plus its header; credited free space, placement P8): a friend whose disk is
   * full or whose quota is used up is left out of the stripe until it has room again.
   */
  withRoom (packBytes: number): Candidate[] {
    const need = packBytes + SHARE_HEADER_BYTES
    return this.eligible().filter(c => creditedFreeBytes(c) >= need)
  }

  /**
   * Puts the k + m shares of pack `id` on `candidates`, one person each, replacing the peers that
   * fail for a few rounds; records the placement and the commitments. Throws PlacementFailedError
   * (with every failure, `refused` when one was on purpose) when not every share found a home, after
   * taking back the shares that did.
   */
  async place (id: PackId, shares: SharePieces[], k: number, m: number, candidates: Candidate[], options?: PutPackOptions): Promise<PackPlacement> {
    const { index, peers } = this.p
    const shareBytes = piecesLength(shares[0] ?? [])
    const holders = new Map<number, string>()
    const failures: Array<{ peer: string, error: string, noRoom?: boolean }> = []
    const exclude = new Set<string>()
    let refused = false
    // P9: the newest cohort holds at most m shares while older people can take them (losing them all loses nothing)
    let targets = new Map(planPlacement(k + m, shareBytes, candidates, { ownPersonId: peers.ownPersonId, maxNewcomerShares: m }).map((peer, i) => [i, peer]))
    const replacing = options?.replacing
    if (replacing !== undefined) {
      const dealt = avoidHeldIndexes(targets, replacing)
      if (dealt === undefined) throw new PlacementFailedError(`the new stripe of pack ${toHex(id).slice(0, 16)} cannot avoid the peers holding its old one`, { errors: [], refused: false })
      targets = dealt
    }
    for (let round = 0; round < this.p.placementRounds && targets.size > 0; round++) {
      await Promise.all([...targets].map(async ([i, peer]) => {
        try {
          await this.putOrFindAgain(peer, { pack: id, index: i }, shares[i] as SharePieces, options)
          holders.set(i, peer)
        } catch (err: unknown) {
          exclude.add(peer)
          const noRoom = err instanceof RefusedError && err.noRoom
          failures.push({ peer, error: errorMessage(err), ...(noRoom ? { noRoom } : {}) })
          if (noRoom) this.noRoom(peer)
          // a holder with no room (disk full, quota used up) is its matter: the pack may wait on this disk
          if ((err instanceof RefusedError && !noRoom) || err instanceof RetentionRefusedError) refused = true
          // a put that timed out or broke off may still have been stored: queue its delete (a refusal, or a
          // share of another stripe held there, stored nothing; deleting the latter would break that stripe)
          if (!(err instanceof RefusedError) && !(err instanceof RetentionRefusedError) && !(err instanceof OtherStripeError)) await index.audit.addRelease(peer, { pack: id, index: i })
        }
      }))
      const missing = [...targets.keys()].filter(i => !holders.has(i))
      if (missing.length === 0) break
      const held = new Map([...holders].map(([i, peer]) => [i, { peerId: peer, personId: personOf(peer, candidates) }]))
      try {
        targets = planReplacements(missing, held, shareBytes, this.eligible(), { ownPersonId: peers.ownPersonId, exclude, maxNewcomerShares: m })
        // a peer is never sent the index it holds of the old stripe (those shares stay missing)
        if (replacing !== undefined) targets = new Map([...targets].filter(([i, peer]) => !holdsIndex(replacing, i, peer)))
      } catch (err: unknown) {
        // nobody else can take them: the shares not placed are reported below
        log('no other holders for %d share(s) of pack %s: %s', missing.length, toHex(id).slice(0, 16), errorMessage(err))
        break
      }
    }
    if (holders.size < k + m) {
      // not every share found a home: the pack must not count as stored (no snapshot may reference
      // it); the shares that were placed are taken back so they do not use friends' quota
      await Promise.all([...holders].map(async ([i, peer]) => { await this.p.release(peer, { pack: id, index: i }) }))
      throw new PlacementFailedError(`only ${holders.size} of ${k + m} shares of pack ${toHex(id).slice(0, 16)} could be placed`, { errors: failures, refused })
    }
    await index.setPlacement(id, new Map([...holders].map(([i, p]) => [i, `peer:${p}`])), { k, m })
    await recordCommitments(index, id, shares, holders.keys(), this.p.now())
    for (const t of this.p.tallies) t.placed(k, m, [...holders.values()].map(p => personOf(p, candidates)))
    return { k, m }
  }

  /**
   * A put; when nobody answers at the peer's known addresses (it restarted elsewhere), the peer is
   * looked for again (`reconnect`) and the put tried once more.
   */
  private async putOrFindAgain (peer: string, ref: ShareRef, share: SharePieces, options?: PutPackOptions): Promise<void> {
    const peers = this.p.peers
    try {
      await putPieces(peers.storeFor(peer), ref, share, options)
    } catch (err: unknown) {
      const reconnect = peers.reconnect
      if (reconnect === undefined || !(err instanceof ProtocolError) || err.transport === undefined) throw err
      log('%s is not at its known addresses (%s): looking for it again', peer, errorMessage(err))
      try {
        await reconnect(peer)
      } catch (again: unknown) {
        log('%s not found again: %s', peer, errorMessage(again))
        throw err
      }
      await putPieces(peers.storeFor(peer), ref, share, options)
    }
  }
}

/** Puts a share given as pieces: as they are where the store takes pieces, else joined (one piece: as it is). */
async function putPieces (store: ShareStore, ref: ShareRef, share: SharePieces, options?: AbortOptions): Promise<void> {
  if (share.length === 1) return await store.put(ref, share[0] as Uint8Array, options)
  if (store.putParts !== undefined) return await store.putParts(ref, share, options)
  await store.put(ref, concatBytes(share), options)
}
