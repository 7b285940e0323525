/**
 * The `--keep-…` options of a retention policy (docs/cli.md "Retention policy"): one grammar for
 * `forget` and for the daemon's policy set with `publish`, so a policy a user tried by hand with
 * `forget --dry-run` is the policy the daemon applies.
 */
import type { Command } from 'commander'
import { InvalidArgumentError } from '../errors.js'
import { parseDuration, type RetentionPolicy } from '../repo/retention.js'

export interface KeepFlags {
  keepLast?: string, keepHourly?: string, keepDaily?: string, keepWeekly?: string, keepMonthly?: string, keepYearly?: string
  keepWithin?: string, keepTag: string[]
}

const collect = (v: string, prev: string[]): string[] => [...prev, v]

/** Adds the `--keep-…` options to a command. */
export function addKeepOptions (cmd: Command): Command {
  return cmd
    .option('--keep-last <n>', 'keep the n newest snapshots')
    .option('--keep-hourly <n>', 'keep the newest snapshot of each of the last n hours that have one')
    .option('--keep-daily <n>', 'the same per day')
    .option('--keep-weekly <n>', 'the same per ISO week')
    .option('--keep-monthly <n>', 'the same per month')
    .option('--keep-yearly <n>', 'the same per year')
    .option('--keep-within <duration>', 'keep every snapshot newer than this, e.g. 7d, 2w, 36h, 1y6m (m = months here, as in restic)')
    .option('--keep-tag <tag>', 'keep every snapshot with this tag (repeatable)', collect, [])
}

function count (flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v)
  if (v.trim() === '' || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`--${flag} takes a whole number (-1 for unlimited), got "${v}"`)
  return n
}

/** Whether any `--keep-…` option was given (also `--keep-last 0`). */
export function anyKeepFlag (f: KeepFlags): boolean {
  return f.keepLast !== undefined || f.keepHourly !== undefined || f.keepDaily !== undefined || f.keepWeekly !== undefined ||
    f.keepMonthly !== undefined || f.keepYearly !== undefined || f.keepWithin !== undefined || f.keepTag.length > 0
}

/** The policy the flags give (possibly empty: the caller decides whether that is allowed). */
export function policyFromFlags (f: KeepFlags): RetentionPolicy {
  const p: RetentionPolicy = {}
  const set = <K extends keyof RetentionPolicy>(k: K, v: RetentionPolicy[K] | undefined): void => { if (v !== undefined) p[k] = v }
  set('last', count('keep-last', f.keepLast))
  set('hourly', count('keep-hourly', f.keepHourly))
  set('daily', count('keep-daily', f.keepDaily))
  set('weekly', count('keep-weekly', f.keepWeekly))
  set('monthly', count('keep-monthly', f.keepMonthly))
  set('yearly', count('keep-yearly', f.keepYearly))
  if (f.keepWithin !== undefined) p.withinMs = parseDuration(f.keepWithin, { bareM: 'months' }) // restic's 1y2m3d: m is months here
  if (f.keepTag.length > 0) {
    if (f.keepTag.some(t => t === '')) throw new InvalidArgumentError('--keep-tag needs a non-empty tag')
    p.tags = f.keepTag
  }
  return p
}
