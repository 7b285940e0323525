/**
 * Backup: walks the given paths, stores new chunks and one tree per directory, then writes a signed
 * snapshot record. One unreadable item never fails the backup: it is reported through
 * `onItemError` and in the summary, and the snapshot is still written.
 */
import { lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs'
import { lstat, readdir } from 'node:fs/promises'
import { hostname, userInfo } from 'node:os'
import { resolve as resolvePath } from 'node:path'
import { AbortedError, errorMessage, SourceUnreadableError, errnoCode } from '../errors.js'
import { turnEventLoop } from '../util/event-loop.js'
import { scopedLogger } from '../util/log.js'
import { keyedHashFunction } from '../crypto/index.js'
import type { FastCdc } from '../chunking/index.js'
import type { TreeNode } from '../format/tree.js'
import type { SnapshotRecord } from '../format/snapshot.js'
import type { ChunkId, TreeId } from '../ids.js'
import { asChunkId } from '../ids.js'
import { commitSnapshot, type Repository } from '../repo/index.js'
import { concatBytes, utf8Encode } from '../util/bytes.js'
import { nodeFromStats, nodeTypeOf, sameFileVersion } from './fs-node.js'
import { readFileChunks } from './file-reader.js'
import { Excluder } from './exclude.js'
import { buildPathTree, type PathTreeNode } from './path-tree.js'
import { lgetxattrs } from './fsx.js'
import type { BackupOptions, BackupProgress, BackupSummary, ItemError } from './backup-options.js'

const log = scopedLogger('backup')

export type { BackupOptions, BackupProgress, BackupSummary, ItemError } from './backup-options.js'

export interface ArchiverComponents { repo: Repository, cdc: FastCdc }

type FileStatus = 'filesNew' | 'filesChanged' | 'filesUnchanged'
const FILE_KEY_DOMAIN = utf8Encode('p2pbak file cache v1\0')
const nowNs = (): bigint => BigInt(Date.now()) * 1_000_000n

export class Archiver {
  private readonly repo: Repository
  private readonly cdc: FastCdc
  private readonly buffer: Uint8Array
  private excluder = new Excluder([])
  private opts: BackupOptions = { paths: [] }
  /** files with several names: content and how the first name was counted, so every name counts alike */
  private readonly hardlinks = new Map<string, { content: ChunkId[], status: FileStatus }>()
  private s = { filesNew: 0, filesChanged: 0, filesUnchanged: 0, dirs: 0, others: 0, bytesRead: 0, bytesProcessed: 0 }
  private readonly errors: ItemError[] = []
  private readonly changed: string[] = []
  /** incremental runs: the directories to list (every changed path and its ancestors); undefined: list all */
  private walk: Set<string> | undefined
  private dirsReused = 0
  /** subtrees taken from the base snapshot unlisted: their packs are relied on too (docs/gc.md §6.2) */
  private readonly reused: TreeId[] = []
  /** BLAKE3 keyed with the dedup key, with its own native hasher: one file key per file */
  private fileKeyHash: ((data: Uint8Array) => Uint8Array) | undefined
  private progress: BackupProgress = { filesDone: 0, dirsDone: 0, bytesDone: 0, bytesTotal: 0, filesTotal: 0, scanDone: false, currentPath: '' }

  constructor (components: ArchiverComponents) {
    this.repo = components.repo
    this.cdc = components.cdc
    this.buffer = new Uint8Array(2 * components.cdc.params.maxSize)
  }

  async run (opts: BackupOptions): Promise<BackupSummary> {
    this.opts = opts
    const started = Date.now()
    this.repo.relied.clear()
    const time = (opts.now ?? nowNs)()
    this.excluder = new Excluder(opts.excludes ?? [])
    const paths = opts.paths.map(p => resolvePath(p))
    const root = buildPathTree(paths)
    const scan = opts.onProgress !== undefined ? this.scanSizes(paths) : Promise.resolve()
    if (opts.base !== undefined) this.walk = withAncestors(opts.base.changed)
    const baseRoot = opts.base !== undefined ? await this.baseNodes(Buffer.from('/'), opts.base.tree) : undefined
    const tree = await this.saveRootTree(root, baseRoot)
    await scan.catch((err: unknown) => { log('the sizes for the progress were not counted: %s', errorMessage(err)) })
    await this.repo.flush()
    const s = this.s
    const record: SnapshotRecord = {
      version: 1,
      time,
      endTime: (opts.now ?? nowNs)(),
      host: opts.host ?? hostname(),
      user: safeUserName(),
      userId: this.repo.identity.userId,
      paths,
      tags: opts.tags ?? [],
      tree,
      summary: {
        filesNew: s.filesNew, filesChanged: s.filesChanged, filesUnchanged: s.filesUnchanged, dirs: s.dirs,
        bytesRead: s.bytesRead, bytesAdded: this.repo.stats.packBytesAdded, errors: this.errors.length
      },
      program: opts.program ?? 'p2pbak'
    }
    const snapshotId = await commitSnapshot(this.repo, record, { ...opts.commit, ...(opts.base !== undefined ? { reused: { base: opts.base.tree, subtrees: this.reused } } : {}) })
    return {
      snapshotId, tree, ...s,
      bytesAdded: this.repo.stats.packBytesAdded,
      rawBytesAdded: this.repo.stats.rawBytesAdded,
      blobsAdded: this.repo.stats.blobsAdded,
      changedDuringBackup: this.changed,
      errors: this.errors,
      durationMs: Date.now() - started,
      dirsReused: this.dirsReused
    }
  }

  private itemError (path: Buffer | string, err: unknown): void {
    if (err instanceof AbortedError || (err instanceof Error && err.name === 'AbortError')) throw err
    const e: ItemError = { path: path.toString(), error: errorMessage(err), code: errnoCode(err) ?? (err instanceof SourceUnreadableError ? err.code : 'ERR_SOURCE_UNREADABLE') }
    this.errors.push(e)
    this.opts.onItemError?.(e)
  }

  private checkAbort (): void {
    if (this.opts.signal?.aborted === true) throw new AbortedError('backup cancelled')
  }

  /** The snapshot root: a synthetic directory holding the top component of every backed-up path. */
  private async saveRootTree (root: PathTreeNode, base: TreeNode[] | undefined): Promise<TreeId> {
    const nodes = await this.saveChildrenOfPathNode(Buffer.from('/'), root, base)
    return await this.repo.saveTree({ nodes })
  }

  private async saveChildrenOfPathNode (dirPath: Buffer, pn: PathTreeNode, base: TreeNode[] | undefined): Promise<TreeNode[]> {
    const nodes: TreeNode[] = []
    const before = byName(base)
    for (const [name, child] of [...pn.children].sort((a, b) => Buffer.compare(Buffer.from(a[0], 'latin1'), Buffer.from(b[0], 'latin1')))) {
      const nameBytes = Buffer.from(name, 'latin1')
      const path = joinPath(dirPath, nameBytes)
      const old = before.get(nameBytes.toString('latin1'))
      if (child.included) {
        const node = await this.saveEntry(path, nameBytes, old)
        if (node !== undefined) nodes.push(node)
        continue
      }
      // an intermediate directory on the way to a backed-up path: real metadata, partial children.
      // Followed if it is a symlink (`/data` → `/mnt/disk`): the walk goes through it, and its own
      // mode (0777 on a link) restored as a directory's would open the tree to every local user
      try {
        const st = statSync(path, { bigint: true })
        if (!st.isDirectory()) throw new SourceUnreadableError('a folder on the way to a backed-up path is not a directory now: skipped')
        const node = nodeFromStats(nameBytes, 'dir', st)
        const oldChildren = old?.type === 'dir' && old.subtree !== undefined ? await this.baseNodes(path, old.subtree) : undefined
        node.subtree = await this.repo.saveTree({ nodes: await this.saveChildrenOfPathNode(path, child, oldChildren) })
        nodes.push(node)
      } catch (err: unknown) {
        this.itemError(path, err)
      }
    }
    return nodes
  }

  private async saveEntry (path: Buffer, name: Uint8Array, old?: TreeNode): Promise<TreeNode | undefined> {
    this.checkAbort()
    // incremental: a directory in which nothing changed is the base snapshot's, unlisted
    if (this.walk !== undefined && old?.type === 'dir' && old.subtree !== undefined && !this.walk.has(path.toString())) {
      this.dirsReused++
      this.reused.push(old.subtree)
      return old
    }
    let st
    try {
      st = lstatSync(path, { bigint: true })
    } catch (err: unknown) {
      this.itemError(path, err)
      return undefined
    }
    const type = nodeTypeOf(st)
    if (type === undefined) {
      this.itemError(path, new SourceUnreadableError('unknown file type, skipped'))
      return undefined
    }
    const node = nodeFromStats(name, type, st)
    this.readXattrs(path, node)
    try {
      switch (type) {
        case 'dir':
          node.subtree = await this.saveDirectory(path, old?.type === 'dir' ? old.subtree : undefined)
          this.s.dirs++
          this.progress.dirsDone++
          break
        case 'file':
          if (!await this.saveFile(path, node, st)) return undefined
          break
        case 'symlink':
          node.linkTarget = readlinkSync(path, { encoding: 'buffer' })
          this.s.others++
          break
        default:
          this.s.others++
      }
    } catch (err: unknown) {
      this.itemError(path, err)
      return undefined
    }
    return node
  }

  private readXattrs (path: Buffer, node: TreeNode): void {
    try {
      const attrs = lgetxattrs(path)
      if (attrs.length > 0) node.xattrs = attrs.map(a => ({ name: new Uint8Array(a.name), value: new Uint8Array(a.value) }))
    } catch (err: unknown) {
      // xattrs are best effort: an unreadable attribute list does not make the file unreadable
      log('extended attributes of %s not read: %s', path.toString(), errorMessage(err))
    }
  }

  /**
   * A folder's entries in the base snapshot (continuous mode). One that cannot be read is no reason
   * to leave a readable folder out: the folder is then walked as a new one (nothing under it reused).
   */
  private async baseNodes (path: Buffer, base: TreeId): Promise<TreeNode[] | undefined> {
    try {
      return (await this.repo.loadTree(base)).nodes
    } catch (err: unknown) {
      this.checkAbort()
      log('the base snapshot\'s listing of %s cannot be read (%s): the folder is walked whole', path.toString(), errorMessage(err))
      return undefined
    }
  }

  private async saveDirectory (path: Buffer, base: TreeId | undefined): Promise<TreeId> {
    const names = readdirSync(path, { encoding: 'buffer' })
    names.sort(Buffer.compare)
    const before = byName(this.walk !== undefined && base !== undefined ? await this.baseNodes(path, base) : undefined)
    const nodes: TreeNode[] = []
    for (const name of names) {
      const child = joinPath(path, name)
      if (this.excluder.excludes(child)) continue
      const node = await this.saveEntry(child, name, before.get(name.toString('latin1')))
      if (node !== undefined) nodes.push(node)
    }
    await turnEventLoop()
    return await this.repo.saveTree({ nodes })
  }

  /** Returns false when the file could not be read (reported). */
  private async saveFile (path: Buffer, node: TreeNode, st: import('node:fs').BigIntStats): Promise<boolean> {
    this.progress.currentPath = path.toString()
    const linkKey = st.nlink > 1n ? `${st.dev}:${st.ino}` : undefined
    if (linkKey !== undefined) {
      const seen = this.hardlinks.get(linkKey)
      if (seen !== undefined) {
        node.content = seen.content
        this.s[seen.status]++
        this.countDone(node.size, false)
        return true
      }
    }
    this.fileKeyHash ??= keyedHashFunction(this.repo.identity.dedupKey)
    const fileKey = this.fileKeyHash(concatBytes([FILE_KEY_DOMAIN, path]))
    const cached = this.repo.index.getFile(fileKey)
    if (cached !== undefined && cached.size === node.size && cached.mtimeNs === st.mtimeNs && cached.ctimeNs === st.ctimeNs &&
        cached.inode === st.ino && cached.device === st.dev) {
      const content = splitIds(cached.content)
      if (content.every(id => this.repo.hasBlob(id))) {
        node.content = content
        if (linkKey !== undefined) this.hardlinks.set(linkKey, { content, status: 'filesUnchanged' })
        this.s.filesUnchanged++
        this.countDone(node.size, false)
        return true
      }
    }
    const retries = this.opts.changedFileRetries ?? 2
    let result
    for (let attempt = 0; ; attempt++) {
      result = await readFileChunks(path, this.repo, this.cdc, this.buffer, n => { this.progress.bytesDone += n; this.emit() }, this.opts.signal)
      this.s.bytesRead += result.bytesRead
      if (sameFileVersion(result.before, result.after) && sameFileVersion(st, result.before)) break
      if (attempt >= retries) {
        node.changedDuringBackup = true
        this.changed.push(path.toString())
        break
      }
      st = result.after
    }
    // metadata as of the read, not as of the directory listing
    const fresh = nodeFromStats(node.name, 'file', result.after)
    Object.assign(node, { size: result.bytesRead, mtimeNs: fresh.mtimeNs, ctimeNs: fresh.ctimeNs, atimeNs: fresh.atimeNs, mode: fresh.mode, uid: fresh.uid, gid: fresh.gid, links: fresh.links })
    if (fresh.sparse === true) node.sparse = true
    node.content = result.content
    if (node.changedDuringBackup !== true) {
      this.repo.index.putFile(fileKey, { size: node.size, mtimeNs: result.after.mtimeNs, ctimeNs: result.after.ctimeNs, inode: result.after.ino, device: result.after.dev, content: concatBytes(result.content) })
    }
    const status: FileStatus = cached === undefined ? 'filesNew' : 'filesChanged'
    this.s[status]++
    if (linkKey !== undefined) this.hardlinks.set(linkKey, { content: result.content, status })
    this.countDone(node.size, true)
    return true
  }

  private countDone (size: number, bytesCounted: boolean): void {
    this.s.bytesProcessed += size
    this.progress.filesDone++
    if (!bytesCounted) this.progress.bytesDone += size
    this.emit()
  }

  private emit (): void { this.opts.onProgress?.(this.progress) }

  /** Walks the same paths with lstat only, so progress can show a total and an ETA. */
  private async scanSizes (paths: string[]): Promise<void> {
    const walk = async (p: Buffer): Promise<void> => {
      if (this.opts.signal?.aborted === true) return
      let st
      try { st = await lstat(p, { bigint: true }) } catch { return }
      if (st.isDirectory()) {
        let names: Buffer[] = []
        try { names = await readdir(p, { encoding: 'buffer' }) } catch { return }
        for (const n of names) {
          const c = joinPath(p, n)
          if (!this.excluder.excludes(c)) await walk(c)
        }
      } else if (st.isFile()) {
        this.progress.bytesTotal += Number(st.size)
        this.progress.filesTotal++
      }
    }
    for (const p of paths) await walk(Buffer.from(p))
    this.progress.scanDone = true
  }
}

/** A tree's nodes by name (latin1 maps every byte to one character and back). */
function byName (nodes: TreeNode[] | undefined): Map<string, TreeNode> {
  return new Map((nodes ?? []).map(n => [Buffer.from(n.name).toString('latin1'), n]))
}

/**
 * Every changed path and every directory above it: the directories an incremental run must list. A
 * path is compared as UTF-8 text, as watchers report it (a directory whose name is not UTF-8 is
 * listed again only by a full run).
 */
export function withAncestors (changed: Iterable<string>): Set<string> {
  const out = new Set<string>()
  for (const p of changed) {
    let cur = p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p
    while (!out.has(cur)) {
      out.add(cur)
      const i = cur.lastIndexOf('/')
      if (i <= 0) { out.add('/'); break }
      cur = cur.slice(0, i)
    }
  }
  return out
}

export function joinPath (dir: Buffer, name: Uint8Array): Buffer {
  if (dir.length > 0 && dir[dir.length - 1] === 0x2f) return Buffer.concat([dir, name])
  return Buffer.concat([dir, Buffer.from('/'), name])
}

function splitIds (content: Uint8Array): ChunkId[] {
  const out: ChunkId[] = []
  for (let i = 0; i + 32 <= content.byteLength; i += 32) out.push(asChunkId(content.slice(i, i + 32)))
  return out
}

function safeUserName (): string {
  try { return userInfo().username } catch { return '' }
}
