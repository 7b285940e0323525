/**
 * One backup job: the pre-hook, the backup itself, the post-hook and the job's report, in that
 * order (docs/cli.md "Hooks and reports"). `backup` runs it by hand or through the daemon, and the
 * daemon's `publish` schedule through `backup --job publish`.
 *
 *   pre-hook fails   → no backup; the post-hook still runs (it may release what the pre-hook took);
 *                      the report says `failed`; HookFailedError
 *   backup fails     → the post-hook runs with P2PBAK_OUTCOME=failed; the report says why; the
 *                      error is thrown again
 *   post-hook fails  → the snapshot stands; the report and the summary say the hook failed
 */
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { Archiver, type BackupProgress, type BackupSummary, type ItemError } from '../backup/index.js'
import { HookFailedError, PacksGoneError, errorMessage } from '../errors.js'
import { formatId } from '../ids.js'
import { DEFAULT_GRACE_MS, listSnapshots, type PlacementSummary } from '../repo/index.js'
import type { TreeId } from '../ids.js'
import { describeHook, hookSucceeded, runHook, type HookResult } from './hooks.js'
import { canLoseOf, ReportBook, type JobOutcome, type JobReport } from './reports.js'
import type { Home } from './home.js'
import { checkJobAlerts } from './alert-checks.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('job')

export interface BackupJobOptions {
  paths: string[]
  tags: string[]
  excludes: string[]
  host?: string
  job: 'backup' | 'publish'
  preHook?: string
  postHook?: string
  /**
   * Continuous mode: the paths that changed since the latest snapshot of the same paths and host;
   * the rest is taken from that snapshot without being listed. No such snapshot: a full run.
   */
  changed?: string[]
  hookTimeoutMs?: number
  signal?: AbortSignal
  program: string
  onItemError?: (e: ItemError) => void
  onProgress?: (p: BackupProgress) => void
  /** a home in no group: where its packs went (the group store has no tally then) */
  localPlacement: (packs: number) => PlacementSummary
}

export interface BackupJobResult {
  summary: BackupSummary
  placement: PlacementSummary
  hooks: JobReport['hooks']
  /** where the report was written, or null when it could not be (the error is logged) */
  reportPath: string | null
}

function outcomeOf (err: unknown, signal: AbortSignal | undefined): JobOutcome {
  return signal?.aborted === true || (err instanceof Error && err.name === 'AbortError') ? 'cancelled' : 'failed'
}

/** The tree of the newest snapshot of exactly these paths on this host, if any. */
async function baseSnapshot (home: Home, paths: string[], host: string): Promise<TreeId | undefined> {
  // a write-only machine cannot read its earlier snapshots: every run walks the paths (the file cache skips unchanged files)
  if (home.writeOnly !== undefined) return undefined
  const key = [...paths].sort().join('\0')
  const { snapshots } = await listSnapshots(home.repo.packs, home.sodium, home.identity)
  const latest = snapshots.filter(s => s.record.host === host && [...s.record.paths].sort().join('\0') === key).at(-1)
  if (latest === undefined) return undefined
  // packs vanished from the store since it was made: its unchanged folders may name data that is
  // gone, so this run walks everything and stores that data again (runs after it may build on it)
  const lostAt = home.repo.index.dataLostAt()
  if (Number(latest.record.time / 1_000_000n) <= lostAt) {
    log('packs vanished from the store at %s, after the latest snapshot of these paths: a full run', new Date(lostAt).toISOString())
    return undefined
  }
  return latest.record.tree
}

export async function runBackupJob (home: Home, opts: BackupJobOptions): Promise<BackupJobResult> {
  const started = Date.now()
  const paths = opts.paths.map(p => resolve(p))
  const host = opts.host ?? hostname()
  const hooks: JobReport['hooks'] = { pre: null, post: null }
  const baseEnv = { P2PBAK_JOB: opts.job, P2PBAK_HOME: home.dir, P2PBAK_PATHS: paths.join('\n'), P2PBAK_HOST: host }
  const hook = async (kind: 'pre' | 'post', command: string, extra: Record<string, string> = {}): Promise<HookResult> =>
    await runHook(kind, command, { env: { ...baseEnv, P2PBAK_HOOK: kind, ...extra }, ...(opts.hookTimeoutMs !== undefined ? { timeoutMs: opts.hookTimeoutMs } : {}), ...(opts.signal !== undefined ? { signal: opts.signal } : {}) })
  const tally = home.group?.openTally()
  const packsBefore = home.repo.stats.packsAdded
  let summary: BackupSummary | undefined
  let failure: unknown
  try {
    if (opts.preHook !== undefined) {
      hooks.pre = await hook('pre', opts.preHook)
      if (!hookSucceeded(hooks.pre)) {
        const tail = hooks.pre.output.trim().split('\n').slice(-3).join(' / ')
        throw new HookFailedError(`the pre-hook ${describeHook(hooks.pre)}${tail !== '' ? ` (${tail})` : ''}: the backup was skipped. Fix the hook (its output is in \`p2pbak report\`) or run the backup without --pre-hook`)
      }
    }
    await home.syncIndex()
    const base = opts.changed !== undefined ? await baseSnapshot(home, paths, host) : undefined
    if (opts.changed !== undefined) log('%s: %d changed path(s)', base === undefined ? 'no earlier snapshot of these paths: a full run' : 'incremental run', opts.changed.length)
    // a prune on another device may condemn a pack this run relied on and could not rescue (a pack
    // deleted meanwhile, or any condemned pack on a write-only machine): the run writes no snapshot,
    // and one more run stores that data anew, since the look took those packs out of the index
    for (let attempt = 1; ; attempt++) {
      try {
        summary = await runArchiver(home, opts, host, base)
        break
      } catch (err: unknown) {
        if (!(err instanceof PacksGoneError) || attempt >= BACKUP_ATTEMPTS || opts.signal?.aborted === true) throw err
        log.error('attempt %d of %d wrote no snapshot (%s): running the backup again', attempt, BACKUP_ATTEMPTS, errorMessage(err))
      }
    }
  } catch (err: unknown) {
    failure = err
  } finally {
    tally?.end()
  }
  return await finishJob(home, opts, { started, paths, host, hooks, hook, tally, packsBefore, summary, failure })
}

