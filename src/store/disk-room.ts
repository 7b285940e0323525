/**
 * The room a store leaves on its disk. Data writes (shares, records) stop while a reserve is still
 * free, so that what must be written beside them still fits: the index's lmdb pages as it commits the
 * packs already written, temporaries, the key and state files. lmdb-js does not always fail cleanly
 * when the disk fills under a commit (seen here: "No space left on device: Attempting to write
 * page", then an abort of the whole process with a corrupted heap), so a full disk must meet a data
 * write first, which fails with NoSpaceError and loses nothing. Another program that fills the disk
 * can still take the reserve: this is a margin, not a guarantee.
 */
import { statfs } from 'node:fs/promises'
import { NoSpaceError, errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('store')

/** The reserve: this fraction of the disk's size, at least MIN and at most MAX bytes. */
export const DISK_RESERVE_FRACTION = 0.02
export const DISK_RESERVE_MIN_BYTES = 128 * 1024
export const DISK_RESERVE_MAX_BYTES = 64 * 1024 * 1024

/** The bytes kept free on a disk of `totalBytes`. */
export function diskReserve (totalBytes: number): number {
  return Math.min(DISK_RESERVE_MAX_BYTES, Math.max(DISK_RESERVE_MIN_BYTES, Math.floor(totalBytes * DISK_RESERVE_FRACTION)))
}

export interface DiskRoom {
  /** bytes an unprivileged writer may still use (statfs bavail) */
  free: number
  /** the reserve kept for the index and small files */
  reserve: number
  /** what data may still take: free less the reserve, at least 0 */
  room: number
}

/** The room on the disk that holds `dir` (statfs). Throws what statfs throws. */
export async function diskRoom (dir: string): Promise<DiskRoom> {
  const s = await statfs(dir)
  const free = s.bavail * s.bsize
  const reserve = diskReserve(s.blocks * s.bsize)
  return { free, reserve, room: Math.max(0, free - reserve) }
}

const MiB = 1024 * 1024
const inMiB = (n: number): string => `${(n / MiB).toFixed(n < 10 * MiB ? 1 : 0)} MiB`

/**
 * Throws NoSpaceError when writing `bytes` more into `dir` would eat into the reserve. A disk whose
 * room cannot be read is not refused (the write itself then reports a full disk, if it is one).
 */
export async function ensureRoom (dir: string, bytes: number, path: string): Promise<void> {
  let r: DiskRoom
  try {
    r = await diskRoom(dir)
  } catch (err: unknown) {
    log('free space of %s unreadable, writing without the reserve check: %s', dir, errorMessage(err))
    return
  }
  if (bytes <= r.room) return
  throw new NoSpaceError(`no space left on the device to write ${path}: ${inMiB(r.free)} free, of which ${inMiB(r.reserve)} stay free for the index; free some space and retry`)
}
