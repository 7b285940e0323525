/** `backup PATH...`: one snapshot, a summary, exit 3 when some files were unreadable. */
import { Option, type Command } from 'commander'
import { join } from 'node:path'
import type { SingleBar } from 'cli-progress'
import type { BackupProgress } from '../../backup/index.js'
import { formatId, shortId } from '../../ids.js'
import { InvalidArgumentError, errorMessage } from '../../errors.js'
import { readFile } from 'node:fs/promises'
import { ExitCode } from '../exit-codes.js'
import { formatBytes, formatDuration, print, printErr, printJson } from '../io.js'
import { preloaded, type CommandContext } from '../context.js'
import { VERSION } from '../version.js'
import { parseDuration } from '../../repo/retention.js'
import { describePlacement, type PlacementSummary } from '../../repo/placement-tally.js'

/** A home in no group keeps every pack on this disk (the embedded default). */
function localPlacement (packs: number): PlacementSummary {
  return { packs, schemes: [], people: 0, local: packs, ownCopies: 0, localReason: packs > 0 ? 'this home is in no group, so backups stay on this disk (p2pbak group create NAME, or join CODE)' : null, recordPeople: null, transfers: null }
}

interface BackupFlags { tag: string[], exclude: string[], host?: string, preHook?: string, postHook?: string, hookTimeout?: string, job?: string, changedFrom?: string }
const collect = (v: string, prev: string[]): string[] => [...prev, v]

export function registerBackup (program: Command, ctx: () => CommandContext, setExit: (code: number) => void): void {
  program.command('backup')
    .description('back up files and directories into a new snapshot')
    .argument('<path...>', 'files or directories to back up')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', collect, [])
    .option('--exclude <glob>', 'skip matching names (no "/") or absolute paths (with "/"); repeatable', collect, [])
    .option('--host <name>', 'host name recorded in the snapshot')
    .option('--pre-hook <command>', 'a shell command run before the backup (a database dump, a file-system snapshot); if it fails, the backup is skipped')
    .option('--post-hook <command>', 'a shell command run after the backup, also when it failed; P2PBAK_OUTCOME says how it went')
    .option('--hook-timeout <duration>', 'a hook still running after this is killed (default 10min)')
    .option('--changed-from <file>', 'only these paths changed (one absolute path per line) since the latest snapshot of the same paths: the rest is taken from it without being read (continuous mode)')
    .addOption(new Option('--job <name>', 'the job this backup is (the daemon\'s schedule runs `publish`)').choices(['backup', 'publish']).default('backup').hideHelp())
    .action(async (paths: string[], flags: BackupFlags) => {
      const c = ctx()
      if (paths.length === 0) throw new InvalidArgumentError('name at least one path to back up')
      const hookTimeoutMs = flags.hookTimeout !== undefined ? parseDuration(flags.hookTimeout) : undefined
      if (hookTimeoutMs !== undefined && !(hookTimeoutMs >= 1000)) throw new InvalidArgumentError(`--hook-timeout takes a duration of at least 1s, like 30s or 10min; got "${flags.hookTimeout ?? ''}"`)
      const changed = flags.changedFrom !== undefined ? await readChangedList(flags.changedFrom) : undefined
      // the backup pipeline, the store and the hooks load only for this command
      const modules = preloaded(async () => await Promise.all([
        import('../../store/index.js'), import('../../node/backup-job.js'), import('../../node/hooks.js')
      ]))
      const home = await c.openHome(modules)
      const [{ acquireLock }, { runBackupJob }, { describeHook, hookSucceeded }] = await modules()
      let lock
      try {
        lock = acquireLock(join(c.homeDir, 'lock'), 'backup')
      } catch (err: unknown) {
        await home.close()
        throw err
      }
      const bar = !c.json && c.io.stderr.isTTY === true ? await ProgressView.create(c) : undefined
      try {
        const { summary, placement, hooks, reportPath } = await runBackupJob(home, {
          paths,
          tags: flags.tag,
          excludes: flags.exclude,
          job: flags.job === 'publish' ? 'publish' : 'backup',
          ...(flags.host !== undefined ? { host: flags.host } : {}),
          ...(flags.preHook !== undefined ? { preHook: flags.preHook } : {}),
          ...(flags.postHook !== undefined ? { postHook: flags.postHook } : {}),
          ...(hookTimeoutMs !== undefined ? { hookTimeoutMs } : {}),
          ...(changed !== undefined ? { changed } : {}),
          ...(c.io.signal !== undefined ? { signal: c.io.signal } : {}),
          program: `p2pbak ${VERSION}`,
          localPlacement,
          onItemError: e => { if (!c.json) { bar?.clear(); printErr(c.io, `error: ${e.path}: ${e.error}`) } },
          ...(bar !== undefined ? { onProgress: (p: BackupProgress) => bar.update(p) } : {})
        })
        bar?.stop()
        const out = {
          snapshotId: formatId(summary.snapshotId),
          filesNew: summary.filesNew,
          filesChanged: summary.filesChanged,
          filesUnchanged: summary.filesUnchanged,
          dirs: summary.dirs,
          others: summary.others,
          bytesRead: summary.bytesRead,
          bytesProcessed: summary.bytesProcessed,
          bytesAdded: summary.bytesAdded,
          rawBytesAdded: summary.rawBytesAdded,
          blobsAdded: summary.blobsAdded,
          durationMs: summary.durationMs,
          dirsReused: summary.dirsReused,
          changedDuringBackup: summary.changedDuringBackup,
          errors: summary.errors,
          placement,
          hooks,
          report: reportPath
        }
        if (c.json) {
          printJson(c.io, out)
        } else {
          const secs = Math.max(summary.durationMs, 1) / 1000
          if (hooks.pre !== null) print(c.io, `pre-hook ${describeHook(hooks.pre)} (${formatDuration(hooks.pre.durationMs)})`)
          print(c.io, `files: ${summary.filesNew} new, ${summary.filesChanged} changed, ${summary.filesUnchanged} unchanged; ${summary.dirs} dirs${summary.dirsReused > 0 ? ` (${summary.dirsReused} unchanged folder(s) taken from the last snapshot without reading them)` : ''}`)
          print(c.io, `read ${formatBytes(summary.bytesRead)} of ${formatBytes(summary.bytesProcessed)}, added ${formatBytes(summary.bytesAdded)} to the store (${formatBytes(summary.rawBytesAdded)} before compression)`)
          print(c.io, `took ${formatDuration(summary.durationMs)} (${formatBytes(summary.bytesProcessed / secs)}/s)`)
          for (const p of summary.changedDuringBackup) print(c.io, `warning: ${p} changed while it was read; the snapshot holds the last version read`)
          if (summary.errors.length > 0) print(c.io, `${summary.errors.length} item(s) could not be read (listed above); the snapshot was written without them`)
          for (const line of describePlacement(placement)) print(c.io, line)
          print(c.io, `snapshot ${shortId(summary.snapshotId)} saved${placement.local > 0 && placement.local < placement.packs ? ' (partly on this disk only: the daemon moves those packs to friends when they answer)' : placement.local > 0 && home.group !== undefined ? ' (on this disk only for now: the daemon moves it to friends when they answer)' : ''}`)
          if (hooks.post !== null && !hookSucceeded(hooks.post)) printErr(c.io, `warning: the post-hook ${describeHook(hooks.post)}; its output is in \`p2pbak report\``)
        }
        if (summary.errors.length > 0) setExit(ExitCode.INCOMPLETE)
      } finally {
        bar?.stop()
        lock.release()
        await home.close()
      }
    })
}

