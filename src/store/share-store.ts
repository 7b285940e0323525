/**
 * The share store contract. A share is one erasure-coded piece of a pack, named by the pack's id and
 * the share's index; a record is a small signed snapshot record ("head" entry), named by a 32-byte id.
 * A local directory and a remote peer both implement {@link ShareStore}; the compliance suite in
 * `test/compliance/share-store.ts` is the executable form of this contract.
 *
 * The byte-level layout of the local implementation is specified in `docs/format/share-store.md`.
 */
import { AbortedError, FormatError } from '../errors.js'
import { ID_BYTES, type PackId } from '../ids.js'
import { toHex } from '../util/bytes.js'
import { shown } from '../util/text.js'

export interface AbortOptions { signal?: AbortSignal }

/** Names one share: the pack it belongs to and its position in the erasure stripe. */
export interface ShareRef {
  pack: PackId
  /** 0..255 (an erasure stripe has at most 256 shares). */
  index: number
}

/** Highest valid {@link ShareRef.index}. */
export const MAX_SHARE_INDEX = 255

/** A share being written piece by piece ({@link ShareStore.beginShare}). */
export interface ShareWriter {
  /**
   * Appends all of `data` (pieces in order: one gathered write); no reference to it is kept once the
   * promise settles. A full disk raises NoSpaceError.
   */
  append (data: Uint8Array | readonly Uint8Array[]): Promise<void>
  /** The bytes appended so far, read back (to compare them with a held share). */
  read (): Promise<Uint8Array>
  /** Stores what was appended as the share, as put would; the writer is then done. */
  commit (options?: AbortOptions): Promise<void>
  /** Discards what was appended. Idempotent, and a no-op after a commit. */
  abort (): Promise<void>
}

/** Share count and total share bytes held by a store (records are not counted). */
export interface StoreUsage {
  shares: number
  /** bytes of share files */
  bytes: number
  /** records kept, and their bytes (stores that keep records count them) */
  records?: number
  recordBytes?: number
}

export interface ListOptions extends AbortOptions {
  /** shares whose pack id starts with a smaller byte may be left out (only a store with `listsByFirstByte` does) */
  fromFirstByte?: number
}

