/**
 * Real `p2pbak daemon` child processes for multi-node tests on 127.0.0.1: start one on a home and
 * wait for its node.json and control socket; stop it with SIGINT (SIGKILL after 15 s). Plus the
 * polling helpers these tests share. Nothing here sleeps blindly: every wait has a condition and a
 * deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCli, TEST_ENV, type CliResult } from './cli.js'

const BIN = fileURLToPath(new URL('../../bin/p2pbak.js', import.meta.url))

export interface DaemonNode { name: string, home: string, daemon?: ChildProcess, userId: string }

/** Polls `fn` every `everyMs` until it holds; fails after `timeoutMs`. */
export async function waitFor (what: string, fn: () => boolean | Promise<boolean>, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, everyMs))
  }
}

/**
 * Total size of the regular files under `dir` (0 if it does not exist). A daemon writes while this
 * looks: a temp file renamed or removed between the listing and its stat counts 0 (it was seen in a
 * suite run: ENOENT on store/shares/30/.tmp-…).
 */
export function bytesUnder (dir: string): number {
  let n = 0
  for (const f of filesUnder(dir)) {
    try {
      n += statSync(f).size
    } catch (err: unknown) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
  }
  return n
}

/** Every regular file under `dir`, recursively (a folder removed while it is walked is skipped). */
export function filesUnder (dir: string): string[] {
  if (!existsSync(dir)) return []
  const out: string[] = []
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  for (const e of entries) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...filesUnder(p))
    else if (e.isFile()) out.push(p)
  }
  return out
}

export async function cliAt (n: DaemonNode, ...argv: string[]): Promise<CliResult> {
  return await runCli(argv, { P2PBAK_HOME: n.home, P2PBAK_PASSPHRASE: 'pw' })
}

/**
 * Starts `p2pbak daemon` on 127.0.0.1 with a fast refresh (500 ms) and any extra flags; with
 * `{ defaults: true }`, with the settings a user gets (only the listen address differs).
 */
export async function startDaemon (n: DaemonNode, extra: string[] = [], opts: { defaults?: boolean, listen?: string } = {}): Promise<void> {
  rmSync(join(n.home, 'node.json'), { force: true })
  const tuning = opts.defaults === true ? [] : ['--refresh', '500']
  n.daemon = spawn(process.execPath, [BIN, 'daemon', '--listen', opts.listen ?? '/ip4/127.0.0.1/tcp/0', ...tuning, ...extra], {
    env: { ...process.env, ...TEST_ENV, P2PBAK_HOME: n.home, P2PBAK_PASSPHRASE: 'pw' }, stdio: ['ignore', 'ignore', 'inherit']
  })
  await waitFor(`${n.name}'s daemon`, () => existsSync(join(n.home, 'node.json')) && existsSync(join(n.home, 'daemon.sock')))
}

export async function stopDaemon (n: DaemonNode): Promise<void> {
  const d = n.daemon
  if (d === undefined || d.exitCode !== null || d.signalCode !== null) return
  const exited = new Promise(resolve => d.once('exit', resolve))
  d.kill('SIGINT')
  // a daemon that does not stop within 15 s is killed (its stores are crash-safe by design)
  const timer = setTimeout(() => d.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
  n.daemon = undefined
}
