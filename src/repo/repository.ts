/**
 * The repository: content-addressed blobs (chunks and trees) in encrypted packs, an index to find
 * them, and signed snapshot records. It knows nothing of where packs live (PackStore) beyond the
 * interface, nor of files on disk (that is backup/).
 */
import { CorruptDataError, NotFoundError, errorMessage } from '../errors.js'
import { contentHash, keyedHash, type Identity, type SodiumBackend } from '../crypto/index.js'
import { BlobType, paddedPackSize, type PackEntry } from '../format/pack.js'
import { GcState } from '../format/gc-record.js'
import { decodeTree, encodeTree, type Tree } from '../format/tree.js'
import { asChunkId, asPackId, asTreeId, type ChunkId, type TreeId } from '../ids.js'
import type { IndexDb, BlobLocation } from '../store/index.js'
import { equalBytes, toHex } from '../util/bytes.js'
import { availableParallelism } from 'node:os'
import { Packer } from './packer.js'
import type { RecordSigner } from './snapshots.js'
import { PackReader } from './pack-reader.js'
import type { PackStore } from './pack-store.js'
import { compressBlob, type Compressed } from './compress.js'
import { CompressPool } from './compress-pool.js'
import { SHARE_HEADER_BYTES } from '../format/share.js'
import { scopedLogger } from '../util/log.js'

export interface RepositoryComponents {
  sodium: SodiumBackend
  identity: Identity
  packs: PackStore
  index: IndexDb
  /** a write-only machine: its certified device key signs its snapshot records (docs/format/keys.md §11) */
  recordSigner?: RecordSigner
}

export interface RepositoryInit {
  /** Seal a pack once its blobs pass this size. @default 16 MiB (fewer, larger shares; bounded memory) */
  packSize?: number
  /** zstd level; 0 disables compression. @default 3 (restic's "auto" is comparable) */
  compressionLevel?: number
  /** Packs being written at once while the next one fills; each costs one pack buffer of memory. @default 2 (a home's own disk: 1, home.ts) */
  maxPendingPacks?: number
  /** Worker threads compressing blobs beside the main thread; 0 compresses inline. @default cores - 1, at most 4 */
  compressWorkers?: number
  /** Blobs being compressed at once (bounds memory: about this many chunks). @default 2 per worker (measured: 3 was as fast as 8 with 140 MiB less peak RSS, and 2 with 16 MiB of spare buffers as fast as 3 with 24, about 15 MiB less at scale 1) */
  maxCompressJobs?: number
}

export interface RepositoryStats {
  blobsAdded: number
  /** plaintext bytes of new blobs */
  rawBytesAdded: number
  /** bytes of new packs written to the store (after compression, encryption, padding) */
  packBytesAdded: number
  packsAdded: number
}

function applyDefaults (init: RepositoryInit): Required<RepositoryInit> {
  const compressWorkers = init.compressWorkers ?? Math.min(4, Math.max(1, availableParallelism() - 1))
  return {
    packSize: init.packSize ?? 16 * 1024 * 1024,
    compressionLevel: init.compressionLevel ?? 3,
    maxPendingPacks: init.maxPendingPacks ?? 2,
    compressWorkers,
    maxCompressJobs: init.maxCompressJobs ?? 2 * Math.max(1, compressWorkers)
  }
}

/**
 * Blobs smaller than this are compressed inline: a worker round trip would cost more. (Sending them
 * to the worker in batches was measured slower: docs/benchmarks.md, "Small blobs in batches".)
 */
const POOL_MIN_BYTES = 64 * 1024
const log = scopedLogger('repo')
const EMPTY_BLOB = { bytes: 0, rawLength: 0 }

