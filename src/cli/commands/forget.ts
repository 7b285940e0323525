/** `forget [SNAP...] [--keep-* ...] [--prune] [--dry-run]`: retention, then optional garbage collection. */
import type { Command } from 'commander'
import { join } from 'node:path'
import { hostname } from 'node:os'
import { isEmptyPolicy, parseDuration } from '../../repo/retention.js'
import { formatId, shortId } from '../../ids.js'
import { InvalidArgumentError } from '../../errors.js'
import { formatBytes, formatDuration, formatTimeNs, print, printJson } from '../io.js'
import { preloaded, type CommandContext } from '../context.js'
import { addKeepOptions, policyFromFlags, type KeepFlags } from '../keep-options.js'

interface ForgetFlags extends KeepFlags { prune?: boolean, dryRun?: boolean, grace?: string, groupBy: string }

/** `--group-by host,paths` (restic's default), `host`, `paths` or `none` (one group for all snapshots). */
function groupingOf (text: string): { host: boolean, paths: boolean } {
  const parts = new Set(text.split(',').map(s => s.trim()).filter(s => s !== ''))
  for (const p of parts) if (p !== 'host' && p !== 'paths' && p !== 'none') throw new InvalidArgumentError(`--group-by takes host, paths, host,paths or none, got "${text}"`)
  if (parts.has('none') && parts.size > 1) throw new InvalidArgumentError('--group-by none cannot be combined with host or paths')
  return { host: parts.has('host'), paths: parts.has('paths') }
}

export function registerForget (program: Command, ctx: () => CommandContext): void {
  const cmd = program.command('forget')
    .description('remove snapshots named by id or not kept by a retention policy; --prune also frees their data')
    .argument('[snapshot...]', 'snapshots to forget explicitly')
  addKeepOptions(cmd)
  cmd.option('--prune', 'delete the data no remaining snapshot uses')
    .option('--dry-run', 'only show what would be removed')
    .option('--group-by <keys>', 'apply the policy per host and path set (default), per host, per paths, or to all snapshots at once (none)', 'host,paths')
    .option('--grace <duration>', 'with --prune: how long a pack stays condemned before it is deleted (default 1d in a group, 0 on a disk no other device writes)')
    .action(async (refs: string[], flags: ForgetFlags) => {
      const c = ctx()
      const policy = policyFromFlags(flags)
      if (refs.length === 0 && isEmptyPolicy(policy) && flags.prune !== true) {
        throw new InvalidArgumentError('name snapshots to forget, or give a policy such as --keep-last 10 --keep-daily 7 (an empty policy would forget everything)')
      }
      const grouping = groupingOf(flags.groupBy)
      // the heavy modules load here, not when the program starts, and while the home's key is derived (docs/benchmarks.md, start-up)
      const modules = preloaded(async () => await Promise.all([import('../../node/retention-job.js'), import('../../store/index.js')]))
      const home = await c.openHome(modules)
      const [{ forgetSnapshots }, { acquireLock }] = await modules()
      const lock = flags.dryRun === true ? undefined : acquireLock(join(c.homeDir, 'lock'), 'forget')
      try {
        const { snapshots, forgotten: forget, groups, prune: pruned } = await forgetSnapshots(home, {
          refs,
          policy,
          groupBy: grouping,
          prune: flags.prune === true,
          dryRun: flags.dryRun === true,
          ...(flags.grace !== undefined ? { graceMs: parseDuration(flags.grace) } : {}),
          host: hostname(),
          ...(c.io.signal !== undefined ? { signal: c.io.signal } : {})
        })
        const kept = snapshots.filter(s => !forget.has(formatId(s.id)))
        if (c.json) {
          printJson(c.io, { dryRun: flags.dryRun === true, forgotten: [...forget.keys()], kept: kept.map(s => formatId(s.id)), groups, prune: pruned })
          return
        }
        for (const g of groups) {
          print(c.io, `host ${g.host}, paths ${g.paths.join(' ')}:`)
          for (const d of g.decisions) print(c.io, `  ${d.keep ? 'keep  ' : 'forget'} ${d.id.slice(0, 8)}  ${d.reasons.join(', ')}`)
        }
        for (const s of snapshots) if (forget.get(formatId(s.id)) === 'named') print(c.io, `forget ${shortId(s.id)}  ${formatTimeNs(s.record.time)} (named)`)
        print(c.io, `${flags.dryRun === true ? 'would forget' : 'forgot'} ${forget.size} snapshot(s), ${kept.length} kept`)
        if (pruned !== null) {
          print(c.io, `${flags.dryRun === true ? 'would delete' : 'deleted'} ${pruned.packsDeleted} pack(s) and repack ${pruned.packsRepacked}: ${formatBytes(pruned.bytesDeleted)} freed${pruned.bytesWritten > 0 ? `, ${formatBytes(pruned.bytesWritten)} rewritten` : ''}; ${pruned.blobsRemoved} blobs removed, ${pruned.blobsLive} live`)
          if (pruned.graceMs > 0 && (pruned.packsCondemned > 0 || pruned.packsWaiting > 0)) print(c.io, `${pruned.packsCondemned} pack(s) newly condemned, ${pruned.packsWaiting} waiting: a condemned pack is deleted by a prune at least ${formatDuration(pruned.graceMs)} after this device first saw it condemned, if no snapshot of any device uses it by then`)
          if (pruned.packsRevived > 0) print(c.io, `${pruned.packsRevived} condemned pack(s) are used by a newer snapshot and were kept`)
          if (pruned.postponed !== null) print(c.io, `prune postponed, nothing condemned or deleted now: ${pruned.postponed}`)
          const queued = home.repo.index.audit.pendingReleases().size > 0
          if (home.group !== undefined && queued && flags.dryRun !== true) print(c.io, 'friends keep shares until the group\'s retention period has passed (p2pbak group retention); the deletes are sent again until then')
        }
      } finally {
        lock?.release()
        await home.close()
      }
    })
}