/** Runs a backup whose look found packs gone this many times in all before it gives up. */
const BACKUP_ATTEMPTS = 2

async function runArchiver (home: Home, opts: BackupJobOptions, host: string, base: TreeId | undefined): Promise<BackupSummary> {
  const archiver = new Archiver({ repo: home.repo, cdc: home.cdc })
  return await archiver.run({
    paths: opts.paths,
    ...(base !== undefined && opts.changed !== undefined ? { base: { tree: base, changed: opts.changed } } : {}),
    tags: opts.tags,
    excludes: opts.excludes,
    host,
    program: opts.program,
    // in a group the person's other devices prune the same packs (docs/gc.md §6)
    commit: { now: home.now, graceMs: home.group !== undefined ? DEFAULT_GRACE_MS : 0 },
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
    ...(opts.onItemError !== undefined ? { onItemError: opts.onItemError } : {}),
    ...(opts.onProgress !== undefined ? { onProgress: opts.onProgress } : {})
  })
}

/** What a job's run leaves for its post-hook, report and alerts. */
interface JobRun {
  started: number
  paths: string[]
  host: string
  hooks: JobReport['hooks']
  hook: (kind: 'pre' | 'post', command: string, extra?: Record<string, string>) => Promise<HookResult>
  tally: ReturnType<NonNullable<Home['group']>['openTally']> | undefined
  packsBefore: number
  summary: BackupSummary | undefined
  failure: unknown
}

async function finishJob (home: Home, opts: BackupJobOptions, run: JobRun): Promise<BackupJobResult> {
  const { started, paths, host, hooks, hook, tally, packsBefore, summary, failure } = run
  const placement = tally?.tally.summary() ?? opts.localPlacement(home.repo.stats.packsAdded - packsBefore)
  const outcome: JobOutcome = failure !== undefined ? outcomeOf(failure, opts.signal) : (summary?.errors.length ?? 0) > 0 ? 'incomplete' : 'success'
  if (opts.postHook !== undefined) {
    hooks.post = await hook('post', opts.postHook, {
      P2PBAK_OUTCOME: outcome,
      P2PBAK_SNAPSHOT_ID: summary !== undefined ? formatId(summary.snapshotId) : '',
      P2PBAK_ERROR: failure !== undefined ? errorMessage(failure) : '',
      P2PBAK_ITEM_ERRORS: String(summary?.errors.length ?? 0)
    })
  }
  const report: JobReport = {
    version: 1,
    job: opts.job,
    startedAt: new Date(started).toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: Date.now() - started,
    outcome,
    error: failure !== undefined ? errorMessage(failure) : null,
    host,
    paths,
    snapshotId: summary !== undefined ? formatId(summary.snapshotId) : null,
    files: summary !== undefined ? { new: summary.filesNew, changed: summary.filesChanged, unchanged: summary.filesUnchanged, dirs: summary.dirs, dirsReused: summary.dirsReused } : null,
    bytes: summary !== undefined ? { read: summary.bytesRead, processed: summary.bytesProcessed, added: summary.bytesAdded, addedRaw: summary.rawBytesAdded } : null,
    itemErrors: (summary?.errors ?? []).map(e => ({ path: e.path, error: e.error })),
    changedDuringBackup: summary?.changedDuringBackup ?? [],
    placement,
    canLose: canLoseOf(placement, home.group !== undefined),
    hooks,
    retention: null
  }
  let reportPath: string | null = null
  try {
    reportPath = await new ReportBook(home.dir).write(report)
  } catch (err: unknown) {
    // the backup stands; a report that cannot be written must not turn it into a failure
    log.error('the job report could not be written in %s: %s', home.dir, errorMessage(err))
  }
  try {
    await checkJobAlerts(home, report)
  } catch (err: unknown) {
    log.error('checking the alerts of this job failed: %s', errorMessage(err))
  }
  if (failure !== undefined) throw failure
  if (summary === undefined) throw new Error('unreachable: a job without failure has a summary')
  return { summary, placement, hooks, reportPath }
}
