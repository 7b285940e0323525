/**
 * The publisher's audit scheduler (docs/placement-and-repair.md §8): every share it placed is
 * challenged on a schedule with jitter, sooner after a failure, within a budget of proof bytes per
 * hour; results go to the share's entry (ok / failed) and to the holder's record (reliability).
 *
 * Outcomes: a proof that verifies passes; a holder that says the share is gone or damaged, or whose
 * proof does not verify, fails the share at once (definitive: repair follows). A timeout or a broken
 * answer is a strike: `maxStrikes` in a row while the peer is reachable fail the share too. Shares of
 * peers that are not reachable are not challenged: absence is the offline grace's business.
 */
import { randomBytes } from 'node:crypto'
import { SEGMENT_BYTES, segmentCount } from '../crypto/index.js'
import { checkProof, ShareGoneError, type ProofAnswer } from '../protocols/audit.js'
import { errorMessage } from '../errors.js'
import { equalBytes, toHex } from '../util/bytes.js'
import type { PackId } from '../ids.js'
import { newPeerRecord, type IndexDb, type PeerRecord, type ShareAudit, type ShareRef } from '../store/index.js'
import { scoreAudit, type AuditOutcome } from './reliability.js'

/** How the auditor reaches holders: a libp2p node in the daemon, an in-memory network in simulations. */
export interface AuditTransport {
  /** whether the peer can be asked now */
  online: (peerId: string) => boolean
  prove: (peerId: string, ref: ShareRef, nonce: Uint8Array, count: number, signal: AbortSignal) => Promise<ProofAnswer>
  /** shares of ours the peer's own scrub found damaged */
  damaged: (peerId: string, signal: AbortSignal) => Promise<ShareRef[]>
}

export interface AuditPolicy {
  /** time between two challenges of a share. @default 24 h */
  intervalMs: number
  /** after a strike, the next challenge comes this soon. @default intervalMs / 8 */
  retryMs: number
  /** each delay is multiplied by a random factor in [1 - jitter, 1 + jitter]. @default 0.2 */
  jitter: number
  /** segments asked per challenge. @default 16 */
  segments: number
  /** proof bytes (segments moved and read) per hour, all peers together. @default 512 MiB */
  maxBytesPerHour: number
  /** challenges in flight at once. @default 4 */
  concurrency: number
  /** deadline of one challenge. @default 30 s */
  timeoutMs: number
  /** strikes in a row (timeouts, broken answers from a reachable peer) that fail a share. @default 3 */
  maxStrikes: number
  /** how often each peer is asked for its damage reports. @default 1 h */
  reportsEveryMs: number
}

export const DEFAULT_AUDIT_POLICY: AuditPolicy = Object.freeze({
  intervalMs: 24 * 3600_000,
  retryMs: 3 * 3600_000,
  jitter: 0.2,
  segments: 16,
  maxBytesPerHour: 512 * 1024 * 1024,
  concurrency: 4,
  timeoutMs: 30_000,
  maxStrikes: 3,
  reportsEveryMs: 3600_000
})

export interface AuditRound {
  challenged: number
  passed: number
  failed: number
  strikes: number
  /** due but not asked: holder unreachable, or the hour's byte budget is spent */
  deferred: number
  bytes: number
  /** shares newly found failed, with the reason */
  failures: Array<{ pack: PackId, index: number, peer: string, reason: string }>
}

export interface AuditorInit {
  policy?: Partial<AuditPolicy>
  now?: () => number
  /** uniform in [0, 1) */
  random?: () => number
  nonce?: () => Uint8Array
}

export class Auditor {
  readonly policy: AuditPolicy
  private readonly now: () => number
  private readonly random: () => number
  private readonly nonce: () => Uint8Array
  private spent: Array<{ at: number, bytes: number }> = []
  private readonly reportsAsked = new Map<string, number>()
  private peerUpdates: Promise<void> = Promise.resolve()

  constructor (private readonly index: IndexDb, private readonly transport: AuditTransport, init: AuditorInit = {}) {
    const p = init.policy ?? {}
    this.policy = { ...DEFAULT_AUDIT_POLICY, retryMs: Math.max(1000, (p.intervalMs ?? DEFAULT_AUDIT_POLICY.intervalMs) / 8), ...p }
    this.now = init.now ?? Date.now
    this.random = init.random ?? Math.random
    this.nonce = init.nonce ?? (() => new Uint8Array(randomBytes(32)))
  }

