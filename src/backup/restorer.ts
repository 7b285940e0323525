/**
 * Restore: recreates a snapshot's tree (or the parts named by --include) under a target directory,
 * byte-exact with metadata: content, type, mode (incl. setuid/setgid/sticky), owner (as root),
 * mtime/atime in ns, symlinks, hardlink groups, empty dirs and files, sparse files, xattrs.
 * A file whose data cannot be read (damaged pack) is reported; every other file is still restored.
 *
 * The target is written with synchronous calls: the walk is sequential, and an async call costs a
 * thread-pool round trip per syscall (about ten per file), which dominated restores of small files.
 */
import {
  closeSync, constants, fchmodSync, fchownSync, ftruncateSync, lchownSync, linkSync, lstatSync, mkdirSync, openSync,
  readFileSync, rmSync, symlinkSync, writeSync
} from 'node:fs'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { AbortedError, errnoCode, errorMessage } from '../errors.js'
import type { TreeNode } from '../format/tree.js'
import type { TreeId } from '../ids.js'
import { chunkLengths, type FastCdc } from '../chunking/index.js'
import type { Repository } from '../repo/index.js'
import { isAllZero } from '../util/bytes.js'
import { joinPath, type ItemError } from './archiver.js'
import { lsetxattrs, lutimesNs } from './fsx.js'

export interface RestoreProgress { filesDone: number, bytesDone: number, currentPath: string }

export interface RestoreOptions {
  target: string
  /** absolute paths inside the snapshot (as shown by `ls`); a node is restored if it is on the way to, or below, one of them */
  includes?: string[]
  signal?: AbortSignal
  /** set owners (default: only when running as root) */
  restoreOwner?: boolean
  /** reuse chunks already present in existing target files instead of reading them from the store */
  delta?: boolean
  onItemError?: (err: ItemError) => void
  onProgress?: (p: RestoreProgress) => void
  /**
   * Called with the target path of each directory of the snapshot once it is made (or found) at the
   * target, before anything is written into it. A seam for tests that act as a local attacker at that
   * moment (test/unit/backup/restore-parent-swap.spec.ts); the restore does not wait for it.
   */
  onDirectory?: (path: string) => void
}

export interface RestoreSummary {
  files: number
  dirs: number
  symlinks: number
  others: number
  bytesWritten: number
  /** bytes taken from existing target files by --delta */
  bytesReused: number
  errors: ItemError[]
  durationMs: number
}

interface DirMeta { path: Buffer, node: TreeNode }

export class Restorer {
  private readonly errors: ItemError[] = []
  private readonly hardlinks = new Map<string, Buffer>()
  private readonly dirMetas: DirMeta[] = []
  private s = { files: 0, dirs: 0, symlinks: 0, others: 0, bytesWritten: 0, bytesReused: 0 }
  private progress: RestoreProgress = { filesDone: 0, bytesDone: 0, currentPath: '' }
  private includes: Buffer[] = []
  private opts: RestoreOptions = { target: '' }
  private restoreOwner = false

  constructor (private readonly repo: Repository, private readonly cdc: FastCdc) {}

  async run (tree: TreeId, opts: RestoreOptions): Promise<RestoreSummary> {
    const started = Date.now()
    this.opts = opts
    this.restoreOwner = opts.restoreOwner ?? false
    this.includes = (opts.includes ?? []).map(p => Buffer.from('/' + p.split('/').filter(c => c !== '').join('/')))
    const target = Buffer.from(opts.target)
    mkdirSync(target, { recursive: true })
    await this.restoreTree(tree, target, Buffer.from(''))
    // directory metadata last, children before parents (the order dirMetas is filled in), so that
    // restoring a child neither changes a parent's mtime nor runs into a parent already made read-only
    for (const d of this.dirMetas) {
      try {
        await this.applyMeta(d.path, d.node)
      } catch (err: unknown) {
        this.itemError(d.path, err)
      }
    }
    return { ...this.s, errors: this.errors, durationMs: Date.now() - started }
  }

