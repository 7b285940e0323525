/**
 * Job reports (docs/format/report.md): every backup, manual or scheduled, writes one JSON file in
 * HOME/reports/ saying what it backed up, what it could not read, where the data went, what its
 * hooks printed and how it ended. Kept by a retention rule (age and count); `p2pbak report` reads
 * them. Written atomically: a crash leaves the old set and at most a temporary file.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { errorMessage } from '../errors.js'
import { removeTempFiles, writeFileAtomic } from '../store/index.js'
import type { PlacementSummary, RetentionPolicy } from '../repo/index.js'
import { scopedLogger } from '../util/log.js'
import type { HookResult } from './hooks.js'

const log = scopedLogger('reports')

export const REPORT_VERSION = 1
/** Reports younger than this are kept... @default 90 days */
export const DEFAULT_REPORT_MAX_AGE_MS = 90 * 24 * 3600_000
/** ...and at most this many of them, newest first. @default 1000 */
export const DEFAULT_REPORT_MAX_COUNT = 1000

/**
 * success: a snapshot with every item; incomplete: a snapshot without some unreadable items;
 * failed: no snapshot (an error, or a failed pre-hook); cancelled: stopped by the user.
 */
export type JobOutcome = 'success' | 'incomplete' | 'failed' | 'cancelled'

export interface JobReport {
  version: typeof REPORT_VERSION
  /** the job: `backup` (run by hand or through the daemon) or `publish` (the daemon's schedule) */
  job: 'backup' | 'publish'
  startedAt: string
  finishedAt: string
  durationMs: number
  outcome: JobOutcome
  /** what went wrong, in words, when the outcome is failed or cancelled */
  error: string | null
  host: string
  paths: string[]
  snapshotId: string | null
  /** dirsReused: folders an incremental (continuous-mode) run took from the last snapshot unread */
  files: { new: number, changed: number, unchanged: number, dirs: number, dirsReused: number } | null
  bytes: { read: number, processed: number, added: number, addedRaw: number } | null
  /** items that could not be read (the snapshot was written without them) */
  itemErrors: Array<{ path: string, error: string }>
  changedDuringBackup: string[]
  /** where the job's new packs went (friends per (k, m), or this disk and why) */
  placement: PlacementSummary | null
  /**
   * Redundancy of the job's new data right after it: how many friends' nodes may vanish before
   * some of it is unreadable (the smallest m of its schemes; 0 when some pack is on this disk only
   * or when the job added no pack to a group); null outside a group.
   */
  canLose: number | null
  hooks: { pre: HookResult | null, post: HookResult | null }
  /**
   * The daemon's retention policy, when it ran after this job (a scheduled or continuous-mode
   * backup that succeeded); absent or null when it did not run.
   */
  retention?: RetentionReport | null
}

/** What the daemon's retention policy did after a job (docs/format/report.md "retention"). */
export interface RetentionReport {
  /** the policy as stored (`last`, `daily`, …, `withinMs`, `tags`); empty when it could not be read */
  policy: RetentionPolicy
  /** whether the unused data was to be pruned after the forget */
  prune: boolean
  startedAt: string
  durationMs: number
  /** this host's snapshots of the job's path set that the policy looked at, and how many it kept */
  considered: number
  kept: number
  /** the snapshots it forgot (64 hex each) */
  forgotten: string[]
  /** the prune's figures; null without prune, or when it did not get that far */
  /** `postponed`: why the prune condemned or deleted nothing (absent in reports written before 2026-12-07) */
  pruned: { packsCondemned: number, packsWaiting: number, packsDeleted: number, packsRevived: number, bytesDeleted: number, graceMs: number, postponed?: string | null } | null
  /** why it failed, in words; null when it succeeded */
  error: string | null
}

export interface ReportRetention { maxAgeMs: number, maxCount: number }

/** The redundancy of a job's new packs (see JobReport.canLose). */
export function canLoseOf (placement: PlacementSummary | null, inGroup: boolean): number | null {
  if (!inGroup || placement === null) return null
  if (placement.local > 0 || placement.schemes.length === 0) return 0
  return Math.min(...placement.schemes.map(s => s.m))
}

const NAME = /^(\d{8}T\d{6}\d{3}Z)-([0-9a-f]{8})\.json$/

function fileName (at: Date): string {
  const stamp = at.toISOString().replace(/[-:.]/g, '')
  return `${stamp}-${randomBytes(4).toString('hex')}.json`
}

export class ReportBook {
  readonly dir: string
  constructor (homeDir: string, private readonly retention: ReportRetention = { maxAgeMs: DEFAULT_REPORT_MAX_AGE_MS, maxCount: DEFAULT_REPORT_MAX_COUNT }, private readonly now: () => number = Date.now) {
    this.dir = join(homeDir, 'reports')
  }

  /** Writes the report, then applies the retention rule. Returns the report's path. */
  async write (report: JobReport): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const path = join(this.dir, fileName(new Date(report.finishedAt)))
    await writeFileAtomic(path, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 })
    await this.expire()
    return path
  }

  /**
   * Adds the retention section to a report written earlier (atomically: the old file or the new
   * one). The daemon's policy runs after the job's report is written, its hooks included.
   */
  async addRetention (path: string, retention: RetentionReport): Promise<void> {
    const report = JSON.parse(await readFile(path, 'utf8')) as JobReport
    if (report.version !== REPORT_VERSION) throw new Error(`report ${path} has version ${String(report.version)}, this p2pbak writes ${REPORT_VERSION}`)
    report.retention = retention
    await writeFileAtomic(path, JSON.stringify(report, null, 2) + '\n', { mode: 0o600 })
  }

  /** Report files, oldest first (their names sort by time). */
  private async names (): Promise<string[]> {
    let names: string[]
    try {
      names = await readdir(this.dir)
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
      throw err
    }
    return names.filter(n => NAME.test(n)).sort()
  }

  /** Deletes reports older than the age limit and beyond the count limit (the oldest first). */
  async expire (): Promise<number> {
    await removeTempFiles(this.dir)
    const names = await this.names()
    const cutoff = this.now() - this.retention.maxAgeMs
    const excess = Math.max(0, names.length - this.retention.maxCount)
    let removed = 0
    for (const [i, name] of names.entries()) {
      const stamp = NAME.exec(name)?.[1] ?? ''
      const at = Date.parse(`${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13, 15)}.${stamp.slice(15, 18)}Z`)
      if (i >= excess && !(at < cutoff)) continue
      await unlink(join(this.dir, name))
      removed++
    }
    if (removed > 0) log('%d old report(s) removed', removed)
    return removed
  }

  /** The last `n` reports, newest first; a file that does not parse is reported in `unreadable`. */
  async last (n: number): Promise<{ reports: JobReport[], unreadable: Array<{ file: string, error: string }> }> {
    const names = (await this.names()).reverse().slice(0, n)
    const reports: JobReport[] = []
    const unreadable: Array<{ file: string, error: string }> = []
    for (const name of names) {
      try {
        const r = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as JobReport
        if (r.version !== REPORT_VERSION) throw new Error(`report version ${String(r.version)}, this p2pbak reads ${REPORT_VERSION}`)
        reports.push(r)
      } catch (err: unknown) {
        unreadable.push({ file: name, error: errorMessage(err) })
      }
    }
    return { reports, unreadable }
  }
}
