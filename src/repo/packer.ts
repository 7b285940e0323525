/**
 * Builds one pack in a single buffer: blobs are encrypted straight into place under a fresh pack
 * key; seal() appends the encrypted, padded header and seals the key and the header's offset to the
 * user's public key (so only the user learns where the blobs end).
 * The buffer keeps `headroom` free bytes in front of the pack, so the pack store can prepend a share
 * header without copying the pack. See src/format/pack.ts for the layout.
 */
import type { SodiumBackend } from '../crypto/index.js'
import {
  AEAD_OVERHEAD, blobAssociatedData, encodeKeyInfo, encodePackHeader, encodePackPrefix, HEADER_AD,
  packHeaderLength, paddedPackSize, PACK_PREFIX_BYTES, type BlobType, type PackEntry
} from '../format/pack.js'
import { uvarintLength } from '../util/bytes.js'
import type { Compressed } from './compress.js'

const NONCE_BYTES = 24
const TAG_BYTES = 16

export interface SealedPack {
  /** the pack (a view with `headroom` writable bytes before it in the same buffer) */
  bytes: Uint8Array
  headroom: number
  entries: PackEntry[]
}

export class Packer {
  private readonly key: Uint8Array
  private buf: Uint8Array
  readonly entries: PackEntry[] = []
  /** end of the blob area, relative to the pack start */
  private offset = PACK_PREFIX_BYTES
  /** bytes of the header's entries so far (its plaintext less the entry count) */
  private entryBytes = 0

  /**
   * @param buffer a recycled buffer to build the pack in (its old contents are overwritten); a new
   *   one of `initialCapacity` is allocated when absent or too small
   */
  constructor (
    private readonly sodium: SodiumBackend,
    private readonly recipient: Uint8Array,
    initialCapacity: number,
    readonly headroom = 0,
    buffer?: Uint8Array
  ) {
    this.key = sodium.randomBytes(32)
    const need = headroom + Math.max(initialCapacity, PACK_PREFIX_BYTES + 4096)
    this.buf = buffer !== undefined && buffer.byteLength >= need ? buffer : new Uint8Array(need)
  }

  /** The buffer the pack was built in, for reuse once the sealed pack is no longer needed. */
  get buffer (): Uint8Array { return this.buf }

  /** bytes of the pack so far (it is sealed once this passes the target size) */
  get size (): number { return this.offset }
  get count (): number { return this.entries.length }

  /**
   * Whether the pack, sealed and padded to its size class, stays at most `paddedPackSize(limit)` bytes:
   * as it is, or with `blob` (its compressed or stored bytes and its raw length) added. An empty blob
   * asks whether the pack has room for any blob at all. The header's length is exact: it is known from
   * the entries.
   */
  fits (limit: number, blob?: { bytes: number, rawLength: number }): boolean {
    let length = 0
    let entries = this.entries.length
    let entryBytes = this.entryBytes
    if (blob !== undefined) {
      length = NONCE_BYTES + blob.bytes + TAG_BYTES
      entries++
      entryBytes += entryLength(this.offset, length, blob.rawLength)
    }
    const header = uvarintLength(entries) + entryBytes
    return paddedPackSize(this.offset + length + header + AEAD_OVERHEAD) <= paddedPackSize(limit)
  }

  private ensure (bytes: number): void {
    const need = this.headroom + this.offset + bytes
    if (need <= this.buf.byteLength) return
    // doubling while small (tree packs start at 256 KiB); a big pack grows by what it needs and 4 MiB
    let size = Math.max(need, Math.min(this.buf.byteLength * 2, need + 4 * 1024 * 1024))
    size = Math.ceil(size / 65536) * 65536
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.headroom + this.offset))
    this.buf = next
  }

  /** Encrypts an already compressed (or stored) blob into the pack. */
  add (type: BlobType, id: Uint8Array, rawLength: number, c: Compressed): void {
    const length = NONCE_BYTES + c.data.byteLength + TAG_BYTES
    this.ensure(length)
    const at = this.headroom + this.offset
    const nonce = this.sodium.randomBytes(NONCE_BYTES)
    this.buf.set(nonce, at)
    this.sodium.aeadEncryptInto(this.buf.subarray(at + NONCE_BYTES, at + length), c.data, blobAssociatedData(type, id), nonce, this.key)
    this.entries.push({ type, id: Uint8Array.from(id), compression: c.compression, offset: this.offset, length, rawLength })
    this.entryBytes += entryLength(this.offset, length, rawLength)
    this.offset += length
  }

  seal (): SealedPack {
    const headerOffset = this.offset
    const natural = packHeaderLength(this.entries)
    const total = paddedPackSize(headerOffset + natural + AEAD_OVERHEAD)
    // the header runs to the end of the pack; its zero padding fills the size class
    const headerPlainLength = total - headerOffset - AEAD_OVERHEAD
    this.ensure(total - headerOffset)
    const base = this.headroom
    const keyInfo = encodeKeyInfo(this.key, headerOffset)
    this.buf.set(encodePackPrefix(this.sodium.seal(keyInfo, this.recipient)), base)
    const headerPlain = encodePackHeader(this.entries, headerPlainLength)
    const nonce = this.sodium.randomBytes(NONCE_BYTES)
    let at = base + headerOffset
    this.buf.set(nonce, at)
    at += NONCE_BYTES
    this.sodium.aeadEncryptInto(this.buf.subarray(at, at + headerPlain.byteLength + TAG_BYTES), headerPlain, HEADER_AD, nonce, this.key)
    return { bytes: this.buf.subarray(base, base + total), headroom: this.headroom, entries: this.entries }
  }
}

/** Bytes of one entry of the pack header (docs/format/packs.md §5): type, id, compression, three uvarints. */
function entryLength (offset: number, length: number, rawLength: number): number {
  return 1 + 32 + 1 + uvarintLength(offset) + uvarintLength(length) + uvarintLength(rawLength)
}