  private wanted (snapPath: Buffer): 'all' | 'partial' | 'no' {
    if (this.includes.length === 0) return 'all'
    let partial = false
    for (const inc of this.includes) {
      if (snapPath.equals(inc) || (snapPath.length > inc.length && snapPath.subarray(0, inc.length).equals(inc) && snapPath[inc.length] === 0x2f)) return 'all'
      if (inc.length > snapPath.length && inc.subarray(0, snapPath.length).equals(snapPath) && inc[snapPath.length] === 0x2f) partial = true
    }
    return partial ? 'partial' : 'no'
  }

  private itemError (path: Buffer, err: unknown): void {
    if (err instanceof AbortedError) throw err
    const e: ItemError = { path: path.toString(), error: errorMessage(err), code: errnoCode(err) ?? (err instanceof Error && 'code' in err ? String(err.code) : 'ERR_RESTORE') }
    this.errors.push(e)
    this.opts.onItemError?.(e)
  }

  private async restoreTree (id: TreeId, dir: Buffer, snapDir: Buffer, all = false): Promise<void> {
    let tree
    try {
      tree = await this.repo.loadTree(id)
    } catch (err: unknown) {
      this.itemError(dir, err)
      return
    }
    for (const node of tree.nodes) {
      if (this.opts.signal?.aborted === true) throw new AbortedError('restore cancelled')
      const snapPath = joinPath(snapDir.length === 0 ? Buffer.from('/') : snapDir, node.name)
      const want = all ? 'all' : this.wanted(snapPath)
      if (want === 'no') continue
      const path = joinPath(dir, node.name)
      try {
        await this.restoreNode(node, path, snapPath, want === 'all')
      } catch (err: unknown) {
        this.itemError(path, err)
      }
    }
  }

  private async restoreNode (node: TreeNode, path: Buffer, snapPath: Buffer, all: boolean): Promise<void> {
    switch (node.type) {
      case 'dir':
        await this.ensureRealDirectory(path)
        this.opts.onDirectory?.(path.toString())
        if (node.subtree !== undefined) await this.restoreTree(node.subtree, path, snapPath, all)
        this.dirMetas.push({ path, node })
        this.s.dirs++
        return
      case 'file':
        if (!all) return // a file is restored only when it is itself included
        await this.restoreFile(node, path)
        return
      case 'symlink':
        if (!all) return
        rmSync(path, { force: true })
        symlinkSync(Buffer.from(node.linkTarget ?? new Uint8Array()), path)
        this.s.symlinks++
        await this.applyMeta(path, node)
        return
      default:
        if (!all) return
        await this.restoreSpecial(node, path)
    }
  }

  /**
   * Makes `path` a real directory. Whatever else is there (a symlink above all: following it would
   * write outside the target) is removed first; an existing real directory is reused.
   */
  private async ensureRealDirectory (path: Buffer): Promise<void> {
    let st
    try {
      st = lstatSync(path)
    } catch (err: unknown) {
      if (errnoCode(err) !== 'ENOENT') throw err
    }
    if (st?.isDirectory() === true) return
    if (st !== undefined) rmSync(path, { force: true })
    mkdirSync(path, { mode: 0o700 })
  }

  private async restoreFile (node: TreeNode, path: Buffer): Promise<void> {
    this.progress.currentPath = path.toString()
    const linkKey = node.links > 1 ? `${node.device}:${node.inode}` : undefined
    if (linkKey !== undefined) {
      const first = this.hardlinks.get(linkKey)
      if (first !== undefined) {
        rmSync(path, { force: true })
        linkSync(first, path)
        this.s.files++
        return
      }
    }
    const existing = this.opts.delta === true ? await this.existingChunks(path, node) : undefined
    try { rmSync(path, { force: true }) } catch {}
    const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    try {
      let pos = 0
      for (const id of node.content ?? []) {
        let data = existing?.get(Buffer.from(id).toString('hex'))
        if (data !== undefined) this.s.bytesReused += data.byteLength
        else data = await this.repo.loadBlob(id)
        if (!(node.sparse === true && isAllZero(data))) {
          for (let done = 0; done < data.byteLength;) done += writeSync(fd, data, done, data.byteLength - done, pos + done)
          this.s.bytesWritten += data.byteLength
        }
        pos += data.byteLength
        this.progress.bytesDone += data.byteLength
        this.opts.onProgress?.(this.progress)
      }
      if (node.sparse === true) ftruncateSync(fd, pos)
      // owner and mode through the descriptor: the file we wrote, even if its name now leads elsewhere
      this.applyOwnerAndMode(fd, path, node)
    } finally {
      closeSync(fd)
    }
    if (linkKey !== undefined) this.hardlinks.set(linkKey, path)
    this.s.files++
    this.progress.filesDone++
    lutimesNs(path, node.atimeNs, node.mtimeNs)
  }

