/**
 * What a {@link LocalShareStore} holds (shares, records and their bytes), counted once by walking its
 * directories and then kept up to date by the store's own writes and deletes, with a walk again every
 * {@link RECOUNT_MS}.
 *
 * Why: a persister's node asks for its usage at every refresh round (every 30 s by default, and before
 * each command it places or reads for). Walking 100,000 held shares took about 4 CPU seconds each time
 * (one `stat` per file), a steady load on the small box that is often a persister. The walk now comes
 * once per {@link RECOUNT_MS}; what happened between two walks is counted from the writes themselves.
 *
 * What the count can miss until the next walk: files added or removed by hand (a wiped folder), and a
 * write or delete that ran while a walk was passing its directory (the walk may or may not have seen
 * it, so the count may be off by that one object). The count is what the quota and the ledger read;
 * neither needs it exact to the byte.
 */
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import type { StoreUsage } from './share-store.js'
import { PREFIX_RE, RECORD_NAME_RE, isMissing, parseShareFileName } from './local-store-layout.js'

/** How long a count is trusted before the directories are walked again. */
export const RECOUNT_MS = 15 * 60_000

/** A change of one object: +1 or -1 of a share or record, and its bytes. */
export interface UsageChange { kind: 'share' | 'record', count: -1 | 0 | 1, bytes: number }

export class UsageTally {
  private counted: Required<StoreUsage> | undefined
  private countedAt = 0
  private walking: Promise<Required<StoreUsage>> | undefined
  private walkStartedAt = 0

  constructor (
    private readonly sharesDir: string,
    private readonly recordsDir: string,
    private readonly now: () => number = () => performance.now(),
    private readonly recountMs: number = RECOUNT_MS
  ) {}

  /** The count: the last walk's plus the changes since, or a new walk when that one is too old. */
  async usage (): Promise<StoreUsage> {
    if (this.counted === undefined || this.now() - this.countedAt >= this.recountMs) {
      this.walking ??= this.walk().finally(() => { this.walking = undefined })
      const fresh = await this.walking
      // changes made while the walk ran were added to the count it replaces: they are in the walk, or
      // (when it had passed their directory) counted at the next walk
      if (this.counted === undefined || this.countedAt < this.walkStartedAt) {
        this.counted = fresh
        this.countedAt = this.walkStartedAt
      }
    }
    return { ...this.counted }
  }

  /** A write or delete that succeeded (a no-op until the first walk: that walk will see it). */
  note (change: UsageChange): void {
    const c = this.counted
    if (c === undefined) return
    if (change.kind === 'share') {
      c.shares = Math.max(0, c.shares + change.count)
      c.bytes = Math.max(0, c.bytes + change.bytes)
    } else {
      c.records = Math.max(0, c.records + change.count)
      c.recordBytes = Math.max(0, c.recordBytes + change.bytes)
    }
  }

  /** Forget the count: the next usage() walks (the folder was changed behind the store's back). */
  invalidate (): void { this.counted = undefined }

  private async walk (): Promise<Required<StoreUsage>> {
    this.walkStartedAt = this.now()
    const out = { shares: 0, bytes: 0, records: 0, recordBytes: 0 }
    for (const prefix of await names(this.sharesDir)) {
      if (!PREFIX_RE.test(prefix)) continue
      const dir = join(this.sharesDir, prefix)
      const sizes = await Promise.all((await names(dir)).filter(n => parseShareFileName(prefix, n) !== undefined).map(async n => await sizeOf(join(dir, n))))
      for (const s of sizes) if (s !== undefined) { out.shares++; out.bytes += s }
    }
    const sizes = await Promise.all((await names(this.recordsDir)).filter(n => RECORD_NAME_RE.test(n)).map(async n => await sizeOf(join(this.recordsDir, n))))
    for (const s of sizes) if (s !== undefined) { out.records++; out.recordBytes += s }
    return out
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

/** The size of a file, or undefined when it went while we walked. */
export async function sizeOf (path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size
  } catch (err: unknown) {
    if (isMissing(err)) return undefined
    throw err
  }
}
