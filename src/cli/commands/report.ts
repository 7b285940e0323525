/** `report [--last N]`: the reports of the last jobs (HOME/reports/, docs/format/report.md), newest first. */
import type { Command } from 'commander'
import { InvalidArgumentError } from '../../errors.js'
import type { JobReport, RetentionReport } from '../../node/reports.js'
import type { describeHook, hookSucceeded } from '../../node/hooks.js'
import { describePolicy } from '../../node/retention-settings.js'
import { describePlacement } from '../../repo/placement-tally.js'
import { printable } from '../../util/text.js'
import { formatBytes, formatDuration, print, printErr, printJson } from '../io.js'
import type { CommandContext } from '../context.js'

/** The hook words, from a module loaded when `report` runs (not at start-up). */
interface HookWords { describeHook: typeof describeHook, hookSucceeded: typeof hookSucceeded }

function describe (r: JobReport, { describeHook, hookSucceeded }: HookWords): string[] {
  const when = r.finishedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')
  const lines = [`${when}  ${r.job}  ${r.outcome}${r.snapshotId !== null ? `  snapshot ${r.snapshotId.slice(0, 8)}` : ''}  (${formatDuration(r.durationMs)}; ${r.paths.map(printable).join(', ')})`]
  if (r.error !== null) lines.push(`  error: ${printable(r.error)}`)
  if (r.files !== null && r.bytes !== null) {
    lines.push(`  files: ${r.files.new} new, ${r.files.changed} changed, ${r.files.unchanged} unchanged; added ${formatBytes(r.bytes.added)} of ${formatBytes(r.bytes.processed)}`)
  }
  if (r.placement !== null && r.outcome !== 'failed') for (const l of describePlacement(r.placement)) lines.push(`  ${l}`)
  if (r.canLose !== null && r.outcome !== 'failed') lines.push(`  the new data survives losing ${r.canLose} friend(s)`)
  for (const e of r.itemErrors) lines.push(`  could not read ${printable(e.path)}: ${printable(e.error)}`)
  for (const h of [r.hooks.pre, r.hooks.post]) {
    if (h === null) continue
    lines.push(`  ${h.kind}-hook ${describeHook(h)} (${formatDuration(h.durationMs)}): ${printable(h.command)}`)
    if (!hookSucceeded(h) && h.output.trim() !== '') for (const l of h.output.trim().split('\n').slice(-5)) lines.push(`    | ${printable(l)}`)
  }
  if (r.retention != null) lines.push(...describeRetention(r.retention))
  return lines
}

/** The daemon's retention policy after the job (format/report.md "retention"). */
function describeRetention (t: RetentionReport): string[] {
  const policy = printable(describePolicy(t.policy))
  if (t.error !== null) return [`  retention (${policy}${t.prune ? ', prune' : ''}) failed: ${printable(t.error)}`]
  const lines = [`  retention (${policy}): forgot ${t.forgotten.length} of ${t.considered} snapshot(s)${t.forgotten.length > 0 ? ` (${t.forgotten.map(id => id.slice(0, 8)).join(', ')})` : ''}, ${t.kept} kept`]
  const p = t.pruned
  if (p !== null) {
    lines.push(`  prune: ${p.packsDeleted} pack(s) deleted, ${formatBytes(p.bytesDeleted)} freed; ${p.packsCondemned} newly condemned, ${p.packsWaiting} waiting${p.graceMs > 0 ? ` out the ${formatDuration(p.graceMs)} grace period` : ''}${p.packsRevived > 0 ? `, ${p.packsRevived} revived` : ''}`)
    if (p.postponed !== undefined && p.postponed !== null) lines.push(`  prune postponed: ${printable(p.postponed)}`)
  }
  return lines
}

export function registerReport (program: Command, ctx: () => CommandContext): void {
  program.command('report')
    .description('show the reports of the last backup jobs (manual and scheduled), newest first')
    .option('--last <n>', 'how many reports (default 10)', '10')
    .action(async (opts: { last: string }) => {
      const c = ctx()
      const n = Number(opts.last)
      if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`--last takes a whole number of reports, at least 1; got "${opts.last}"`)
      const [{ ReportBook }, hooks] = await Promise.all([import('../../node/reports.js'), import('../../node/hooks.js')])
      const { reports, unreadable } = await new ReportBook(c.homeDir).last(n)
      for (const u of unreadable) printErr(c.io, `warning: report ${u.file} cannot be read: ${printable(u.error)}`)
      if (c.json) { printJson(c.io, reports); return }
      if (reports.length === 0) { print(c.io, 'no job has run yet (every backup writes a report)'); return }
      for (const r of reports) for (const l of describe(r, hooks)) print(c.io, l)
    })
}