  private jittered (ms: number): number {
    return Math.round(ms * (1 + this.policy.jitter * (2 * this.random() - 1)))
  }

  private budgetLeft (now: number): number {
    this.spent = this.spent.filter(s => now - s.at < 3600_000)
    return this.policy.maxBytesPerHour - this.spent.reduce((n, s) => n + s.bytes, 0)
  }

  /** Proof bytes one challenge of a share of `length` bytes costs. */
  costOf (length: number): number {
    return Math.min(segmentCount(length), this.policy.segments) * SEGMENT_BYTES
  }

  /**
   * One pass: damage reports first, then every due share of a reachable holder within the budget.
   * No new challenge starts after `until` (this auditor's clock); what is left stays due.
   */
  async round (signal?: AbortSignal, until?: number): Promise<AuditRound> {
    const now = this.now()
    const result: AuditRound = { challenged: 0, passed: 0, failed: 0, strikes: 0, deferred: 0, bytes: 0, failures: [] }
    // one scan: who holds anything of ours (for damage reports), and what is due
    const holders = new Set<string>()
    let due: Array<{ pack: PackId, index: number, audit: ShareAudit, peer: string }> = []
    for (const s of this.placedShares()) {
      holders.add(s.peer)
      if (s.audit.state !== 'failed' && s.audit.nextDueMs <= now) due.push(s)
    }
    const reported = await this.collectReports(holders, now, result, signal)
    due = due.filter(s => !reported.has(`${s.peer}/${toHex(s.pack)}.${s.index}`))
    due.sort((a, b) => a.audit.nextDueMs - b.audit.nextDueMs)
    const queue: typeof due = []
    let budget = this.budgetLeft(now)
    for (const d of due) {
      const cost = this.costOf(d.audit.length)
      if (!this.transport.online(d.peer) || cost > budget) { result.deferred++; continue }
      budget -= cost
      queue.push(d)
    }
    const worker = async (): Promise<void> => {
      for (let d = queue.shift(); d !== undefined; d = queue.shift()) {
        signal?.throwIfAborted()
        if (until !== undefined && this.now() > until) { result.deferred += queue.length + 1; queue.length = 0; break }
        await this.challenge(d.pack, d.index, d.audit, d.peer, result, signal)
      }
    }
    await Promise.all(Array.from({ length: Math.max(1, this.policy.concurrency) }, worker))
    return result
  }

  /** Every share with a commitment and the peer that holds it now (one placement read per pack). */
  private * placedShares (): Generator<{ pack: PackId, index: number, audit: ShareAudit, peer: string }> {
    let lastPack: PackId | undefined
    let placement: Map<number, string> | undefined
    for (const s of this.index.audit.shares()) {
      if (lastPack === undefined || !equalBytes(lastPack, s.pack)) { lastPack = s.pack; placement = this.index.getPlacement(s.pack) }
      const holder = placement?.get(s.index)
      if (holder?.startsWith('peer:') === true) yield { ...s, peer: holder.slice(5) }
    }
  }

  /** Asks holders for their damage reports (each at most every reportsEveryMs); returns `peer/share` of those failed. */
  private async collectReports (peers: ReadonlySet<string>, now: number, result: AuditRound, signal?: AbortSignal): Promise<Set<string>> {
    const failed = new Set<string>()
    for (const peer of peers) {
      if (!this.transport.online(peer) || now - (this.reportsAsked.get(peer) ?? 0) < this.policy.reportsEveryMs) continue
      this.reportsAsked.set(peer, now)
      let refs: ShareRef[]
      try {
        refs = await this.transport.damaged(peer, anySignal(signal, this.policy.timeoutMs))
      } catch {
        continue
      }
      for (const ref of refs) {
        const audit = this.index.audit.getShare(ref.pack, ref.index)
        if (audit === undefined || audit.state === 'failed' || this.index.getPlacement(ref.pack)?.get(ref.index) !== `peer:${peer}`) continue
        await this.record(ref.pack, ref.index, audit, peer, 'fail', 'the holder reported the share damaged', now, result)
        failed.add(`${peer}/${toHex(ref.pack)}.${ref.index}`)
      }
    }
    return failed
  }

