/**
 * Who may receive new shares of this node's packs (docs/placement-and-repair.md §3): every device of
 * the roster but this one that offers space, has not failed its audits or been rarely reachable
 * (repair/reliability.ts), with its free space, reliability, proven bytes (placement P8) and whether
 * its person joined recently (placement P9: at most m shares of a stripe on newcomers).
 */
import { NEWCOMER_PERIOD_MS, type Candidate } from '../placement/index.js'
import { mayReceiveShares, reliabilityOf } from '../repair/index.js'
import type { IndexDb } from '../store/index.js'
import type { Roster } from '../peers/index.js'
import type { SpaceAnswer } from '../protocols/group.js'

export interface CandidateSources {
  /** this device (never a candidate) */
  self: string
  now: number
  /** what a device answered to `space` (undefined: not known yet) */
  space: (peerId: string) => SpaceAnswer | undefined
  online: (peerId: string) => boolean
  audit: IndexDb['audit']
  /** bytes the device proved it stores for us */
  provenBytes: (peerId: string) => number
}

/**
 * `anyReliability`: every device that offers space, also those that failed their audits or were
 * rarely reachable (whom reads, listings and deletes may still go to: they hold shares and records).
 */
export function placementCandidates (roster: Roster | null, src: CandidateSources, opts: { anyReliability?: boolean } = {}): Candidate[] {
  if (roster === null) return []
  const out: Candidate[] = []
  const newSince = src.now - NEWCOMER_PERIOD_MS
  for (const m of roster.members) {
    for (const d of m.devices) {
      if (d.peerId === src.self) continue
      const space = src.space(d.peerId)
      if (space === undefined || !space.persister) continue
      // peers that fail audits or are rarely reachable get no new shares (they keep serving theirs)
      const record = src.audit.getPeer(d.peerId)
      if (opts.anyReliability !== true && !mayReceiveShares(record)) continue
      out.push({
        peerId: d.peerId, personId: m.userId, online: src.online(d.peerId), freeBytes: space.freeBytes, reliability: reliabilityOf(record),
        provenBytes: src.provenBytes(d.peerId), newcomer: m.joinedAt > newSince
      })
    }
  }
  return out
}
