/**
 * `demo`: a self-contained friend group on loopback (node/demo.ts): back up, lose peers, restore,
 * verify, report. Needs no home of its own. Exit 0 only if the restore was verified byte-exact.
 */
import type { Command } from 'commander'
import { CorruptDataError } from '../../errors.js'
import { ExitCode } from '../exit-codes.js'
import { print, printJson } from '../io.js'
import type { CommandContext } from '../context.js'

/**
 * `setExit` (as backup and restore take it) lets a failed demo still print its JSON report and exit 1;
 * without it a failure is thrown (exit 1, with main's error message instead of the JSON report).
 */
export function registerDemo (program: Command, ctx: () => CommandContext, setExit?: (code: number) => void): void {
  program.command('demo')
    .description('a 5-node friend group on 127.0.0.1 in a temp dir: back up a sample folder, stop two nodes, restore, verify, report')
    .option('--keep', 'keep the temp dir (the five homes, the sample and the restore) and print its path')
    .action(async (opts: { keep?: boolean }) => {
      const c = ctx()
      const { runDemo } = await import('../../node/demo.js')
      const report = await runDemo({
        keep: opts.keep === true,
        backend: c.homeOptions().backend ?? 'sodium-native',
        ...(c.io.signal !== undefined ? { signal: c.io.signal } : {}),
        ...(c.json ? {} : { onStory: (line: string) => { print(c.io, line) } })
      })
      if (!report.verified && setExit === undefined) throw new CorruptDataError(`the demo failed: ${report.error ?? 'the restored tree differs from the sample'}`)
      if (c.json) printJson(c.io, report)
      if (!report.verified) setExit?.(ExitCode.ERROR)
    })
}
