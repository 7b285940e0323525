/**
 * Forgetting snapshots by id or by a retention policy, then pruning (docs/cli.md "`forget`"): the one
 * implementation behind `p2pbak forget` and the daemon's retention policy (`publish --keep-…`).
 *
 * The daemon's policy (docs/cli.md "publish"), stored with the publish job in group.json, runs after
 * the job's backups that succeeded: after every scheduled one, after a continuous-mode one when it
 * has not run for a day. It looks only at this host's snapshots of the job's path set (the group
 * `forget` would form for them); the person's other devices apply their own policies to theirs. The
 * prune that follows is the group-wide two-phase one (docs/gc.md), so a backup another device runs
 * meanwhile, or one asleep for days, loses nothing. It takes the home's writer lock, as `forget`
 * does, and the daemon runs it in the command queue, so no backup or `forget` of this home overlaps it.
 */
import { hostname } from 'node:os'
import { join } from 'node:path'
import { InvalidArgumentError, errorMessage } from '../errors.js'
import { formatId } from '../ids.js'
import {
  DEFAULT_GRACE_MS, applyRetention, isEmptyPolicy, prune, recordForgotten, resolveSnapshot,
  type PruneReport, type RetentionGroup, type RetentionPolicy, type Snapshot
} from '../repo/index.js'
import { acquireLock } from '../store/index.js'
import { scopedLogger } from '../util/log.js'
import { checkRetentionAlerts } from './alert-checks.js'
import type { Home } from './home.js'
import { ReportBook, type RetentionReport } from './reports.js'
import { describePolicy, parseRetentionSettings, retentionDue, type RetentionRun } from './retention-settings.js'

const log = scopedLogger('retention')

export interface ForgetOptions {
  /** snapshots named by id, prefix or `latest` */
  refs?: readonly string[]
  policy?: RetentionPolicy
  /** what the policy groups by. @default host and paths */
  groupBy?: { host: boolean, paths: boolean }
  /** the policy looks only at the snapshots of this host with exactly these paths (the daemon's policy) */
  only?: { host: string, paths: readonly string[] }
  prune?: boolean
  dryRun?: boolean
  /** how long a pack stays condemned before it is deleted. @default 1 day in a group, 0 outside one */
  graceMs?: number
  /** this device's name in gc records. @default hostname() */
  host?: string
  signal?: AbortSignal
  /** called once the snapshots are forgotten, before the prune (which may still fail) */
  onForgotten?: (forgotten: ReadonlyMap<string, 'named' | 'policy'>, groups: readonly RetentionGroup[]) => void
}

export interface ForgetResult {
  /** every snapshot listed before the forget */
  snapshots: Snapshot[]
  /** hex id → why it was forgotten */
  forgotten: Map<string, 'named' | 'policy'>
  groups: RetentionGroup[]
  prune: PruneReport | null
}

const pathKey = (paths: readonly string[]): string => JSON.stringify([...paths].sort())

/**
 * Forgets the named snapshots and those the policy does not keep, then prunes if asked. Refuses
 * (InvalidArgumentError, nothing forgotten) a policy that keeps none of a group's snapshots. The
 * caller holds the home's writer lock unless `dryRun`.
 */
export async function forgetSnapshots (home: Home, opts: ForgetOptions): Promise<ForgetResult> {
  const dryRun = opts.dryRun === true
  const host = opts.host ?? hostname()
  const groupBy = opts.groupBy ?? { host: true, paths: true }
  // a write-only machine cannot read, forget or prune (ERR_WRITE_ONLY says what to do instead)
  home.requireFullKey('forget or prune snapshots')
  const { snapshots } = (await home.syncIndex()).head
  const forgotten = new Map<string, 'named' | 'policy'>()
  for (const ref of opts.refs ?? []) forgotten.set(formatId(resolveSnapshot(snapshots, ref).id), 'named')
  let groups: RetentionGroup[] = []
  if (opts.policy !== undefined && !isEmptyPolicy(opts.policy)) {
    const only = opts.only
    const considered = only === undefined ? snapshots : snapshots.filter(s => s.record.host === only.host && pathKey(s.record.paths) === pathKey(only.paths))
    groups = applyRetention(considered.map(s => ({
      id: formatId(s.id), time: new Date(Number(s.record.time / 1_000_000n)), host: groupBy.host ? s.record.host : '', paths: groupBy.paths ? s.record.paths : [], tags: s.record.tags
    })), opts.policy, { now: new Date(home.now()) })
    for (const g of groups) {
      if (g.decisions.length > 0 && g.decisions.every(d => !d.keep)) {
        throw new InvalidArgumentError(`the policy keeps none of the ${g.decisions.length} snapshot(s) of ${g.host} ${g.paths.join(' ')}; nothing was forgotten. Add a rule such as --keep-last 1, or name the snapshots if you mean to forget them all`)
      }
      for (const d of g.decisions) if (!d.keep) forgotten.set(d.id, 'policy')
    }
  }
  if (!dryRun) {
    // deleted here and on friends, and named in a gc record so the person's other devices drop their copies
    await recordForgotten(home.repo, snapshots.filter(s => forgotten.has(formatId(s.id))).map(s => s.id), { now: home.now, host })
  }
  opts.onForgotten?.(forgotten, groups)
  let pruned: PruneReport | null = null
  if (opts.prune === true) {
    pruned = await prune(home.repo, {
      dryRun,
      graceMs: opts.graceMs ?? (home.group !== undefined ? DEFAULT_GRACE_MS : 0),
      now: home.now,
      host,
      ignoreSnapshots: new Set(forgotten.keys()),
      ...(opts.signal !== undefined ? { signal: opts.signal } : {})
    })
  }
  return { snapshots, forgotten, groups, prune: pruned }
}

