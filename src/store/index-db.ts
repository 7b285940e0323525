/**
 * The local index: an lmdb environment under HOME/index holding
 *   blobs: blob id (32) -> where the blob lives (pack id, type, compression, offset, length, raw length)
 *   packs: pack id (32) -> pack metadata (size, blob count, erasure parameters, creation time)
 *   files: file key (32) -> the file cache entry that lets backup skip reading unchanged files
 *   placements: pack id (32) -> which peer holds which share of an erasure-coded pack
 *   audits, peers, releases: storage-proof state (store/audit-db.ts)
 * It is a cache: everything in `blobs` and `packs` can be rebuilt from the packs' headers
 * (repo/rebuild-index.ts), and `files` only saves work. docs/format/index.md is the spec.
 */
import { open, type Database, type RootDatabase } from 'lmdb'
import { FormatError, StoreVersionError } from '../errors.js'
import { asPackId, type PackId } from '../ids.js'
import { ByteReader, ByteWriter, scanUvarint } from '../util/bytes.js'
import { AuditDb } from './audit-db.js'
import { GcDb } from './gc-db.js'

export const INDEX_VERSION = 1
const DATA_LOST_KEY = Buffer.from('dataLostAt')

/**
 * Address space reserved for the index's memory map (not memory: pages are resident only once read).
 * lmdb-js otherwise starts with a 128 KiB map and doubles it as the file grows, keeping every earlier
 * map: a page read through several of them counted several times in the resident size (an index of
 * 52 MB for 100,000 files showed 130 MiB resident). One map from the start counts each page once; lmdb
 * still grows the map if the file ever outgrows it. A 32-bit process reserves 1 GiB.
 */
const MAP_SIZE = is32bit() ? 2 ** 30 : 2 ** 37

/** A 32-bit process (a Raspberry Pi on a 32-bit system) has 2–3 GiB of address space in all. */
function is32bit (): boolean {
  return ['arm', 'ia32', 'mips', 'mipsel', 'ppc'].includes(process.arch)
}

export interface BlobLocation {
  pack: PackId
  type: number
  compression: number
  offset: number
  length: number
  rawLength: number
}

export interface PackInfo {
  id: PackId
  /** pack size in bytes (padded) */
  size: number
  blobs: number
  /** erasure coding: k data + m parity shares */
  k: number
  m: number
  /** creation time, ms since epoch */
  time: number
  /** 0 = data pack, 1 = tree pack (by the type of its blobs) */
  kind: number
}

export interface FileCacheEntry {
  size: number
  mtimeNs: bigint
  ctimeNs: bigint
  inode: bigint
  device: bigint
  /** concatenated 32-byte chunk ids */
  content: Uint8Array
}

type Bin = Database<Buffer, Buffer>

export class IndexDb {
  private constructor (
    private readonly env: RootDatabase<Buffer, Buffer>,
    private readonly blobs: Bin,
    private readonly packs: Bin,
    private readonly files: Bin,
    private readonly placements: Bin,
    /** commitments and audit state of placed shares, peer records, pending releases */
    readonly audit: AuditDb,
    /** this device's notes of condemned packs (docs/gc.md §4) */
    readonly gc: GcDb,
    private readonly meta: Bin
  ) {}

  static open (dir: string): IndexDb {
    const env = open<Buffer, Buffer>({ path: dir, encoding: 'binary', keyEncoding: 'binary', maxDbs: 16, mapSize: MAP_SIZE }) as RootDatabase<Buffer, Buffer>
    const meta = env.openDB<Buffer, Buffer>({ name: 'meta', encoding: 'binary', keyEncoding: 'binary' })
    const versionKey = Buffer.from('version')
    const v = meta.getBinary(versionKey)
    if (v === undefined) {
      meta.putSync(versionKey, Buffer.from(String(INDEX_VERSION)))
    } else if (v.toString() !== String(INDEX_VERSION)) {
      env.close()
      throw new StoreVersionError(`index at ${dir} has version ${v.toString()}, this p2pbak uses ${INDEX_VERSION}; delete the folder and it is rebuilt from the store`)
    }
    const db = (name: string): Bin => env.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' })
    return new IndexDb(env, db('blobs'), db('packs'), db('files'), db('placements'), new AuditDb(db('audits'), db('peers'), db('releases')), new GcDb(db('gc')), meta)
  }

