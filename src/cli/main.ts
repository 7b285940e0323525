/**
 * The command line. `main(argv, io)` runs one command in-process and returns its exit code; only
 * bin/p2pbak.js touches the real process. docs/cli.md is the contract.
 *
 * Start-up (docs/benchmarks.md "Start-up and small commands"): this module loads almost nothing. A
 * command handed to the daemon needs only the control socket's client; otherwise program.ts builds the
 * commander program, whose command modules load only small modules of ours. What a command needs
 * beyond that (libsodium, lmdb, the repository, libp2p) is imported inside its action, so `--help`,
 * a usage error or a forwarded command never load it. test/unit/cli/startup.spec.ts checks this.
 */
import { stat } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { ExitCode, exitCodeFor } from './exit-codes.js'
import { InvalidConfigError, isP2pbakError } from '../errors.js'
import type { DaemonServices } from './context.js'
import { printErr, type CliIo } from './io.js'
import { DATA_COMMANDS, LOCAL_ONLY, commandOf } from './routing.js'

export { exitCodeFor }

export async function main (argv: readonly string[], io: CliIo, daemon?: DaemonServices): Promise<number> {
  let memory: { stop: () => void } | undefined
  if (daemon === undefined) {
    // before building the program: a forwarded command needs none of it
    let forwarded: number | undefined
    try {
      forwarded = await maybeForward(argv, io)
    } catch (err: unknown) {
      // a home or socket that is not this user's alone: refused before anything is sent
      if (!isP2pbakError(err)) throw err
      printErr(io, `p2pbak: ${err.message}`)
      return exitCodeFor(err)
    }
    if (forwarded !== undefined) return forwarded
    const command = commandOf(argv)
    // a daemon runs for months: its young generation stays small from the start (process-memory.ts);
    // the daemon's action sets the rest
    if (command === 'daemon') (await import('./process-memory.js')).limitYoungGeneration()
    // a backup or restore in this process: the same settings, for as long as the command runs
    else if (command !== undefined && DATA_COMMANDS.has(command) && !isHelp(argv)) memory = await (await import('./process-memory.js')).tuneProcessMemory()
  } else {
    // the daemon never runs what creates an identity or another daemon, whoever sends it
    const command = commandOf(argv)
    if (command !== undefined && LOCAL_ONLY.has(command)) {
      printErr(io, `p2pbak: \`${command}\` does not run inside the daemon; stop the daemon of this home first, or use another --home`)
      return ExitCode.USAGE
    }
  }
  const { runProgram } = await import('./program.js')
  try {
    return await runProgram(argv, io, daemon, main)
  } finally {
    memory?.stop()
  }
}

function isHelp (argv: readonly string[]): boolean {
  return argv.some(a => a === '--help' || a === '-h')
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
  const socket = join(home, 'daemon.sock')
  // no socket file, no daemon: the client side of the control socket is not even loaded; a home
  // another user may write, or a socket this user does not own, is never talked to (home-guard.ts)
  if (!await stat(socket).then(s => s.isSocket(), () => false)) return undefined
  const { assertPrivateHome, ownSocket } = await import('../node/home-guard.js')
  await assertPrivateHome(home, { rootMayUseOthers: true })
  if (!await ownSocket(socket, (await stat(home)).uid)) throw new InvalidConfigError(`${socket} is not a socket this user owns: it is not this user's daemon. Remove it (\`rm ${socket}\`) and try again`)
  const { forwardToDaemon } = await import('../node/control.js')
  // relative paths in the command mean the caller's directory, not the daemon's
  return await forwardToDaemon(socket, argv, io.env, io.stdout, io.stderr, io.cwd, io.signal)
}
