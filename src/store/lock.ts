/**
 * An exclusive lock for commands that write to a home (backup, forget, prune): a file created with
 * O_EXCL holding who took it. A lock whose process is gone (same host, pid not running) is stale and
 * is taken over at once, so a crash never leaves a home locked (restic's most common support
 * question). Readers (snapshots, ls, find, restore, check) take no lock.
 *
 * Taking a stale lock over is atomic: a process that finds one first takes `PATH.takeover` (O_EXCL),
 * then looks again and removes the lock only if it is still the stale one it judged (same file,
 * same holder). Without that, two processes that both saw the stale lock could each remove it — the
 * second removing the first one's fresh lock — and both go on writing (issue 11, finding 12). Taking
 * a free lock is a plain O_EXCL create, so it never removes anything.
 */
import { closeSync, fstatSync, linkSync, openSync, readFileSync, readlinkSync, renameSync, statSync, unlinkSync, writeSync, fsyncSync } from 'node:fs'
import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import { LockedError, errnoCode, errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import { shown } from '../util/text.js'
import { startMarkOf } from './atomic.js'

const log = scopedLogger('lock')

export interface LockInfo {
  pid: number
  host: string
  time: string
  purpose: string
  /** the holder's start time (atomic.ts startMarkOf; Linux): a pid reused by another process is told apart */
  start?: string
  /** the holder's pid namespace (`/proc/self/ns/pid`): a pid means that process only in the same one */
  pidns?: string
}

/** This process's pid namespace, where /proc says (Linux). */
function pidNamespace (): string | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    return readlinkSync('/proc/self/ns/pid')
  } catch (err: unknown) {
    log('no pid namespace (%s): locks are judged by pid alone', errorMessage(err))
    return undefined
  }
}

export interface Lock { readonly path: string, release: () => void }

/** a takeover guard older than this belongs to a process that died inside the takeover (it takes microseconds) */
const TAKEOVER_STALE_MS = 10_000

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: unknown) {
    return errnoCode(err) === 'EPERM'
  }
}

/** an unreadable lock younger than this is being written by its creator (between create and write) */
const UNREADABLE_GRACE_MS = 2_000

function readInfo (path: string): { info: LockInfo | undefined, ino: number, ageMs: number } | undefined {
  let fd: number
  try { fd = openSync(path, 'r') } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return undefined
    throw err
  }
  try {
    const st = fstatSync(fd)
    let info: LockInfo | undefined
    try {
      const v = JSON.parse(readFileSync(fd, 'utf8')) as Partial<LockInfo>
      if (typeof v.pid === 'number' && typeof v.host === 'string') {
        info = { pid: v.pid, host: v.host, time: typeof v.time === 'string' ? v.time : shown(v.time), purpose: typeof v.purpose === 'string' ? v.purpose : shown(v.purpose), ...(typeof v.start === 'string' ? { start: v.start } : {}), ...(typeof v.pidns === 'string' ? { pidns: v.pidns } : {}) }
      }
    } catch (err: unknown) {
      log('lock %s is unreadable (a crash between create and write): %s', path, errorMessage(err))
    }
    return { info, ino: st.ino, ageMs: Date.now() - st.mtimeMs }
  } finally {
    closeSync(fd)
  }
}

function isStale (held: { info: LockInfo | undefined, ageMs: number }): boolean {
  const info = held.info
  if (info === undefined) return held.ageMs > UNREADABLE_GRACE_MS
  if (info.host !== hostname()) return false
  if (!processAlive(info.pid)) return true
  // the pid is running, but maybe as another process: after a crash a container's daemon restarts
  // with the same small pid (1, 7…), and would otherwise find its own dead lock held for good. Only
  // within the holder's pid namespace does its pid name it (a container sharing the host's name)
  if (info.start === undefined || info.pidns === undefined || info.pidns !== pidNamespace()) return false
  const now = startMarkOf(info.pid)
  return now !== undefined && now !== info.start
}

function pause (ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

function unlinkQuietly (path: string): void {
  try { unlinkSync(path) } catch (err: unknown) {
    if (errnoCode(err) !== 'ENOENT') log('cannot remove %s: %s', path, errorMessage(err))
  }
}

/** Creates `path` exclusively with `text`; false if it exists. */
function createExclusive (path: string, text: string): boolean {
  let fd: number
  try {
    fd = openSync(path, 'wx', 0o600)
  } catch (err: unknown) {
    if (errnoCode(err) === 'EEXIST') return false
    throw err
  }
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return true
}

/**
 * Removes a takeover guard left by a process that died holding it. The guard is moved aside to a
 * name of our own first and removed only if it is the one we judged (same inode); a guard another
 * process took meanwhile is put back.
 */
function breakStaleGuard (guard: string): void {
  let st
  try { st = statSync(guard) } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return
    throw err
  }
  const held = readInfo(guard)
  if (held === undefined) return
  if (held.info === undefined ? Date.now() - st.mtimeMs < TAKEOVER_STALE_MS : !isStale(held)) return
  const aside = `${guard}.${process.pid}.${randomBytes(6).toString('hex')}`
  try { renameSync(guard, aside) } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return
    throw err
  }
  if (statSync(aside).ino !== st.ino) {
    // another process's live guard: give it back (it is in the middle of a takeover)
    try { linkSync(aside, guard) } catch (err: unknown) { log('cannot put back the takeover guard %s: %s', guard, errorMessage(err)) }
  }
  unlinkQuietly(aside)
}

/**
 * Removes the lock at `path` if it is still the stale one (`ino`), holding the takeover guard.
 * Returns false when another process holds the guard (try again).
 */
function takeOverStale (path: string, ino: number, me: LockInfo): boolean {
  const guard = `${path}.takeover`
  if (!createExclusive(guard, JSON.stringify(me))) {
    breakStaleGuard(guard)
    return false
  }
  try {
    const now = readInfo(path)
    // only the stale file we judged goes: a lock taken meanwhile (by a plain create) stays
    if (now !== undefined && now.ino === ino && isStale(now)) unlinkSync(path)
  } finally {
    unlinkQuietly(guard)
  }
  return true
}

export interface AcquireOptions {
  /** called after a lock was judged stale, before taking it over (tests run a rival process's takeover here) */
  onStale?: () => void
}

export function acquireLock (path: string, purpose: string, opts: AcquireOptions = {}): Lock {
  const start = startMarkOf(process.pid)
  const pidns = pidNamespace()
  const info: LockInfo = { pid: process.pid, host: hostname(), time: new Date().toISOString(), purpose, ...(start !== undefined ? { start } : {}), ...(pidns !== undefined ? { pidns } : {}) }
  for (let attempt = 0; attempt < 200; attempt++) {
    if (createExclusive(path, JSON.stringify(info))) {
      let released = false
      return {
        path,
        release: () => {
          if (released) return
          released = true
          unlinkQuietly(path)
        }
      }
    }
    const holder = readInfo(path)
    if (holder === undefined) continue // released meanwhile: try again
    if (holder.info === undefined && !isStale(holder)) { pause(20); continue } // its creator is writing it
    if (!isStale(holder)) {
      const h = holder.info as LockInfo
      throw new LockedError(`${h.purpose} (pid ${h.pid} on ${h.host}, since ${h.time}) is writing to this home; wait for it to finish, or delete ${path} if that process is gone`)
    }
    // stale (its process is gone) or unreadable for long (a crash between create and write): take it over
    opts.onStale?.()
    if (!takeOverStale(path, holder.ino, info)) pause(5)
  }
  throw new LockedError(`could not take the lock ${path}; try again`)
}