  /**
   * When this index last forgot packs that vanished from the store (ms since the epoch), or 0: a
   * snapshot made before then may name data that is gone, so continuous mode does not reuse its
   * unchanged folders (docs/format/index.md §1).
   */
  dataLostAt (): number {
    const v = this.meta.getBinary(DATA_LOST_KEY)
    const ms = v === undefined ? 0 : Number(v.toString())
    return Number.isSafeInteger(ms) && ms > 0 ? ms : 0
  }

  async noteDataLost (atMs: number): Promise<void> {
    await this.meta.put(DATA_LOST_KEY, Buffer.from(String(Math.max(atMs, this.dataLostAt()))))
  }

  getBlob (id: Uint8Array): BlobLocation | undefined {
    const v = this.blobs.getBinary(key(id))
    return v === undefined ? undefined : decodeLocation(v)
  }

  hasBlob (id: Uint8Array): boolean {
    return this.blobs.doesExist(key(id))
  }

  /** Adds a pack and all its blobs in one transaction; resolves once committed (on disk after `flush()`: lmdb-js syncs after it commits). */
  async addPack (info: PackInfo, entries: ReadonlyArray<{ id: Uint8Array } & Omit<BlobLocation, 'pack'>>): Promise<void> {
    await this.env.transaction(() => {
      for (const e of entries) this.blobs.put(key(e.id), encodeLocation({ ...e, pack: info.id }))
      this.packs.put(key(info.id), encodePackInfo(info))
    })
  }

  getPack (id: Uint8Array): PackInfo | undefined {
    const v = this.packs.getBinary(key(id))
    return v === undefined ? undefined : decodePackInfo(id, v)
  }

  * listPacks (): Iterable<PackInfo> {
    for (const { key: k, value } of this.packs.getRange({})) yield decodePackInfo(k, value)
  }

  /** Ids of the blobs the index places in this pack (a full scan: for check and repair, not hot paths). */
  blobsInPack (packId: Uint8Array): Uint8Array[] {
    const ids: Uint8Array[] = []
    const want = key(packId)
    for (const { key: k, value } of this.blobs.getRange({})) {
      if (want.equals(value.subarray(0, 32))) ids.push(Uint8Array.from(k))
    }
    return ids
  }

  /** Removes these packs and every blob entry that points into them (one scan of the blob table). */
  async removePacks (packIds: Iterable<Uint8Array>): Promise<number> {
    const gone = new Set([...packIds].map(id => key(id).toString('hex')))
    if (gone.size === 0) return 0
    let removed = 0
    await this.env.transaction(() => {
      for (const { key: k, value } of this.blobs.getRange({})) {
        if (gone.has(value.subarray(0, 32).toString('hex'))) { this.blobs.remove(k); removed++ }
      }
      for (const id of gone) {
        this.packs.remove(Buffer.from(id, 'hex'))
        this.placements.remove(Buffer.from(id, 'hex'))
      }
    })
    for (const id of gone) await this.audit.deleteShares(Buffer.from(id, 'hex'))
    return removed
  }

  /** Removes the blob entries that point into these packs, keeping the packs (a condemned pack: nobody deduplicates against it). One scan. */
  async removeBlobsOf (packIds: Iterable<Uint8Array>): Promise<number> {
    const gone = new Set([...packIds].map(id => key(id).toString('hex')))
    if (gone.size === 0) return 0
    let removed = 0
    await this.env.transaction(() => {
      for (const { key: k, value } of this.blobs.getRange({})) {
        if (gone.has(value.subarray(0, 32).toString('hex'))) { this.blobs.remove(k); removed++ }
      }
    })
    return removed
  }

