/**
 * The command line. `main(argv, io)` runs one command in-process and returns its exit code; only
 * bin/p2pbak.js touches the real process. docs/cli.md is the contract.
 */
import { Command, CommanderError } from 'commander'
import { isP2pbakError, errorMessage, type ErrorCode } from '../errors.js'
import { ExitCode } from './exit-codes.js'
import { makeContext, type CommandContext, type GlobalOptions } from './context.js'
import { printErr, printJson, type CliIo } from './io.js'
import { VERSION } from './version.js'
import { registerInit } from './commands/init.js'
import { registerBackup } from './commands/backup.js'
import { registerInspect } from './commands/inspect.js'
import { registerRestore } from './commands/restore.js'
import { registerCheck } from './commands/check.js'
import { registerForget } from './commands/forget.js'

const EXIT_FOR_CODE: Partial<Record<ErrorCode, number>> = {
  ERR_NO_REPOSITORY: ExitCode.NO_REPOSITORY,
  ERR_WRONG_PASSPHRASE: ExitCode.WRONG_PASSPHRASE,
  ERR_LOCKED: ExitCode.LOCKED,
  ERR_ABORTED: ExitCode.CANCELLED,
  ERR_INVALID_ARGUMENT: ExitCode.USAGE
}

export function exitCodeFor (err: unknown): number {
  if (isP2pbakError(err)) return EXIT_FOR_CODE[err.code] ?? ExitCode.ERROR
  if (err instanceof Error && err.name === 'AbortError') return ExitCode.CANCELLED
  return ExitCode.ERROR
}

export async function main (argv: readonly string[], io: CliIo): Promise<number> {
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
  const ctx = (): CommandContext => makeContext(io, program.opts<GlobalOptions>())
  registerInit(program, ctx)
  registerBackup(program, ctx, setExit)
  registerInspect(program, ctx)
  registerRestore(program, ctx, setExit)
  registerCheck(program, ctx, setExit)
  registerForget(program, ctx)
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
      printErr(io, `p2pbak: ${err.message}`)
    } else if (code === ExitCode.CANCELLED) {
      printErr(io, 'p2pbak: cancelled')
    } else {
      // not one of ours: a bug or an unexpected system error; show everything
      printErr(io, `p2pbak: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    }
    return code
  }
}
