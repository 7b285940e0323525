/**
 * A {@link ShareStore} in a local directory (the embedded default, and what a peer runs to hold its
 * friends' shares). Layout, version 1 (specified byte-exactly in docs/format/share-store.md):
 *
 * ```
 * DIR/VERSION                              ASCII "1"
 * DIR/shares/<2 hex>/<64 hex pack id>.<i>  one share; <2 hex> = first byte of the pack id; i = 0..255
 * DIR/records/<64 hex id>                  one record
 * DIR/…/.tmp-<pid>-<8 hex>-<8 hex>        a write in progress, or left by a crash; removed by open()
 * ```
 *
 * Every file is written by {@link writeFileAtomic}, so a share is either whole under its final name or
 * absent. One process owns a store directory at a time: open() deletes temporaries it finds.
 */
import { mkdir, readFile, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { NotFoundError } from '../errors.js'
import { shortId } from '../ids.js'
import { fromHex, toHex } from '../util/bytes.js'
import { AtomicFile, mapNoSpace, removeTempFiles, syncDir, writeFileAtomic } from './atomic.js'
import { RECORD_RESERVE_SHARE, withRoom } from './disk-room.js'
import { UsageTally } from './usage-tally.js'
import { FdCache, readExactly } from './fd-cache.js'
import { checkRange, checkRecordId, checkShareRef, shareRefName, throwIfAborted } from './share-store.js'
import type { AbortOptions, ListOptions, ShareRef, ShareStore, ShareWriter, StoreUsage } from './share-store.js'
import {
  DIR_MODE, FILE_MODE, PREFIX_RE, RECORD_NAME_RE, RECORDS_DIR, SHARES_DIR, isMissing, parseShareFileName, readDirSorted, readOrCreateVersion
} from './local-store-layout.js'

export { LOCAL_STORE_VERSION, RECORDS_DIR, VERSION_FILE, parseShareFileName } from './local-store-layout.js'

export interface LocalShareStoreOptions {
  /** a monotonic clock in ms for the usage count's age (tests) */
  now?: () => number
  /** how long a usage count is trusted before the store is walked again (RECOUNT_MS) */
  recountMs?: number
}

export class LocalShareStore implements ShareStore {
  readonly id: string
  private readonly sharesDir: string
  private readonly recordsDir: string
  /** Prefix directories known to exist durably (the promise settles once the parent is fsynced). */
  private readonly prefixDirs = new Map<string, Promise<void>>()
  private closed = false
  /** open descriptors for getRange */
  private readonly fds = new FdCache()
  /** what usage() answers: counted by a walk, then kept by the writes and deletes below */
  private readonly tally: UsageTally

  private constructor (readonly dir: string, options: LocalShareStoreOptions) {
    this.id = `local:${dir}`
    this.sharesDir = join(dir, SHARES_DIR)
    this.recordsDir = join(dir, RECORDS_DIR)
    this.tally = new UsageTally(this.sharesDir, this.recordsDir, options.now, options.recountMs)
  }

  /**
   * Opens (creating if needed) the store in `dir`. Throws StoreVersionError if VERSION names another
   * version. Removes temporary files left by an interrupted writer.
   */
  static async open (dir: string, options: LocalShareStoreOptions = {}): Promise<LocalShareStore> {
    const root = resolve(dir)
    let created: string | undefined
    try {
      created = await mkdir(root, { recursive: true, mode: DIR_MODE })
      await readOrCreateVersion(root)
      await mkdir(join(root, SHARES_DIR), { recursive: true, mode: DIR_MODE })
      await mkdir(join(root, RECORDS_DIR), { recursive: true, mode: DIR_MODE })
    } catch (err: unknown) {
      throw mapNoSpace(err, root)
    }
    const store = new LocalShareStore(root, options)
    await store.removeTemps()
    await syncDir(root)
    // the store's own folder, and any folder made on the way to it, must survive a power loss too
    // (acknowledged shares inside a folder whose entry was lost would be lost with it)
    if (created !== undefined && created !== root) await syncDir(dirname(created))
    await syncDir(dirname(root))
    return store
  }

  private async removeTemps (): Promise<void> {
    await removeTempFiles(this.dir)
    await removeTempFiles(this.recordsDir)
    await removeTempFiles(this.sharesDir)
    for (const name of await readDirSorted(this.sharesDir)) {
      await removeTempFiles(join(this.sharesDir, name))
    }
  }

  private sharePath (ref: ShareRef): { dir: string, path: string } {
    const name = shareRefName(ref)
    const dir = join(this.sharesDir, name.slice(0, 2))
    return { dir, path: join(dir, name) }
  }

  private recordPath (id: Uint8Array): string {
    return join(this.recordsDir, toHex(id))
  }

  private check (options?: AbortOptions): void {
    if (this.closed) throw new Error(`share store ${this.id} is closed`)
    throwIfAborted(options)
  }

  private async ensurePrefixDir (dir: string): Promise<void> {
    let ready = this.prefixDirs.get(dir)
    if (ready === undefined) {
      ready = (async () => {
        // synced once per prefix folder and process, made now or not: a process killed between an
        // earlier mkdir and its sync left the entry unsynced
        await mkdir(dir, { recursive: true, mode: DIR_MODE })
        await syncDir(this.sharesDir)
      })()
      this.prefixDirs.set(dir, ready)
      ready.catch(() => this.prefixDirs.delete(dir))
    }
    await ready
  }

  /**
   * A share written as its pieces arrive, into a temporary file beside its final name (removed by
   * open() if the process dies first); commit() is put's fsync, rename and fsync of the folder.
   */
  async beginShare (ref: ShareRef, options?: AbortOptions): Promise<ShareWriter> {
    checkShareRef(ref)
    this.check(options)
    const { dir, path } = this.sharePath(ref)
    let file: AtomicFile
    try {
      await this.ensurePrefixDir(dir)
      file = await AtomicFile.create(path, FILE_MODE)
    } catch (err: unknown) {
      if (!isMissing(err)) throw mapNoSpace(err, path)
      // the prefix directory vanished under us (removed by hand): recreate it once
      this.prefixDirs.delete(dir)
      await this.ensurePrefixDir(dir).catch((e: unknown) => { throw mapNoSpace(e, path) })
      file = await AtomicFile.create(path, FILE_MODE)
    }
    let written = 0
    return {
      append: async (data) => {
        // the disk's reserve stays free for the index (disk-room.ts)
        await withRoom(this.dir, data instanceof Uint8Array ? data.byteLength : data.reduce((n, p) => n + p.byteLength, 0), path, async () => {
          if (data instanceof Uint8Array) await file.write(data)
          else await file.writev(data)
        })
        written = file.length
      },
      read: async () => await file.readBack(),
      commit: async (opts) => {
        try {
          this.check(opts)
          await this.tally.change('share', path, basename(dir), async () => { await file.commit(); return written })
        } catch (err: unknown) {
          await file.abort()
          throw err
        } finally {
          this.forgetFd(ref)
        }
      },
      abort: async () => { await file.abort() }
    }
  }

  async put (ref: ShareRef, data: Uint8Array, options?: AbortOptions): Promise<void> {
    await this.write(ref, data, options)
  }

  /** put of a share given in pieces: written with gathered writes, never joined in memory. */
  async putParts (ref: ShareRef, parts: readonly Uint8Array[], options?: AbortOptions): Promise<void> {
    await this.write(ref, parts, options)
  }

  private async write (ref: ShareRef, data: Uint8Array | readonly Uint8Array[], options?: AbortOptions): Promise<void> {
    checkShareRef(ref)
    this.check(options)
    const { dir, path } = this.sharePath(ref)
    const bytes = data instanceof Uint8Array ? data.byteLength : data.reduce((n, p) => n + p.byteLength, 0)
    try {
      // the disk's reserve stays free for the index (disk-room.ts)
      await withRoom(this.dir, bytes, path, async () => await this.tally.change('share', path, basename(dir), async () => {
        try {
          await this.ensurePrefixDir(dir)
          await writeFileAtomic(path, data, { mode: FILE_MODE })
        } catch (err: unknown) {
          if (!isMissing(err)) throw mapNoSpace(err, path)
          // The prefix directory vanished under us (removed by hand): recreate it once, and count again.
          this.prefixDirs.delete(dir)
          this.tally.invalidate()
          await this.ensurePrefixDir(dir).catch((e: unknown) => { throw mapNoSpace(e, path) })
          await writeFileAtomic(path, data, { mode: FILE_MODE })
        }
        return bytes
      }))
    } finally {
      // a put may write other bytes over a held share (the owner's signed replace of a damaged copy):
      // a cached descriptor would go on reading the old file
      this.forgetFd(ref)
    }
  }

  private notFound (ref: ShareRef, cause: unknown): NotFoundError {
    return new NotFoundError(`share ${shortId(ref.pack)}.${ref.index} is not in ${this.id}`, { cause })
  }

  async get (ref: ShareRef, options?: AbortOptions): Promise<Uint8Array> {
    checkShareRef(ref)
    this.check(options)
    try {
      const buf = await readFile(this.sharePath(ref).path)
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    } catch (err: unknown) {
      if (isMissing(err)) throw this.notFound(ref, err)
      throw err
    }
  }

  /** Reads by range, synchronously, through the descriptor cache (fd-cache.ts says why). */
  async getRange (ref: ShareRef, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    checkShareRef(ref)
    this.check(options)
    const { fd, size } = this.openCached(ref)
    checkRange(offset, length, size)
    return readExactly(fd, offset, length, shareRefName(ref))
  }

  private openCached (ref: ShareRef): { fd: number, size: number } {
    try {
      return this.fds.open(shareRefName(ref), this.sharePath(ref).path)
    } catch (err: unknown) {
      if (isMissing(err)) throw this.notFound(ref, err)
      throw err
    }
  }

  private forgetFd (ref: ShareRef): void { this.fds.forget(shareRefName(ref)) }

  async has (ref: ShareRef, options?: AbortOptions): Promise<boolean> {
    checkShareRef(ref)
    this.check(options)
    try {
      return (await stat(this.sharePath(ref).path)).isFile()
    } catch (err: unknown) {
      if (isMissing(err)) return false
      throw err
    }
  }

  async size (ref: ShareRef, options?: AbortOptions): Promise<number> {
    checkShareRef(ref)
    this.check(options)
    try {
      return (await stat(this.sharePath(ref).path)).size
    } catch (err: unknown) {
      if (isMissing(err)) throw this.notFound(ref, err)
      throw err
    }
  }

  /** The share file's modification time: it is written once, when the share is put. */
  async storedAt (ref: ShareRef, options?: AbortOptions): Promise<number> {
    checkShareRef(ref)
    this.check(options)
    try {
      return (await stat(this.sharePath(ref).path)).mtimeMs
    } catch (err: unknown) {
      if (isMissing(err)) throw this.notFound(ref, err)
      throw err
    }
  }

  async delete (ref: ShareRef, options?: AbortOptions): Promise<void> {
    checkShareRef(ref)
    this.check(options)
    this.forgetFd(ref)
    const { dir, path } = this.sharePath(ref)
    await this.tally.change('share', path, basename(dir), async () => { await unlinkIfThere(path); return undefined })
  }

  readonly listsByFirstByte = true

  async * list (options?: ListOptions): AsyncGenerator<ShareRef> {
    this.check(options)
    const from = options?.fromFirstByte ?? 0
    for (const prefix of await readDirSorted(this.sharesDir)) {
      if (!PREFIX_RE.test(prefix) || Number.parseInt(prefix, 16) < from) continue
      for (const name of await readDirSorted(join(this.sharesDir, prefix))) {
        const ref = parseShareFileName(prefix, name)
        if (ref === undefined) continue
        this.check(options)
        yield ref
      }
    }
  }

  async putRecord (id: Uint8Array, data: Uint8Array, options?: AbortOptions): Promise<void> {
    checkRecordId(id)
    this.check(options)
    const path = this.recordPath(id)
    // records may use part of the reserve: forget and prune write one before they free anything (disk-room.ts)
    await withRoom(this.dir, data.byteLength, path, async () => await this.tally.change('record', path, RECORDS_DIR, async () => {
      try {
        await writeFileAtomic(path, data, { mode: FILE_MODE })
      } catch (err: unknown) {
        if (!isMissing(err)) throw mapNoSpace(err, path)
        // the records directory vanished under us (a holder's folder wiped while its node runs): recreate it once, and count again
        this.tally.invalidate()
        await mkdir(this.recordsDir, { recursive: true, mode: DIR_MODE }).catch((e: unknown) => { throw mapNoSpace(e, path) })
        await writeFileAtomic(path, data, { mode: FILE_MODE }).catch((e: unknown) => { throw mapNoSpace(e, path) })
      }
      return data.byteLength
    }), RECORD_RESERVE_SHARE)
  }

  private recordNotFound (id: Uint8Array, cause: unknown): NotFoundError {
    return new NotFoundError(`record ${shortId(id)} is not in ${this.id}`, { cause })
  }

  async getRecord (id: Uint8Array, options?: AbortOptions): Promise<Uint8Array> {
    checkRecordId(id)
    this.check(options)
    try {
      const buf = await readFile(this.recordPath(id))
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    } catch (err: unknown) {
      if (isMissing(err)) throw this.recordNotFound(id, err)
      throw err
    }
  }

  async hasRecord (id: Uint8Array, options?: AbortOptions): Promise<boolean> {
    checkRecordId(id)
    this.check(options)
    try {
      return (await stat(this.recordPath(id))).isFile()
    } catch (err: unknown) {
      if (isMissing(err)) return false
      throw err
    }
  }

  async deleteRecord (id: Uint8Array, options?: AbortOptions): Promise<void> {
    checkRecordId(id)
    this.check(options)
    const path = this.recordPath(id)
    await this.tally.change('record', path, RECORDS_DIR, async () => { await unlinkIfThere(path); return undefined })
  }

  async * listRecords (options?: AbortOptions): AsyncGenerator<Uint8Array> {
    this.check(options)
    for (const name of await readDirSorted(this.recordsDir)) {
      if (!RECORD_NAME_RE.test(name)) continue
      this.check(options)
      yield fromHex(name)
    }
  }

  /**
   * Shares and records held, and their bytes: walked once, then kept by this store's writes and
   * deletes, and walked again every RECOUNT_MS (usage-tally.ts says what the count can miss meanwhile).
   */
  async usage (options?: AbortOptions): Promise<StoreUsage> {
    this.check(options)
    return await this.tally.usage()
  }

  async close (): Promise<void> {
    this.closed = true
    this.fds.closeAll()
  }
}

/** Removes a file; one already gone is not an error (deletes are idempotent). */
/**
 * Unlinks a file and makes the removal durable (its directory fsynced): a delete that a power loss
 * undid would bring back a pack whose note says deleted, which nothing indexes or sweeps again.
 */
async function unlinkIfThere (path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err: unknown) {
    if (!isMissing(err)) throw err
    // gone already: maybe by an earlier try that failed before its fsync, so fsync anyway
    // (a directory that is gone too has nothing to make durable)
  }
  await syncDir(dirname(path)).catch((err: unknown) => { if (!isMissing(err)) throw err })
}
