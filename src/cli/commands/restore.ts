/** `restore SNAP --target DIR`: byte-exact with metadata; exit 1 naming the files that could not be restored. */
import type { Command } from 'commander'
import { formatId, shortId } from '../../ids.js'
import { ExitCode } from '../exit-codes.js'
import { formatBytes, formatDuration, print, printErr, printJson } from '../io.js'
import { preloaded, type CommandContext } from '../context.js'

const collect = (v: string, prev: string[]): string[] => [...prev, v]

export function registerRestore (program: Command, ctx: () => CommandContext, setExit: (code: number) => void): void {
  program.command('restore')
    .description('restore a snapshot (or parts of it) into a directory')
    .argument('<snapshot>', 'snapshot id (or unique prefix) or "latest"')
    .requiredOption('--target <dir>', 'directory to restore into (paths are recreated below it)')
    .option('--include <path>', 'restore only this path of the snapshot (repeatable)', collect, [])
    .option('--delta', 'reuse data already present in files at the target instead of reading it from the store')
    .action(async (ref: string, opts: { target: string, include: string[], delta?: boolean }) => {
      const c = ctx()
      const modules = preloaded(async () => await Promise.all([import('../../backup/restorer.js'), import('../../repo/index.js')]))
      const home = await c.openHome(modules)
      try {
        home.requireFullKey('restore')
        const [{ Restorer }, { resolveSnapshot }] = await modules()
        const { snapshots } = (await home.syncIndex()).head
        const snap = resolveSnapshot(snapshots, ref)
        const restorer = new Restorer(home.repo, home.cdc)
        if (restorer.dirAccess === 'path') {
          printErr(c.io, 'warning: without the native addon and /proc, restore resolves names by path: someone else who can write into the target could redirect it; restore into a directory only you can write (docs/threat-model.md §6)')
        }
        const summary = await restorer.run(snap.record.tree, {
          target: opts.target,
          includes: opts.include,
          delta: opts.delta === true,
          restoreOwner: typeof process.getuid === 'function' && process.getuid() === 0,
          ...(c.io.signal !== undefined ? { signal: c.io.signal } : {}),
          onItemError: e => { if (!c.json) printErr(c.io, `error: ${e.path}: ${e.error}`) }
        })
        if (c.json) {
          printJson(c.io, { snapshotId: formatId(snap.id), ...summary })
        } else {
          print(c.io, `restored snapshot ${shortId(snap.id)} to ${opts.target}: ${summary.files} files, ${summary.dirs} dirs, ${summary.symlinks} symlinks, ${formatBytes(summary.bytesWritten)} written${summary.bytesReused > 0 ? `, ${formatBytes(summary.bytesReused)} reused` : ''} in ${formatDuration(summary.durationMs)}`)
        }
        if (summary.errors.length > 0) {
          if (!c.json) printErr(c.io, `p2pbak: ${summary.errors.length} item(s) could not be restored (listed above); everything else was restored`)
          setExit(ExitCode.ERROR)
        }
      } finally {
        await home.close()
      }
    })
}