/**
 * Runs a stored policy on this host's snapshots of `paths`, under the home's writer lock, with the
 * prune it asks for. Never throws: a failure is the outcome's `error`.
 */
export async function runRetention (home: Home, stored: unknown, opts: { paths: readonly string[], host?: string, signal?: AbortSignal }): Promise<RetentionReport> {
  const started = Date.now()
  const out: RetentionReport = { policy: {}, prune: false, startedAt: new Date(started).toISOString(), durationMs: 0, considered: 0, kept: 0, forgotten: [], pruned: null, error: null }
  const host = opts.host ?? hostname()
  let lock
  try {
    const settings = parseRetentionSettings(stored)
    out.policy = settings.policy
    out.prune = settings.prune
    lock = acquireLock(join(home.dir, 'lock'), 'retention')
    const onForgotten = (forgotten: ReadonlyMap<string, unknown>, groups: readonly RetentionGroup[]): void => {
      out.considered = groups.reduce((n, g) => n + g.decisions.length, 0)
      out.forgotten = [...forgotten.keys()]
      out.kept = out.considered - out.forgotten.length
    }
    const r = await forgetSnapshots(home, { policy: settings.policy, only: { host, paths: opts.paths }, prune: settings.prune, host, onForgotten, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) })
    if (r.prune !== null) {
      const p = r.prune
      out.pruned = { packsCondemned: p.packsCondemned, packsWaiting: p.packsWaiting, packsDeleted: p.packsDeleted, packsRevived: p.packsRevived, bytesDeleted: p.bytesDeleted, graceMs: p.graceMs, postponed: p.postponed }
    }
    log('policy %s on %s: forgot %d of %d snapshot(s)%s', describePolicy(settings.policy), opts.paths.join(', '), out.forgotten.length, out.considered, out.pruned !== null ? `, deleted ${out.pruned.packsDeleted} pack(s), condemned ${out.pruned.packsCondemned}` : '')
  } catch (err: unknown) {
    out.error = errorMessage(err)
    log.error('the retention policy of %s failed: %s', opts.paths.join(', '), out.error)
  } finally {
    lock?.release()
  }
  out.durationMs = Date.now() - started
  return out
}

/** The publish job as far as its policy goes (group.json's `roles.publish`). */
export interface PolicyJob { paths: string[], retention?: unknown, lastRetention?: RetentionRun }

/**
 * After a backup of the publish job succeeded: runs its policy when one is set and due, adds the
 * outcome to the job's report, raises or clears the retention alert, and notes the run in `job`
 * (the caller saves group.json). Returns the outcome, or undefined when the policy did not run.
 */
export async function applyJobRetention (home: Home, job: PolicyJob, opts: { trigger: 'scheduled' | 'continuous', reportPath: string | null, signal?: AbortSignal }): Promise<RetentionReport | undefined> {
  if (job.retention === undefined) return undefined
  const at = home.now()
  if (!retentionDue(opts.trigger, job.lastRetention?.atMs, at)) return undefined
  const outcome = await runRetention(home, job.retention, { paths: job.paths, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) })
  job.lastRetention = { atMs: at, forgotten: outcome.forgotten.length, packsDeleted: outcome.pruned?.packsDeleted ?? 0, bytesDeleted: outcome.pruned?.bytesDeleted ?? 0, error: outcome.error }
  if (opts.reportPath !== null) {
    try {
      await new ReportBook(home.dir).addRetention(opts.reportPath, outcome)
    } catch (err: unknown) {
      log.error('the retention outcome could not be added to %s: %s', opts.reportPath, errorMessage(err))
    }
  }
  if (opts.signal?.aborted !== true) {
    try {
      await checkRetentionAlerts(home, job.paths, outcome, home.now)
    } catch (err: unknown) {
      log.error('checking the retention alert failed: %s', errorMessage(err))
    }
  }
  return outcome
}
