/**
 * Crash-safe file replacement: write a temporary file in the target's directory, fsync it, rename it
 * over the final name, then fsync the directory. A reader (or a restart after kill -9 or power loss)
 * sees either the old file, or the complete new one, never a partial file under the final name.
 * Temporaries are named `.tmp-<writer pid>-<8 hex of the writer process>-<8 hex>`. {@link removeTempFiles}
 * deletes those left by a writer that no longer runs (killed, crashed; or an earlier process that had
 * this process's pid, as a daemon restarted in a container often has) or untouched for a day, and
 * never those of a live writer: a second process opening the same store (say `p2pbak snapshots`
 * during a backup) must not pull a share out from under the backup's rename.
 */
import { readFileSync } from 'node:fs'
import { access, link, open, rename, unlink, readdir, stat } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { AlreadyExistsError, NoSpaceError, errnoCode, errorMessage } from '../errors.js'

/** Every temporary file name starts with this prefix. */
export const TEMP_PREFIX = '.tmp-'

const NO_SPACE_CODES = new Set(['ENOSPC', 'EDQUOT'])

/** Most parts handed to one writev call (Linux's IOV_MAX is 1024). */
export const WRITEV_MAX_PARTS = 512

/** True for errno errors that mean "disk full" or "quota exceeded". */
export function isNoSpace (err: unknown): boolean {
  const code = errnoCode(err)
  return code !== undefined && NO_SPACE_CODES.has(code)
}

/** Turns a disk-full errno error into NoSpaceError; returns any other error unchanged. */
export function mapNoSpace (err: unknown, path: string): unknown {
  if (!isNoSpace(err)) return err
  return new NoSpaceError(`no space left on the device to write ${path}; free some space and retry`, { cause: err })
}

export function isTempName (name: string): boolean {
  return name.startsWith(TEMP_PREFIX)
}

const hex8 = (): string => Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0')

/**
 * This process among those that had its pid, carried by its temporaries: its start time (Linux: the
 * same in every thread, so a worker's temporaries count as its process's), else a random mark.
 */
export const INCARNATION = processMark()

function processMark (): string {
  if (process.platform !== 'linux') return hex8()
  try {
    const mark = startMarkFrom(readFileSync('/proc/self/stat', 'utf8'))
    if (mark !== undefined) return mark
    markProblem('/proc/self/stat has no start time')
  } catch (err: unknown) {
    markProblem(`/proc/self/stat unreadable (${errnoCode(err) ?? String(err)})`)
  }
  return hex8()
}

/** "pid (comm) state …": after the last ')' the 20th field is the start time in clock ticks. */
function startMarkFrom (stat: string): string | undefined {
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19])
  return Number.isSafeInteger(ticks) && ticks > 0 ? (ticks % 0x1_0000_0000).toString(16).padStart(8, '0') : undefined
}

/**
 * The start mark of a running process (Linux: its start time, as {@link INCARNATION} is this
 * process's), or undefined where it cannot be read (another system, the process gone).
 */