export interface ShareStore {
  /** Human-readable, stable for the life of the store, e.g. `local:/home/u/.p2pbak/store`. */
  readonly id: string
  /**
   * Stores the share atomically and durably: once the promise resolves the share survives a crash,
   * and at no time can a reader see a partial share. Idempotent: putting an existing share again with
   * identical bytes succeeds. A full disk raises NoSpaceError and leaves nothing behind.
   * A store MUST NOT keep a reference to `data` once the promise settles: the caller reuses the
   * buffer for the next pack.
   */
  put (ref: ShareRef, data: Uint8Array, options?: AbortOptions): Promise<void>
  /**
   * {@link ShareStore.put} of the share given as consecutive pieces (their concatenation is the
   * share), for stores that can send or write them without joining them first (a publisher's k = 1
   * parity shares are a header and share 0's shard). Same atomicity, durability and idempotence; no
   * reference to the pieces is kept once the promise settles. Absent: the caller joins them and puts.
   */
  putParts?: (ref: ShareRef, parts: readonly Uint8Array[], options?: AbortOptions) => Promise<void>
  /**
   * Starts a share that arrives in consecutive pieces (a persister's store, fed a share in parts), for
   * stores that can keep the unfinished bytes outside memory: they go to a temporary file as they come,
   * and {@link ShareWriter.commit} stores the share with put's atomicity, durability and idempotence.
   * Nothing is visible under the share's name before the commit. Absent: the caller keeps the pieces
   * and calls put.
   */
  beginShare?: (ref: ShareRef, options?: AbortOptions) => Promise<ShareWriter>
  /** The whole share. NotFoundError if absent. */
  get (ref: ShareRef, options?: AbortOptions): Promise<Uint8Array>
  /** Bytes [offset, offset+length) of a share. FormatError if the range exceeds it; NotFoundError if absent. */
  getRange (ref: ShareRef, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array>
  has (ref: ShareRef, options?: AbortOptions): Promise<boolean>
  /** Size in bytes. NotFoundError if absent. */
  size (ref: ShareRef, options?: AbortOptions): Promise<number>
  /** Removing an absent share succeeds (idempotent). */
  delete (ref: ShareRef, options?: AbortOptions): Promise<void>
  /**
   * When the share was stored (ms since the epoch), for stores that know it: a persister refuses to
   * delete shares younger than the group's retention policy allows. NotFoundError if absent.
   */
  storedAt?: (ref: ShareRef, options?: AbortOptions) => Promise<number>
  /**
   * Every share held, each exactly once, in no guaranteed order; but a store whose
   * `listsByFirstByte` is true lists them by the first byte of the pack id, ascending, and may skip
   * those below `fromFirstByte` (what a listing page after a cursor needs: shard listing.ts).
   */
  list (options?: ListOptions): AsyncIterable<ShareRef>
  /** list() yields shares grouped by the first byte of their pack id, ascending, and honours `fromFirstByte`. */
  readonly listsByFirstByte?: true
  /** Same atomicity and durability as {@link ShareStore.put}; `id` is 32 bytes. */
  putRecord (id: Uint8Array, data: Uint8Array, options?: AbortOptions): Promise<void>
  /** NotFoundError if absent. */
  getRecord (id: Uint8Array, options?: AbortOptions): Promise<Uint8Array>
  hasRecord (id: Uint8Array, options?: AbortOptions): Promise<boolean>
  /** Removing an absent record succeeds (idempotent). */
  deleteRecord (id: Uint8Array, options?: AbortOptions): Promise<void>
  /** Every record id held, each exactly once, in no guaranteed order. */
  listRecords (options?: AbortOptions): AsyncIterable<Uint8Array>
  /** Number of shares and the sum of their sizes. Records are not counted. */
  usage (options?: AbortOptions): Promise<StoreUsage>
  /** Releases resources. Idempotent; every later operation rejects. */
  close (): Promise<void>
}

/** Throws FormatError unless `ref` names a valid share (32-byte pack id, integer index 0..255). */
export function checkShareRef (ref: ShareRef): void {
  if (!(ref.pack instanceof Uint8Array) || ref.pack.byteLength !== ID_BYTES) {
    throw new FormatError(`a share's pack id must be ${ID_BYTES} bytes`)
  }
  if (!Number.isInteger(ref.index) || ref.index < 0 || ref.index > MAX_SHARE_INDEX) {
    throw new FormatError(`a share index must be an integer 0..${MAX_SHARE_INDEX}, got ${shown(ref.index)}`)
  }
}

/** Throws FormatError unless `id` is a 32-byte record id. */
export function checkRecordId (id: Uint8Array): void {
  if (!(id instanceof Uint8Array) || id.byteLength !== ID_BYTES) {
    throw new FormatError(`a record id must be ${ID_BYTES} bytes`)
  }
}

/** Throws FormatError unless [offset, offset+length) lies within a share of `size` bytes. */
export function checkRange (offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new FormatError(`a share range needs non-negative integers, got offset ${offset} length ${length}`)
  }
  if (offset + length > size) {
    throw new FormatError(`range [${offset}, ${offset + length}) lies beyond the share's ${size} bytes`)
  }
}

/** The canonical text name of a share, `<64 hex pack id>.<decimal index>` (also its local file name). */
export function shareRefName (ref: ShareRef): string {
  return `${toHex(ref.pack)}.${ref.index}`
}

/** Throws AbortedError if the signal has fired. */
export function throwIfAborted (options?: AbortOptions): void {
  const signal = options?.signal
  if (signal?.aborted === true) throw new AbortedError('the store operation was cancelled', { cause: signal.reason })
}
