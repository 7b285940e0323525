/**
 * Where one job's packs went, for its summary (`backup`'s "where the data went", the daemon's
 * reports): packs placed per (k, m) and on how many people, and packs kept on this disk with the
 * reason. The group pack store feeds every tally that is open while it places a pack.
 */

export interface PlacementSummary {
  /** packs written during the job */
  packs: number
  /** packs placed as shares on friends, per scheme */
  schemes: Array<{ k: number, m: number, packs: number }>
  /** different people holding at least one share of this job's packs */
  people: number
  /** packs kept on this disk (the embedded default, or no friend could take them) */
  local: number
  /** of the packs placed on friends, those this disk keeps its own copy of too (one or two friends: m <= 1) */
  ownCopies: number
  /** why packs were kept local, when some were (the last reason seen) */
  localReason: string | null
  /** people the job's snapshot record reached (besides this disk); null when it wrote none in a group */
  recordPeople: number | null
  /** transfers to and from friends during the job: requests, retried attempts, retries that then succeeded, requests given up */
  transfers: TransferCounts | null
}

/** Counters of the requests to friends' nodes (the shard client's retry statistics). */
export interface TransferCounts { attempts: number, retries: number, recovered: number, gaveUp: number }

/** The counters of several stores, summed. */
export function sumTransferCounts (all: Iterable<TransferCounts>): TransferCounts {
  const sum: TransferCounts = { attempts: 0, retries: 0, recovered: 0, gaveUp: 0 }
  for (const st of all) {
    sum.attempts += st.attempts
    sum.retries += st.retries
    sum.recovered += st.recovered
    sum.gaveUp += st.gaveUp
  }
  return sum
}

export class PlacementTally {
  private packs = 0
  private local = 0
  private ownCopies = 0
  private localReason: string | null = null
  private readonly schemes = new Map<string, { k: number, m: number, packs: number }>()
  private readonly people = new Set<string>()
  private recordPeople: number | null = null

  /** `transfers` reads the group's counters now; the summary reports what changed since the tally opened */
  constructor (private readonly transfers?: () => TransferCounts) {
    this.transfersAtStart = transfers?.()
  }

  private readonly transfersAtStart: TransferCounts | undefined

  placed (k: number, m: number, people: Iterable<string>): void {
    this.packs++
    const key = `${k}+${m}`
    const s = this.schemes.get(key) ?? { k, m, packs: 0 }
    s.packs++
    this.schemes.set(key, s)
    for (const p of people) this.people.add(p)
  }

  /** A pack just placed is also kept on this disk (placement-and-repair.md §4 step 5). */
  ownCopy (): void { this.ownCopies++ }

  keptLocal (reason: string | null): void {
    this.packs++
    this.local++
    if (reason !== null) this.localReason = reason
  }

  /** A snapshot record was stored on this disk and on `people` friends. */
  recordStored (people: number): void {
    this.recordPeople = this.recordPeople === null ? people : Math.min(this.recordPeople, people)
  }

  summary (): PlacementSummary {
    return {
      packs: this.packs,
      schemes: [...this.schemes.values()].sort((a, b) => b.packs - a.packs),
      people: this.people.size,
      local: this.local,
      ownCopies: this.ownCopies,
      localReason: this.local > 0 ? (this.localReason ?? 'no friend could take a share') : null,
      recordPeople: this.recordPeople,
      transfers: this.transferDelta()
    }
  }

  private transferDelta (): TransferCounts | null {
    const start = this.transfersAtStart
    const now = this.transfers?.()
    if (start === undefined || now === undefined) return null
    return { attempts: now.attempts - start.attempts, retries: now.retries - start.retries, recovered: now.recovered - start.recovered, gaveUp: now.gaveUp - start.gaveUp }
  }
}

/** The summary's "where the data went", in words for the user. */
export function describePlacement (p: PlacementSummary): string[] {
  const out: string[] = []
  if (p.packs === 0) out.push('no new data: everything was already stored')
  const placed = p.packs - p.local
  if (placed > 0) {
    const schemes = p.schemes.map(s => `${s.packs} as ${s.k}+${s.m}`).join(', ')
    out.push(`${placed} pack(s) placed on ${p.people} friend(s) (${schemes}; any k of k+m shares restore a pack)`)
    if (p.ownCopies > 0) out.push(`${p.ownCopies} of them also kept on this disk: with one or two friends a pack survives the loss of one holder only, and only this node repairs it`)
  }
  if (p.local > 0) {
    out.push(`${p.local} pack(s) kept on this disk only${p.localReason !== null ? `: ${p.localReason}` : ''}`)
  }
  const t = p.transfers
  if (t !== null && (t.retries > 0 || t.gaveUp > 0)) {
    out.push(`transfers to friends: ${t.retries} attempt(s) retried on a broken or slow link (${t.recovered} then went through)${t.gaveUp > 0 ? `, ${t.gaveUp} given up (their shares went to other friends or the backup said so)` : ''}`)
  }
  if (p.recordPeople !== null) {
    out.push(p.recordPeople > 0
      ? `the snapshot record is on this disk and on ${p.recordPeople} friend(s)`
      : 'the snapshot record is on this disk only for now (friends get it when they answer)')
  }
  return out
}
