/**
 * Restore: recreates a snapshot's tree (or the parts named by --include) under a target directory,
 * byte-exact with metadata: content, type, mode (incl. setuid/setgid/sticky), owner (as root),
 * mtime/atime in ns, symlinks, hardlink groups, empty dirs and files, sparse files, xattrs.
 * A file whose data cannot be read (damaged pack) is reported; every other file is still restored.
 *
 * The target is walked by directory descriptors (issue 11, finding 14): the target is opened once, and
 * every name is created and opened relative to its parent's open descriptor with O_NOFOLLOW (dirfs.ts),
 * so a local user who swaps a directory of the restore for a symlink cannot make it write outside the
 * target; the swap is reported as an item that could not be restored. Only the chain of directories
 * from the target down to the one being restored is open at a time. A directory's metadata is set
 * through its descriptor once everything inside it is restored.
 *
 * The target is written with synchronous calls: the walk is sequential, and an async call costs a
 * thread-pool round trip per syscall (about ten per file), which dominated restores of small files.
 */
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, ftruncateSync, mkdirSync, writeSync } from 'node:fs'
import { AbortedError, errnoCode, errorMessage, RestoreSwappedError } from '../errors.js'
import type { TreeNode } from '../format/tree.js'
import type { TreeId } from '../ids.js'
import type { FastCdc } from '../chunking/index.js'
import type { Repository } from '../repo/index.js'
import { isAllZero } from '../util/bytes.js'
import { scopedLogger } from '../util/log.js'
import { joinPath, type ItemError } from './archiver.js'
import { turnEventLoop } from '../util/event-loop.js'
import { closeQuietly, DIR_FLAGS, dirFs, openTargetDir, type DirAccess, type DirFs, type OpenDir } from './dirfs.js'
import { fsetxattrs, futimesNs, type XattrFailure } from './fsx.js'
import { openOldFile, readOldChunk } from './delta.js'

const log = scopedLogger('restore')

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
  /** how names are resolved in open directories (dirfs.ts); default: the best available. For tests. */
  dirAccess?: DirAccess
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

/** One open directory of the chain from the target down: its name in its parent ('' for the target). */
interface ChainLink { name: Buffer, dir: OpenDir }

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants

export class Restorer {
  private readonly errors: ItemError[] = []
  /** hardlink groups: the first file's names from the target down */
  private readonly hardlinks = new Map<string, Buffer[]>()
  private chain: ChainLink[] = []
  private fs: DirFs = dirFs()
  private s = { files: 0, dirs: 0, symlinks: 0, others: 0, bytesWritten: 0, bytesReused: 0 }
  private progress: RestoreProgress = { filesDone: 0, bytesDone: 0, currentPath: '' }
  private includes: Buffer[] = []
  private opts: RestoreOptions = { target: '' }
  private restoreOwner = false

  constructor (private readonly repo: Repository, private readonly cdc: FastCdc) {}

  /** How this restorer resolves names in its target (dirfs.ts): `path` follows a swapped parent. */
  get dirAccess (): DirAccess { return this.fs.access }

