/**
 * An exclusive lock for commands that write to a home (backup, forget, prune): a file created with
 * O_EXCL holding who took it. A lock whose process is gone (same host, pid not running) is stale and
 * is taken over at once, so a crash never leaves a home locked (restic's most common support
 * question). Readers (snapshots, ls, find, restore, check) take no lock.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync, fsyncSync } from 'node:fs'
import { hostname } from 'node:os'
import { LockedError, errnoCode } from '../errors.js'

export interface LockInfo { pid: number, host: string, time: string, purpose: string }

export interface Lock { readonly path: string, release: () => void }

function processAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: unknown) {
    return errnoCode(err) === 'EPERM'
  }
}

function readInfo (path: string): LockInfo | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockInfo>
    if (typeof v.pid === 'number' && typeof v.host === 'string') return { pid: v.pid, host: v.host, time: String(v.time), purpose: String(v.purpose) }
  } catch {}
  return undefined
}

export function acquireLock (path: string, purpose: string): Lock {
  const info: LockInfo = { pid: process.pid, host: hostname(), time: new Date().toISOString(), purpose }
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number
    try {
      fd = openSync(path, 'wx', 0o600)
    } catch (err: unknown) {
      if (errnoCode(err) !== 'EEXIST') throw err
      const holder = readInfo(path)
      if (holder === undefined || (holder.host === info.host && !processAlive(holder.pid))) {
        // stale (its process is gone) or unreadable (a crash between create and write): take it over
        try { unlinkSync(path) } catch {}
        continue
      }
      throw new LockedError(`${holder.purpose} (pid ${holder.pid} on ${holder.host}, since ${holder.time}) is writing to this home; wait for it to finish, or delete ${path} if that process is gone`)
    }
    try {
      writeSync(fd, JSON.stringify(info))
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    let released = false
    return {
      path,
      release: () => {
        if (released) return
        released = true
        try { unlinkSync(path) } catch {}
      }
    }
  }
  throw new LockedError(`could not take the lock ${path}; try again`)
}
