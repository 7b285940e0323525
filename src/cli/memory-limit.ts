/**
 * `daemon --max-memory SIZE`: a soft limit on the daemon's resident memory, in the spirit of Go's
 * GOMEMLIMIT (docs/cli.md `daemon`, docs/benchmarks.md "Where a persister's memory goes").
 *
 * Most of a daemon's memory above its code is buffers that are already garbage: parts and shares
 * received, ranges read for proofs and restores. V8 frees them only when a collection runs, and it
 * starts one for external memory only after tens of MiB have been allocated since the last, so the
 * resident size of a busy daemon floats well above what it holds live. Near the limit this collects
 * at once and, at the next check, gives the freed pages back to the system (malloc_trim). It cannot
 * shrink what is live: when a collection leaves the daemon near the limit it backs off until the
 * daemon has grown by another BACKOFF_BYTES or BACKOFF_MS have passed, so a limit set too low costs a
 * few collections, not a busy loop; when it leaves it over the limit, it says so once per episode,
 * with what to do. Each collection is a full, stop-the-world one (tens of ms), at most two a second.
 */
import v8 from 'node:v8'
import { runInNewContext } from 'node:vm'

/** Collections start at this share of the limit, so that the peak between two checks stays under it. */
export const START_AT = 0.9
/** How often the resident size is read (one system call). */
export const CHECK_EVERY_MS = 100
/** Fewest milliseconds between two collections. */
export const MIN_GAP_MS = 500
/** After a collection that left the daemon over the limit: growth that allows the next one... */
export const BACKOFF_BYTES = 16 * 1024 * 1024
/** ...or time. */
export const BACKOFF_MS = 30_000
/** Smallest limit accepted: a daemon at rest takes about 96 MiB (docs/benchmarks.md). */
export const MIN_LIMIT_BYTES = 64 * 1024 * 1024
/**
 * `--max-memory auto` (the default): this limit while the daemon only serves friends (holds their
 * shares, answers audits and restores: the small always-on box in a friend's cupboard, issue 13),
 * {@link AUTO_COMMAND_LIMIT_BYTES} while it runs a command of its own, and never a warning.
 */
export const AUTO_LIMIT_BYTES = 128 * 1024 * 1024
/**
 * `--max-memory auto` while the daemon runs a backup or a restore of its own: the publisher's bar of
 * issue 13 (256 MiB) less the rise between two checks. What a command holds live is not shrunk, only
 * the garbage it leaves between collections.
 */
export const AUTO_COMMAND_LIMIT_BYTES = 240 * 1024 * 1024

export interface MemoryLimitDeps {
  /** resident set size in bytes */
  rss: () => number
  /** a full garbage collection */
  collect: () => void
  /** gives the C heaps' free pages back (false: not available) */
  trim: () => void
  now: () => number
  /** told once per episode when the daemon stays over the limit after a collection (auto: nobody) */
  warn?: (message: string) => void
}

export interface MemoryLimitStats {
  limitBytes: number
  collections: number
  /** the resident size after the last collection */
  lastAfterBytes?: number
  /** true while a collection could not bring the daemon under the limit */
  overLimit: boolean
  /** true while a command of the daemon's own runs and the limit is lifted (auto: raised to the command limit) */
  lifted: boolean
}

export interface MemoryLimitOptions {
  /** the limit while lifted (a command of the daemon's own runs); absent: none */
  commandLimitBytes?: number
}

const MiB = (b: number): string => `${Math.round(b / 1048576)} MiB`

/** The limit's decisions, on injected readings and clock; {@link startMemoryLimit} runs it on a timer. */
export class MemoryLimit {
  private lastCollect = -Infinity
  private backoffUntilBytes = 0
  private backoffUntilMs = -Infinity
  /** a collection ran at the last check: this one judges it */
  private judging = false
  private lifts = 0
  /** the warning was given in this episode (reset when the daemon is back under 90 % of the limit) */
  private warned = false
  readonly stats: MemoryLimitStats