  private async challenge (pack: PackId, index: number, audit: ShareAudit, peer: string, result: AuditRound, signal?: AbortSignal): Promise<void> {
    const nonce = this.nonce()
    const cost = this.costOf(audit.length)
    const started = this.now()
    this.spent.push({ at: started, bytes: cost })
    result.challenged++
    result.bytes += cost
    let outcome: AuditOutcome
    let reason = ''
    try {
      const answer = await this.transport.prove(peer, { pack, index }, nonce, this.policy.segments, anySignal(signal, this.policy.timeoutMs))
      const why = checkProof(audit, nonce, this.policy.segments, answer)
      outcome = why === undefined ? 'pass' : 'fail'
      reason = why ?? ''
    } catch (err: unknown) {
      if (signal?.aborted === true) throw err
      if (err instanceof ShareGoneError) { outcome = 'fail'; reason = err.damaged ? 'the holder found the share damaged' : 'the holder no longer has the share' } else { outcome = 'timeout'; reason = errorMessage(err) }
    }
    await this.record(pack, index, audit, peer, outcome, reason, this.now(), result)
  }

  private async record (pack: PackId, index: number, audit: ShareAudit, peer: string, outcome: AuditOutcome, reason: string, now: number, result: AuditRound): Promise<void> {
    // lastCheckMs: the last verdict (pass or fail), or the placement: a strike says nothing of the
    // share (the holder was down, or slow), so it must not make an old loss look new (sameLoss)
    const verdict = outcome !== 'timeout' || audit.strikes + 1 >= this.policy.maxStrikes
    const next: ShareAudit = { ...audit, ...(verdict ? { lastCheckMs: now } : {}) }
    if (outcome === 'pass') {
      Object.assign(next, { state: 'ok', strikes: 0, lastPassMs: now, reason: '', nextDueMs: now + this.jittered(this.policy.intervalMs) })
      result.passed++
    } else if (outcome === 'fail' || audit.strikes + 1 >= this.policy.maxStrikes) {
      Object.assign(next, { state: 'failed', strikes: audit.strikes + 1, reason: reason.slice(0, 200), nextDueMs: now + this.policy.retryMs })
      result.failed++
      result.failures.push({ pack, index, peer, reason })
    } else {
      Object.assign(next, { strikes: audit.strikes + 1, reason: reason.slice(0, 200), nextDueMs: now + this.jittered(this.policy.retryMs) })
      result.strikes++
    }
    await this.index.audit.putShare(pack, index, next)
    // one update of a peer's record at a time: a read between another challenge's write and its
    // commit would see the old score and write it back (a halving lost)
    const update = this.peerUpdates.then(async () => {
      const rec = this.index.audit.getPeer(peer) ?? newPeerRecord(now)
      if (outcome === 'fail' && sameLoss(rec, audit)) {
        await this.index.audit.putPeer(peer, { ...rec, fails: rec.fails + 1, lastResult: 'fail', lastResultMs: now })
        return
      }
      await this.index.audit.putPeer(peer, scoreAudit(rec, outcome, now))
    })
    this.peerUpdates = update.catch(() => undefined)
    await update
  }
}

/**
 * Whether a failed share belongs to a loss the peer was already penalized for: the share was on
 * the peer and not challenged since its score was last halved (last challenged before that, or,
 * never challenged, placed before it: a new share is due from the moment it is placed). However
 * many rounds the challenges of one lost disk spread over (a laptop answers only while it is
 * awake), they halve the score once. A share put on the peer at or after the halving (re-seeded)
 * that fails, or one that passed a challenge since and fails now, is a new failure: a peer that
 * keeps losing or lying keeps being halved. The time of the halving is kept in the peer's record
 * (`halvedMs`): a daemon killed in the middle of a wiped disk's challenges does not halve it again
 * when it comes back (that second halving left a small group with nobody to take the shares back).
 */
function sameLoss (rec: PeerRecord, audit: ShareAudit): boolean {
  // `lastCheckMs` is the share's last verdict (a pass or a failure; timeouts below three strikes
  // leave it) or, before its first verdict, its placement (recordCommitments); indexes written
  // before 2026-12-06 have 0 there for a share never challenged: its first due time is its placement
  const at = rec.halvedMs
  if (at === undefined || at === 0) return false
  const since = audit.lastCheckMs > 0 ? audit.lastCheckMs : audit.nextDueMs
  return since < at
}

function anySignal (signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const t = AbortSignal.timeout(timeoutMs)
  return signal === undefined ? t : AbortSignal.any([signal, t])
}
