/**
 * Pre- and post-hooks of a backup job (docs/cli.md "Hooks"): a shell command line run with the
 * job's paths and outcome in its environment, bounded by a timeout, its output kept for the job's
 * report. A pre-hook dumps a database or takes a file-system snapshot before the backup reads the
 * files; a post-hook releases it, or tells someone how the job went.
 */
import { spawn } from 'node:child_process'
import { errorMessage } from '../errors.js'
import { withoutSecrets } from './home-guard.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('hooks')

/** Output kept per hook (the end of it): enough to see why it failed, bounded for the report. */
export const HOOK_OUTPUT_BYTES = 64 * 1024
/** @default 10 minutes */
export const DEFAULT_HOOK_TIMEOUT_MS = 10 * 60_000

/** a backup's pre- or post-hook, or the notify command of an alert (alerts.ts) */
export type HookKind = 'pre' | 'post' | 'notify'

export interface HookResult {
  kind: HookKind
  command: string
  /** the exit code; null when it was killed (timeout, cancel) or could not start */
  exitCode: number | null
  /** the signal that ended it, if any */
  signal: string | null
  timedOut: boolean
  durationMs: number
  /** standard output and error, interleaved, the last HOOK_OUTPUT_BYTES of it */
  output: string
  /** why it could not start (no shell, no such directory) */
  error?: string
}

export interface HookOptions {
  /** P2PBAK_* variables for the hook, added to the daemon's or the CLI's environment */
  env: Record<string, string>
  cwd?: string
  timeoutMs?: number
  signal?: AbortSignal
  /** written to the command's standard input (then closed); none: stdin is /dev/null */
  input?: string
}

export function hookSucceeded (r: HookResult): boolean {
  return r.exitCode === 0 && !r.timedOut && r.error === undefined
}

/** In words: "exited 3", "timed out after 10 min", "could not start: …". */
export function describeHook (r: HookResult): string {
  if (r.error !== undefined) return `could not start: ${r.error}`
  if (r.timedOut) return `timed out after ${Math.round(r.durationMs / 1000)} s and was killed`
  if (r.exitCode === null) return `was killed by ${r.signal ?? 'a signal'}`
  return `exited ${r.exitCode}`
}

/**
 * Runs `command` with /bin/sh -c in its own process group, so a timeout or a cancel kills the whole
 * pipeline (a `pg_dump | gzip` leaves no orphan). Never throws: the result says what happened.
 */
export async function runHook (kind: HookKind, command: string, opts: HookOptions): Promise<HookResult> {
  const started = performance.now()
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HOOK_TIMEOUT_MS
  const result: HookResult = { kind, command, exitCode: null, signal: null, timedOut: false, durationMs: 0, output: '' }
  let output = Buffer.alloc(0)
  const keep = (b: Buffer): void => {
    output = Buffer.concat([output, b])
    if (output.byteLength > 2 * HOOK_OUTPUT_BYTES) output = output.subarray(output.byteLength - HOOK_OUTPUT_BYTES)
  }
  await new Promise<void>(resolve => {
    const child = spawn('/bin/sh', ['-c', command], {
      cwd: opts.cwd,
      // the passphrase (P2PBAK_PASSPHRASE) is this process's, never the hook's: it would land in reports
      env: { ...withoutSecrets(process.env), ...opts.env },
      stdio: [opts.input !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      detached: true
    })
    const killGroup = (why: string): void => {
      if (child.pid === undefined || child.exitCode !== null) return
      log('%s-hook %s: killing its process group', kind, why)
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch (err: unknown) {
        log('%s-hook: its process group was already gone: %s', kind, errorMessage(err))
      }
    }
    const timer = setTimeout(() => { result.timedOut = true; killGroup(`ran past ${timeoutMs} ms`) }, timeoutMs)
    const onAbort = (): void => { killGroup('cancelled') }
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    if (opts.input !== undefined && child.stdin !== null) {
      // a command that does not read its input closes the pipe early: that is not its failure
      child.stdin.on('error', (err) => { log('%s command did not read its input: %s', kind, errorMessage(err)) })
      child.stdin.end(opts.input)
    }
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.on('error', (err) => { result.error = errorMessage(err) })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      opts.signal?.removeEventListener('abort', onAbort)
      result.exitCode = code
      result.signal = signal
      resolve()
    })
  })
  result.durationMs = Math.round(performance.now() - started)
  const tail = output.byteLength > HOOK_OUTPUT_BYTES ? output.subarray(output.byteLength - HOOK_OUTPUT_BYTES) : output
  result.output = tail.toString('utf8')
  log('%s-hook %s: %s in %d ms', kind, JSON.stringify(command), describeHook(result), result.durationMs)
  return result
}
