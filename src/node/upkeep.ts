/**
 * The daemon's upkeep round (docs/placement-and-repair.md §8-§10), after each refresh:
 *   1. commitments for placed shares that have none yet (older placements, a rebuilt index)
 *   2. audits: due challenges within the hour's budget (repair/auditor.ts)
 *   3. repair: failed shares, removed holders, holders gone past the offline grace, for packs some
 *      snapshot still uses; then releases of old copies on holders that answer (repair/repairer.ts)
 *   4. scrub: this persister's own check of what it holds, a slice per round (repair/scrub.ts)
 * Each step has its own bounds; a step that fails leaves the others to run.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { requestDamaged, requestProof } from '../protocols/audit.js'
import { Auditor, Repairer, Scrubber, type AuditRound, type RepairRound, type ScrubRound } from '../repair/index.js'
import { commitPlacedPacks, stillNeededCheck } from '../repo/index.js'
import { errorMessage } from '../errors.js'
import type { Home } from './home.js'
import type { NetworkNode } from './network.js'
import { snapshotPacks } from './health.js'
import type { Settings } from './group-state.js'

export const DEFAULT_SCRUB_BYTES_PER_HOUR = 2 * 1024 ** 3

export interface UpkeepReport {
  at: string
  committed: number
  audit?: AuditRound
  repair?: RepairRound
  scrub?: ScrubRound
  errors: string[]
}

export class Upkeep {
  readonly auditor: Auditor
  private readonly scrubber: Scrubber
  private repairer: Repairer | undefined
  /** the last round's report, for status */
  last: UpkeepReport | undefined

  constructor (private readonly home: Home, private readonly net: NetworkNode, private readonly settings: Settings, roundMs: number, private readonly now: () => number = net.now) {
    const online = (peer: string): boolean => net.isOnline(peer)
    this.auditor = new Auditor(home.repo.index, {
      online,
      prove: async (peer, ref, nonce, count, signal) => await requestProof(net.node, peerIdFromString(peer), ref, nonce, count, signal),
      damaged: async (peer, signal) => await requestDamaged(net.node, peerIdFromString(peer), signal)
    }, {
      policy: {
        ...(settings.auditIntervalMs !== undefined ? { intervalMs: settings.auditIntervalMs } : {}),
        ...(settings.auditBytesPerHour !== undefined ? { maxBytesPerHour: settings.auditBytesPerHour } : {}),
        // damage reports are asked for a few times per audit interval
        reportsEveryMs: Math.min(3600_000, (settings.auditIntervalMs ?? 24 * 3600_000) / 4)
      },
      now: this.now
    })
    const perRound = Math.max(1024 * 1024, Math.round((settings.scrubBytesPerHour ?? DEFAULT_SCRUB_BYTES_PER_HOUR) * roundMs / 3600_000))
    this.scrubber = new Scrubber(async () => await net.heldStores(), net.proofs, perRound)
  }

  private repairerFor (): Repairer | undefined {
    const group = this.home.group
    if (group === undefined) return undefined
    this.repairer ??= new Repairer(group, {
      online: (peer) => this.net.isOnline(peer),
      isMember: (peer) => this.net.roster?.members.some(m => m.devices.some(d => d.peerId === peer)) ?? false
    }, { policy: { ...(this.settings.offlineGraceMs !== undefined ? { offlineGraceMs: this.settings.offlineGraceMs } : {}) }, now: this.now, stillNeeded: stillNeededCheck(this.home.repo) })
    return this.repairer
  }

  /** Packs that need repair now (hex ids), for status. */
  needsRepair (): Set<string> {
    return new Set((this.repairerFor()?.plan() ?? []).map(n => Buffer.from(n.pack).toString('hex')))
  }

  /** One round; no new challenge or repair starts after `budgetMs`; `signal` aborts outright. */
  async round (budgetMs = 30_000, signal?: AbortSignal): Promise<UpkeepReport> {
    const until = this.now() + budgetMs
    const report: UpkeepReport = { at: new Date(this.now()).toISOString(), committed: 0, errors: [] }
    const step = async (name: string, fn: () => Promise<void>): Promise<void> => {
      try { await fn() } catch (err: unknown) {
        if (signal?.aborted === true) throw err
        report.errors.push(`${name}: ${errorMessage(err)}`)
      }
    }
    const group = this.home.group
    if (group !== undefined && this.net.roster !== null) {
      await step('commitments', async () => { report.committed = await commitPlacedPacks(group, 8, { ...(signal !== undefined ? { signal } : {}), now: this.now() }) })
      await step('audit', async () => { report.audit = await this.auditor.round(signal, until - budgetMs / 2) })
      await step('repair', async () => {
        const repairer = this.repairerFor()
        if (repairer === undefined) return
        // a pack no snapshot uses is not repaired; if some listing cannot be read, repair them all.
        // Walking every snapshot's trees costs reads: only when something needs repair at all
        let live: ((p: string) => boolean) | undefined
        // (a write-only machine cannot read snapshots: it repairs every pack it placed)
        if (repairer.plan().length > 0 && this.home.writeOnly === undefined) {
          const packs = await snapshotPacks(this.home.repo)
          const used = new Set(packs.snapshots.flatMap(s => [...s.packs]))
          if (packs.complete) live = (p) => used.has(p)
        }
        report.repair = await repairer.round(live, signal, until)
      })
    }
    await step('scrub', async () => { report.scrub = await this.scrubber.round(signal) })
    this.last = report
    return report
  }
}
