/**
 * The publisher's repair scheduler (docs/placement-and-repair.md §9). A share needs repair when
 *   - its last challenge failed (lost, altered, reported damaged, or too many strikes), or
 *   - its holder is no longer on the roster, or
 *   - its holder has not been seen for longer than the offline grace (default 3 days: a laptop asleep
 *     over a weekend is not a dead disk).
 * Repair is lazy: a holder that is merely unreachable costs nothing until the grace runs out, and
 * one that returns before then resets the clock, so a flapping peer never causes an upload. A
 * repaired share is recorded on its new holder at once, and the old copy is queued for release: when
 * the old holder comes back it is asked to delete, and nothing is uploaded again. Packs that no
 * snapshot references are not repaired. All state is in the index, so a restart resumes.
 */
import type { PackId } from '../ids.js'
import type { IndexDb } from '../store/index.js'
import { toHex } from '../util/bytes.js'
import { errorMessage } from '../errors.js'
import { releaseShares, repairPack, type GroupPackStore, type StillNeededCheck } from '../repo/index.js'

export interface RepairPolicy {
  /** how long a holder may be unreachable before its shares are rebuilt elsewhere. @default 72 h */
  offlineGraceMs: number
  /** packs repaired per round at most (the rest waits for the next round). @default 32 */
  maxPacksPerRound: number
}

export const DEFAULT_REPAIR_POLICY: RepairPolicy = Object.freeze({ offlineGraceMs: 72 * 3600_000, maxPacksPerRound: 32 })

export interface RepairPeers {
  /** whether the peer answers now */
  online: (peerId: string) => boolean
  /** whether the peer is a device on the roster */
  isMember: (peerId: string) => boolean
}

/** failed an audit, its holder left the roster, away past the grace, or an index of the stripe nobody holds */
export type RepairReason = 'failed' | 'removed' | 'offline' | 'missing'

export interface RepairNeed { pack: PackId, bad: Array<{ index: number, peer: string, reason: RepairReason }> }

export interface RepairRound {
  /** packs that needed repair */
  needed: number
  repairedPacks: number
  repairedShares: number
  /** packs that could not be repaired now (too few shares readable, no eligible peer) */
  failed: Array<{ pack: string, error: string }>
  released: number
}

export interface RepairerInit {
  policy?: Partial<RepairPolicy>
  now?: () => number
  /** re-checks a pruned pack against every snapshot before its queued delete is sent (docs/gc.md §8) */
  stillNeeded?: StillNeededCheck
}

export class Repairer {
  readonly policy: RepairPolicy
  private readonly now: () => number
  private readonly stillNeeded: StillNeededCheck | undefined
  /** when each pack (hex) was last attempted: the least recently tried go first (in memory) */
  private readonly attempted = new Map<string, number>()

  constructor (private readonly store: GroupPackStore, private readonly peers: RepairPeers, init: RepairerInit = {}) {
    this.policy = { ...DEFAULT_REPAIR_POLICY, ...init.policy }
    this.now = init.now ?? Date.now
    this.stillNeeded = init.stillNeeded
  }

  private get index (): IndexDb { return this.store.index }

  /** Why a holder's share needs repair, or undefined when it does not (yet). */
  private verdict (peer: string, failed: boolean, now: number): RepairReason | undefined {
    if (!this.peers.isMember(peer)) return 'removed'
    if (failed) return 'failed'
    if (this.peers.online(peer)) return undefined
    const rec = this.index.audit.getPeer(peer)
    // never seen since we started keeping records: count from the first probe
    const since = rec === undefined ? now : (rec.lastSeenMs > 0 ? rec.lastSeenMs : rec.firstSeenMs)
    return now - since > this.policy.offlineGraceMs ? 'offline' : undefined
  }

  /** What needs repair now, among `live` packs (all indexed packs when undefined). */
  plan (live?: (packHex: string) => boolean): RepairNeed[] {
    const now = this.now()
    const out: RepairNeed[] = []
    for (const info of this.index.listPacks()) {
      const placement = this.index.getPlacement(info.id)
      if (placement === undefined || (live !== undefined && !live(toHex(info.id)))) continue
      const bad: RepairNeed['bad'] = []
      for (const [index, holder] of placement) {
        if (!holder.startsWith('peer:')) continue
        const peer = holder.slice(5)
        const why = this.verdict(peer, this.index.audit.getShare(info.id, index)?.state === 'failed', now)
        if (why !== undefined) bad.push({ index, peer, reason: why })
      }
      // a stripe placed on friends whose placement lacks an index (a pack recovered from the shares
      // friends listed, one of whose puts never landed): that share is rebuilt like a lost one
      if ([...placement.values()].every(h => h.startsWith('peer:'))) {
        for (let index = 0; index < info.k + info.m; index++) if (!placement.has(index)) bad.push({ index, peer: '', reason: 'missing' })
      }
      if (bad.length > 0) out.push({ pack: info.id, bad })
    }
    return out
  }

  /**
   * Repairs what is needed (bounded per round; no new pack starts after `until`, this repairer's
   * clock), then releases old copies on holders that answer. The packs least recently attempted go
   * first (never attempted first; ties: more bad shares first, then index order), so a pack that
   * cannot be repaired now (a holder gone for good and nobody to replace it) does not hold up the
   * others round after round.
   */
  async round (live?: (packHex: string) => boolean, signal?: AbortSignal, until?: number): Promise<RepairRound> {
    const needs = this.plan(live)
    const result: RepairRound = { needed: needs.length, repairedPacks: 0, repairedShares: 0, failed: [], released: 0 }
    const last = (n: RepairNeed): number => this.attempted.get(toHex(n.pack)) ?? 0
    const order = needs.map((n, i) => ({ n, i })).sort((a, b) => last(a.n) - last(b.n) || b.n.bad.length - a.n.bad.length || a.i - b.i).map(x => x.n)
    const needed = new Set(needs.map(n => toHex(n.pack)))
    for (const hex of this.attempted.keys()) if (!needed.has(hex)) this.attempted.delete(hex)
    for (const need of order.slice(0, this.policy.maxPacksPerRound)) {
      signal?.throwIfAborted()
      if (until !== undefined && this.now() > until) break
      this.attempted.set(toHex(need.pack), this.now())
      try {
        const placed = await repairPack(this.store, need.pack, need.bad.map(b => b.index), { ...(signal !== undefined ? { signal } : {}), now: this.now() })
        result.repairedShares += placed
        result.repairedPacks++
      } catch (err: unknown) {
        if (signal?.aborted === true) throw err
        result.failed.push({ pack: toHex(need.pack), error: errorMessage(err) })
      }
    }
    // a removed member's copies can never be released: forget them
    for (const [peer, refs] of this.index.audit.pendingReleases()) {
      if (!this.peers.isMember(peer)) for (const ref of refs) await this.index.audit.removeRelease(peer, ref)
    }
    result.released = await releaseShares(this.store, peer => this.peers.online(peer), { ...(signal !== undefined ? { signal } : {}), ...(this.stillNeeded !== undefined ? { stillNeeded: this.stillNeeded } : {}), now: this.now() })
    return result
  }
}
