/** `forget [SNAP...] [--keep-* ...] [--prune] [--dry-run]`: retention, then optional garbage collection. */
import type { Command } from 'commander'
import { join } from 'node:path'
import { hostname } from 'node:os'
import type { PruneReport } from '../../repo/index.js'
import { applyRetention, isEmptyPolicy, parseDuration, type RetentionGroup, type RetentionPolicy } from '../../repo/retention.js'
import { formatId, shortId } from '../../ids.js'
import { InvalidArgumentError } from '../../errors.js'
import { formatBytes, formatDuration, formatTimeNs, print, printJson } from '../io.js'
import type { CommandContext } from '../context.js'

interface ForgetFlags {
  keepLast?: string, keepHourly?: string, keepDaily?: string, keepWeekly?: string, keepMonthly?: string, keepYearly?: string
  keepWithin?: string, keepTag: string[], prune?: boolean, dryRun?: boolean, grace?: string, groupBy: string
}

/** `--group-by host,paths` (restic's default), `host`, `paths` or `none` (one group for all snapshots). */
function groupingOf (text: string): { host: boolean, paths: boolean } {
  const parts = new Set(text.split(',').map(s => s.trim()).filter(s => s !== ''))
  for (const p of parts) if (p !== 'host' && p !== 'paths' && p !== 'none') throw new InvalidArgumentError(`--group-by takes host, paths, host,paths or none, got "${text}"`)
  if (parts.has('none') && parts.size > 1) throw new InvalidArgumentError('--group-by none cannot be combined with host or paths')
  return { host: parts.has('host'), paths: parts.has('paths') }
}
const collect = (v: string, prev: string[]): string[] => [...prev, v]

function count (flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n)) throw new InvalidArgumentError(`--${flag} takes a whole number (-1 for unlimited), got "${v}"`)
  return n
}

function policyFrom (f: ForgetFlags): RetentionPolicy {
  const p: RetentionPolicy = {}
  const set = <K extends keyof RetentionPolicy>(k: K, v: RetentionPolicy[K] | undefined): void => { if (v !== undefined) p[k] = v }
  set('last', count('keep-last', f.keepLast))
  set('hourly', count('keep-hourly', f.keepHourly))
  set('daily', count('keep-daily', f.keepDaily))
  set('weekly', count('keep-weekly', f.keepWeekly))
  set('monthly', count('keep-monthly', f.keepMonthly))
  set('yearly', count('keep-yearly', f.keepYearly))
  if (f.keepWithin !== undefined) p.withinMs = parseDuration(f.keepWithin, { bareM: 'months' }) // restic's 1y2m3d: m is months here
  if (f.keepTag.length > 0) p.tags = f.keepTag
  return p
}

