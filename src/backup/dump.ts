/**
 * `dump`: a snapshot's file to a stream byte for byte, or a folder as a pax tar stream (src/backup/tar.ts)
 * that `tar -x` turns back into the tree: contents, modes (setuid, setgid, sticky included), mtimes to the
 * nanosecond, owners, symlinks, hardlinks, FIFOs and devices. Names are the tree's raw bytes. Content is
 * written chunk by chunk, waiting for the sink to drain: no file is held in memory whole.
 *
 * Entries are named by their absolute path in the snapshot without the leading '/', as `restore` lays
 * them out below its target: `dump latest /home/me/docs | tar -x -C T` gives T/home/me/docs.
 */
import type { Writable } from 'node:stream'
import { AbortedError, errnoCode, errorMessage, NoSpaceError, NotFoundError } from '../errors.js'
import type { TreeNode } from '../format/tree.js'
import type { TreeId } from '../ids.js'
import type { Repository } from '../repo/index.js'
import { joinPath, type ItemError } from './archiver.js'
import { padding, tarEnd, tarHeader, type TarEntry, type TarType } from './tar.js'

export interface DumpOptions {
  signal?: AbortSignal
  /** a tar archive even when the path is one file */
  tar?: boolean
  /** an item that could not be read completely (a damaged pack, a tree that cannot be loaded) */
  onItemError?: (err: ItemError) => void
  /** an entry left out of the archive because tar cannot hold it (a socket) */
  onSkipped?: (path: string, why: string) => void
}

export interface DumpSummary {
  /** 'file': the content alone; 'tar': an archive */
  format: 'file' | 'tar'
  entries: number
  bytes: number
  errors: ItemError[]
}

/** A node of the snapshot found by its absolute path, with that path as the tree stores it (raw bytes). */
export interface Located { node: TreeNode | undefined, tree: TreeId, path: Buffer }

/**
 * Finds `path` (absolute, '/' for the root) in the tree. Each component is matched by its UTF-8 bytes
 * first, else by the name decoded as `ls` prints it (so a name that is not UTF-8 can still be named when
 * it is the only one that prints that way).
 * @throws NotFoundError when a component is missing or a non-directory is in the way
 */
export async function locate (repo: Repository, root: TreeId, path: string): Promise<Located> {
  const parts = path.split('/').filter(p => p !== '' && p !== '.')
  let tree = root
  let node: TreeNode | undefined
  let at: Buffer = Buffer.alloc(0)
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string
    if (node !== undefined) {
      if (node.type !== 'dir' || node.subtree === undefined) throw new NotFoundError(`${at.toString()} is not a directory in this snapshot`)
      tree = node.subtree
    }
    const nodes = (await repo.loadTree(tree)).nodes
    const want = Buffer.from(part)
    let found = nodes.find(n => want.equals(n.name))
    if (found === undefined) {
      const loose = nodes.filter(n => Buffer.from(n.name).toString() === part)
      if (loose.length === 1) found = loose[0]
    }
    if (found === undefined) throw new NotFoundError(`${'/' + parts.slice(0, i + 1).join('/')} is not in this snapshot`)
    node = found
    at = joinPath(at.length === 0 ? Buffer.from('/') : at, found.name)
  }
  return { node, tree: node?.subtree ?? tree, path: at.length === 0 ? Buffer.from('/') : at }
}

/** Whether dump writes an archive for this node (anything but a file, or a file with `tar`). */
export function dumpsTar (where: Located, opts: Pick<DumpOptions, 'tar'> = {}): boolean {
  return where.node?.type !== 'file' || opts.tar === true
}

/** Writes a located file's content, or (for anything else) a tar archive of it and what is below. */
export async function dump (repo: Repository, where: Located, out: Writable, opts: DumpOptions = {}): Promise<DumpSummary> {
  const d = new Dumper(repo, out, opts)
  return await d.run(where)
}

class Dumper {
  private readonly errors: ItemError[] = []
  private readonly hardlinks = new Map<string, Buffer>()
  private entries = 0
  private bytes = 0
  private broken: Error | undefined

  constructor (private readonly repo: Repository, private readonly out: Writable, private readonly opts: DumpOptions) {}

  async run (where: Located): Promise<DumpSummary> {
    const onError = (err: Error): void => { this.broken = outputError(err) }
    this.out.on('error', onError)
    try {
      if (where.node?.type === 'file' && this.opts.tar !== true) {
        await this.content(where.node, where.path, false)
        return { format: 'file', entries: 1, bytes: this.bytes, errors: this.errors }
      }
      if (where.node === undefined) {
        await this.tree(where.tree, Buffer.alloc(0))
      } else {
        await this.entry(where.node, where.path.subarray(1))
      }
      await this.write(tarEnd())
      return { format: 'tar', entries: this.entries, bytes: this.bytes, errors: this.errors }
    } finally {
      this.out.off('error', onError)
    }
  }