  /** Every indexed blob with its location (a full scan, for prune). */
  * allBlobs (): Iterable<{ id: Uint8Array, location: BlobLocation }> {
    for (const { key: k, value } of this.blobs.getRange({})) yield { id: Uint8Array.from(k), location: decodeLocation(value) }
  }

  /** Records a pack's new erasure scheme (after it moved from the local store into the group). */
  async setPackScheme (packId: Uint8Array, k: number, m: number): Promise<void> {
    const info = this.getPack(packId)
    if (info === undefined) return
    await this.packs.put(key(packId), encodePackInfo({ ...info, k, m }))
  }

  /** Where the shares of a pack were placed (share index -> holder id, e.g. 'peer:<peerId>' or 'local'). */
  getPlacement (packId: Uint8Array): Map<number, string> | undefined {
    const v = this.placements.getBinary(key(packId))
    if (v === undefined) return undefined
    const out = new Map<number, string>()
    try {
      const r = new ByteReader(v, 'placement entry')
      const n = r.uvarint(256)
      for (let i = 0; i < n; i++) out.set(r.u8(), r.string(1024))
    } catch { return undefined }
    return out
  }

  /**
   * Records where a pack's shares are; with `scheme`, also the (k, m) of an indexed pack in the same
   * transaction (a crash never leaves a new placement beside the old stripe's k and m).
   */
  async setPlacement (packId: Uint8Array, holders: ReadonlyMap<number, string>, scheme?: { k: number, m: number }): Promise<void> {
    const w = new ByteWriter(64).uvarint(holders.size)
    for (const [i, h] of [...holders].sort((a, b) => a[0] - b[0])) w.u8(i).string(h)
    const placement = Buffer.from(w.finish())
    await this.env.transaction(() => {
      void this.placements.put(key(packId), placement)
      const info = scheme !== undefined ? this.getPack(packId) : undefined
      if (info !== undefined && scheme !== undefined) void this.packs.put(key(packId), encodePackInfo({ ...info, k: scheme.k, m: scheme.m }))
    })
  }

  countPacks (): number { return this.packs.getCount() }
  countBlobs (): number { return this.blobs.getCount() }

  /** Removes a pack and the blob entries that point into it. */
  async removePack (id: Uint8Array, blobIds: Iterable<Uint8Array>): Promise<void> {
    await this.env.transaction(() => {
      for (const b of blobIds) {
        const loc = this.getBlob(b)
        if (loc !== undefined && Buffer.compare(loc.pack, id) === 0) this.blobs.remove(key(b))
      }
      this.packs.remove(key(id))
    })
    await this.audit.deleteShares(id)
  }

  getFile (fileKey: Uint8Array): FileCacheEntry | undefined {
    const v = this.files.getBinary(key(fileKey))
    if (v === undefined) return undefined
    try { return decodeFileEntry(v) } catch { return undefined }
  }

  /** Queued write; durable by the time `flush()` resolves. */
  putFile (fileKey: Uint8Array, entry: FileCacheEntry): void {
    void this.files.put(key(fileKey), encodeFileEntry(entry))
  }

  async clearAll (): Promise<void> {
    await this.blobs.clearAsync()
    await this.packs.clearAsync()
    await this.files.clearAsync()
    await this.placements.clearAsync()
    await this.audit.clear()
    await this.gc.clear()
  }

  async clearFiles (): Promise<void> { await this.files.clearAsync() }

  async flush (): Promise<void> { await this.env.flushed }

  async close (): Promise<void> {
    await this.env.flushed
    // lmdb resets its shared read transaction on a timer after a read: let that run before the
    // environment goes away, or the timer throws on a closed environment
    await new Promise(resolve => setTimeout(resolve, 5))
    await this.env.close()
  }
}

function key (id: Uint8Array): Buffer { return Buffer.from(id.buffer, id.byteOffset, id.byteLength) }

