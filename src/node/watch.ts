/**
 * Continuous mode's watcher (docs/cli.md `publish --watch`): recursive fs.watch on each published
 * folder, paths collected until the folders have been quiet for the quiet period (or, under
 * constant change, for at most ten quiet periods), then handed over as one batch.
 *
 * Events are hints, never the truth: a watcher that fails (inotify's watch limit, a folder
 * replaced) is reported and the next batch is a full run; the daemon's `--every` schedule stays a
 * full run as a safety net for events the kernel dropped.
 */
import { watch, type FSWatcher } from 'node:fs'
import { join } from 'node:path'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('watch')

/** A batch: the changed paths, or 'full' when something may have been missed. */
export type WatchBatch = { kind: 'changed', paths: string[] } | { kind: 'full', reason: string, /** when a full run became owed: a full run started later covers it */ since: number, /** what changed meanwhile (a full run that started earlier does not cover these) */ paths: string[] }

export interface FolderWatcherOptions {
  quietMs: number
  /** called with each batch; the watcher keeps collecting while it runs */
  onBatch: (batch: WatchBatch) => void
  /** the clock full-run reasons are dated with @default Date.now */
  now?: () => number
  /** for tests: a timer that can be driven @default setTimeout */
  setTimer?: (fn: () => void, ms: number) => { clear: () => void }
}

export class FolderWatcher {
  private readonly watchers: FSWatcher[] = []
  private pending = new Set<string>()
  /** a full run is owed (the start, a failed watcher, an event without a name) */
  private full: { reason: string, since: number } | null
  private readonly now: () => number
  private quietTimer: { clear: () => void } | undefined
  private firstEventAt: number | undefined
  private readonly setTimer: NonNullable<FolderWatcherOptions['setTimer']>
  /** why watching does not work (shown by `status`), null while it does */
  failure: string | null = null

  constructor (readonly paths: readonly string[], private readonly opts: FolderWatcherOptions) {
    // what changed while nobody watched is unknown: the first batch is a full run
    this.now = opts.now ?? Date.now
    this.full = { reason: 'the watcher started', since: this.now() }
    this.setTimer = opts.setTimer ?? ((fn, ms) => { const t = setTimeout(fn, ms); t.unref(); return { clear: () => clearTimeout(t) } })
  }

  start (): void {
    for (const root of this.paths) {
      try {
        const w = watch(root, { recursive: true, persistent: false }, (_event, name) => {
          if (name === null) this.note(null, `an event in ${root} without a name`)
          else this.note(join(root, name.toString()), null)
        })
        w.on('error', (err) => { this.fail(root, err) })
        this.watchers.push(w)
      } catch (err: unknown) {
        this.fail(root, err)
      }
    }
    this.schedule()
  }

  private fail (root: string, err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code
    this.failure = code === 'ENOSPC'
      ? `watching ${root} ran out of inotify watches (raise fs.inotify.max_user_watches); changes are found by the scheduled full runs only`
      : `watching ${root} failed: ${errorMessage(err)}; changes are found by the scheduled full runs only`
    log.error(this.failure)
    this.note(null, this.failure)
  }

  private note (path: string | null, fullReason: string | null): void {
    if (path !== null) this.pending.add(path)
    if (fullReason !== null) this.full ??= { reason: fullReason, since: this.now() }
    this.firstEventAt ??= Date.now()
    this.schedule()
  }

  /** The batch goes after `quietMs` without events, and no later than ten quiet periods after the first. */
  private schedule (): void {
    this.quietTimer?.clear()
    const waited = this.firstEventAt === undefined ? 0 : Date.now() - this.firstEventAt
    const wait = Math.max(0, Math.min(this.opts.quietMs, 10 * this.opts.quietMs - waited))
    this.quietTimer = this.setTimer(() => { this.flush() }, wait)
  }

  private flush (): void {
    this.quietTimer = undefined
    this.firstEventAt = undefined
    if (this.full === null && this.pending.size === 0) return
    const batch: WatchBatch = this.full !== null ? { kind: 'full', ...this.full, paths: [...this.pending] } : { kind: 'changed', paths: [...this.pending] }
    this.full = null
    this.pending = new Set()
    log('batch: %s', batch.kind === 'full' ? `a full run (${batch.reason})` : `${batch.paths.length} changed path(s)`)
    this.opts.onBatch(batch)
  }

  /** A batch that could not be backed up: its paths join the next one. */
  giveBack (batch: WatchBatch): void {
    if (batch.kind === 'full') this.full ??= { reason: batch.reason, since: batch.since }
    for (const p of batch.paths) this.pending.add(p)
    this.note(null, null)
  }

  close (): void {
    this.quietTimer?.clear()
    for (const w of this.watchers.splice(0)) w.close()
  }
}