/** `--changed-from FILE`: absolute paths, one per line (a NUL also separates: names may hold newlines). */
async function readChangedList (file: string): Promise<string[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: unknown) {
    throw new InvalidArgumentError(`--changed-from: cannot read ${file}: ${errorMessage(err)}`)
  }
  const paths = text.split(/[\n\0]/).filter(p => p !== '')
  const relative = paths.find(p => !p.startsWith('/'))
  if (relative !== undefined) throw new InvalidArgumentError(`--changed-from: every path must be absolute, got "${relative}"`)
  return paths
}

class ProgressView {
  private started = false
  private last = 0

  private constructor (private readonly bar: SingleBar) {}

  /** The bar's module loads only when a terminal shows it. */
  static async create (c: CommandContext): Promise<ProgressView> {
    const { default: cliProgress } = await import('cli-progress')
    return new ProgressView(new cliProgress.SingleBar({
      stream: c.io.stderr as NodeJS.WriteStream,
      format: '{bar} {percentage}% | {doneBytes} of {totalBytes} | {rate}/s | ETA {eta_formatted} | {files} files',
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50
    }, cliProgress.Presets.shades_classic))
  }

  update (p: BackupProgress): void {
    const now = Date.now()
    if (now - this.last < 200) return
    const elapsed = this.started ? (now - this.t0) / 1000 : 0
    const payload = { doneBytes: formatBytes(p.bytesDone), totalBytes: p.scanDone ? formatBytes(p.bytesTotal) : `${formatBytes(p.bytesTotal)}+`, rate: formatBytes(elapsed > 0 ? p.bytesDone / elapsed : 0), files: p.filesDone }
    if (!this.started) {
      this.t0 = now
      this.bar.start(Math.max(p.bytesTotal, 1), p.bytesDone, payload)
      this.started = true
    }
    this.bar.setTotal(Math.max(p.bytesTotal, p.bytesDone, 1))
    this.bar.update(p.bytesDone, payload)
    this.last = now
  }

  private t0 = 0
  clear (): void { if (this.started) this.bar.stop(); this.started = false }
  stop (): void { if (this.started) this.bar.stop(); this.started = false }
}
