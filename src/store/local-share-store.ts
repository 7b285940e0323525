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
import { closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { mkdir, readFile, stat, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { NotFoundError } from '../errors.js'
import { shortId } from '../ids.js'
import { fromHex, toHex } from '../util/bytes.js'
import { AtomicFile, mapNoSpace, removeTempFiles, syncDir, writeFileAtomic } from './atomic.js'
import { checkRange, checkRecordId, checkShareRef, shareRefName, throwIfAborted } from './share-store.js'
import type { AbortOptions, ShareRef, ShareStore, ShareWriter, StoreUsage } from './share-store.js'
import {
  DIR_MODE, FILE_MODE, PREFIX_RE, RECORD_NAME_RE, RECORDS_DIR, SHARES_DIR, isMissing, parseShareFileName, readDirSorted, readOrCreateVersion
} from './local-store-layout.js'

export { LOCAL_STORE_VERSION, RECORDS_DIR, VERSION_FILE, parseShareFileName } from './local-store-layout.js'

/** descriptors kept open for range reads (restore touches a few packs at a time) */
const MAX_CACHED_FDS = 32

export class LocalShareStore implements ShareStore {
  readonly id: string
  private readonly sharesDir: string
  private readonly recordsDir: string
  /** Prefix directories known to exist durably (the promise settles once the parent is fsynced). */
  private readonly prefixDirs = new Map<string, Promise<void>>()
  private closed = false
  /** open descriptors for getRange, least recently used first */
  private readonly fds = new Map<string, { fd: number, size: number }>()

  private constructor (readonly dir: string) {
    this.id = `local:${dir}`
    this.sharesDir = join(dir, SHARES_DIR)
    this.recordsDir = join(dir, RECORDS_DIR)
  }

  /**
   * Opens (creating if needed) the store in `dir`. Throws StoreVersionError if VERSION names another
   * version. Removes temporary files left by an interrupted writer.
   */
  static async open (dir: string): Promise<LocalShareStore> {
    const root = resolve(dir)
    try {
      await mkdir(root, { recursive: true, mode: DIR_MODE })
      await readOrCreateVersion(root)
      await mkdir(join(root, SHARES_DIR), { recursive: true, mode: DIR_MODE })
      await mkdir(join(root, RECORDS_DIR), { recursive: true, mode: DIR_MODE })
    } catch (err: unknown) {
      throw mapNoSpace(err, root)
    }
    const store = new LocalShareStore(root)
    await store.removeTemps()
    await syncDir(root)
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
        const created = await mkdir(dir, { recursive: true, mode: DIR_MODE })
        if (created !== undefined) await syncDir(this.sharesDir)
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
    return {
      append: async (data) => { await file.write(data) },
      read: async () => await file.readBack(),
      commit: async (opts) => {
        try {
          this.check(opts)
          await file.commit()
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
    try {
      await this.ensurePrefixDir(dir)
      await writeFileAtomic(path, data, { mode: FILE_MODE })
    } catch (err: unknown) {
      if (!isMissing(err)) throw mapNoSpace(err, path)
      // The prefix directory vanished under us (removed by hand): recreate it once.
      this.prefixDirs.delete(dir)
      await this.ensurePrefixDir(dir).catch((e: unknown) => { throw mapNoSpace(e, path) })
      await writeFileAtomic(path, data, { mode: FILE_MODE })
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

  /**
   * Reads by range through a small cache of open descriptors, synchronously: restore reads many
   * blobs from the same few packs one after another, and an open/stat/read/close round trip through
   * the thread pool per blob cost more than the reads themselves. A put and a delete close the
   * share's cached descriptor (a put may be a replace: other bytes renamed over the old file).
   */
  async getRange (ref: ShareRef, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    checkShareRef(ref)
    this.check(options)
    const { fd, size } = this.openCached(ref)
    checkRange(offset, length, size)
    const out = new Uint8Array(length)
    let done = 0
    while (done < length) {
      const n = readSync(fd, out, done, length - done, offset + done)
      if (n === 0) throw new Error(`share file ${shareRefName(ref)} shrank while being read`)
      done += n
    }
    return out
  }

  private openCached (ref: ShareRef): { fd: number, size: number } {
    const name = shareRefName(ref)
    const hit = this.fds.get(name)
    if (hit !== undefined) {
      // most recently used last
      this.fds.delete(name)
      this.fds.set(name, hit)
      return hit
    }
    let fd: number
    try {
      fd = openSync(this.sharePath(ref).path, 'r')
    } catch (err: unknown) {
      if (isMissing(err)) throw this.notFound(ref, err)
      throw err
    }
    const entry = { fd, size: fstatSync(fd).size }
    this.fds.set(name, entry)
    if (this.fds.size > MAX_CACHED_FDS) {
      const [oldest, e] = this.fds.entries().next().value as [string, { fd: number }]
      this.fds.delete(oldest)
      closeSync(e.fd)
    }
    return entry
  }

  private forgetFd (ref: ShareRef): void {
    const name = shareRefName(ref)
    const e = this.fds.get(name)
    if (e === undefined) return
    this.fds.delete(name)
    closeSync(e.fd)
  }

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
    try {
      await unlink(this.sharePath(ref).path)
    } catch (err: unknown) {
      if (!isMissing(err)) throw err
    }
  }

  async * list (options?: AbortOptions): AsyncGenerator<ShareRef> {
    this.check(options)
    for (const prefix of await readDirSorted(this.sharesDir)) {
      if (!PREFIX_RE.test(prefix)) continue
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
    try {
      await writeFileAtomic(path, data, { mode: FILE_MODE })
    } catch (err: unknown) {
      if (!isMissing(err)) throw mapNoSpace(err, path)
      // the records directory vanished under us (a holder's folder wiped while its node runs): recreate it once
      await mkdir(this.recordsDir, { recursive: true, mode: DIR_MODE }).catch((e: unknown) => { throw mapNoSpace(e, path) })
      await writeFileAtomic(path, data, { mode: FILE_MODE }).catch((e: unknown) => { throw mapNoSpace(e, path) })
    }
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
    try {
      await unlink(this.recordPath(id))
    } catch (err: unknown) {
      if (!isMissing(err)) throw err
    }
  }

  async * listRecords (options?: AbortOptions): AsyncGenerator<Uint8Array> {
    this.check(options)
    for (const name of await readDirSorted(this.recordsDir)) {
      if (!RECORD_NAME_RE.test(name)) continue
      this.check(options)
      yield fromHex(name)
    }
  }

  /** Walks every share and record file: O(number of objects). */
  async usage (options?: AbortOptions): Promise<StoreUsage> {
    let shares = 0
    let bytes = 0
    for await (const ref of this.list(options)) {
      try {
        bytes += (await stat(this.sharePath(ref).path)).size
        shares++
      } catch (err: unknown) {
        if (!isMissing(err)) throw err // deleted while we walked: not counted
      }
    }
    let records = 0
    let recordBytes = 0
    for await (const id of this.listRecords(options)) {
      try {
        recordBytes += (await stat(this.recordPath(id))).size
        records++
      } catch (err: unknown) {
        if (!isMissing(err)) throw err
      }
    }
    return { shares, bytes, records, recordBytes }
  }

  async close (): Promise<void> {
    this.closed = true
    for (const { fd } of this.fds.values()) closeSync(fd)
    this.fds.clear()
  }
}
