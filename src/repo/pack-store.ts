/**
 * Where packs live. The repository reads and writes whole packs and pack ranges through this
 * interface and knows nothing of disks or networks. The embedded default keeps each pack as a single
 * share (k = 1, m = 0) in one local share store; the network layer provides an erasure-coded
 * implementation over many peers' share stores.
 */
import { CorruptDataError, FormatError } from '../errors.js'
import { asPackId, type PackId } from '../ids.js'
import type { AbortOptions, ShareStore } from '../store/index.js'
import { decodeShareHeader, encodeShareHeader, SHARE_HEADER_BYTES } from '../format/share.js'
import { contentHash } from '../crypto/index.js'
import { concatBytes, equalBytes } from '../util/bytes.js'
import type { HeldIndexes } from '../placement/index.js'

export interface PackPlacement {
  k: number
  m: number
  /** the pack stays in this node's local store too (a group too small for the stripe alone: keepsOwnCopy) */
  ownCopy?: boolean
}

export interface PutPackOptions extends AbortOptions {
  /** writable bytes before `pack` in its ArrayBuffer that the store may use for its own header (saves a copy) */
  headroom?: number
  /**
   * A group store that cannot place every share (a friend went away during the job) keeps the pack
   * on this disk instead of failing, and says why in the job's summary; the daemon moves it into
   * the group later. false: fail with PlacementFailedError (moving local packs). @default true
   */
  keepLocalOnFailure?: boolean
  /**
   * The shares of an older stripe of this pack that stay where they are until the new one is
   * recorded (index → peer, or peers; widening and the leftovers of earlier tries, local-packs.ts): no
   * share of the new stripe goes to a peer at an index it holds there, which would replace bytes the
   * recorded stripe still needs.
   */
  replacing?: HeldIndexes
  /**
   * This stripe on friends, or PlacementFailedError when the friends who answer now give another
   * (widening: the stripe the step chose; nothing is written to this disk and no placement recorded).
   */
  stripe?: { k: number, m: number }
}

/**
 * Who a record listing came from, filled by a store that lists the records friends hold (group
 * stores): a prune acts only on a head every friend asked has listed in full (docs/gc.md §4).
 */
export interface RecordListing {
  /** friends asked (those connected when the listing started) */
  asked: number
  /** friends whose listing ended at its end */
  answered: number
  /** friends whose listing failed or was cut off at a bound, and why */
  incomplete: string[]
  /** this person has other devices, whose records only friends hold (PeerDirectory.hasOtherDevices) */
  otherDevices: boolean
}

export interface RecordListOptions extends AbortOptions {
  listing?: RecordListing
}

export interface PackStore {
  readonly description: string
  /**
   * Whether listPacks() sees every pack there is. A local disk does; a group does not (a holder may
   * be offline): only an authoritative listing may make the index forget a pack.
   */
  readonly listIsAuthoritative: boolean
  /** Stores a pack durably (idempotent). */
  putPack (id: PackId, pack: Uint8Array, options?: PutPackOptions): Promise<PackPlacement>
  /** The whole pack, verified against its id (CorruptDataError on mismatch, NotFoundError if absent). */
  getPack (id: PackId, options?: AbortOptions): Promise<Uint8Array>
  /** A byte range of the pack, not verified here (blobs are authenticated by their AEAD tag). */
  getPackRange (id: PackId, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array>
  /** Size of the pack in bytes (NotFoundError if absent). */
  packSize (id: PackId, options?: AbortOptions): Promise<number>
  hasPack (id: PackId, options?: AbortOptions): Promise<boolean>
  deletePack (id: PackId, options?: AbortOptions): Promise<void>
  listPacks (options?: AbortOptions): AsyncIterable<PackId>
  /** Snapshot records (the "head"): small signed envelopes named by their id. */
  putRecord (id: Uint8Array, data: Uint8Array, options?: AbortOptions): Promise<void>
  getRecord (id: Uint8Array, options?: AbortOptions): Promise<Uint8Array>
  deleteRecord (id: Uint8Array, options?: AbortOptions): Promise<void>
  /** Every record id; a store that lists from friends fills `options.listing` with who answered. */
  listRecords (options?: RecordListOptions): AsyncIterable<Uint8Array>
  usage (options?: AbortOptions): Promise<{ shares: number, bytes: number }>
  /**
   * Whether this disk keeps a copy of a pack placed on friends (group stores: a stripe that survives
   * one loss at most, placement-and-repair.md §4); present, not verified.
   */
  hasOwnCopy?: (id: PackId, options?: AbortOptions) => Promise<boolean>
  /** The erasure scheme of a pack, when the store learned it while reading (group stores). */
  packScheme?: (id: PackId) => { k: number, m: number } | undefined
  /**
   * The one peer that claims a pack nobody else lists and the index does not know (group stores),
   * else undefined: the index rebuild stops believing a peer whose lone claims keep failing.
   */
  soleClaimant?: (id: PackId) => string | undefined
  /** The peer whose listing brought a record id (group stores): readers stop believing one whose ids keep failing. */
  recordClaimant?: (id: Uint8Array) => string | undefined
  /** Forgets data cached for one operation (decoded packs), so the next one sees the peers as they are. */
  dropCaches?: () => void
  close (): Promise<void>
}

/** Each pack is one share (k = 1, m = 0) in a single share store: the embedded default. */
export class SingleStorePackStore implements PackStore {
  readonly description: string
  readonly listIsAuthoritative: boolean = true
  constructor (private readonly store: ShareStore) {
    this.description = store.id
  }