export function registerForget (program: Command, ctx: () => CommandContext): void {
  program.command('forget')
    .description('remove snapshots named by id or not kept by a retention policy; --prune also frees their data')
    .argument('[snapshot...]', 'snapshots to forget explicitly')
    .option('--keep-last <n>', 'keep the n newest snapshots')
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours that have one')
    .option('--keep-daily <n>', 'the same per day')
    .option('--keep-weekly <n>', 'the same per ISO week')
    .option('--keep-monthly <n>', 'the same per month')
    .option('--keep-yearly <n>', 'the same per year')
    .option('--keep-within <duration>', 'keep every snapshot newer than this, e.g. 7d, 2w, 36h, 1y6m (m = months here, as in restic)')
    .option('--keep-tag <tag>', 'keep every snapshot with this tag (repeatable)', collect, [])
    .option('--prune', 'delete the data no remaining snapshot uses')
    .option('--dry-run', 'only show what would be removed')
    .option('--group-by <keys>', 'apply the policy per host and path set (default), per host, per paths, or to all snapshots at once (none)', 'host,paths')
    .option('--grace <duration>', 'with --prune: how long a pack stays condemned before it is deleted (default 1d in a group, 0 on a disk no other device writes)')
    .action(async (refs: string[], flags: ForgetFlags) => {
      const c = ctx()
      const policy = policyFrom(flags)
      if (refs.length === 0 && isEmptyPolicy(policy) && flags.prune !== true) {
        throw new InvalidArgumentError('name snapshots to forget, or give a policy such as --keep-last 10 --keep-daily 7 (an empty policy would forget everything)')
      }
      const grouping = groupingOf(flags.groupBy)
      const [{ DEFAULT_GRACE_MS, prune, recordForgotten, resolveSnapshot }, { acquireLock }] = await Promise.all([import('../../repo/index.js'), import('../../store/index.js')])
      const home = await c.openHome()
      const lock = flags.dryRun === true ? undefined : acquireLock(join(c.homeDir, 'lock'), 'forget')
      try {
        const { snapshots } = (await home.syncIndex()).head
        const forget = new Map<string, string>() // hex id -> reason
        for (const ref of refs) forget.set(formatId(resolveSnapshot(snapshots, ref).id), 'named')
        let groups: RetentionGroup[] = []
        if (!isEmptyPolicy(policy)) {
          groups = applyRetention(snapshots.map(s => ({
            id: formatId(s.id), time: new Date(Number(s.record.time / 1_000_000n)), host: grouping.host ? s.record.host : '', paths: grouping.paths ? s.record.paths : [], tags: s.record.tags
          })), policy, { now: new Date(home.now()) })
          for (const g of groups) {
            if (g.decisions.length > 0 && g.decisions.every(d => !d.keep)) {
              throw new InvalidArgumentError(`the policy keeps none of the ${g.decisions.length} snapshot(s) of ${g.host} ${g.paths.join(' ')}; nothing was forgotten. Add a rule such as --keep-last 1, or name the snapshots if you mean to forget them all`)
            }
            for (const d of g.decisions) if (!d.keep) forget.set(d.id, 'policy')
          }
        }
        if (flags.dryRun !== true) {
          // deleted here and on friends, and named in a gc record so the person's other devices drop their copies
          await recordForgotten(home.repo, snapshots.filter(s => forget.has(formatId(s.id))).map(s => s.id), { now: home.now, host: hostname() })
        }
        let pruned: PruneReport | undefined
        if (flags.prune === true) {
          pruned = await prune(home.repo, {
            dryRun: flags.dryRun === true,
            graceMs: flags.grace !== undefined ? parseDuration(flags.grace) : home.group !== undefined ? DEFAULT_GRACE_MS : 0,
            now: home.now,
            host: hostname(),
            ignoreSnapshots: new Set(forget.keys()),
            ...(c.io.signal !== undefined ? { signal: c.io.signal } : {})
          })
        }
        const kept = snapshots.filter(s => !forget.has(formatId(s.id)))
        if (c.json) {
          printJson(c.io, { dryRun: flags.dryRun === true, forgotten: [...forget.keys()], kept: kept.map(s => formatId(s.id)), groups, prune: pruned ?? null })
          return
        }
        for (const g of groups) {
          print(c.io, `host ${g.host}, paths ${g.paths.join(' ')}:`)
          for (const d of g.decisions) print(c.io, `  ${d.keep ? 'keep  ' : 'forget'} ${d.id.slice(0, 8)}  ${d.reasons.join(', ')}`)
        }
        for (const s of snapshots) if (forget.get(formatId(s.id)) === 'named') print(c.io, `forget ${shortId(s.id)}  ${formatTimeNs(s.record.time)} (named)`)
        print(c.io, `${flags.dryRun === true ? 'would forget' : 'forgot'} ${forget.size} snapshot(s), ${kept.length} kept`)
        if (pruned !== undefined) {
          print(c.io, `${flags.dryRun === true ? 'would delete' : 'deleted'} ${pruned.packsDeleted} pack(s) and repack ${pruned.packsRepacked}: ${formatBytes(pruned.bytesDeleted)} freed${pruned.bytesWritten > 0 ? `, ${formatBytes(pruned.bytesWritten)} rewritten` : ''}; ${pruned.blobsRemoved} blobs removed, ${pruned.blobsLive} live`)
          if (pruned.graceMs > 0 && (pruned.packsCondemned > 0 || pruned.packsWaiting > 0)) print(c.io, `${pruned.packsCondemned} pack(s) newly condemned, ${pruned.packsWaiting} waiting: a condemned pack is deleted by a prune at least ${formatDuration(pruned.graceMs)} after this device first saw it condemned, if no snapshot of any device uses it by then`)
          if (pruned.packsRevived > 0) print(c.io, `${pruned.packsRevived} condemned pack(s) are used by a newer snapshot and were kept`)
          const queued = home.repo.index.audit.pendingReleases().size > 0
          if (home.group !== undefined && queued && flags.dryRun !== true) print(c.io, 'friends keep shares until the group\'s retention period has passed (p2pbak group retention); the deletes are sent again until then')
        }
      } finally {
        lock?.release()
        await home.close()
      }
    })
}
