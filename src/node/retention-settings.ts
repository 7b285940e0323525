/**
 * The daemon's retention policy as stored with the publish job (`roles.publish.retention` in
 * group.json; docs/cli.md "publish"), how it is shown, and when it runs. Set by `publish --keep-…`
 * (the same options, and so the same grammar, as `forget`); run by retention-job.ts.
 */
import { InvalidConfigError } from '../errors.js'
import { formatDuration as formatRetentionDuration, isEmptyPolicy, type RetentionPolicy } from '../repo/retention.js'
import { shown } from '../util/text.js'

/** The daemon's policy, as stored with the publish job (`roles.publish.retention` in group.json). */
export interface RetentionSettings {
  policy: RetentionPolicy
  /** prune after forgetting. @default true */
  prune: boolean
}

/** The last run of the daemon's policy (`roles.publish.lastRetention`), for `status`. */
export interface RetentionRun {
  /** when it started, on the daemon's clock (ms) */
  atMs: number
  forgotten: number
  packsDeleted: number
  bytesDeleted: number
  error: string | null
}

const POLICY_COUNTS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const

/** Reads a stored policy (it may have been edited by hand); InvalidConfigError says what is wrong. */
export function parseRetentionSettings (raw: unknown): RetentionSettings {
  const bad = (what: string): InvalidConfigError => new InvalidConfigError(`group.json: roles.publish.retention ${what}; set it again with \`p2pbak publish PATH... --keep-…\``)
  if (typeof raw !== 'object' || raw === null) throw bad('is not an object')
  const r = raw as { policy?: unknown, prune?: unknown }
  if (r.prune !== undefined && typeof r.prune !== 'boolean') throw bad(`has prune ${shown(r.prune)}, not true or false`)
  if (typeof r.policy !== 'object' || r.policy === null) throw bad('has no policy')
  const p = r.policy as Record<string, unknown>
  const policy: RetentionPolicy = {}
  for (const [k, v] of Object.entries(p)) {
    if ((POLICY_COUNTS as readonly string[]).includes(k)) {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(`has ${k} ${shown(v)}, not a whole number`)
      policy[k as typeof POLICY_COUNTS[number]] = v
    } else if (k === 'withinMs') {
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`has withinMs ${shown(v)}, not a whole number of milliseconds`)
      policy.withinMs = v
    } else if (k === 'tags') {
      if (!Array.isArray(v) || v.some(t => typeof t !== 'string' || t === '')) throw bad('has tags that are not a list of non-empty strings')
      policy.tags = v as string[]
    } else {
      throw bad(`has an unknown field ${shown(k)}`)
    }
  }
  if (isEmptyPolicy(policy)) throw bad('keeps nothing')
  return { policy, prune: r.prune !== false }
}

/** The policy as the options that set it: `--keep-daily 7 --keep-weekly 5`. */
export function describePolicy (policy: RetentionPolicy): string {
  const parts: string[] = []
  for (const k of POLICY_COUNTS) { const n = policy[k]; if (n !== undefined && n !== 0) parts.push(`--keep-${k} ${n}`) }
  if (policy.withinMs !== undefined && policy.withinMs > 0) parts.push(`--keep-within ${formatRetentionDuration(policy.withinMs)}`)
  for (const t of policy.tags ?? []) parts.push(`--keep-tag ${t}`)
  return parts.join(' ')
}

/** A continuous-mode backup is followed by the policy at most this often. */
export const CONTINUOUS_RETENTION_MS = 24 * 3600_000

/**
 * Whether the policy runs after a backup of the job that succeeded: after every scheduled one; after
 * a continuous-mode one when the last run is a day old (or in the future: a clock set back).
 */
export function retentionDue (trigger: 'scheduled' | 'continuous', lastRunMs: number | undefined, now: number): boolean {
  if (trigger === 'scheduled' || lastRunMs === undefined) return true
  return now - lastRunMs >= CONTINUOUS_RETENTION_MS || now < lastRunMs
}
