/**
 * What a {@link LocalShareStore} holds (shares, records and their bytes), counted once by walking its
 * directories and then kept up to date by the store's own writes and deletes, with a walk again every
 * {@link RECOUNT_MS}. It also runs the writes and deletes of one object one after another (`change`).
 *
 * Why: a persister's node asks for its usage at every refresh round (every 30 s by default, and before
 * each command it places or reads for). Walking 100,000 held shares took about 4 CPU seconds each time
 * (one `stat` per file), a steady load on the small box that is often a persister. The walk now comes
 * once per {@link RECOUNT_MS}; what happens between two walks is counted from the writes themselves.
 *
 * A walk reads one directory at a time, and no write or delete of that directory runs meanwhile
 * (`writing`: they wait for it, and it waits for those in flight): a change made before the walk
 * reads its directory is in what the walk sees, one made after (or in a directory made after the walk
 * listed the prefixes) is added to the walk's result. The
 * store serializes the writes and deletes of one object, so two writes of it at once are not both
 * counted as new. What the count misses until the next walk: files added or removed by hand (a
 * wiped folder). The count is what the quota and the ledger read.
 */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { StoreUsage } from './share-store.js'
import { PREFIX_RE, RECORD_NAME_RE, RECORDS_DIR, isMissing, parseShareFileName } from './local-store-layout.js'

/** How long a count is trusted before the directories are walked again. */
export const RECOUNT_MS = 15 * 60_000

/**
 * A change of one object that succeeded: +1, 0 (a replace) or -1 share or record, and the bytes it
 * added (negative: removed). `dir`: the share's prefix directory, or RECORDS_DIR for a record.
 */
export interface UsageChange { kind: 'share' | 'record', count: -1 | 0 | 1, bytes: number, dir: string }

type Counts = Required<StoreUsage>

/**
 * One walk in progress: the directories it has read, and the changes made meanwhile, each with
 * whether the walk had read its directory by then.
 */
interface Walk {
  epoch: number
  startedAt: number
  listed: Set<string>
  changes: Array<{ change: UsageChange, after: boolean }>
  done: Promise<Counts>
}

export class UsageTally {
  private counted: Counts | undefined
  private countedAt = 0
  /** the walk `counted` comes from: each walk's result is taken once, by the first caller it wakes */
  private countedBy: Walk | undefined
  /** raised by invalidate(): a walk started before it does not count */
  private epoch = 0
  private walk: Walk | undefined
  /** the directory a walk is reading now; writes to it wait */
  private reading: { dir: string, done: Promise<void> } | undefined
  /** writes and deletes in flight per directory, and a walk waiting for them to end */
  private readonly writers = new Map<string, number>()
  private drained: { dir: string, resolve: () => void } | undefined
  /** the write or delete of each object (by path) in progress, settled or not: the next one waits for it */
  private readonly busy = new Map<string, Promise<void>>()

  constructor (
    private readonly sharesDir: string,
    private readonly recordsDir: string,
    private readonly now: () => number = () => performance.now(),
    private readonly recountMs: number = RECOUNT_MS
  ) {}

  /**
   * Runs a write or delete of one object at `path` (`change` returns its size after, undefined when
   * it is gone) once every earlier one of the same object has settled, so that two writes of it at
   * once are not both counted as new; counts the difference from its size before in the usage tally.
   * A failure leaves the outcome unknown (a rename may have happened before an fsync failed), so the
   * tally walks the store again.
   */
  async change (kind: 'share' | 'record', path: string, dir: string, change: () => Promise<number | undefined>): Promise<void> {
    const run = (this.busy.get(path) ?? Promise.resolve()).then(async () => await this.writing(dir, async () => {
      const before = await sizeOf(path)
      let after: number | undefined
      try {
        after = await change()
      } catch (err: unknown) {
        this.invalidate()
        throw err
      }
      if (before === undefined && after === undefined) return
      this.note({ kind, count: before === undefined ? 1 : after === undefined ? -1 : 0, bytes: (after ?? 0) - (before ?? 0), dir })
    }))
    const settled = run.catch(() => { /* its failure reaches the caller below, through `run` */ })
    this.busy.set(path, settled)
    try {
      await run
    } finally {
      if (this.busy.get(path) === settled) this.busy.delete(path)
    }
  }