export class Repository {
  readonly sodium: SodiumBackend
  readonly identity: Identity
  readonly packs: PackStore
  readonly index: IndexDb
  readonly recordSigner: RecordSigner | undefined
  readonly reader: PackReader
  private readonly init: Required<RepositoryInit>
  private readonly packers = new Map<BlobType, Packer>()
  /** ids of blobs in open packers or in packs being written (hex) */
  private readonly pending = new Set<string>()
  private readonly inflight = new Set<Promise<void>>()
  /**
   * Data-pack buffers whose packs are stored, kept for the next pack: a fresh 16 MiB buffer per pack
   * would sit as garbage until V8 notices the external memory (measured: +130 MiB peak RSS).
   */
  private readonly spareBuffers: Uint8Array[] = []
  /** while a full data pack waits for a write slot: settles when it has one */
  private fullWaiting: Promise<void> | undefined
  private condemnedMap: Map<string, Uint8Array> | undefined
  /** headers of condemned packs read for blobs the index does not place (locateCondemned), at most 64 */
  private readonly condemnedHeaders = new Map<string, Map<string, PackEntry>>()
  /** blobs being compressed by the pool */
  private readonly jobs = new Set<Promise<void>>()
  private pool: CompressPool | undefined
  private writeError: unknown
  readonly stats: RepositoryStats = { blobsAdded: 0, rawBytesAdded: 0, packBytesAdded: 0, packsAdded: 0 }
  /**
   * Packs (hex) a backup relied on since this set was last cleared: those it deduplicated against and
   * those it wrote. Before its snapshot is written each is checked against the condemnation records
   * (repo/gc-commit.ts, docs/gc.md §6).
   */
  readonly relied = new Set<string>()

  constructor (components: RepositoryComponents, init: RepositoryInit = {}) {
    this.sodium = components.sodium
    this.identity = components.identity
    this.packs = components.packs
    this.index = components.index
    this.recordSigner = components.recordSigner
    this.init = applyDefaults(init)
    this.reader = new PackReader(this.sodium, this.identity, this.packs)
  }

  /** The id of a blob: BLAKE3 keyed with the user's dedup key, so ids reveal nothing to others. */
  blobId (plaintext: Uint8Array): Uint8Array {
    return keyedHash(this.identity.dedupKey, plaintext)
  }

  hasBlob (id: Uint8Array): boolean {
    if (this.pending.has(toHex(id))) return true
    return this.indexed(id)
  }

  /** Whether the index places the blob in a pack; that pack is then relied on. */
  private indexed (id: Uint8Array): boolean {
    const loc = this.index.getBlob(id)
    if (loc === undefined) return false
    this.relied.add(toHex(loc.pack))
    return true
  }

  /**
   * Adds a blob unless the repository has it. Returns true if it was new. The plaintext is copied
   * when needed: the caller may reuse its buffer as soon as the promise resolves.
   */
  async saveBlob (type: BlobType, id: Uint8Array, plaintext: Uint8Array, options: { force?: boolean } = {}): Promise<boolean> {
    this.throwIfWriteFailed()
    const key = toHex(id)
    // force: store again although indexed (prune moves the live blobs of a mostly dead pack)
    if (this.pending.has(key) || (options.force !== true && this.indexed(id))) return false
    this.pending.add(key)
    this.stats.blobsAdded++
    this.stats.rawBytesAdded += plaintext.byteLength
    const rawLength = plaintext.byteLength
    if (this.init.compressWorkers === 0 || this.init.compressionLevel <= 0 || rawLength < POOL_MIN_BYTES) {
      await this.append(type, id, rawLength, compressBlob(plaintext, this.init.compressionLevel))
      return true
    }
    this.pool ??= new CompressPool(this.init.compressWorkers, this.init.compressionLevel)
    const job = this.pool.compress(plaintext) // the pool copies: the caller reuses its buffer
      .then(async c => { await this.append(type, id, rawLength, c) })
      .catch((err: unknown) => { this.writeError ??= err })
    this.jobs.add(job)
    void job.finally(() => this.jobs.delete(job))
    while (this.jobs.size >= this.init.maxCompressJobs) await Promise.race(this.jobs)
    this.throwIfWriteFailed()
    return true
  }

  /**
   * Encrypts a compressed blob into the open pack of its type. A pack is sealed and written when the
   * blob would not fit in it (a pack padded is at most `packSize`, docs/format/packs.md §7), and as
   * soon as it has room for nothing more.
   */
  private async append (type: BlobType, id: Uint8Array, rawLength: number, c: Compressed): Promise<void> {
    const blob = { bytes: c.data.byteLength, rawLength }
    let packer: Packer
    try {
      // every await lets other blobs in: the pack is chosen again after each, and the blob added with no await between
      for (;;) {
        // no new data pack while a full one waits for its write: the blobs wait instead (a compressed
        // chunk each, bounded by maxCompressJobs), and the buffers alive are those being written and one
        while (type === BlobType.Data && !this.packers.has(type) && this.fullWaiting !== undefined) await this.fullWaiting
        const open = this.packers.get(type)
        if (open === undefined) { packer = this.openPacker(type); break }
        if (open.count === 0 || open.fits(this.init.packSize, blob)) { packer = open; break }
        this.packers.delete(type)
        await this.writePack(open, type)
      }
      packer.add(type, id, rawLength, c)
    } finally {
      c.release?.() // the blob is encrypted into the pack (or failed): its buffers go back to the pool
    }
    if (!packer.fits(this.init.packSize, EMPTY_BLOB) && this.packers.get(type) === packer) {
      // no blob fits any more: written now rather than when the next blob comes
      this.packers.delete(type)
      await this.writePack(packer, type)
    }
    this.throwIfWriteFailed()
  }

