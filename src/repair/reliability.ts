/**
 * How much a peer can be trusted with new shares (docs/placement-and-repair.md §8): uptime measured
 * by probes, and the outcome of storage-proof challenges. Both decay (half-life a week), so a peer
 * that mends its ways recovers and a once-good peer that starts failing drops quickly.
 *
 *   uptime      = (onlineMs + PRIOR_MS) / (observedMs + PRIOR_MS)   (a new peer starts near 1)
 *   auditScore  : starts at 1; a pass moves it 10% of the way to 1, a failure halves it
 *   proof       = UNPROVEN + (1 − UNPROVEN) × min(1, passes / PROVEN_PASSES)   (0.5 for a peer never audited)
 *   reliability = auditScore × (0.25 + 0.75 × uptime) × proof
 * Placement ranks by reliability, so a peer nobody has audited yet (a newcomer, or a made-up person a
 * member added: issue 11 finding 4) ranks below every peer with PROVEN_PASSES passed audits and the
 * same uptime; an unknown peer (no record) counts as such a fresh peer. Eligibility for shares (`mayReceiveShares`) tests the two parts on
 * their own: a peer whose auditScore is below RELIABILITY_THRESHOLD (two failures close together), or
 * that is reachable so rarely that 0.25 + 0.75 × uptime is below it (uptime under 20 %), receives no
 * shares (it keeps and serves what it has). So one lost disk costs a laptop no more than a desktop:
 * both may take their shares back (docs/placement-and-repair.md §5 P7, §11).
 * A laptop online a third of the time with PROVEN_PASSES clean audits scores 0.5; one failed proof on
 * an always-on proven peer gives 0.5; two in a row 0.25.
 */
import { newPeerRecord, type AuditDb, type PeerRecord } from '../store/index.js'

export const HALF_LIFE_MS = 7 * 24 * 3600_000
export const PRIOR_MS = 3600_000
/** a probe gap longer than this counts only this much (a node that was itself down saw nothing) */
export const MAX_PROBE_GAP_MS = 6 * 3600_000
export const RELIABILITY_THRESHOLD = 0.4
/** the proof factor of a peer with no passed audit */
export const UNPROVEN = 0.5
/** passed audits after which a peer counts as fully proven */
export const PROVEN_PASSES = 8

export function uptimeOf (r: PeerRecord): number {
  return Math.min(1, (r.onlineMs + PRIOR_MS) / (r.observedMs + PRIOR_MS))
}

/** How far a peer has proven itself by passed audits: UNPROVEN (none) to 1 (PROVEN_PASSES or more). */
export function proofOf (r: PeerRecord): number {
  return UNPROVEN + (1 - UNPROVEN) * Math.min(1, r.passes / PROVEN_PASSES)
}

export function reliabilityOf (r: PeerRecord | undefined): number {
  if (r === undefined) return UNPROVEN
  const score = Math.max(0, Math.min(1, r.auditScore)) * (0.25 + 0.75 * uptimeOf(r)) * proofOf(r)
  return Math.round(score * 1000) / 1000
}

/** Whether a peer may be given shares: audits not failing (auditScore >= threshold) and reachable often enough. */
export function mayReceiveShares (r: PeerRecord | undefined): boolean {
  if (r === undefined) return true
  return r.auditScore >= RELIABILITY_THRESHOLD && 0.25 + 0.75 * uptimeOf(r) >= RELIABILITY_THRESHOLD
}

/** Folds one observation (the peer answered or not at `now`) into its record. */
export function observe (r: PeerRecord, online: boolean, now: number): PeerRecord {
  const dt = r.lastProbeMs > 0 ? Math.max(0, Math.min(now - r.lastProbeMs, MAX_PROBE_GAP_MS)) : 0
  const decay = Math.pow(0.5, dt / HALF_LIFE_MS)
  return {
    ...r,
    lastProbeMs: now,
    lastSeenMs: online ? now : r.lastSeenMs,
    observedMs: r.observedMs * decay + dt,
    onlineMs: r.onlineMs * decay + (online ? dt : 0),
    // failures fade too: a peer whose disk was replaced earns its way back
    auditScore: 1 - (1 - r.auditScore) * decay
  }
}

export type AuditOutcome = 'pass' | 'fail' | 'timeout'

/** Folds one challenge outcome into the record. */
export function scoreAudit (r: PeerRecord, outcome: AuditOutcome, now: number): PeerRecord {
  const next = { ...r, lastResult: outcome, lastResultMs: now }
  if (outcome === 'pass') { next.passes++; next.auditScore = r.auditScore + (1 - r.auditScore) * 0.1; next.lastSeenMs = now }
  if (outcome === 'fail') { next.fails++; next.auditScore = r.auditScore * 0.5; next.lastSeenMs = now; next.halvedMs = now }
  if (outcome === 'timeout') next.timeouts++
  return next
}

/** Records probe results of many peers at once (the node's refresh). */
export async function recordProbes (db: AuditDb, results: ReadonlyMap<string, boolean>, now: number): Promise<void> {
  for (const [peer, online] of results) {
    await db.putPeer(peer, observe(db.getPeer(peer) ?? newPeerRecord(now), online, now))
  }
}
