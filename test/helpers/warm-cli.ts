/**
 * The built CLI (dist/) in a child process that has already loaded every module and waits for its
 * command: tests that kill a command at a random moment time the kill from the command's start, not
 * from Node loading code (about a second that no kill moment should be spent on), and the next child
 * can load while the test checks the last one's results.
 *
 * The child runs main(argv, io) with its own stdio and environment, exactly as bin/p2pbak.js does
 * (less the SIGINT handler); it exits with main's exit code.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { TEST_ENV } from './cli.js'

const POLYFILL = new URL('../../dist/util/polyfill.js', import.meta.url).href
const MAIN = new URL('../../dist/cli/main.js', import.meta.url).href
const LAUNCHER = fileURLToPath(new URL('./warm-cli-child.mjs', import.meta.url))

export interface WarmRun {
  /** exit code, or null when killed by a signal */
  code: number | null
  signal: NodeJS.Signals | null
  /** ms from the command's start to its exit */
  ms: number
  stdout: string
  stderr: string
}

export class WarmCliError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'WarmCliError'
  }
}

export class WarmCli {
  private readonly out: Buffer[] = []
  private readonly err: Buffer[] = []
  private readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  private started = 0

  private constructor (private readonly child: ChildProcess, readonly ready: Promise<void>) {
    child.stdout?.on('data', (b: Buffer) => this.out.push(b))
    child.stderr?.on('data', (b: Buffer) => this.err.push(b))
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  }

  /** Starts a child with `env` added to this process's environment; it loads the CLI and waits. */
  static spawn (env: Record<string, string>): WarmCli {
    const child = fork(LAUNCHER, [POLYFILL, MAIN], { env: { ...process.env, ...TEST_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], execArgv: [] })
    const ready = new Promise<void>((resolve, reject) => {
      child.once('message', (m: unknown) => { if (m === 'ready') resolve(); else reject(new WarmCliError(`unexpected message from the warm CLI: ${String(m)}`)) })
      child.once('exit', (code, signal) => reject(new WarmCliError(`the warm CLI exited before it was ready (${code ?? signal ?? '?'})`)))
    })
    // a rejection nobody awaits yet (the child may die while the test is busy elsewhere) is handled at run()
    ready.catch(() => {})
    return new WarmCli(child, ready)
  }

  /**
   * Runs `argv` and, when `killAtMs` is given, kills the child with SIGKILL that many ms after the
   * command started (unless it ended first). A run that outlives `deadlineMs` is killed and throws.
   */
  async run (argv: string[], killAtMs?: number, deadlineMs = 60_000): Promise<WarmRun> {
    await this.ready
    this.started = performance.now()
    this.child.send({ argv })
    const killer = killAtMs !== undefined ? setTimeout(() => this.child.kill('SIGKILL'), killAtMs) : undefined
    let hung = false
    const guard = setTimeout(() => { hung = true; this.child.kill('SIGKILL') }, deadlineMs)
    const { code, signal } = await this.exited
    const ms = performance.now() - this.started
    clearTimeout(killer)
    clearTimeout(guard)
    if (hung) throw new WarmCliError(`p2pbak ${argv.join(' ')} did not finish within ${deadlineMs} ms`)
    return { code, signal, ms, stdout: Buffer.concat(this.out).toString(), stderr: Buffer.concat(this.err).toString() }
  }

  /** Stops a child that was never used. */
  async dispose (): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    this.child.kill('SIGKILL')
    await this.exited
  }
}
