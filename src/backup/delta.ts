/**
 * `restore --delta`: the chunks a file needs that the file already at the target holds are read from
 * it instead of from the repository (docs/cli.md `restore`). The old file is scanned once, never
 * through a symlink, in pieces of twice the largest chunk, so a file of any size costs that much memory,
 * and the chunks found are read from it a second time as the new file is written. Its
 * descriptor stays open while the new file is written under its name (the old inode lives on while
 * open), and each chunk read back from it is checked against its id again before it is used: the
 * old file may change meanwhile.
 */
import { closeSync, constants, fstatSync, readSync } from 'node:fs'
import type { FastCdc } from '../chunking/index.js'
import { errnoCode, errorMessage } from '../errors.js'
import type { TreeNode } from '../format/tree.js'
import { scopedLogger } from '../util/log.js'
import type { DirFs, OpenDir } from './dirfs.js'

const log = scopedLogger('restore')
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants

/** The old file at the target, open, and where in it the chunks the new one needs are (by id, hex). */
export interface OldFile { fd: number, found: Map<string, { offset: number, length: number }> }

/** Opens and scans the file at `node.name` in `dir`; undefined when there is none to reuse (or it cannot be read). */
export function openOldFile (fs: DirFs, dir: OpenDir, path: Buffer, node: TreeNode, cdc: FastCdc, blobId: (bytes: Uint8Array) => Uint8Array): OldFile | undefined {
  const want = new Set((node.content ?? []).map(id => Buffer.from(id).toString('hex')))
  if (want.size === 0) return undefined
  let fd: number
  try {
    fd = fs.open(dir, node.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
  } catch (err: unknown) {
    if (errnoCode(err) !== 'ENOENT') log('--delta: %s not reused: %s', path.toString(), errorMessage(err))
    return undefined
  }
  try {
    if (!fstatSync(fd).isFile()) { closeSync(fd); return undefined }
    const found = new Map<string, { offset: number, length: number }>()
    const buf = new Uint8Array(2 * cdc.params.maxSize)
    let base = 0 // file offset of buf[0]
    let filled = 0
    let eof = false
    while (!eof || filled > 0) {
      while (!eof && filled < buf.byteLength) {
        const n = readSync(fd, buf, filled, buf.byteLength - filled, base + filled)
        if (n === 0) eof = true
        filled += n
      }
      let at = 0
      for (let len = cdc.nextCut(buf, at, filled, eof); len > 0; len = cdc.nextCut(buf, at, filled, eof)) {
        const hex = Buffer.from(blobId(buf.subarray(at, at + len))).toString('hex')
        if (want.has(hex) && !found.has(hex)) found.set(hex, { offset: base + at, length: len })
        at += len
      }
      buf.copyWithin(0, at, filled)
      base += at
      filled -= at
    }
    return { fd, found }
  } catch (err: unknown) {
    closeSync(fd)
    log('--delta: %s not reused: %s', path.toString(), errorMessage(err))
    return undefined
  }
}

/** A chunk read back from the old file, if it has it and it still hashes to `id`. */
export function readOldChunk (old: OldFile, id: Uint8Array, blobId: (bytes: Uint8Array) => Uint8Array): Uint8Array | undefined {
  const hex = Buffer.from(id).toString('hex')
  const at = old.found.get(hex)
  if (at === undefined) return undefined
  const data = new Uint8Array(at.length)
  try {
    for (let done = 0; done < at.length;) {
      const n = readSync(old.fd, data, done, at.length - done, at.offset + done)
      if (n === 0) return undefined // the old file shrank meanwhile: the chunk is loaded instead
      done += n
    }
  } catch (err: unknown) {
    // the repository has the chunk: a read error of the old file (EIO) costs its reuse only
    log('--delta: chunk %s not read back from the old file: %s', hex.slice(0, 16), errorMessage(err))
    return undefined
  }
  return Buffer.from(blobId(data)).equals(Buffer.from(id)) ? data : undefined
}
