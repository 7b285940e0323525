/** `backup PATH...`: one snapshot, a summary, exit 3 when some files were unreadable. */
import type { Command } from 'commander'
import { join } from 'node:path'
import { acquireLock } from '../../store/index.js'
import cliProgress from 'cli-progress'
import { Archiver, type BackupProgress } from '../../backup/index.js'
import { formatId, shortId } from '../../ids.js'
import { InvalidArgumentError } from '../../errors.js'
import { ExitCode } from '../exit-codes.js'
import { formatBytes, formatDuration, print, printErr, printJson } from '../io.js'
import type { CommandContext } from '../context.js'
import { VERSION } from '../version.js'
import { DEFAULT_GRACE_MS, describePlacement, type PlacementSummary } from '../../repo/index.js'

/** A home in no group keeps every pack on this disk (the embedded default). */
function localPlacement (packs: number): PlacementSummary {
  return { packs, schemes: [], people: 0, local: packs, localReason: packs > 0 ? 'this home is in no group, so backups stay on this disk (p2pbak group create NAME, or join CODE)' : null, recordPeople: null, transfers: null }
}

interface BackupFlags { tag: string[], exclude: string[], host?: string }
const collect = (v: string, prev: string[]): string[] => [...prev, v]

export function registerBackup (program: Command, ctx: () => CommandContext, setExit: (code: number) => void): void {
  program.command('backup')
    .description('back up files and directories into a new snapshot')
    .argument('<path...>', 'files or directories to back up')
    .option('--tag <tag>', 'tag the snapshot (repeatable)', collect, [])
    .option('--exclude <glob>', 'skip matching names (no "/") or absolute paths (with "/"); repeatable', collect, [])
    .option('--host <name>', 'host name recorded in the snapshot')
    .action(async (paths: string[], flags: BackupFlags) => {
      const c = ctx()
      if (paths.length === 0) throw new InvalidArgumentError('name at least one path to back up')
      const home = await c.openHome()
      let lock
      try {
        lock = acquireLock(join(c.homeDir, 'lock'), 'backup')
      } catch (err: unknown) {
        await home.close()
        throw err
      }
      const bar = !c.json && c.io.stderr.isTTY === true ? new ProgressView(c) : undefined
      // where this backup's packs go (friends, or this disk and why), for the summary
      const tally = home.group?.openTally()
      const packsBefore = home.repo.stats.packsAdded
      try {
        await home.syncIndex()
        const archiver = new Archiver({ repo: home.repo, cdc: home.cdc })
        const summary = await archiver.run({
          paths,
          tags: flags.tag,
          excludes: flags.exclude,
          ...(flags.host !== undefined ? { host: flags.host } : {}),
          ...(c.io.signal !== undefined ? { signal: c.io.signal } : {}),
          program: `p2pbak ${VERSION}`,
          // in a group the person's other devices prune the same packs (docs/gc.md §6)
          commit: { now: home.now, graceMs: home.group !== undefined ? DEFAULT_GRACE_MS : 0 },
          onItemError: e => { if (!c.json) { bar?.clear(); printErr(c.io, `error: ${e.path}: ${e.error}`) } },
          ...(bar !== undefined ? { onProgress: (p: BackupProgress) => bar.update(p) } : {})
        })
        bar?.stop()
        tally?.end()
        const placement: PlacementSummary = tally?.tally.summary() ?? localPlacement(home.repo.stats.packsAdded - packsBefore)
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
          changedDuringBackup: summary.changedDuringBackup,
          errors: summary.errors,
          placement
        }
        if (c.json) {
          printJson(c.io, out)
        } else {
          const secs = Math.max(summary.durationMs, 1) / 1000
          print(c.io, `files: ${summary.filesNew} new, ${summary.filesChanged} changed, ${summary.filesUnchanged} unchanged; ${summary.dirs} dirs`)
          print(c.io, `read ${formatBytes(summary.bytesRead)} of ${formatBytes(summary.bytesProcessed)}, added ${formatBytes(summary.bytesAdded)} to the store (${formatBytes(summary.rawBytesAdded)} before compression)`)
          print(c.io, `took ${formatDuration(summary.durationMs)} (${formatBytes(summary.bytesProcessed / secs)}/s)`)
          for (const p of summary.changedDuringBackup) print(c.io, `warning: ${p} changed while it was read; the snapshot holds the last version read`)
          if (summary.errors.length > 0) print(c.io, `${summary.errors.length} item(s) could not be read (listed above); the snapshot was written without them`)
          for (const line of describePlacement(placement)) print(c.io, line)
          print(c.io, `snapshot ${shortId(summary.snapshotId)} saved${placement.local > 0 && placement.local < placement.packs ? ' (partly on this disk only: the daemon moves those packs to friends when they answer)' : placement.local > 0 && home.group !== undefined ? ' (on this disk only for now: the daemon moves it to friends when they answer)' : ''}`)
        }
        if (summary.errors.length > 0) setExit(ExitCode.INCOMPLETE)
      } finally {
        tally?.end()
        bar?.stop()
        lock.release()
        await home.close()
      }
    })
}

class ProgressView {
  private readonly bar: cliProgress.SingleBar
  private started = false
  private last = 0

  constructor (c: CommandContext) {
    this.bar = new cliProgress.SingleBar({
      stream: c.io.stderr as NodeJS.WriteStream,
      format: '{bar} {percentage}% | {doneBytes} of {totalBytes} | {rate}/s | ETA {eta_formatted} | {files} files',
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50
    }, cliProgress.Presets.shades_classic)
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