  async run (tree: TreeId, opts: RestoreOptions): Promise<RestoreSummary> {
    const started = Date.now()
    this.opts = opts
    if (opts.dirAccess !== undefined) this.fs = dirFs(opts.dirAccess)
    this.restoreOwner = opts.restoreOwner ?? false
    this.includes = (opts.includes ?? []).map(p => Buffer.from('/' + p.split('/').filter(c => c !== '').join('/')))
    const target = Buffer.from(opts.target)
    mkdirSync(target, { recursive: true })
    const root = openTargetDir(target)
    this.chain = [{ name: Buffer.alloc(0), dir: root }]
    try {
      await this.restoreTree(tree, root, Buffer.from(''))
    } finally {
      this.chain = []
      closeSync(root.fd)
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

  private async restoreTree (id: TreeId, dir: OpenDir, snapDir: Buffer, all = false): Promise<void> {
    let tree
    try {
      tree = await this.repo.loadTree(id)
    } catch (err: unknown) {
      this.itemError(dir.path, err)
      return
    }
    for (const node of tree.nodes) {
      if (this.opts.signal?.aborted === true) throw new AbortedError('restore cancelled')
      const snapPath = joinPath(snapDir.length === 0 ? Buffer.from('/') : snapDir, node.name)
      const want = all ? 'all' : this.wanted(snapPath)
      if (want === 'no') continue
      const path = joinPath(dir.path, node.name)
      try {
        await this.restoreNode(node, dir, path, snapPath, want === 'all')
      } catch (err: unknown) {
        this.itemError(path, err)
      }
    }
    // native buffers (blob reads, hashes, decompressed blobs) are freed from a turn of the loop
    await turnEventLoop()
  }

  private async restoreNode (node: TreeNode, parent: OpenDir, path: Buffer, snapPath: Buffer, all: boolean): Promise<void> {
    switch (node.type) {
      case 'dir':
        await this.restoreDir(node, parent, path, snapPath, all)
        return
      case 'file':
        if (!all) return // a file is restored only when it is itself included
        await this.restoreFile(node, parent, path)
        return
      case 'symlink':
        if (!all) return
        this.create(parent, node.name, () => { this.fs.symlink(node.linkTarget ?? new Uint8Array(), parent, node.name) })
        this.s.symlinks++
        this.applySymlinkMeta(parent, path, node)
        return
      default:
        if (!all) return
        await this.restoreSpecial(node, parent, path)
    }
  }

  /**
   * A directory: made (or an existing real one reused; whatever else is in the way, a symlink above
   * all, is removed), opened with O_NOFOLLOW, filled, then given its metadata through the descriptor,
   * so restoring a child neither changes its mtime afterwards nor runs into it already read-only.
   */
  private async restoreDir (node: TreeNode, parent: OpenDir, path: Buffer, snapPath: Buffer, all: boolean): Promise<void> {
    const name = Buffer.from(node.name)
    const dir = this.openChildDir(parent, name, path)
    this.chain.push({ name, dir })
    try {
      if (node.subtree !== undefined) await this.restoreTree(node.subtree, dir, snapPath, all)
      this.s.dirs++
      this.applyOwnerAndMode(dir.fd, path, node)
      futimesNs(dir.fd, node.atimeNs, node.mtimeNs)
      this.checkStillThere(parent, name, dir)
    } finally {
      this.chain.pop()
      closeSync(dir.fd)
    }
  }

  /**
   * Reports a directory whose name no longer leads to it: someone moved it away, and maybe put a
   * symlink in its place, while its children were restored (into it, wherever it went).
   */
  private checkStillThere (parent: OpenDir, name: Buffer, dir: OpenDir): void {
    const held = fstatSync(dir.fd)
    let fd: number | undefined
    try {
      fd = this.fs.open(parent, name, DIR_FLAGS)
      const now = fstatSync(fd)
      if (now.ino === held.ino && now.dev === held.dev) return
    } catch (err: unknown) {
      const code = errnoCode(err)
      if (code !== 'ELOOP' && code !== 'ENOTDIR' && code !== 'ENOENT') throw err
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
    throw new RestoreSwappedError('replaced by a symlink or another file (or moved) while the restore ran: what was restored into it is in the moved directory, not at this path')
  }

  private openChildDir (parent: OpenDir, name: Buffer, path: Buffer): OpenDir {
    for (let attempt = 0; ; attempt++) {
      let made = true
      try {
        this.fs.mkdir(parent, name, 0o700)
      } catch (err: unknown) {
        if (errnoCode(err) !== 'EEXIST') throw err
        made = false
      }
      this.opts.onDirectory?.(path.toString())
      try {
        return { fd: this.fs.open(parent, name, DIR_FLAGS), path }
      } catch (err: unknown) {
        const code = errnoCode(err)
        if (code !== 'ELOOP' && code !== 'ENOTDIR') throw err
        if (made || attempt > 0) throw new RestoreSwappedError('replaced by a symlink or another file right after the restore made it: nothing was restored into it')
      }
      // a symlink or a file was there before the restore: removed (the link itself), then made again
      this.fs.unlink(parent, name)
    }
  }

  /** Runs `make` (which creates `name` exclusively); on EEXIST removes what is there and runs it again. */
  private create<T> (dir: OpenDir, name: Uint8Array, make: () => T): T {
    try {
      return make()
    } catch (err: unknown) {
      if (errnoCode(err) !== 'EEXIST') throw err
    }
    this.fs.unlink(dir, name)
    return make()
  }

  private async restoreFile (node: TreeNode, dir: OpenDir, path: Buffer): Promise<void> {
    this.progress.currentPath = path.toString()
    const linkKey = node.links > 1 ? `${node.device}:${node.inode}` : undefined
    if (linkKey !== undefined) {
      const first = this.hardlinks.get(linkKey)
      if (first !== undefined) {
        this.linkTo(first, dir, node.name)
        this.s.files++
        return
      }
    }
    const existing = this.opts.delta === true ? openOldFile(this.fs, dir, path, node, this.cdc, (b) => this.repo.blobId(b)) : undefined
    let fd: number
    try {
      fd = this.create(dir, node.name, () => this.fs.open(dir, node.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600))
    } catch (err: unknown) {
      if (existing !== undefined) closeQuietly(existing.fd)
      throw err
    }
    let written = false
    try {
      let pos = 0
      for (const id of node.content ?? []) {
        let data = existing !== undefined ? readOldChunk(existing, id, (b) => this.repo.blobId(b)) : undefined
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
      // its content is whole: a failure to set its metadata (a file system without modes) keeps it
      written = true
      // owner, mode and times through the descriptor: the file we wrote, even if its name now leads elsewhere
      this.applyOwnerAndMode(fd, path, node)
      futimesNs(fd, node.atimeNs, node.mtimeNs)
    } finally {
      try {
        closeSync(fd)
      } finally {
        if (existing !== undefined) closeQuietly(existing.fd)
        // a file cut short (a chunk that could not be read, a full disk) must not pass for restored
        if (!written) this.removeQuietly(dir, node.name, path)
      }
    }
    if (linkKey !== undefined) this.hardlinks.set(linkKey, [...this.chain.slice(1).map(l => l.name), Buffer.from(node.name)])
    this.s.files++
    this.progress.filesDone++
  }

  /**
   * Links `name` in `dir` to a hardlink group's first file: its directory is taken from the open
   * chain where the two paths share it, the rest opened from there with O_NOFOLLOW (and closed).
   */
  private linkTo (first: Buffer[], dir: OpenDir, name: Uint8Array): void {
    const parents = first.slice(0, -1)
    let i = 0
    while (i < parents.length && i + 1 < this.chain.length && (this.chain[i + 1] as ChainLink).name.equals(parents[i] as Buffer)) i++
    let from = (this.chain[i] as ChainLink).dir
    const opened: number[] = []
    try {
      for (; i < parents.length; i++) {
        const part = parents[i] as Buffer
        from = { fd: this.fs.open(from, part, DIR_FLAGS), path: joinPath(from.path, part) }
        opened.push(from.fd)
      }
      const src = from
      this.create(dir, name, () => { this.fs.link(src, first[first.length - 1] as Buffer, dir, name) })
    } finally {
      for (const fd of opened) closeQuietly(fd)
    }
  }

  private removeQuietly (dir: OpenDir, name: Uint8Array, path: Buffer): void {
    try {
      this.fs.unlink(dir, name)
    } catch (err: unknown) {
      log('the partly restored %s could not be removed: %s', path.toString(), errorMessage(err))
    }
  }

  private async restoreSpecial (node: TreeNode, dir: OpenDir, path: Buffer): Promise<void> {
    if (node.type !== 'fifo') {
      // sockets are recreated by the programs that own them; devices need mknod as root
      this.itemError(path, new Error(`${node.type} not restored (not supported)`))
      return
    }
    try {
      await this.fs.mkfifo(dir, node.name, 0o600)
    } catch (err: unknown) {
      if (errnoCode(err) !== 'EEXIST') throw err
      this.fs.unlink(dir, node.name)
      await this.fs.mkfifo(dir, node.name, 0o600)
    }
    this.s.others++
    let fd: number
    try {
      // O_NONBLOCK: opening a fifo must not wait for a writer; O_RDONLY is enough for fchmod/fchown
      fd = this.fs.open(dir, node.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
    } catch (err: unknown) {
      if (errnoCode(err) === 'ELOOP') throw new RestoreSwappedError('replaced by a symlink while the restore ran: its owner, mode and times were not set')
      throw err
    }
    try {
      this.applyOwnerAndMode(fd, path, node)
      futimesNs(fd, node.atimeNs, node.mtimeNs)
    } finally {
      closeSync(fd)
    }
  }

  /** A symlink's owner (lchown: Linux has no lchmod), xattrs and times, never through it. */
  private applySymlinkMeta (dir: OpenDir, path: Buffer, node: TreeNode): void {
    if (this.restoreOwner) {
      try { this.fs.lchown(dir, node.name, node.uid, node.gid) } catch (err: unknown) { this.itemError(path, err) }
    }
    if (node.xattrs !== undefined && node.xattrs.length > 0) this.reportXattrs(path, this.fs.lsetxattrs(dir, node.name, node.xattrs))
    this.fs.lutimesNs(dir, node.name, node.atimeNs, node.mtimeNs)
  }

  /** Owner (clears setuid), xattrs (need write access), then mode, on an open descriptor. */
  private applyOwnerAndMode (fd: number, path: Buffer, node: TreeNode): void {
    if (this.restoreOwner) {
      try { fchownSync(fd, node.uid, node.gid) } catch (err: unknown) { this.itemError(path, err) }
    }
    if (node.xattrs !== undefined && node.xattrs.length > 0) this.reportXattrs(path, fsetxattrs(fd, node.xattrs))
    fchmodSync(fd, node.mode)
  }

  private reportXattrs (path: Buffer, failed: XattrFailure[]): void {
    for (const f of failed) {
      if (f.code !== 'ENOTSUP' && f.code !== 'EPERM') this.itemError(path, new Error(`xattr ${f.name.toString()} not restored: ${f.code}`))
    }
  }
}