function encodeLocation (l: BlobLocation): Buffer {
  return Buffer.from(new ByteWriter(48).raw(l.pack).u8(l.type).u8(l.compression).uvarint(l.offset).uvarint(l.length).uvarint(l.rawLength).finish())
}
function decodeLocation (b: Uint8Array): BlobLocation {
  const r = new ByteReader(b, 'index blob entry')
  return { pack: asPackId(r.raw(32).slice()), type: r.u8(), compression: r.u8(), offset: r.uvarint(), length: r.uvarint(), rawLength: r.uvarint() }
}
function encodePackInfo (p: PackInfo): Buffer {
  return Buffer.from(new ByteWriter(32).u8(1).uvarint(p.size).uvarint(p.blobs).u8(p.k).u8(p.m).uvarint(p.time).u8(p.kind).finish())
}
function decodePackInfo (id: Uint8Array, b: Uint8Array): PackInfo {
  const r = new ByteReader(b, 'index pack entry')
  if (r.u8() !== 1) throw new FormatError('index pack entry: unknown version')
  return { id: asPackId(Uint8Array.from(id)), size: r.uvarint(), blobs: r.uvarint(), k: r.u8(), m: r.u8(), time: r.uvarint(), kind: r.u8() }
}
function encodeFileEntry (e: FileCacheEntry): Buffer {
  return Buffer.from(new ByteWriter(64 + e.content.byteLength).u8(1).uvarint(e.size).svarint(e.mtimeNs).svarint(e.ctimeNs)
    .uvarint(e.inode).uvarint(e.device).bytes(e.content).finish())
}
/**
 * The backup reads one entry per file: this decodes the usual entry without a ByteReader and with two
 * BigInt operations per 64-bit field instead of three per byte, and leaves anything unusual (a
 * non-minimal or over-long varint, a truncated entry, trailing bytes) to the strict decoder below.
 */
function decodeFileEntry (b: Uint8Array): FileCacheEntry {
  if (b.byteLength === 0 || b[0] !== 1) return decodeFileEntryStrict(b)
  const at = { pos: 1 }
  const size = fastVarint(b, at)
  const mtime = fastVarint(b, at)
  const ctime = fastVarint(b, at)
  const inode = fastVarint(b, at)
  const device = fastVarint(b, at)
  const len = fastVarint(b, at)
  if (size === undefined || mtime === undefined || ctime === undefined || inode === undefined || device === undefined || len === undefined ||
      size[1] >= 2 ** 25 || len[1] !== 0 || at.pos + len[0] !== b.byteLength) return decodeFileEntryStrict(b)
  return {
    size: size[1] * 2 ** 28 + size[0],
    mtimeNs: unzigzag(mtime),
    ctimeNs: unzigzag(ctime),
    inode: big(inode),
    device: big(device),
    content: b.slice(at.pos, at.pos + len[0])
  }
}

/** A minimal uvarint < 2^64 at `at.pos` as its low 28 bits and the rest; undefined for anything else. */
function fastVarint (b: Uint8Array, at: { pos: number }): [lo: number, hi: number] | undefined {
  const v = scanUvarint(b, at.pos)
  if (v === undefined) return undefined
  at.pos = v[2]
  return [v[0], v[1]]
}

function big ([lo, hi]: [number, number]): bigint {
  return hi === 0 ? BigInt(lo) : (BigInt(hi) << 28n) | BigInt(lo)
}

function unzigzag (v: [number, number]): bigint {
  const z = big(v)
  return (z & 1n) === 0n ? z >> 1n : -((z + 1n) >> 1n)
}

function decodeFileEntryStrict (b: Uint8Array): FileCacheEntry {
  const r = new ByteReader(b, 'file cache entry')
  if (r.u8() !== 1) throw new FormatError('file cache entry: unknown version')
  const e = { size: r.uvarint(), mtimeNs: r.svarint(), ctimeNs: r.svarint(), inode: r.uvarintBig(), device: r.uvarintBig(), content: r.bytes().slice() }
  r.end()
  return e
}
