/**
 * Open read descriptors of share files, least recently used first, for a {@link LocalShareStore}'s
 * range reads: restore reads many blobs from the same few packs one after another, and an
 * open/stat/read/close round trip through the thread pool per blob cost more than the reads
 * themselves. The store forgets a share's descriptor on every put and delete of it (a put may be a
 * replace: other bytes renamed over the old file).
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'

/** descriptors kept open (restore touches a few packs at a time) */
export const MAX_CACHED_FDS = 32

export class FdCache {
  private readonly fds = new Map<string, { fd: number, size: number }>()

  /** The open descriptor of `path` under `name`; opening it may throw (ENOENT when absent). */
  open (name: string, path: string): { fd: number, size: number } {
    const hit = this.fds.get(name)
    if (hit !== undefined) {
      // most recently used last
      this.fds.delete(name)
      this.fds.set(name, hit)
      return hit
    }
    const fd = openSync(path, 'r')
    const entry = { fd, size: fstatSync(fd).size }
    this.fds.set(name, entry)
    if (this.fds.size > MAX_CACHED_FDS) {
      const [oldest, e] = this.fds.entries().next().value as [string, { fd: number }]
      this.fds.delete(oldest)
      closeSync(e.fd)
    }
    return entry
  }

  forget (name: string): void {
    const e = this.fds.get(name)
    if (e === undefined) return
    this.fds.delete(name)
    closeSync(e.fd)
  }

  closeAll (): void {
    for (const { fd } of this.fds.values()) closeSync(fd)
    this.fds.clear()
  }
}

/** Reads exactly `length` bytes at `offset` of `fd`; throws if the file ends first. */
export function readExactly (fd: number, offset: number, length: number, what: string): Uint8Array {
  const out = new Uint8Array(length)
  let done = 0
  while (done < length) {
    const n = readSync(fd, out, done, length - done, offset + done)
    if (n === 0) throw new Error(`share file ${what} shrank while being read`)
    done += n
  }
  return out
}
