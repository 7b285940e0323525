/**
 * Reads one file and cuts it into content-defined chunks, saving each new chunk in the repository.
 * The file's stat is taken when it is opened and again after the last byte; if the two differ the
 * file changed while it was read, and the caller decides whether to read it again.
 *
 * The walk is sequential, so the file system is used synchronously: an async call costs a thread
 * pool round trip per syscall (about six per file), which dominated backups of many small files.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type BigIntStats } from 'node:fs'
import type { FastCdc } from '../chunking/index.js'
import { SourceUnreadableError } from '../errors.js'
import type { ChunkId } from '../ids.js'
import type { Repository } from '../repo/index.js'

export interface FileReadResult {
  content: ChunkId[]
  bytesRead: number
  /** stats at open and after reading */
  before: BigIntStats
  after: BigIntStats
}

export interface ReadProgress { (bytes: number): void }

const NOATIME = constants.O_NOATIME ?? 0

/**
 * Opens a file the walk listed as regular, and returns it with its stat. O_NONBLOCK: a path swapped
 * for a FIFO between the listing and the open would otherwise block the open (and the whole process,
 * the daemon's control socket with it) until a writer came; reads of a regular file ignore the flag.
 * What was opened is checked to be a regular file before a byte is read.
 */
function openForReading (path: Buffer): { fd: number, st: BigIntStats } {
  const flags = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK
  let fd: number
  try {
    fd = openSync(path, flags | NOATIME)
  } catch (err: unknown) {
    // O_NOATIME is only allowed to the file's owner (or root)
    if (NOATIME !== 0 && (err as NodeJS.ErrnoException).code === 'EPERM') fd = openSync(path, flags)
    else throw err
  }
  let st: BigIntStats
  try {
    st = fstatSync(fd, { bigint: true })
  } catch (err: unknown) {
    closeSync(fd)
    throw err
  }
  if (!st.isFile()) {
    closeSync(fd)
    throw new SourceUnreadableError('it was replaced by something other than a regular file (a FIFO, a device) while the backup ran: skipped')
  }
  return { fd, st }
}

export async function readFileChunks (
  path: Buffer, repo: Repository, cdc: FastCdc, buffer: Uint8Array, onBytes?: ReadProgress, signal?: AbortSignal
): Promise<FileReadResult> {
  const { fd, st: before } = openForReading(path)
  try {
    // read to the end, never to the size at open: pseudo files say 0 bytes (/proc), and a file system
    // may show a stale or wrong size (FUSE) that `after` would repeat
    const content: ChunkId[] = []
    let filled = 0
    let eof = false
    let bytesRead = 0
    while (!eof || filled > 0) {
      while (!eof && filled < buffer.byteLength) {
        const n = readSync(fd, buffer, filled, buffer.byteLength - filled, null)
        filled += n
        bytesRead += n
        onBytes?.(n)
        if (n === 0) eof = true
      }
      signal?.throwIfAborted()
      let start = 0
      while (start < filled) {
        const len = cdc.nextCut(buffer, start, filled, eof)
        if (len === 0) break
        const { id } = await repo.saveChunk(buffer.subarray(start, start + len))
        content.push(id)
        start += len
      }
      if (start > 0) {
        buffer.copyWithin(0, start, filled)
        filled -= start
      }
    }
    const after = fstatSync(fd, { bigint: true })
    return { content, bytesRead, before, after }
  } finally {
    closeSync(fd)
  }
}