  async putPack (id: PackId, pack: Uint8Array, options?: PutPackOptions): Promise<PackPlacement> {
    const header = encodeShareHeader({ k: 1, m: 0, index: 0, packLength: pack.byteLength, packId: id, dataHash: id })
    let share: Uint8Array
    if ((options?.headroom ?? 0) >= SHARE_HEADER_BYTES) {
      share = new Uint8Array(pack.buffer, pack.byteOffset - SHARE_HEADER_BYTES, SHARE_HEADER_BYTES + pack.byteLength)
      share.set(header, 0)
    } else {
      share = concatBytes([header, pack])
    }
    await this.store.put({ pack: id, index: 0 }, share, options)
    return { k: 1, m: 0 }
  }

  async getPack (id: PackId, options?: AbortOptions): Promise<Uint8Array> {
    const share = await this.store.get({ pack: id, index: 0 }, options)
    const header = decodeShareHeader(share)
    const pack = share.subarray(SHARE_HEADER_BYTES)
    if (header.packLength !== pack.byteLength || !equalBytes(header.packId, id)) {
      throw new CorruptDataError(`share of pack ${hex(id)} has a damaged header`)
    }
    if (!equalBytes(contentHash(pack), id)) throw new CorruptDataError(`pack ${hex(id)} is damaged: its content does not match its id`)
    return pack
  }

  async getPackRange (id: PackId, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    return await this.store.getRange({ pack: id, index: 0 }, SHARE_HEADER_BYTES + offset, length, options)
  }

  async packSize (id: PackId, options?: AbortOptions): Promise<number> {
    const size = await this.store.size({ pack: id, index: 0 }, options)
    if (size < SHARE_HEADER_BYTES) throw new FormatError(`share of pack ${hex(id)} is truncated`)
    return size - SHARE_HEADER_BYTES
  }

  async hasPack (id: PackId, options?: AbortOptions): Promise<boolean> {
    return await this.store.has({ pack: id, index: 0 }, options)
  }

  async deletePack (id: PackId, options?: AbortOptions): Promise<void> {
    await this.store.delete({ pack: id, index: 0 }, options)
  }

  async * listPacks (options?: AbortOptions): AsyncIterable<PackId> {
    for await (const ref of this.store.list(options)) if (ref.index === 0) yield asPackId(ref.pack)
  }

  async putRecord (id: Uint8Array, data: Uint8Array, options?: AbortOptions): Promise<void> { await this.store.putRecord(id, data, options) }
  async getRecord (id: Uint8Array, options?: AbortOptions): Promise<Uint8Array> { return await this.store.getRecord(id, options) }
  async deleteRecord (id: Uint8Array, options?: AbortOptions): Promise<void> { await this.store.deleteRecord(id, options) }
  listRecords (options?: RecordListOptions): AsyncIterable<Uint8Array> { return this.store.listRecords(options) }
  async usage (options?: AbortOptions): Promise<{ shares: number, bytes: number }> { return await this.store.usage(options) }
  async close (): Promise<void> { await this.store.close() }
}

function hex (id: Uint8Array): string { return Buffer.from(id).toString('hex').slice(0, 16) }