  private openPacker (type: BlobType): Packer {
    // a data pack gets its whole budget up front (a pack padded is at most packSize); tree packs grow from small
    const capacity = type === BlobType.Data ? paddedPackSize(this.init.packSize) : 256 * 1024
    const packer = new Packer(this.sodium, this.identity.boxPublicKey, capacity, SHARE_HEADER_BYTES, type === BlobType.Data ? this.spareBuffers.pop() : undefined)
    this.packers.set(type, packer)
    return packer
  }

  async saveTree (tree: Tree): Promise<TreeId> {
    const bytes = encodeTree(tree)
    const id = asTreeId(this.blobId(bytes))
    await this.saveBlob(BlobType.Tree, id, bytes)
    return id
  }

  async saveChunk (data: Uint8Array): Promise<{ id: ChunkId, added: boolean }> {
    const id = asChunkId(this.blobId(data))
    return { id, added: await this.saveBlob(BlobType.Data, id, data) }
  }

  /** Seals open packs and waits until every pack is stored and indexed. */
  async flush (): Promise<void> {
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs])
    // every open pack is written and every write waited for, even after one failed: a write left
    // running could index its pack after the index closed, and its failure would go unseen
    for (const [type, packer] of [...this.packers]) {
      this.packers.delete(type)
      if (packer.count > 0) await this.writePack(packer, type)
    }
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight])
    await this.index.flush()
    this.throwIfWriteFailed()
  }

  /** Seals and starts the write of a full pack; a failure is kept for the caller to check (it never throws). */
  private async writePack (packer: Packer, type: BlobType): Promise<void> {
    // back pressure: at most maxPendingPacks packs being written; the next pack fills meanwhile, and
    // while this full one waits no other data pack opens (append). The data-pack buffers in memory are
    // thus at most maxPendingPacks + 1. A write that failed meanwhile does not stop this one: its
    // blobs leave `pending` only when its own write settles (below)
    if (this.inflight.size >= this.init.maxPendingPacks) {
      const slot = (async () => { while (this.inflight.size >= this.init.maxPendingPacks) await Promise.race(this.inflight) })()
      if (type === BlobType.Data) this.fullWaiting = slot
      try {
        await slot
      } finally {
        if (this.fullWaiting === slot) this.fullWaiting = undefined
      }
    }
    const sealed = packer.seal()
    const id = asPackId(contentHash(sealed.bytes))
    const task = (async () => {
      try {
        const placement = await this.packs.putPack(id, sealed.bytes, { headroom: sealed.headroom })
        await this.index.addPack(
          { id, size: sealed.bytes.byteLength, blobs: sealed.entries.length, k: placement.k, m: placement.m, time: Date.now(), kind: type },
          sealed.entries
        )
        this.stats.packsAdded++
        this.stats.packBytesAdded += sealed.bytes.byteLength
        this.relied.add(toHex(id))
      } catch (err: unknown) {
        this.writeError ??= err
      } finally {
        for (const e of sealed.entries) this.pending.delete(toHex(e.id))
        // the store holds no reference once put settles (ShareStore contract)
        if (type === BlobType.Data && this.spareBuffers.length < this.init.maxPendingPacks) this.spareBuffers.push(packer.buffer)
      }
    })()
    this.inflight.add(task)
    void task.finally(() => this.inflight.delete(task))
  }

  /**
   * Waits until every compression and pack write in flight has settled and forgets a write failure,
   * so that a long-lived repository (the daemon's, shared by the commands it runs) starts each job
   * clean instead of failing it with the last job's error. Blobs of a pack that failed were never
   * indexed: the next job that meets them stores them again. Returns the failure it forgot, if any.
   */
  async settle (): Promise<unknown> {
    while (this.jobs.size > 0) await Promise.allSettled([...this.jobs])
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight])
    const err = this.writeError
    this.writeError = undefined
    return err
  }

  private throwIfWriteFailed (): void {
    if (this.writeError !== undefined) throw this.writeError
  }

  locate (id: Uint8Array): BlobLocation {
    const loc = this.index.getBlob(id)
    if (loc === undefined) throw new NotFoundError(`blob ${toHex(id).slice(0, 16)} is not in the index (run 'p2pbak check' to rebuild it)`)
    return loc
  }

  /**
   * Where a blob is when the index places it nowhere because a prune condemned its pack: a condemned
   * pack's blobs leave the index so that no backup deduplicates against them (docs/gc.md §5), but
   * the pack is still there until a sweep deletes it, and a snapshot written while it was being
   * condemned uses it (the next sweep revives it). Found from this device's notes and the pack's
   * header; undefined when no condemned pack holds the blob.
   */
  async locateCondemned (id: Uint8Array): Promise<BlobLocation | undefined> {
    const key = toHex(id)
    const pack = this.condemnedPackOf(id)
    if (pack === undefined) return undefined
    const packKey = toHex(pack)
    let entries = this.condemnedHeaders.get(packKey)
    if (entries === undefined) {
      entries = new Map((await this.reader.readHeader(asPackId(pack))).map(e => [toHex(e.id), e]))
      this.condemnedHeaders.set(packKey, entries)
      if (this.condemnedHeaders.size > 64) this.condemnedHeaders.delete(this.condemnedHeaders.keys().next().value as string)
    }
    const e = entries.get(key)
    if (e === undefined) return undefined
    return { pack: asPackId(pack), type: e.type, compression: e.compression, offset: e.offset, length: e.length, rawLength: e.rawLength }
  }

  /** The condemned pack a note of this device says holds a blob, if any. */
  condemnedPackOf (id: Uint8Array): Uint8Array | undefined {
    const key = toHex(id)
    // the notes change as commands sync: a miss rebuilds the map once
    const pack = this.condemnedMap?.get(key)
    if (pack !== undefined) return pack
    this.condemnedMap = this.condemnedBlobs()
    return this.condemnedMap.get(key)
  }

  /** blob (hex) → pack, for every blob a condemned note of this device lists. */
  private condemnedBlobs (): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>()
    for (const { pack, note } of this.index.gc.entries()) {
      if (note.state !== GcState.Condemned) continue
      for (let i = 0; i + 32 <= note.blobs.byteLength; i += 32) out.set(toHex(note.blobs.subarray(i, i + 32)), pack)
    }
    return out
  }

  /** Loads a blob's plaintext and verifies it against its id: where the index places it, else from a condemned pack that holds it. */
  async loadBlob (id: Uint8Array, given?: BlobLocation): Promise<Uint8Array> {
    const loc = given ?? this.index.getBlob(id) ?? await this.locateCondemned(id)
    if (loc === undefined) throw new NotFoundError(`blob ${toHex(id).slice(0, 16)} is not in the index (run 'p2pbak check' to rebuild it)`)
    const key = await this.reader.packKey(loc.pack)
    const enc = await this.packs.getPackRange(loc.pack, loc.offset, loc.length)
    const plain = this.reader.openBlob(key, loc.type as BlobType, id, loc.compression, loc.rawLength, enc)
    if (!equalBytes(this.blobId(plain), id)) throw new CorruptDataError(`blob ${toHex(id).slice(0, 16)} does not match its id`)
    return plain
  }

  async loadTree (id: TreeId): Promise<Tree> {
    return decodeTree(await this.loadBlob(id))
  }

  /**
   * Between commands of a long-running daemon: gives back the buffers and the compression workers
   * (each a V8 isolate) kept for the next pack, when nothing is being written; the next write makes
   * them again. The daemon's memory at rest is then its code and what it serves, not a backup's tools.
   * True when released (false: a write is still under way, and nothing changed).
   */
  async releaseIdle (): Promise<boolean> {
    if (this.jobs.size > 0 || this.inflight.size > 0 || this.packers.size > 0) return false
    this.spareBuffers.length = 0
    const pool = this.pool
    this.pool = undefined
    await pool?.close()
    return true
  }

  async close (): Promise<void> {
    await this.flush().catch((err: unknown) => { log.error('packs not written when the repository closed: %s', errorMessage(err)) })
    await this.pool?.close()
    await this.index.close()
    await this.packs.close()
  }
}
