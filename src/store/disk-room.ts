/**
 * The room a store leaves on its disk. Data writes (shares, records) stop while a reserve is still
 * free, so that what must be written beside them still fits: the index's lmdb pages as it commits the
 * packs already written, temporaries, the key and state files. lmdb-js does not always fail cleanly
 * when the disk fills under a commit (seen here: "No space left on device: Attempting to write
 * page", then an abort of the whole process with a corrupted heap), so a full disk must meet a data
 * write first, which fails with NoSpaceError and loses nothing. Writes of this process that run at
 * once count each other's bytes (`inFlight`); another program that fills the disk can still take the
 * reserve: this is a margin, not a guarantee.
 */
import { stat, statfs } from 'node:fs/promises'
import { NoSpaceError, errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('store')

/** The reserve: this fraction of the disk's size, at least MIN and at most MAX bytes. */
export const DISK_RESERVE_FRACTION = 0.02
export const DISK_RESERVE_MIN_BYTES = 128 * 1024
export const DISK_RESERVE_MAX_BYTES = 64 * 1024 * 1024
/**
 * Snapshot and gc records may use this share of the reserve: `forget` and `prune`, the commands that
 * free space, write a record before they delete anything, and must run on a disk at its reserve.
 */
export const RECORD_RESERVE_SHARE = 0.25

/** The bytes kept free on a disk of `totalBytes`. */
export function diskReserve (totalBytes: number): number {
  return Math.min(DISK_RESERVE_MAX_BYTES, Math.max(DISK_RESERVE_MIN_BYTES, Math.floor(totalBytes * DISK_RESERVE_FRACTION)))
}

export interface DiskRoom {
  /** bytes an unprivileged writer may still use (statfs bavail), less this process's writes under way there */
  free: number
  /** the reserve kept for the index and small files */
  reserve: number
  /** what data may still take: free less the reserve, at least 0 */
  room: number
}

/** Bytes this process is writing now, per disk (the `dev` of the folder written into). */
const inFlight = new Map<number, number>()
/** The disk of each folder measured so far (a store's folder does not move to another disk while it is open). */
const devOf = new Map<string, number>()

/** The disk that holds `dir`, its free bytes less this process's writes under way there, and its reserve (statfs). */
async function measure (dir: string, reserveShare = 1): Promise<{ dev: number, free: number, reserve: number }> {
  const [s, dev] = await Promise.all([statfs(dir), devOf.get(dir) ?? stat(dir).then(st => { devOf.set(dir, st.dev); return st.dev })])
  const free = Math.max(0, s.bavail * s.bsize - (inFlight.get(dev) ?? 0))
  return { dev, free, reserve: Math.floor(diskReserve(s.blocks * s.bsize) * reserveShare) }
}

/** The room on the disk that holds `dir` (statfs), less what this process is writing there now. Throws what statfs throws. */
export async function diskRoom (dir: string): Promise<DiskRoom> {
  const { free, reserve } = await measure(dir)
  return { free, reserve, room: Math.max(0, free - reserve) }
}

const MiB = 1024 * 1024
const inMiB = (n: number): string => `${(n / MiB).toFixed(n < 10 * MiB ? 1 : 0)} MiB`

/**
 * Runs `write`, which adds about `bytes` to the disk that holds `dir`, unless that would eat into the
 * reserve (`reserveShare` of it may be used: records, RECORD_RESERVE_SHARE): then throws NoSpaceError
 * and runs nothing. Its bytes count as taken for the other writes of this process until it settles.
 * A disk whose room cannot be read is written without the check (the write itself then reports a
 * full disk, if it is one).
 */
export async function withRoom<T> (dir: string, bytes: number, path: string, write: () => Promise<T>, reserveShare = 1): Promise<T> {
  let dev: number
  try {
    const m = await measure(dir, reserveShare)
    dev = m.dev
    if (bytes > m.free - m.reserve) {
      throw new NoSpaceError(`no space left on the device to write ${path}: ${inMiB(m.free)} free, of which ${inMiB(m.reserve)} stay free for the index; free some space and retry`)
    }
  } catch (err: unknown) {
    if (err instanceof NoSpaceError) throw err
    log('free space of %s unreadable, writing without the reserve check: %s', dir, errorMessage(err))
    return await write()
  }
  inFlight.set(dev, (inFlight.get(dev) ?? 0) + bytes)
  try {
    return await write()
  } finally {
    const left = (inFlight.get(dev) ?? 0) - bytes
    if (left > 0) inFlight.set(dev, left)
    else inFlight.delete(dev)
  }
}
