/**
 * The command line. `main(argv, io)` runs one command in-process and returns its exit code; only
 * bin/p2pbak.js touches the real process. docs/cli.md is the contract.
 */
import { Command, CommanderError } from 'commander'
import { isP2pbakError, errorMessage, PlacementFailedError, type ErrorCode } from '../errors.js'
import { ExitCode } from './exit-codes.js'
import { makeContext, type CommandContext, type DaemonServices, type GlobalOptions } from './context.js'
import { printErr, printJson, type CliIo } from './io.js'
import { VERSION } from './version.js'
import { printable } from '../util/text.js'
import { LOCAL_ONLY, commandOf } from './routing.js'
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
import { forwardToDaemon } from '../node/control.js'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

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

export async function main (argv: readonly string[], io: CliIo, daemon?: DaemonServices): Promise<number> {
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
  registerDaemon(program, ctx, main)
  registerStatus(program, ctx)
  registerReport(program, ctx)
  registerNotify(program, ctx)
  registerDemo(program, ctx, setExit)
  registerService(program, ctx)
  for (const c of program.commands) c.exitOverride().configureOutput({ writeOut: s => io.stdout.write(s), writeErr: s => io.stderr.write(s) })

  if (daemon === undefined) {
    const forwarded = await maybeForward(argv, io)
    if (forwarded !== undefined) return forwarded
  } else {
    // the daemon never runs what creates an identity or another daemon, whoever sends it
    const command = commandOf(argv)
    if (command !== undefined && LOCAL_ONLY.has(command)) {
      printErr(io, `p2pbak: \`${command}\` does not run inside the daemon; stop the daemon of this home first, or use another --home`)
      return ExitCode.USAGE
    }
  }
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

/** Hands the command to this home's daemon when one runs (HOME/daemon.sock answers). */
async function maybeForward (argv: readonly string[], io: CliIo): Promise<number | undefined> {
  let homeArg: string | undefined
  let command: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string
    if (a === '--home') { homeArg = argv[++i]; continue }
    if (a.startsWith('--home=')) { homeArg = a.slice(7); continue }
    if (a === '--help' || a === '-h' || a === '--version' || a === '-V') return undefined
    if (!a.startsWith('-') && command === undefined) command = a
  }
  if (command === undefined || LOCAL_ONLY.has(command)) return undefined
  const home = resolve(homeArg ?? io.env.P2PBAK_HOME ?? join(homedir(), '.p2pbak'))
  // relative paths in the command mean the caller's directory, not the daemon's
  return await forwardToDaemon(join(home, 'daemon.sock'), argv, io.env, io.stdout, io.stderr, io.cwd, io.signal)
}
