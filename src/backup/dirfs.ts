/**
 * Names relative to an open directory, for a restore that walks its target by directory descriptors
 * (issue 11, finding 14). Each call takes one path component (no "/") and resolves it in the directory
 * the descriptor holds, whatever has since happened to that directory's path: a parent directory
 * swapped for a symlink by a local user is never followed, so nothing is created, linked or changed
 * outside the target. The calls never follow a symlink in the final component either.
 *
 * Three ways to resolve a name, best first (docs/format/metadata.md §7):
 * - `native`: the addon's *at calls (openat, mkdirat, …; native/fsx.c).
 * - `proc`: Linux without the addon: node:fs on `/proc/self/fd/N/name`. The kernel resolves the magic
 *   link `/proc/self/fd/N` to the open directory itself, not by its path, so the name is looked up
 *   exactly as openat(N, name) would.
 * - `path`: neither: node:fs on the directory's path joined with the name, as restore did before. A
 *   parent swapped for a symlink is then followed; {@link dirFs} logs a warning and the CLI prints one.
 */
import { closeSync, constants, linkSync, lchownSync, lstatSync, mkdirSync, openSync, symlinkSync, unlinkSync, existsSync } from 'node:fs'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { InvalidArgumentError, errnoCode } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import { lsetxattrs, lutimesNs, nativeAt, type FsxAtNative, type XattrFailure } from './fsx.js'

const log = scopedLogger('restore')

export type DirAccess = 'native' | 'proc' | 'path'

/** An open directory: its descriptor, and its path (for messages, and for the `path` way). */
export interface OpenDir { readonly fd: number, readonly path: Buffer }

/** Flags that open a directory for the walk: never through a symlink. */
export const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW

/**
 * The calls a restore makes relative to an open directory. Every one throws a Node-style system error
 * (code 'EEXIST', 'ELOOP', …) on failure, except lsetxattrs, which reports failed names.
 */
export interface DirFs {
  readonly access: DirAccess
  /** open `name` in `dir` (flags as fs.constants; add O_NOFOLLOW to refuse a symlink); a new descriptor */
  open: (dir: OpenDir, name: Uint8Array, flags: number, mode?: number) => number
  mkdir: (dir: OpenDir, name: Uint8Array, mode: number) => void
  mkfifo: (dir: OpenDir, name: Uint8Array, mode: number) => Promise<void>
  symlink: (target: Uint8Array, dir: OpenDir, name: Uint8Array) => void
  /** remove a name that is not a directory (a symlink itself, never its target) */
  unlink: (dir: OpenDir, name: Uint8Array) => void
  /** a hard link `toName` in `to` of `fromName` in `from` (a symlink there is linked itself, not followed) */
  link: (from: OpenDir, fromName: Uint8Array, to: OpenDir, toName: Uint8Array) => void
  lchown: (dir: OpenDir, name: Uint8Array, uid: number, gid: number) => void
  lutimesNs: (dir: OpenDir, name: Uint8Array, atimeNs: bigint, mtimeNs: bigint) => void
  lsetxattrs: (dir: OpenDir, name: Uint8Array, attrs: ReadonlyArray<{ name: Uint8Array, value: Uint8Array }>) => XattrFailure[]
}

const joined = (dir: Buffer, name: Uint8Array): Buffer =>
  Buffer.concat([dir, dir.length > 0 && dir[dir.length - 1] === 0x2f ? Buffer.alloc(0) : Buffer.from('/'), name])

const NS_PER_S = 1_000_000_000n
const split = (ns: bigint): [bigint, number] => {
  let sec = ns / NS_PER_S
  let rem = ns % NS_PER_S
  if (rem < 0n) { sec -= 1n; rem += NS_PER_S }
  return [sec, Number(rem)]
}

function nativeFs (at: FsxAtNative): DirFs {
  return {
    access: 'native',
    open: (dir, name, flags, mode = 0) => at.openat(dir.fd, name, flags, mode),
    mkdir: (dir, name, mode) => { at.mkdirat(dir.fd, name, mode) },
    mkfifo: async (dir, name, mode) => { at.mkfifoat(dir.fd, name, mode) },
    symlink: (target, dir, name) => { at.symlinkat(target, dir.fd, name) },
    unlink: (dir, name) => { at.unlinkat(dir.fd, name, 0) },
    link: (from, fromName, to, toName) => { at.linkat(from.fd, fromName, to.fd, toName) },
    lchown: (dir, name, uid, gid) => { at.lchownat(dir.fd, name, uid, gid) },
    lutimesNs: (dir, name, atimeNs, mtimeNs) => { at.lutimensat(dir.fd, name, ...split(atimeNs), ...split(mtimeNs)) },
    // Linux has no lsetxattrat before 6.13: the /proc path resolves the name in the open directory
    lsetxattrs: (dir, name, attrs) => lsetxattrs(procPath('self', dir, name), attrs)
  }
}

