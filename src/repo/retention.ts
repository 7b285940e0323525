/**
 * Retention policy: which snapshots `forget --keep-…` keeps. A pure function of the snapshot list, the
 * policy and the current time; no I/O. Semantics follow restic's `forget` where they fit and are specified
 * in docs/cli.md, section "Retention policy".
 */
import { InvalidArgumentError } from '../errors.js'

export interface RetentionPolicy {
  last?: number; hourly?: number; daily?: number; weekly?: number; monthly?: number; yearly?: number
  /** keep everything newer than this many milliseconds before `now` */
  withinMs?: number
  tags?: string[]      // keep every snapshot carrying any of these tags
}
export interface RetentionInput { id: string, time: Date, host: string, paths: string[], tags: string[] }
/** `reasons` e.g. 'last', 'daily 2026-11-20', 'tag important', 'within 7d'; empty when `keep` is false. */
export interface RetentionDecision { id: string, keep: boolean, reasons: string[] }
/** One host + sorted paths group; `decisions` newest first. */
export interface RetentionGroup { host: string, paths: string[], decisions: RetentionDecision[] }
export interface RetentionOptions {
  now: Date
  /** Calendar buckets (hour, day, ISO week, month, year) are taken in this zone. @default 'local' */
  timeZone?: 'UTC' | 'local'
}

const HOUR_MS = 3_600_000
const DAY_MS = 24 * HOUR_MS
const WEEK_MS = 7 * DAY_MS
/** A Julian year (365.25 days): `1y` spans any calendar year but a leap year's last 18 hours. */
const YEAR_MS = 365.25 * DAY_MS
/** A twelfth of a year (30.4375 days), so that `12m` equals `1y`. */
const MONTH_MS = YEAR_MS / 12

