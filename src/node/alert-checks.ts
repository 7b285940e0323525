/**
 * What raises an alert (docs/cli.md "Alerts"): a job's outcome, checked when it ends; the daemon's
 * retention policy, checked when it has run; and, in each
 * daemon round (at most every few minutes), friends gone past the offline grace, snapshots whose
 * redundancy fell below the threshold, and no successful backup of this host for N days. A write-only
 * machine, which cannot read snapshots, judges redundancy by the packs it placed and the last backup
 * by its own job reports.
 */
import { createHash } from 'node:crypto'
import { hostname } from 'node:os'
import { listSnapshots } from '../repo/index.js'
import { DEFAULT_REPAIR_POLICY } from '../repair/index.js'
import { AlertBook, type Condition } from './alerts.js'
import { packHealth, peerView, snapshotHealth } from './health.js'
import type { Home } from './home.js'
import type { NetworkNode } from './network.js'
import { DEFAULT_REPORT_MAX_COUNT, ReportBook, type JobReport, type RetentionReport } from './reports.js'
import type { NotifySettings } from './alert-settings.js'
import { toHex } from '../util/bytes.js'

const DAY = 24 * 3600_000

/** "3 days", "5 h", "12 min", "40 s" */
function span (ms: number): string {
  if (ms >= 2 * DAY) return `${Math.floor(ms / DAY)} days`
  if (ms >= 2 * 3600_000) return `${Math.floor(ms / 3600_000)} h`
  if (ms >= 120_000) return `${Math.floor(ms / 60_000)} min`
  return `${Math.max(0, Math.round(ms / 1000))} s`
}

function jobScope (report: Pick<JobReport, 'job' | 'paths'>): string {
  return `${report.job}:${createHash('sha256').update(report.paths.join('\0')).digest('hex').slice(0, 12)}`
}

/** After a job: it failed, or some items could not be read; a later clean run of the same job clears both. */
export async function checkJobAlerts (home: Home, report: JobReport, now: () => number = Date.now): Promise<void> {
  if (report.outcome === 'cancelled') return // the user stopped it: nothing to tell them
  const scope = jobScope(report)
  const what = `the ${report.job === 'publish' ? 'scheduled backup' : 'backup'} of ${report.paths.join(', ')}`
  const found: Condition[] = []
  if (report.outcome === 'failed') found.push({ key: `job-failed:${scope}`, kind: 'job-failed', message: `${what} failed: ${report.error ?? 'unknown error'}`, detail: report })
  if (report.outcome === 'incomplete') found.push({ key: `items-unreadable:${scope}`, kind: 'items-unreadable', message: `${what} could not read ${report.itemErrors.length} item(s), e.g. ${report.itemErrors[0]?.path ?? '?'}`, detail: report })
  // a failed run says nothing about unreadable items: only a run that read the tree clears that one
  const inScope = (key: string): boolean => key === `job-failed:${scope}` || (report.outcome !== 'failed' && key === `items-unreadable:${scope}`)
  await new AlertBook(home.dir, home.config.notify, now).check(inScope, found)
}

/**
 * After the daemon's retention policy ran for a job: it failed (a policy that would keep none of the
 * snapshots, a prune that stopped); the next run that succeeds clears it.
 */
export async function checkRetentionAlerts (home: Home, paths: string[], outcome: RetentionReport, now: () => number = Date.now): Promise<void> {
  const key = `retention-failed:${jobScope({ job: 'publish', paths })}`
  const found: Condition[] = outcome.error === null
    ? []
    : [{ key, kind: 'retention-failed', message: `the retention policy of the scheduled backup of ${paths.join(', ')} failed: ${outcome.error}`, detail: outcome }]
  await new AlertBook(home.dir, home.config.notify, now).check(k => k === key, found)
}

const GROUP_KINDS = ['friend-unreachable:', 'low-redundancy', 'no-backup:']

