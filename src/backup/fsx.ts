/**
 * File metadata that node:fs cannot set or read exactly: nanosecond timestamps and extended attributes;
 * and the *at calls (a name relative to an open directory) restore walks its target with (dirfs.ts).
 *
 * The work is done by our own N-API addon (native/fsx.c, built by node-gyp at install into
 * build/Release/fsx.node). When the addon is missing or fails to load, {@link nativeAvailable} is false and
 * pure-JS fallbacks apply: timestamps are set with fs.lutimesSync (truncated to whole microseconds) and
 * extended attributes can be neither read nor written. See docs/format/metadata.md.
 */
import { futimesSync, lutimesSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/** One extended attribute, name and value as raw bytes. */
export interface Xattr { name: Buffer, value: Buffer }
/** An extended attribute that could not be set, with its errno code ('EPERM', 'ENOTSUP', …). */
export interface XattrFailure { name: Buffer, code: string }

/** The functions native/fsx.c exports. Every path and name is raw bytes without NUL. */
interface FsxNative {
  lutimens: (path: Uint8Array, atimeSec: bigint, atimeNsec: number, mtimeSec: bigint, mtimeNsec: number) => void
  lgetxattrs: (path: Uint8Array) => Xattr[]
  lsetxattr: (path: Uint8Array, name: Uint8Array, value: Uint8Array) => void
}

/**
 * The *at and descriptor calls of native/fsx.c (docs/format/metadata.md §7). An addon built before they
 * existed lacks them: {@link nativeAt} is then undefined and dirfs.ts resolves names another way.
 */
export interface FsxAtNative {
  openat: (dirfd: number, name: Uint8Array, flags: number, mode: number) => number
  mkdirat: (dirfd: number, name: Uint8Array, mode: number) => void
  mkfifoat: (dirfd: number, name: Uint8Array, mode: number) => void
  symlinkat: (target: Uint8Array, dirfd: number, name: Uint8Array) => void
  unlinkat: (dirfd: number, name: Uint8Array, flags: number) => void
  linkat: (olddirfd: number, oldname: Uint8Array, newdirfd: number, newname: Uint8Array) => void
  lchownat: (dirfd: number, name: Uint8Array, uid: number, gid: number) => void
  lutimensat: (dirfd: number, name: Uint8Array, atimeSec: bigint, atimeNsec: number, mtimeSec: bigint, mtimeNsec: number) => void
  futimens: (fd: number, atimeSec: bigint, atimeNsec: number, mtimeSec: bigint, mtimeNsec: number) => void
  fsetxattr: (fd: number, name: Uint8Array, value: Uint8Array) => void
}

const AT_FUNCTIONS = ['openat', 'mkdirat', 'mkfifoat', 'symlinkat', 'unlinkat', 'linkat', 'lchownat', 'lutimensat', 'futimens', 'fsetxattr'] as const

function isFsxAtNative (mod: unknown): mod is FsxAtNative {
  if (typeof mod !== 'object' || mod === null) return false
  const m: Record<string, unknown> = { ...mod }
  return AT_FUNCTIONS.every(f => typeof m[f] === 'function')
}

function isFsxNative (mod: unknown): mod is FsxNative {
  if (typeof mod !== 'object' || mod === null) return false
  return 'lutimens' in mod && typeof mod.lutimens === 'function' &&
    'lgetxattrs' in mod && typeof mod.lgetxattrs === 'function' &&
    'lsetxattr' in mod && typeof mod.lsetxattr === 'function'
}

/** Loads build/Release/fsx.node from the package root (two levels above src/backup or dist/backup). */
function loadNative (): unknown {
  try {
    const addonPath = fileURLToPath(new URL('../../build/Release/fsx.node', import.meta.url))
    return createRequire(import.meta.url)(addonPath)
  } catch {
    return undefined
  }
}

const loaded = loadNative()
const native = isFsxNative(loaded) ? loaded : undefined

/** true when the native addon loaded */
export const nativeAvailable: boolean = native !== undefined

/** The addon's *at and descriptor calls, when the addon loaded and has them. */
export const nativeAt: FsxAtNative | undefined = native !== undefined && isFsxAtNative(loaded) ? loaded : undefined

/**
 * The C library allocator's calls of native/fsx-mem.c, for the daemon (src/cli/process-memory.ts): both
 * return false where the C library is not glibc. Undefined when the addon is missing or older.
 */
export interface FsxMemNative {
  /** mallopt(M_MMAP_THRESHOLD, bytes): blocks of at least `bytes` get their own mapping; true if set */
  mallocTune: (mmapThreshold: number) => boolean
  /** malloc_trim(0): free pages go back to the system; true if some were released */
  mallocTrim: () => boolean
}

function isFsxMemNative (mod: unknown): mod is FsxMemNative {
  return typeof mod === 'object' && mod !== null &&
    'mallocTune' in mod && typeof mod.mallocTune === 'function' && 'mallocTrim' in mod && typeof mod.mallocTrim === 'function'
}

export const nativeMemory: FsxMemNative | undefined = native !== undefined && isFsxMemNative(loaded) ? loaded : undefined

const NS_PER_S = 1_000_000_000n

/** Splits nanoseconds since the epoch into whole seconds (rounded toward -∞) and nanoseconds in [0, 1e9). */
function splitNs (ns: bigint): { sec: bigint, nsec: number } {
  if (typeof ns !== 'bigint') throw new TypeError('fsx: timestamps must be bigint nanoseconds')
  let sec = ns / NS_PER_S
  let rem = ns % NS_PER_S
  if (rem < 0n) { sec -= 1n; rem += NS_PER_S }
  return { sec, nsec: Number(rem) }
}

function toPathBytes (path: string | Buffer): Buffer {
  if (typeof path === 'string') return Buffer.from(path, 'utf8')
  if (Buffer.isBuffer(path)) return path
  throw new TypeError('fsx: path must be a string or a Buffer')
}

/**
 * The seconds value that makes libuv (which truncates toward zero to whole microseconds) land on
 * floor(ns / 1000) µs: aim at the middle of that microsecond, on the side truncation moves away from,
 * so the one rounding to a double (under 0.5 µs until the year 2242) cannot cross a microsecond boundary.
 * Returned as an exact decimal string: Node parses it with a single rounding, whereas it turns a negative
 * *number* into "now".
 */
function toLibuvSeconds (ns: bigint): string {
  const { sec, nsec } = splitNs(ns)
  const micros = sec * 1_000_000n + BigInt(Math.floor(nsec / 1000))
  const tenthsOfMicro = micros * 10n + (micros < 0n ? -5n : 5n)
  const abs = tenthsOfMicro < 0n ? -tenthsOfMicro : tenthsOfMicro
  const frac = (abs % 10_000_000n).toString().padStart(7, '0')
  return `${tenthsOfMicro < 0n ? '-' : ''}${abs / 10_000_000n}.${frac}`
}

/** The pure-JS implementations used when the addon is not available (exported for tests). */
export const fallback = {
  lutimesNs (path: string | Buffer, atimeNs: bigint, mtimeNs: bigint): void {
    lutimesSync(toPathBytes(path), toLibuvSeconds(atimeNs), toLibuvSeconds(mtimeNs))
  },
  lgetxattrs (path: string | Buffer): Xattr[] {
    toPathBytes(path)
    return []
  },
  lsetxattrs (path: string | Buffer, attrs: ReadonlyArray<{ name: Uint8Array, value: Uint8Array }>): XattrFailure[] {
    toPathBytes(path)
    return attrs.map(a => ({ name: Buffer.from(a.name), code: 'ENOTSUP' }))
  },
  futimesNs (fd: number, atimeNs: bigint, mtimeNs: bigint): void {
    futimesSync(fd, toLibuvSeconds(atimeNs), toLibuvSeconds(mtimeNs))
  }
} as const

/**
 * Set atime/mtime with nanosecond precision on the path itself (never follows symlinks: utimensat with
 * AT_SYMLINK_NOFOLLOW). Falls back to fs.lutimes (µs precision) without the addon. Paths are string | Buffer
 * (raw bytes, non-UTF-8 names must work). The filesystem may round to its own granularity or clamp to its
 * range (ext4: 1901–2446); read the result back with lstat when that matters.
 * Throws a Node-style error (code, errno, syscall 'utimensat', path) when the call fails.
 */
export function lutimesNs (path: string | Buffer, atimeNs: bigint, mtimeNs: bigint): void {
  if (native === undefined) { fallback.lutimesNs(path, atimeNs, mtimeNs); return }
  const a = splitNs(atimeNs)
  const m = splitNs(mtimeNs)
  native.lutimens(toPathBytes(path), a.sec, a.nsec, m.sec, m.nsec)
}

/**
 * List extended attributes of the path itself (llistxattr + lgetxattr): [] when unsupported (ENOTSUP) or
 * without the addon. Names as Buffer (raw). Throws a Node-style error with .code for EACCES etc.
 */
export function lgetxattrs (path: string | Buffer): Xattr[] {
  if (native === undefined) return fallback.lgetxattrs(path)
  return native.lgetxattrs(toPathBytes(path))
}

/**
 * lsetxattr each; returns the names that failed with their errno code (EPERM for trusted.* and security.*
 * as non-root, ENOTSUP on filesystems without xattrs and for every name without the addon) instead of
 * throwing. Only argument errors (not a Buffer/Uint8Array, NUL in the path) throw.
 */
export function lsetxattrs (
  path: string | Buffer,
  attrs: ReadonlyArray<{ name: Uint8Array, value: Uint8Array }>
): XattrFailure[] {
  const n = native
  if (n === undefined) return fallback.lsetxattrs(path, attrs)
  const bytes = toPathBytes(path)
  return setEach(attrs, (name, value) => { n.lsetxattr(bytes, name, value) })
}

/**
 * Set atime/mtime of an open file or directory with nanosecond precision (futimens); fs.futimes (µs, as
 * {@link lutimesNs}) without the addon's futimens.
 */
export function futimesNs (fd: number, atimeNs: bigint, mtimeNs: bigint): void {
  if (nativeAt === undefined) { fallback.futimesNs(fd, atimeNs, mtimeNs); return }
  const a = splitNs(atimeNs)
  const m = splitNs(mtimeNs)
  nativeAt.futimens(fd, a.sec, a.nsec, m.sec, m.nsec)
}

/** {@link lsetxattrs} on an open descriptor (fsetxattr): every name fails with ENOTSUP without the addon's fsetxattr. */
export function fsetxattrs (fd: number, attrs: ReadonlyArray<{ name: Uint8Array, value: Uint8Array }>): XattrFailure[] {
  const at = nativeAt
  if (at === undefined) return attrs.map(a => ({ name: Buffer.from(a.name), code: 'ENOTSUP' }))
  return setEach(attrs, (name, value) => { at.fsetxattr(fd, name, value) })
}

function setEach (attrs: ReadonlyArray<{ name: Uint8Array, value: Uint8Array }>, set: (name: Uint8Array, value: Uint8Array) => void): XattrFailure[] {
  const failed: XattrFailure[] = []
  for (const { name, value } of attrs) {
    try {
      set(name, value)
    } catch (err: unknown) {
      const code = systemErrorCode(err)
      if (code === undefined) throw err
      failed.push({ name: Buffer.from(name), code })
    }
  }
  return failed
}

/** The code of an error thrown by a failed system call (it carries a numeric errno), else undefined. */
function systemErrorCode (err: unknown): string | undefined {
  if (!(err instanceof Error)) return undefined
  if (!('errno' in err) || typeof err.errno !== 'number') return undefined
  return 'code' in err && typeof err.code === 'string' ? err.code : undefined
}