const COUNT_RULES = ['hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const
type BucketRule = typeof COUNT_RULES[number]

/** Whether the policy keeps nothing by construction (every count absent or 0, no duration, no tag). */
export function isEmptyPolicy (p: RetentionPolicy): boolean {
  const counts = [p.last, p.hourly, p.daily, p.weekly, p.monthly, p.yearly]
  return counts.every(n => n === undefined || n === 0) &&
    (p.withinMs === undefined || p.withinMs === 0) &&
    (p.tags === undefined || p.tags.length === 0)
}

/**
 * Groups snapshots by host + sorted paths (as restic does by default) and applies the policy within each
 * group. Groups come ordered by host, then paths; decisions newest first (equal times: smaller id first).
 * @throws InvalidArgumentError on a malformed policy, input or option, or if the policy keeps nothing by
 * construction (all fields absent/zero): forgetting everything must be asked for by id, never by policy.
 */
export function applyRetention (snapshots: readonly RetentionInput[], policy: RetentionPolicy, options: RetentionOptions): RetentionGroup[] {
  validatePolicy(policy)
  const utc = validateOptions(options)
  const groups = new Map<string, { host: string, paths: string[], members: RetentionInput[] }>()
  const ids = new Set<string>()
  for (const s of snapshots) {
    validateInput(s)
    if (ids.has(s.id)) throw new InvalidArgumentError(`snapshot ${s.id} is listed twice`)
    ids.add(s.id)
    const paths = [...s.paths].sort(compareStrings)
    const key = JSON.stringify([s.host, paths])
    let group = groups.get(key)
    if (group === undefined) {
      group = { host: s.host, paths, members: [] }
      groups.set(key, group)
    }
    group.members.push(s)
  }
  const out: RetentionGroup[] = []
  for (const g of groups.values()) {
    g.members.sort(newestFirst)
    out.push({ host: g.host, paths: g.paths, decisions: decideGroup(g.members, policy, options.now.getTime(), utc) })
  }
  return out.sort((a, b) => compareStrings(a.host, b.host) || comparePaths(a.paths, b.paths))
}

function decideGroup (members: readonly RetentionInput[], policy: RetentionPolicy, now: number, utc: boolean): RetentionDecision[] {
  const reasons: string[][] = members.map(() => [])
  const last = policy.last ?? 0
  for (let i = 0; i < members.length && (last < 0 || i < last); i++) reasons[i]?.push('last')
  for (const rule of COUNT_RULES) {
    const n = policy[rule] ?? 0
    if (n === 0) continue
    const seen = new Set<string>()
    for (let i = 0; i < members.length && (n < 0 || seen.size < n); i++) {
      const bucket = bucketOf(rule, (members[i] as RetentionInput).time, utc)
      if (seen.has(bucket)) continue
      seen.add(bucket)
      reasons[i]?.push(`${rule} ${bucket}`)
    }
  }
  const within = policy.withinMs ?? 0
  if (within > 0) {
    const label = `within ${formatDuration(within)}`
    members.forEach((s, i) => { if (s.time.getTime() > now - within) reasons[i]?.push(label) })
  }
  const keepTags = [...new Set(policy.tags ?? [])]
  for (const tag of keepTags) {
    members.forEach((s, i) => { if (s.tags.includes(tag)) reasons[i]?.push(`tag ${tag}`) })
  }
  return members.map((s, i) => {
    const r = reasons[i] ?? []
    return { id: s.id, keep: r.length > 0, reasons: r }
  })
}

/** The calendar bucket of `t` for a rule, as the label used in reasons ('2026-11-20', '2026-W47', …). */
function bucketOf (rule: BucketRule, t: Date, utc: boolean): string {
  const y = utc ? t.getUTCFullYear() : t.getFullYear()
  const mo = (utc ? t.getUTCMonth() : t.getMonth()) + 1
  const d = utc ? t.getUTCDate() : t.getDate()
  switch (rule) {
    case 'hourly': return `${ymd(y, mo, d)}T${pad(utc ? t.getUTCHours() : t.getHours(), 2)}`
    case 'daily': return ymd(y, mo, d)
    case 'weekly': {
      const { year, week } = isoWeek(y, mo, d)
      return `${year4(year)}-W${pad(week, 2)}`
    }
    case 'monthly': return `${year4(y)}-${pad(mo, 2)}`
    case 'yearly': return year4(y)
  }
}

/** ISO 8601 week of a calendar date: weeks run Monday to Sunday; week 1 holds the year's first Thursday. */
function isoWeek (y: number, month: number, day: number): { year: number, week: number } {
  const date = new Date(0)
  date.setUTCFullYear(y, month - 1, day)
  const dow = (date.getUTCDay() + 6) % 7 // Monday 0 … Sunday 6
  const thursday = new Date(date.getTime() + (3 - dow) * DAY_MS)
  const year = thursday.getUTCFullYear()
  const jan1 = new Date(0)
  jan1.setUTCFullYear(year, 0, 1)
  const week = Math.floor((thursday.getTime() - jan1.getTime()) / WEEK_MS) + 1
  return { year, week }
}

/**
 * The units of the one duration grammar, longest spelling first (so `min` and `ms` win over `m`), with
 * their rank: terms must come in strictly increasing rank (decreasing length), each unit at most once.
 * `m` and `mo` share a rank: both mean months, and at most one of them may appear.
 */
const DURATION_UNITS: ReadonlyArray<readonly [unit: string, ms: number, rank: number]> = [
  ['min', 60_000, 5], ['ms', 1, 7], ['mo', MONTH_MS, 1], ['y', YEAR_MS, 0], ['m', MONTH_MS, 1],
  ['w', WEEK_MS, 2], ['d', DAY_MS, 3], ['h', HOUR_MS, 4], ['s', 1000, 6]
]
const DURATION_TERM = /(\d+)(min|ms|mo|y|m|w|d|h|s)/y
const DURATION_HELP = 'expected terms like 30s, 10min, 1h30min, 12h, 7d, 2w, 3mo or 1y (y, mo, w, d, h, min, s, ms, largest first)'

export interface DurationOptions {
  /**
   * What a bare `m` means. 'refuse' (the default): it is ambiguous (minutes to systemd and Go, months to
   * restic), so it is rejected with a hint to write `min` or `mo`. 'months': restic's meaning, for
   * `forget --keep-within` only.
   */
  bareM?: 'refuse' | 'months'
}

/**
 * Parses a duration, the one grammar of every duration option (docs/cli.md, "Durations"): one or more
 * `<digits><unit>` terms, largest unit first, each unit at most once: y (365.25 days), mo (months, a
 * twelfth of a year), w (7 days), d (24 hours), h, min, s, ms: '30s', '10min', '1h30min', '2w', '3mo',
 * '1y6mo'. A bare `m` means months with `bareM: 'months'` (restic's `--keep-within 1y2m3d`) and is
 * refused otherwise. Returns milliseconds.
 * @throws InvalidArgumentError otherwise (empty, unknown unit, sign, fraction, space, upper case,
 * repeated or out-of-order unit, a bare `m` where it is refused, or a total beyond
 * Number.MAX_SAFE_INTEGER ms).
 */
export function parseDuration (text: string, options: DurationOptions = {}): number {
  const bareM = options.bareM ?? 'refuse'
  if (text === '') throw new InvalidArgumentError(`invalid duration '': ${DURATION_HELP}`)
  let ms = 0
  let lastRank = -1
  let pos = 0
  while (pos < text.length) {
    DURATION_TERM.lastIndex = pos
    const t = DURATION_TERM.exec(text)
    if (t === null) throw new InvalidArgumentError(`invalid duration '${text}': ${DURATION_HELP}`)
    const unit = t[2] as string
    const [, size, rank] = DURATION_UNITS.find(u => u[0] === unit) as readonly [string, number, number]
    if (unit === 'm' && bareM === 'refuse') {
      throw new InvalidArgumentError(`ambiguous duration '${text}': write ${t[1] ?? ''}min for minutes or ${t[1] ?? ''}mo for months`)
    }
    if (rank <= lastRank) throw new InvalidArgumentError(`invalid duration '${text}': each unit at most once, largest first (y, mo, w, d, h, min, s, ms)`)
    lastRank = rank
    ms += Number(t[1]) * size
    pos = DURATION_TERM.lastIndex
  }
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`duration '${text}' is too long`)
  return ms
}