  constructor (readonly limitBytes: number, private readonly deps: MemoryLimitDeps, private readonly opts: MemoryLimitOptions = {}) {
    this.stats = { limitBytes, collections: 0, overLimit: false, lifted: false }
  }

  /** The limit in force now: the command limit while lifted (none when it has none). */
  private current (): number | undefined { return this.lifts > 0 ? this.opts.commandLimitBytes : this.limitBytes }

  /** Lifts the limit to the command limit (or none) until {@link MemoryLimit.restore} (nested calls count). */
  lift (): void {
    if (this.lifts === 0) this.newLimit()
    this.lifts++
    this.stats.lifted = true
  }

  restore (): void {
    this.lifts = Math.max(0, this.lifts - 1)
    this.stats.lifted = this.lifts > 0
    if (this.lifts === 0) this.newLimit()
  }

  /** Another limit is in force: a backoff or a warning of the last one does not carry over. */
  private newLimit (): void {
    this.stats.overLimit = false
    this.warned = false
    this.backoffUntilBytes = 0
    this.backoffUntilMs = -Infinity
  }

  /**
   * One check: collects when the daemon nears the limit, unless it just did or is backing off. A
   * collection is judged at the next check: V8 frees the buffers it found dead on a background thread
   * after the collection returns, so the resident size right after it overstates what is held.
   */
  check (): void {
    if (this.judging) {
      this.judging = false
      this.judge()
      return
    }
    const limit = this.current()
    if (limit === undefined) return
    const rss = this.deps.rss()
    const start = limit * START_AT
    if (rss < start) {
      this.stats.overLimit = false
      this.warned = false
      return
    }
    const now = this.deps.now()
    if (now - this.lastCollect < MIN_GAP_MS) return
    if (this.stats.overLimit && rss < this.backoffUntilBytes && now < this.backoffUntilMs) return
    this.deps.collect()
    this.lastCollect = now
    this.stats.collections++
    this.judging = true
  }

  /** After a collection: gives the freed pages back, then backs off (and says so) if still near the limit. */
  private judge (): void {
    this.deps.trim()
    const after = this.deps.rss()
    this.stats.lastAfterBytes = after
    const limit = this.current() ?? Infinity
    if (after < limit * START_AT) {
      this.stats.overLimit = false
      this.warned = false
      return
    }
    if (after > limit && !this.warned) {
      this.warned = true
      this.deps.warn?.(`the daemon holds ${MiB(after)} after freeing what it could, more than --max-memory ${MiB(limit)} allows: ` +
        'it needs this much for the work under way (a backup, a restore, many friends at once); raise --max-memory, or leave it out')
    }
    this.stats.overLimit = true
    this.backoffUntilBytes = after + BACKOFF_BYTES
    this.backoffUntilMs = this.deps.now() + BACKOFF_MS
  }
}

/** V8's full collection, made callable (node's `--expose-gc`, set at run time). */
function exposedGc (): () => void {
  v8.setFlagsFromString('--expose-gc')
  const gc: unknown = runInNewContext('gc')
  if (typeof gc !== 'function') throw new Error('V8 did not expose its garbage collector')
  return gc as () => void
}

/** Starts the soft limit on a timer (unref'd); without `warn`, it is silent (auto). */
export function startMemoryLimit (limitBytes: number, trim: () => void, warn?: (message: string) => void, opts: MemoryLimitOptions = {}): { limit: MemoryLimit, stop: () => void } {
  const limit = new MemoryLimit(limitBytes, { rss: () => process.memoryUsage.rss(), collect: exposedGc(), trim, now: () => performance.now(), ...(warn !== undefined ? { warn } : {}) }, opts)
  const timer = setInterval(() => { limit.check() }, CHECK_EVERY_MS)
  timer.unref()
  return { limit, stop: () => { clearInterval(timer) } }
}
