/** `dump SNAP PATH`: one file to stdout byte for byte, or a folder as a tar stream (pax) for `tar -x`. */
import type { Command } from 'commander'
import { errnoCode, InvalidArgumentError } from '../../errors.js'
import { ExitCode } from '../exit-codes.js'
import { printErr } from '../io.js'
import { printable } from '../../util/text.js'
import { preloaded, type CommandContext } from '../context.js'

export function registerDump (program: Command, ctx: () => CommandContext, setExit: (code: number) => void): void {
  program.command('dump')
    .description('write a file of a snapshot to stdout, or a folder as a tar archive (e.g. | tar -x -C DIR)')
    .argument('<snapshot>', 'snapshot id (or unique prefix) or "latest"')
    .argument('<path>', 'absolute path inside the snapshot (as `ls` shows it); "/" for everything')
    .option('--tar', 'write a tar archive even when PATH is a single file')
    .action(async (ref: string, path: string, opts: { tar?: boolean }) => {
      const c = ctx()
      const modules = preloaded(async () => await Promise.all([import('../../backup/dump.js'), import('../../repo/index.js')]))
      const home = await c.openHome(modules)
      try {
        const [{ dump, dumpsTar, locate }, { resolveSnapshot }] = await modules()
        home.requireFullKey('read backups (dump)')
        const { snapshots } = (await home.syncIndex()).head
        const snap = resolveSnapshot(snapshots, ref)
        const where = await locate(home.repo, snap.record.tree, path)
        const tar = dumpsTar(where, { tar: opts.tar === true })
        if (tar && c.io.stdout.isTTY === true) {
          throw new InvalidArgumentError(`${path} is ${where.node === undefined || where.node.type === 'dir' ? 'a folder' : `a ${where.node.type}`}: dump writes it as a tar archive, which a terminal cannot show; pipe it (| tar -x -C DIR, | tar -t) or redirect it to a file`)
        }
        // Output already queued when the dump stops (cancelled, or a damaged file) is still being written;
        // if the reader then goes away, that late EPIPE must not crash the process: by then the exit
        // code is decided and said. Anything else is reported.
        c.io.stdout.on('error', (err: Error) => { if (errnoCode(err) !== 'EPIPE') printErr(c.io, `p2pbak: writing the output: ${err.message}`) })
        const summary = await dump(home.repo, where, c.io.stdout, {
          tar: opts.tar === true,
          ...(c.io.signal !== undefined ? { signal: c.io.signal } : {}),
          onItemError: e => printErr(c.io, `error: ${printable(e.path)}: ${printable(e.error)}`),
          onSkipped: (p, why) => printErr(c.io, `warning: ${printable(p)} left out: ${why}`)
        })
        if (summary.errors.length > 0) {
          printErr(c.io, `p2pbak: ${summary.errors.length} item(s) could not be read completely (listed above; unreadable parts are zeros in the archive)`)
          setExit(ExitCode.ERROR)
        }
      } finally {
        await home.close()
      }
    })
}