/**
 * Formats milliseconds for reasons: the shortest of y/m/d/h, d/h and h spellings (minutes, seconds and
 * milliseconds, written 'min', 's', 'ms', only for a remainder); '7d', '1y6m', '14d' for '2w'.
 */
export function formatDuration (ms: number): string {
  if (ms === 0) return '0h'
  const spell = (units: ReadonlyArray<readonly [string, number]>): string[] => {
    const parts: string[] = []
    let rest = ms
    for (const [name, size] of [...units, ['min', 60_000], ['s', 1000], ['ms', 1]] as const) {
      const n = Math.floor(rest / size)
      if (n > 0) { parts.push(`${n}${name}`); rest -= n * size }
    }
    if (rest > 0) parts.push(`${rest}ms`)
    return parts
  }
  const candidates = [
    spell([['y', YEAR_MS], ['m', MONTH_MS], ['d', DAY_MS], ['h', HOUR_MS]]),
    spell([['y', YEAR_MS], ['d', DAY_MS], ['h', HOUR_MS]]),
    spell([['d', DAY_MS], ['h', HOUR_MS]])
  ]
  let best = candidates[0] as string[]
  for (const c of candidates) if (c.length < best.length) best = c
  return best.join('')
}

function validatePolicy (p: RetentionPolicy): void {
  for (const name of ['last', ...COUNT_RULES] as const) {
    const n = p[name]
    if (n !== undefined && !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`keep-${name} must be a whole number (negative for unlimited), not ${String(n)}`)
    }
  }
  if (p.withinMs !== undefined && !(Number.isSafeInteger(p.withinMs) && p.withinMs >= 0)) {
    throw new InvalidArgumentError(`keep-within must be a whole number of milliseconds >= 0, not ${String(p.withinMs)}`)
  }
  for (const tag of p.tags ?? []) {
    if (typeof tag !== 'string' || tag === '') throw new InvalidArgumentError('keep-tag needs a non-empty tag')
  }
  if (isEmptyPolicy(p)) {
    throw new InvalidArgumentError('the retention policy keeps nothing: give at least one --keep-… option with a value other than 0 (to forget every snapshot, name them by id)')
  }
}

function validateOptions (o: RetentionOptions): boolean {
  if (!(o.now instanceof Date) || Number.isNaN(o.now.getTime())) throw new InvalidArgumentError('retention needs a valid current time')
  const tz = o.timeZone ?? 'local'
  if (tz !== 'UTC' && tz !== 'local') throw new InvalidArgumentError(`unknown time zone '${String(tz)}': use 'UTC' or 'local'`)
  return tz === 'UTC'
}

function validateInput (s: RetentionInput): void {
  if (!(s.time instanceof Date) || Number.isNaN(s.time.getTime())) throw new InvalidArgumentError(`snapshot ${s.id} has no valid time`)
}

function newestFirst (a: RetentionInput, b: RetentionInput): number {
  return b.time.getTime() - a.time.getTime() || compareStrings(a.id, b.id)
}

/** Code-unit order: the same on every machine and locale. */
function compareStrings (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

function comparePaths (a: readonly string[], b: readonly string[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = compareStrings(a[i] as string, b[i] as string)
    if (c !== 0) return c
  }
  return a.length - b.length
}

function ymd (y: number, mo: number, d: number): string {
  return `${year4(y)}-${pad(mo, 2)}-${pad(d, 2)}`
}

function year4 (y: number): string {
  return y < 0 ? `-${pad(-y, 6)}` : y > 9999 ? `+${pad(y, 6)}` : pad(y, 4)
}

function pad (n: number, width: number): string {
  return String(n).padStart(width, '0')
}
