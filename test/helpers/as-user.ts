/**
 * Runs the built CLI (bin/p2pbak.js) as an unprivileged user, for what root would bypass
 * (permissions), wherever the project is cloned.
 *
 * The other user may be unable to reach the project at its path: a clone in root's home folder or
 * in a `mktemp -d` folder sits under a directory only its owner can enter. So the parent (root)
 * opens the project's root directory and hands the descriptor to the child as fd 3; the child loads
 * the CLI through `/proc/self/fd/3/…`, a link the kernel resolves to the open directory itself,
 * without walking the directories above it. `--preserve-symlinks(-main)` keeps Node on those paths
 * (it would otherwise resolve them back to the unreachable real path). Everything the CLI opens
 * after that (the files it backs up, its home) is opened with the other user's rights, so
 * permissions are tested for real.
 */
import { spawnSync } from 'node:child_process'
import { closeSync, constants, existsSync, openSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { TEST_ENV } from './cli.js'

/** The project root (the directory holding bin/, dist/, node_modules/). */
export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The user nobody. */
export const NOBODY = 65534

export interface UserRunResult { code: number, stdout: string, stderr: string }

export class UserRunError extends Error {
  constructor (message: string, readonly detail: string) {
    super(`${message}: ${detail}`)
    this.name = 'UserRunError'
  }
}

/** Where the child finds the project: through the inherited fd 3 when /proc is there, else at its path. */
function entryFor (fdPath: boolean): { args: string[] } {
  if (!fdPath) return { args: [fileURLToPath(new URL('../../bin/p2pbak.js', import.meta.url))] }
  return { args: ['--preserve-symlinks', '--preserve-symlinks-main', '/proc/self/fd/3/bin/p2pbak.js'] }
}

/** Node could not load the CLI itself (not the CLI reporting an error). */
function launcherFailed (stderr: string): boolean {
  if (/ERR_MODULE_NOT_FOUND|Cannot find module/.test(stderr)) return true
  return [PROJECT_ROOT, '/proc/self/fd/3/'].some(p => stderr.includes(`EACCES: permission denied, open '${p}`))
}

/**
 * Runs `bin/p2pbak.js args…` as `uid`/`gid` (default nobody) with `env` added to the environment.
 * Synchronous; returns the exit code and output. Throws UserRunError when the child could not be
 * started at all (so a broken launcher is never mistaken for a product failure).
 */
export function runCliAsUser (args: string[], env: Record<string, string>, uid = NOBODY, gid = NOBODY): UserRunResult {
  const fdPath = existsSync('/proc/self/fd')
  const fd = fdPath ? openSync(PROJECT_ROOT, constants.O_RDONLY | constants.O_DIRECTORY) : undefined
  try {
    const r = spawnSync(process.execPath, [...entryFor(fdPath).args, ...args], {
      env: { ...process.env, ...TEST_ENV, ...env },
      uid,
      gid,
      encoding: 'utf8',
      stdio: fd !== undefined ? ['ignore', 'pipe', 'pipe', fd] : ['ignore', 'pipe', 'pipe']
    })
    if (r.error !== undefined) throw new UserRunError('cannot start the CLI as another user', r.error.message)
    // the launcher itself failed (Node could not load the CLI): say so instead of returning a code
    if (r.status !== 0 && launcherFailed(r.stderr)) {
      throw new UserRunError('the CLI could not be loaded as another user', r.stderr)
    }
    return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr }
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}