/** In a daemon round: friends, redundancy, the last backup. */
export async function checkNodeAlerts (home: Home, net: NetworkNode, offlineGraceMs: number | undefined, now: () => number = Date.now): Promise<void> {
  const settings = home.config.notify
  if (settings === undefined) return
  const t = now()
  const found: Condition[] = []
  const grace = offlineGraceMs ?? DEFAULT_REPAIR_POLICY.offlineGraceMs
  const audit = home.repo.index.audit
  for (const m of net.roster?.members ?? []) {
    if (m.userId === home.identity.userId) continue
    for (const d of m.devices) {
      if (net.isOnline(d.peerId)) continue
      const rec = audit.getPeer(d.peerId)
      if (rec === undefined) continue // never placed on, never challenged: nothing of ours depends on it
      const since = rec.lastSeenMs > 0 ? rec.lastSeenMs : rec.firstSeenMs
      if (t - since <= grace) continue
      found.push({ key: `friend-unreachable:${d.peerId}`, kind: 'friend-unreachable', message: `${d.name} (a device of ${m.userId.slice(0, 8)}) has not been reachable for ${span(t - since)}; what it held for you is being rebuilt on others`, detail: { peerId: d.peerId, userId: m.userId, name: d.name, lastSeen: new Date(since).toISOString() } })
    }
  }
  const host = hostname()
  if (home.writeOnly !== undefined) {
    // a write-only machine cannot read snapshots: it judges by the packs it placed and by its own job reports
    found.push(...await writeOnlyConditions(home, net, settings, host, t))
    await new AlertBook(home.dir, settings, now).check(key => GROUP_KINDS.some(k => key.startsWith(k)), found)
    return
  }
  const snaps = await listSnapshots(home.repo.packs, home.sodium, home.identity)
  if (net.roster !== null) {
    const low = (await snapshotHealth(home, net)).filter(s => !s.local && s.canLose < settings.minCanLose)
    if (low.length > 0) {
      found.push({ key: 'low-redundancy', kind: 'low-redundancy', message: `${low.length} snapshot(s) can lose fewer than ${settings.minCanLose} more friend(s) (${low.map(s => `${s.id.slice(0, 8)}: ${s.canLose}`).join(', ')}); repair runs while friends answer`, detail: low })
    }
  }
  const mine = snaps.snapshots.filter(s => s.record.host === host)
  const newest = mine.reduce((ms, s) => Math.max(ms, Number(s.record.time / 1_000_000n)), 0)
  const stale = noBackupCondition(home, settings, host, newest, t)
  if (stale !== undefined) found.push(stale)
  await new AlertBook(home.dir, settings, now).check(key => GROUP_KINDS.some(k => key.startsWith(k)), found)
}

/** "No backup for N days", from the newest backup of this host (ms; 0: none). */
function noBackupCondition (home: Home, settings: NotifySettings, host: string, newest: number, t: number): Condition | undefined {
  const created = Date.parse(home.config.created)
  const since = newest > 0 ? newest : Number.isFinite(created) ? created : t
  if (t - since <= settings.noBackupDays * DAY) return undefined
  return { key: `no-backup:${host}`, kind: 'no-backup', message: newest > 0 ? `no backup of ${host} for ${Math.floor((t - newest) / DAY)} day(s) (the last: ${new Date(newest).toISOString()})` : `${host} has never been backed up, ${Math.floor((t - since) / DAY)} day(s) after this home was made`, detail: { host, lastBackup: newest > 0 ? new Date(newest).toISOString() : null } }
}

/**
 * A write-only machine's redundancy and "no backup" conditions: the packs in its index (those it
 * placed) judged as a snapshot's are, and its newest job report that wrote a snapshot.
 */
async function writeOnlyConditions (home: Home, net: NetworkNode, settings: NotifySettings, host: string, t: number): Promise<Condition[]> {
  const found: Condition[] = []
  if (net.roster !== null) {
    const peers = peerView(net)
    const low: Array<{ pack: string, canLose: number }> = []
    for (const info of home.repo.index.listPacks()) {
      const pack = toHex(info.id)
      const f = packHealth(home.repo, pack, peers)
      if (!f.local && f.canLose < settings.minCanLose) low.push({ pack, canLose: f.canLose })
    }
    if (low.length > 0) {
      const least = Math.min(...low.map(p => p.canLose))
      found.push({ key: 'low-redundancy', kind: 'low-redundancy', message: `${low.length} pack(s) this write-only machine placed can lose fewer than ${settings.minCanLose} more friend(s) (the least: ${least}); repair runs while friends answer`, detail: low.slice(0, 100) })
    }
  }
  const { reports } = await new ReportBook(home.dir).last(DEFAULT_REPORT_MAX_COUNT)
  const newest = reports.filter(r => r.snapshotId !== null && r.host === host).reduce((ms, r) => Math.max(ms, Date.parse(r.finishedAt) || 0), 0)
  const stale = noBackupCondition(home, settings, host, newest, t)
  if (stale !== undefined) found.push(stale)
  return found
}