export function startMarkOf (pid: number): string | undefined {
  if (process.platform !== 'linux') return undefined
  try {
    return startMarkFrom(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch (err: unknown) {
    if (errnoCode(err) !== 'ENOENT') markProblem(`/proc/${pid}/stat unreadable (${errnoCode(err) ?? String(err)})`)
    return undefined
  }
}

/** Logged on demand: the logger is not loaded by every command that loads this module (`--help`). */
function markProblem (why: string): void {
  void import('../util/log.js').then(({ scopedLogger }) => { scopedLogger('store:atomic').error('%s; temporary files are marked per module instance', why) })
}

function randomSuffix (): string {
  // Uniqueness is enforced by O_EXCL below; randomness only makes collisions rare.
  return `${process.pid}-${INCARNATION}-${hex8()}`
}

/** A temp file older than this is removed even if a process with its writer's pid exists (pid reuse). */
export const TEMP_MAX_AGE_MS = 24 * 60 * 60 * 1000

/** Whether the writer of a temp file may still be running. */
function writerMayBeAlive (name: string): boolean {
  const m = /^\.tmp-(\d+)-([0-9a-f]{8})?/.exec(name)
  if (m === null) return false // older naming without a pid: treat as abandoned
  const pid = Number(m[1])
  // this pid is ours: only this process's own temporaries are live (an earlier process with the
  // same pid left the others; names without the process's mark are older than this naming)
  if (pid === process.pid) return m[2] === INCARNATION && name.charAt(m[0].length) === '-'
  try {
    process.kill(pid, 0)
    return true
  } catch (err: unknown) {
    return errnoCode(err) === 'EPERM' // exists, owned by someone else
  }
}

/** fsync a directory so a rename, create or unlink inside it is durable. */
export async function syncDir (dir: string): Promise<void> {
  let fh: FileHandle
  try {
    fh = await open(dir, 'r')
  } catch (err: unknown) {
    // Some platforms cannot open directories; durability is then best effort.
    if (errnoCode(err) === 'EISDIR' || errnoCode(err) === 'EPERM') return
    throw err
  }
  try {
    await fh.sync()
  } catch (err: unknown) {
    const code = errnoCode(err)
    if (code !== 'EINVAL' && code !== 'EBADF' && code !== 'ENOTSUP') throw err
  } finally {
    await fh.close()
  }
}

async function unlinkQuiet (path: string): Promise<void> {
  try { await unlink(path) } catch { /* already gone, or nothing more we can do */ }
}

/**
 * A file written in pieces that appears under its final name only on {@link AtomicFile.commit}.
 * Any failure in `write` or `commit` removes the temporary file and leaves the final name untouched;
 * disk-full failures are reported as NoSpaceError.
 */
export class AtomicFile {
  private state: 'open' | 'committed' | 'aborted' = 'open'
  /** bytes written so far */
  private written = 0

  private constructor (
    readonly finalPath: string,
    readonly tempPath: string,
    private readonly fh: FileHandle
  ) {}

  /** Opens a new temporary file beside `finalPath`, readable too ({@link AtomicFile.readBack}). `mode` defaults to 0o666 (before umask). */
  static async create (finalPath: string, mode = 0o666): Promise<AtomicFile> {
    const dir = dirname(finalPath)
    for (let attempt = 0; ; attempt++) {
      const tempPath = join(dir, TEMP_PREFIX + randomSuffix())
      try {
        const fh = await open(tempPath, 'wx+', mode)
        return new AtomicFile(finalPath, tempPath, fh)
      } catch (err: unknown) {
        if (errnoCode(err) === 'EEXIST' && attempt < 8) continue
        throw mapNoSpace(err, finalPath)
      }
    }
  }

  /** Appends all of `data`. */
  async write (data: Uint8Array): Promise<void> {
    this.assertOpen()
    try {
      let off = 0
      while (off < data.byteLength) {
        const { bytesWritten } = await this.fh.write(data, off, data.byteLength - off)
        off += bytesWritten
        this.written += bytesWritten
      }
    } catch (err: unknown) {
      await this.abort()
      throw mapNoSpace(err, this.finalPath)
    }
  }

  /**
   * Appends all of `parts`, in order, with gathered writes (one `writev` per {@link WRITEV_MAX_PARTS}
   * parts, repeated on a short write): a share received in pieces reaches the file without first
   * being joined into one buffer.
   */
  async writev (parts: readonly Uint8Array[]): Promise<void> {
    this.assertOpen()
    try {
      let i = 0
      let skip = 0 // bytes of parts[i] already written
      while (i < parts.length) {
        const batch: Uint8Array[] = []
        for (let j = i; j < parts.length && batch.length < WRITEV_MAX_PARTS; j++) {
          const p = parts[j] as Uint8Array
          const rest = j === i ? p.subarray(skip) : p
          if (rest.byteLength > 0) batch.push(rest)
        }
        let { bytesWritten } = batch.length > 0 ? await this.fh.writev(batch) : { bytesWritten: 0 }
        if (bytesWritten === 0 && batch.length > 0) throw new Error(`writing ${this.tempPath} made no progress`)
        this.written += bytesWritten
        // advance past what was written (a short write leaves part of a part)
        while (i < parts.length) {
          const left = (parts[i] as Uint8Array).byteLength - skip
          if (bytesWritten < left) { skip += bytesWritten; break }
          bytesWritten -= left
          i++
          skip = 0
        }
      }
    } catch (err: unknown) {
      await this.abort()
      throw mapNoSpace(err, this.finalPath)
    }
  }

  /** Bytes written so far. */
  get length (): number { return this.written }

  /** The bytes written so far, read back from the temporary file. */
  async readBack (): Promise<Uint8Array> {
    this.assertOpen()
    const out = new Uint8Array(this.written)
    let off = 0
    while (off < out.byteLength) {
      const { bytesRead } = await this.fh.read(out, off, out.byteLength - off, off)
      if (bytesRead === 0) throw new Error(`${this.tempPath} shrank while being read back`)
      off += bytesRead
    }
    return out
  }

  /** fsync, rename over the final name, fsync the directory. After this the file is durable. */
  async commit (): Promise<void> {
    await this.syncAndClose()
    try {
      await rename(this.tempPath, this.finalPath)
    } catch (err: unknown) {
      this.state = 'aborted'
      await unlinkQuiet(this.tempPath)
      throw mapNoSpace(err, this.finalPath)
    }
    this.state = 'committed'
    await syncDir(dirname(this.finalPath))
  }

  /**
   * As commit, but never over an existing file (a hard link, which fails when the name exists):
   * AlreadyExistsError with `message` then, and the temporary file goes.
   */
  async commitNew (message: string): Promise<void> {
    await this.syncAndClose()
    try {
      await link(this.tempPath, this.finalPath)
    } catch (err: unknown) {
      this.state = 'aborted'
      await unlinkQuiet(this.tempPath)
      if (errnoCode(err) === 'EEXIST') throw new AlreadyExistsError(message)
      if (NO_LINKS.has(errnoCode(err) ?? '')) throw new NoLinksError(errorMessage(err))
      throw mapNoSpace(err, this.finalPath)
    }
    this.state = 'committed'
    await unlinkQuiet(this.tempPath)
    await syncDir(dirname(this.finalPath))
  }

  /** The temporary file's bytes on disk, and its handle closed (discarded if either fails). */
  private async syncAndClose (): Promise<void> {
    this.assertOpen()
    try {
      await this.fh.sync()
      await this.fh.close()
    } catch (err: unknown) {
      await this.abort()
      throw mapNoSpace(err, this.finalPath)
    }
  }

  /** Discards the temporary file. Idempotent, and a no-op after a successful commit. */
  async abort (): Promise<void> {
    if (this.state !== 'open') return
    this.state = 'aborted'
    try { await this.fh.close() } catch { /* may already be closed by a failed commit */ }
    await unlinkQuiet(this.tempPath)
  }

  private assertOpen (): void {
    if (this.state !== 'open') throw new Error(`AtomicFile for ${this.finalPath} is already ${this.state}`)
  }
}

/**
 * Replaces `path` with `data` atomically and durably (temp file in the same directory + write + fsync
 * + rename + fsync(dir)). ENOSPC/EDQUOT become NoSpaceError, and the temporary file is removed.
 * `data` may be given as consecutive parts (written with {@link AtomicFile.writev}).
 */
export async function writeFileAtomic (path: string, data: Uint8Array | string | readonly Uint8Array[], options: { mode?: number } = {}): Promise<void> {
  const file = await AtomicFile.create(path, options.mode)
  try {
    if (typeof data === 'string') await file.write(Buffer.from(data, 'utf8'))
    else if (data instanceof Uint8Array) await file.write(data)
    else await file.writev(data)
    await file.commit()
  } catch (err: unknown) {
    await file.abort()
    throw err
  }
}

/** what link(2) fails with on a file system without hard links (FAT, exFAT, some FUSE mounts) */
const NO_LINKS = new Set(['EPERM', 'ENOSYS', 'EOPNOTSUPP', 'ENOTSUP'])
class NoLinksError extends Error {}

/**
 * writeFileAtomic that never replaces: AlreadyExistsError (`message`) when `path` exists. Mode 0600.
 * On a file system without hard links the file is created exclusively (O_EXCL) and written in
 * place, then fsynced: still never over another, but a crash mid-write there can leave it partial.
 */
export async function writeFileNew (path: string, data: string, message: string): Promise<void> {
  const bytes = Buffer.from(data, 'utf8')
  const file = await AtomicFile.create(path, 0o600)
  try {
    await file.write(bytes)
  } catch (err: unknown) {
    await file.abort()
    throw err
  }
  try {
    await file.commitNew(message)
    return
  } catch (err: unknown) {
    if (!(err instanceof NoLinksError)) throw err
  }
  let fh: FileHandle
  try {
    fh = await open(path, 'wx', 0o600)
  } catch (err: unknown) {
    if (errnoCode(err) === 'EEXIST') throw new AlreadyExistsError(message)
    throw mapNoSpace(err, path)
  }
  try {
    await fh.writeFile(bytes)
    await fh.sync()
  } catch (err: unknown) {
    await fh.close()
    await unlinkQuiet(path)
    throw mapNoSpace(err, path)
  }
  await fh.close()
  await syncDir(dirname(path))
}

/**
 * Deletes every `.tmp-*` file directly inside `dir` (left by a crash mid-write) and returns how many it
 * removed. A missing directory counts as empty. Must not run while another writer uses `dir`.
 */
export async function removeTempFiles (dir: string): Promise<number> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return 0
    throw err
  }
  let removed = 0
  for (const name of names) {
    if (!isTempName(name)) continue
    if (writerMayBeAlive(name)) {
      const st = await stat(join(dir, name)).catch(() => undefined)
      if (st === undefined || Date.now() - st.mtimeMs < TEMP_MAX_AGE_MS) continue
    }
    try {
      await unlink(join(dir, name))
      removed++
    } catch (err: unknown) {
      if (errnoCode(err) !== 'ENOENT') throw err
    }
  }
  if (removed > 0) await syncDir(dir)
  return removed
}

/** Whether `path` exists. Only "no such file" means no: every other failure (a folder we may not read) is thrown. */
export async function pathExists (path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch (err: unknown) {
    if (errnoCode(err) === 'ENOENT') return false
    throw err
  }
}