  /** The count: the last walk's plus the changes since, or a new walk when that one is too old. */
  async usage (): Promise<StoreUsage> {
    while (this.counted === undefined || this.now() - this.countedAt >= this.recountMs) {
      const w = this.walk ?? this.startWalk()
      let walked: Counts
      try {
        walked = await w.done
      } finally {
        if (this.walk === w) this.walk = undefined
      }
      // a walk that started before an invalidate() is not taken: the loop starts another
      if (w.epoch !== this.epoch) continue
      // a second caller of the same walk keeps what the first took and what was noted since
      if (this.countedBy !== w) {
        const c = { ...walked }
        // a change the walk cannot have seen: made after it read the directory, or in a directory it
        // never read (one made after it listed the prefixes: everything in it is new)
        for (const { change, after } of w.changes) if (after || !w.listed.has(change.dir)) apply(c, change)
        this.counted = c
        this.countedAt = w.startedAt
        this.countedBy = w
      }
    }
    return { ...this.counted }
  }

  /**
   * Runs a write or delete of an object in `dir` (a share's prefix directory, or RECORDS_DIR), never
   * while a walk reads that directory. The change is to be noted before `fn` returns.
   */
  async writing<T> (dir: string, fn: () => Promise<T>): Promise<T> {
    while (this.reading?.dir === dir) await this.reading.done
    this.writers.set(dir, (this.writers.get(dir) ?? 0) + 1)
    try {
      return await fn()
    } finally {
      const left = (this.writers.get(dir) ?? 1) - 1
      if (left > 0) this.writers.set(dir, left)
      else {
        this.writers.delete(dir)
        if (this.drained?.dir === dir) this.drained.resolve()
      }
    }
  }

  /** Reads one directory for a walk, alone: after the writes in flight there, before any new one. */
  private async read<T> (dir: string, fn: () => Promise<T>): Promise<T> {
    let release = (): void => {}
    this.reading = { dir, done: new Promise<void>(resolve => { release = resolve }) }
    try {
      if ((this.writers.get(dir) ?? 0) > 0) await new Promise<void>(resolve => { this.drained = { dir, resolve } })
      this.drained = undefined
      return await fn()
    } finally {
      this.reading = undefined
      release()
    }
  }

  /** A write or delete that succeeded. */
  note (change: UsageChange): void {
    if (this.counted !== undefined) apply(this.counted, change)
    const w = this.walk
    if (w !== undefined && w.epoch === this.epoch) w.changes.push({ change, after: w.listed.has(change.dir) })
  }

  /** Forget the count: the next usage() walks (the folder changed behind the store's back, or a write's outcome is unknown). */
  invalidate (): void {
    this.counted = undefined
    this.epoch++
  }

  private startWalk (): Walk {
    const listed = new Set<string>()
    const w: Walk = { epoch: this.epoch, startedAt: this.now(), listed, changes: [], done: this.walkDirs(listed) }
    this.walk = w
    return w
  }

  /** Counts what the directories hold, adding each to `listed` once it is read. */
  private async walkDirs (listed: Set<string>): Promise<Counts> {
    const out = empty()
    for (const prefix of await names(this.sharesDir)) {
      if (!PREFIX_RE.test(prefix)) continue
      const dir = join(this.sharesDir, prefix)
      await this.read(prefix, async () => {
        const files = (await names(dir)).filter(n => parseShareFileName(prefix, n) !== undefined)
        for (const s of await Promise.all(files.map(async n => await sizeOf(join(dir, n))))) if (s !== undefined) { out.shares++; out.bytes += s }
        listed.add(prefix)
      })
    }
    await this.read(RECORDS_DIR, async () => {
      const records = (await names(this.recordsDir)).filter(n => RECORD_NAME_RE.test(n))
      for (const s of await Promise.all(records.map(async n => await sizeOf(join(this.recordsDir, n))))) if (s !== undefined) { out.records++; out.recordBytes += s }
      listed.add(RECORDS_DIR)
    })
    return out
  }
}

function empty (): Counts { return { shares: 0, bytes: 0, records: 0, recordBytes: 0 } }

function apply (c: Counts, change: UsageChange): void {
  if (change.kind === 'share') {
    c.shares = Math.max(0, c.shares + change.count)
    c.bytes = Math.max(0, c.bytes + change.bytes)
  } else {
    c.records = Math.max(0, c.records + change.count)
    c.recordBytes = Math.max(0, c.recordBytes + change.bytes)
  }
}

async function names (dir: string): Promise<string[]> {
  try {
    return await readdir(dir)
  } catch (err: unknown) {
    if (isMissing(err)) return []
    throw err
  }
}

/** The size of a file, or undefined when it is not there (gone while we walked). */
export async function sizeOf (path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size
  } catch (err: unknown) {
    if (isMissing(err)) return undefined
    throw err
  }
}
