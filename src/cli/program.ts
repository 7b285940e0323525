/**
 * The commander program: every command registered, argv parsed and run, errors turned into messages
 * and exit codes (docs/cli.md). Loaded by main.ts once it knows the command runs in this process.
 */
import { Command, CommanderError } from 'commander'
import { isP2pbakError, errorMessage, PlacementFailedError } from '../errors.js'
import { ExitCode, exitCodeFor } from './exit-codes.js'
import { makeContext, type CommandContext, type DaemonServices, type GlobalOptions } from './context.js'
import { printErr, printJson, type CliIo } from './io.js'
import { VERSION } from './version.js'
import { printable } from '../util/text.js'
import { registerInit } from './commands/init.js'
import { registerBackup } from './commands/backup.js'
import { registerInspect } from './commands/inspect.js'
import { registerRestore } from './commands/restore.js'
import { registerCheck } from './commands/check.js'
import { registerForget } from './commands/forget.js'
import { registerGroup } from './commands/group.js'
import { registerDaemon } from './commands/daemon.js'
import { registerStatus } from './commands/status.js'
import { registerReport } from './commands/report.js'
import { registerNotify } from './commands/notify.js'
import { registerDemo } from './commands/demo.js'
import { registerDump } from './commands/dump.js'
import { registerService } from './commands/service.js'

/** `runInDaemon` is main itself: the daemon command runs the commands handed to it through it. */
export async function runProgram (argv: readonly string[], io: CliIo, daemon: DaemonServices | undefined, runInDaemon: (argv: string[], io: CliIo, services: DaemonServices) => Promise<number>): Promise<number> {
  let exitCode: number = ExitCode.OK
  const setExit = (code: number): void => { exitCode = code }
  const program = new Command()
  program.name('p2pbak')
    .description('peer-to-peer encrypted backup: dedup, compression, libsodium encryption; works locally until friends join')
    .version(VERSION)
    .option('--home <dir>', 'p2pbak home directory (default: $P2PBAK_HOME or ~/.p2pbak)')
    .option('--json', 'machine-readable output')
    .exitOverride()
    .configureOutput({ writeOut: s => io.stdout.write(s), writeErr: s => io.stderr.write(s) })
    .showHelpAfterError()
  const ctx = (): CommandContext => makeContext(io, program.opts<GlobalOptions>(), daemon)
  registerInit(program, ctx)
  registerBackup(program, ctx, setExit)
  registerInspect(program, ctx)
  registerRestore(program, ctx, setExit)
  registerDump(program, ctx, setExit)
  registerCheck(program, ctx, setExit)
  registerForget(program, ctx)
  registerGroup(program, ctx)
  registerDaemon(program, ctx, runInDaemon)
  registerStatus(program, ctx)
  registerReport(program, ctx)
  registerNotify(program, ctx)
  registerDemo(program, ctx, setExit)
  registerService(program, ctx)
  for (const c of program.commands) c.exitOverride().configureOutput({ writeOut: s => io.stdout.write(s), writeErr: s => io.stderr.write(s) })

  try {
    await program.parseAsync([...argv], { from: 'user' })
    return exitCode
  } catch (err: unknown) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE
    }
    const code = exitCodeFor(err)
    const json = program.opts<GlobalOptions>().json === true
    if (json) {
      printJson(io, { error: { code: isP2pbakError(err) ? err.code : 'ERR_INTERNAL', message: errorMessage(err) } })
    }
    if (isP2pbakError(err)) {
      // messages may carry a peer's words: no control characters reach the terminal
      printErr(io, `p2pbak: ${printable(err.message)}`)
      if (err instanceof PlacementFailedError) for (const e of err.errors) printErr(io, `  ${printable(e.peer)}: ${printable(e.error)}`)
    } else if (code === ExitCode.CANCELLED) {
      printErr(io, 'p2pbak: cancelled')
    } else {
      // not one of ours: a bug or an unexpected system error; show everything
      printErr(io, `p2pbak: unexpected error: ${printable(err instanceof Error ? (err.stack ?? err.message) : String(err))}`)
    }
    return code
  }
}