  private async tree (id: TreeId, dir: Buffer): Promise<void> {
    let nodes: TreeNode[]
    try {
      nodes = (await this.repo.loadTree(id)).nodes
    } catch (err: unknown) {
      this.itemError(dir, err)
      return
    }
    for (const node of nodes) await this.entry(node, dir.length === 0 ? Buffer.from(node.name) : joinPath(dir, node.name))
  }

  /** One node and, for a directory, everything below it. `path` is relative (no leading '/'). */
  private async entry (node: TreeNode, path: Buffer): Promise<void> {
    this.checkAbort()
    const base: Omit<TarEntry, 'type'> = {
      path, mode: node.mode, uid: node.uid, gid: node.gid, size: 0, mtimeNs: node.mtimeNs,
      ...(node.user !== undefined ? { user: node.user } : {}),
      ...(node.group !== undefined ? { group: node.group } : {})
    }
    switch (node.type) {
      case 'dir':
        await this.header({ ...base, type: 'dir' })
        if (node.subtree !== undefined) await this.tree(node.subtree, path)
        return
      case 'file': {
        const key = node.links > 1 ? `${node.device}:${node.inode}` : undefined
        const first = key === undefined ? undefined : this.hardlinks.get(key)
        if (first !== undefined) {
          await this.header({ ...base, type: 'hardlink', linkPath: first })
          return
        }
        if (key !== undefined) this.hardlinks.set(key, path)
        await this.header({ ...base, type: 'file', size: node.size })
        await this.content(node, path, true)
        return
      }
      case 'symlink':
        await this.header({ ...base, type: 'symlink', linkPath: node.linkTarget ?? new Uint8Array() })
        return
      case 'fifo':
      case 'chardev':
      case 'blockdev': {
        const rdev = node.rdev ?? 0n
        const dev = node.type === 'fifo' ? {} : { devMajor: Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn)), devMinor: Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn)) }
        await this.header({ ...base, type: node.type as TarType, ...dev })
        return
      }
      case 'socket':
        this.opts.onSkipped?.('/' + path.toString(), 'a socket cannot be put in a tar archive')
    }
  }

  private async header (e: TarEntry): Promise<void> {
    this.entries++
    await this.write(tarHeader(e))
  }

  /**
   * A file's content, chunk by chunk. In a tar it is exactly `node.size` bytes, padded to a block: a
   * chunk that cannot be read is replaced by zeros (and reported), so the archive stays readable.
   */
  private async content (node: TreeNode, path: Buffer, inTar: boolean): Promise<void> {
    let left = node.size
    for (const id of node.content ?? []) {
      if (left <= 0 && inTar) break
      this.checkAbort()
      let data: Uint8Array
      try {
        data = await this.repo.loadBlob(id)
      } catch (err: unknown) {
        if (!inTar) throw err
        this.itemError(path, err)
        break
      }
      if (inTar && data.byteLength > left) data = data.subarray(0, left)
      await this.write(data)
      left -= data.byteLength
      this.bytes += data.byteLength
    }
    if (!inTar) return
    const zeros = Buffer.alloc(Math.min(Math.max(left, 0), 1 << 20))
    while (left > 0) {
      this.checkAbort()
      const n = Math.min(left, zeros.length)
      await this.write(zeros.subarray(0, n))
      left -= n
    }
    await this.write(Buffer.alloc(padding(node.size)))
  }

  /** Writes, waiting for 'drain' when the sink's buffer is full (or for cancellation). */
  private async write (data: Uint8Array): Promise<void> {
    if (data.byteLength === 0) return
    if (this.broken !== undefined) throw this.broken
    if (this.out.write(data)) return
    const signal = this.opts.signal
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        this.out.off('drain', onDrain)
        this.out.off('error', onErr)
        this.out.off('close', onClose)
        signal?.removeEventListener('abort', onAbort)
        if (err === undefined) resolve()
        else reject(err)
      }
      const onDrain = (): void => done()
      const onErr = (err: Error): void => done(outputError(err))
      const onClose = (): void => done(new AbortedError('dump stopped: the output was closed before the dump was complete'))
      const onAbort = (): void => done(new AbortedError('dump cancelled'))
      this.out.on('drain', onDrain)
      this.out.on('error', onErr)
      this.out.on('close', onClose)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private checkAbort (): void {
    if (this.opts.signal?.aborted === true) throw new AbortedError('dump cancelled')
    if (this.broken !== undefined) throw this.broken
  }

  private itemError (path: Buffer, err: unknown): void {
    if (err instanceof AbortedError) throw err
    const e: ItemError = { path: '/' + path.toString(), error: errorMessage(err), code: errnoCode(err) ?? (err instanceof Error && 'code' in err ? String(err.code) : 'ERR_DUMP') }
    this.errors.push(e)
    this.opts.onItemError?.(e)
  }
}

/** The reader went away (`dump … | head`): as if cancelled. A full disk: said so. */
function outputError (err: Error): Error {
  const code = errnoCode(err)
  if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED') return new AbortedError('dump stopped: the output was closed before the dump was complete')
  if (code === 'ENOSPC') return new NoSpaceError(`dump stopped: no space left where the output goes (${err.message})`)
  return err
}