function procPath (pid: 'self' | number, dir: OpenDir, name: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`/proc/${pid}/fd/${dir.fd}/`), name])
}

/** node:fs on a path that resolves `name` in `dir`: the /proc link of its descriptor, or its path. */
function pathFs (access: 'proc' | 'path'): DirFs {
  const at = access === 'proc' ? (dir: OpenDir, name: Uint8Array) => procPath('self', dir, name) : (dir: OpenDir, name: Uint8Array) => joined(dir.path, name)
  return {
    access,
    open: (dir, name, flags, mode) => openSync(at(dir, name), flags, mode),
    mkdir: (dir, name, mode) => { mkdirSync(at(dir, name), { mode }) },
    mkfifo: async (dir, name, mode) => {
      // Node has no mkfifo: the mkfifo program, which sees this process's descriptors by its pid
      if (lstatSync(at(dir, name), { throwIfNoEntry: false }) !== undefined) {
        throw Object.assign(new Error(`EEXIST: file already exists, mkfifo '${joined(dir.path, name).toString()}'`), { code: 'EEXIST', errno: -17, syscall: 'mkfifo' })
      }
      const p = access === 'proc' ? procPath(process.pid, dir, name) : joined(dir.path, name)
      await promisify(execFile)('mkfifo', ['-m', (mode & 0o7777).toString(8), '--', p.toString()])
    },
    symlink: (target, dir, name) => { symlinkSync(Buffer.from(target), at(dir, name)) },
    unlink: (dir, name) => { unlinkSync(at(dir, name)) },
    link: (from, fromName, to, toName) => { linkSync(at(from, fromName), at(to, toName)) },
    lchown: (dir, name, uid, gid) => { lchownSync(at(dir, name), uid, gid) },
    lutimesNs: (dir, name, atimeNs, mtimeNs) => { lutimesNs(at(dir, name), atimeNs, mtimeNs) },
    lsetxattrs: (dir, name, attrs) => lsetxattrs(at(dir, name), attrs)
  }
}

let warned = false

/**
 * The best way available here, or the one asked for (tests run each). `native` needs the addon with its
 * *at calls, `proc` a mounted /proc (Linux).
 */
export function dirFs (want?: DirAccess): DirFs {
  const access = want ?? (nativeAt !== undefined ? 'native' : existsSync('/proc/self/fd') ? 'proc' : 'path')
  if (access === 'native') {
    if (nativeAt === undefined) throw new InvalidArgumentError('the native addon with its *at calls is not loaded: rebuild it with `npx node-gyp rebuild`')
    return nativeFs(nativeAt)
  }
  if (access === 'path' && !warned) {
    warned = true
    log.error('restore resolves names by path (no addon and no /proc): a local user who can write into the target could redirect it')
  }
  return pathFs(access)
}

/**
 * Opens the restore's target directory, never through a symlink in its last component. The caller
 * closes the descriptor.
 */
export function openTargetDir (path: Buffer): OpenDir {
  try {
    return { fd: openSync(path, DIR_FLAGS), path }
  } catch (err: unknown) {
    const code = errnoCode(err)
    if (code !== 'ELOOP' && code !== 'ENOTDIR') throw err
    // Linux says ENOTDIR for a symlink opened with O_DIRECTORY | O_NOFOLLOW
    if (lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() === true) {
      throw new InvalidArgumentError(`the restore target ${path.toString()} is a symlink: pass the directory it points to instead`)
    }
    throw new InvalidArgumentError(`the restore target ${path.toString()} is not a directory`)
  }
}

/** Closes a descriptor on a path that must not throw over another error (a failed close is logged). */
export function closeQuietly (fd: number): void {
  try {
    closeSync(fd)
  } catch (err: unknown) {
    log.error('close of descriptor %d failed: %s', fd, err)
  }
}