  /** --delta: chunks of the file already at the target, by id (hex). Reads the old file once. */
  private async existingChunks (path: Buffer, node: TreeNode): Promise<Map<string, Uint8Array> | undefined> {
    const want = new Set((node.content ?? []).map(id => Buffer.from(id).toString('hex')))
    if (want.size === 0) return undefined
    let st
    try { st = lstatSync(path) } catch { return undefined }
    if (!st.isFile()) return undefined
    const found = new Map<string, Uint8Array>()
    const old = readFileSync(path)
    let off = 0
    for (const len of chunkLengths(this.cdc, old)) {
      const piece = old.subarray(off, off + len)
      const hex = Buffer.from(this.repo.blobId(piece)).toString('hex')
      if (want.has(hex)) found.set(hex, piece)
      off += len
    }
    return found
  }

  private async restoreSpecial (node: TreeNode, path: Buffer): Promise<void> {
    rmSync(path, { force: true })
    if (node.type === 'fifo') {
      await promisify(execFile)('mkfifo', ['--', path.toString()])
    } else {
      // sockets are recreated by the programs that own them; devices need mknod as root
      this.itemError(path, new Error(`${node.type} not restored (not supported)`))
      return
    }
    this.s.others++
    await this.applyMeta(path, node)
  }

  /**
   * Metadata of a directory, fifo or symlink, never through a symlink (issue 11, finding 14): a local
   * user who can write into the target could otherwise swap a restored name for a symlink to a file
   * of ours (or, as root, anyone's) and have its owner or mode changed. Directories and fifos are
   * opened with O_NOFOLLOW and changed through the descriptor; a symlink gets lchown and no chmod;
   * xattrs (lsetxattr) and times (lutimes) never follow a symlink. A name found replaced by a symlink
   * is reported and left alone.
   */
  private async applyMeta (path: Buffer, node: TreeNode): Promise<void> {
    if (node.type === 'symlink') {
      if (this.restoreOwner) {
        try { lchownSync(path, node.uid, node.gid) } catch (err: unknown) { this.itemError(path, err) }
      }
      this.applyXattrs(path, node)
      lutimesNs(path, node.atimeNs, node.mtimeNs)
      return
    }
    let fd: number
    try {
      // O_NONBLOCK: opening a fifo must not wait for a writer; O_RDONLY is enough for fchmod/fchown
      fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | (node.type === 'dir' ? constants.O_DIRECTORY : 0))
    } catch (err: unknown) {
      if (errnoCode(err) === 'ELOOP' || errnoCode(err) === 'ENOTDIR') {
        this.itemError(path, new Error('replaced by a symlink or another file while the restore ran: its owner, mode and times were not set'))
        return
      }
      throw err
    }
    try {
      this.applyOwnerAndMode(fd, path, node)
    } finally {
      closeSync(fd)
    }
    lutimesNs(path, node.atimeNs, node.mtimeNs)
  }

  /** Owner (clears setuid), xattrs (need write access), then mode, on an open descriptor. */
  private applyOwnerAndMode (fd: number, path: Buffer, node: TreeNode): void {
    if (this.restoreOwner) {
      try { fchownSync(fd, node.uid, node.gid) } catch (err: unknown) { this.itemError(path, err) }
    }
    this.applyXattrs(path, node)
    fchmodSync(fd, node.mode)
  }

  private applyXattrs (path: Buffer, node: TreeNode): void {
    if (node.xattrs === undefined || node.xattrs.length === 0) return
    for (const f of lsetxattrs(path, node.xattrs)) {
      if (f.code !== 'ENOTSUP' && f.code !== 'EPERM') this.itemError(path, new Error(`xattr ${f.name.toString()} not restored: ${f.code}`))
    }
  }
}
