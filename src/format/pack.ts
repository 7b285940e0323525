/**
 * Pack format (version 1). A pack holds many encrypted blobs plus an encrypted header listing them.
 *
 *   pack      = magic "P2PBPACK"(8) || version u8 (=1) || sealedKey(80) || blob* || encHeader || headerLength u32le
 *   blob      = nonce(24) || XChaCha20-Poly1305(packKey, nonce, AD = blobAD(type, id), stored) (ciphertext || tag(16))
 *   stored    = zstd(plaintext) if compression = 1, else plaintext
 *   encHeader = nonce(24) || XChaCha20-Poly1305(packKey, nonce, AD = "p2pbak pack header v1", header)
 *   header    = count uvarint || entry{count} || zero padding
 *   entry     = type u8 || id(32) || compression u8 || offset uvarint || length uvarint || rawLength uvarint
 *
 * sealedKey is the random 32-byte pack key sealed (crypto_box_seal) to the user's X25519 public key.
 * The zero padding makes the whole pack exactly `paddedPackSize(unpadded)` bytes, so the pack's size
 * reveals neither the number nor the sizes of its blobs. docs/format/packs.md is the full spec.
 * This module is pure: callers do the encryption.
 */
import { FormatError } from '../errors.js'
import { ByteReader, ByteWriter, utf8Encode } from '../util/bytes.js'

export const PACK_MAGIC = utf8Encode('P2PBPACK')
export const PACK_VERSION = 1
export const SEALED_KEY_BYTES = 80
export const PACK_PREFIX_BYTES = PACK_MAGIC.byteLength + 1 + SEALED_KEY_BYTES
export const PACK_TRAILER_BYTES = 4
/** nonce + tag around every encrypted blob and the header */
export const AEAD_OVERHEAD = 24 + 16
/** Largest header we accept (1M entries would be absurd for a 16 MiB pack). */
export const MAX_HEADER_BYTES = 64 << 20
export const MAX_ENTRIES = 1 << 20

export const BlobType = { Data: 0, Tree: 1 } as const
export type BlobType = typeof BlobType[keyof typeof BlobType]
export const Compression = { None: 0, Zstd: 1 } as const
export type Compression = typeof Compression[keyof typeof Compression]

export interface PackEntry {
  type: BlobType
  id: Uint8Array
  compression: Compression
  /** byte offset of the encrypted blob from the start of the pack */
  offset: number
  /** length of the encrypted blob (nonce + ciphertext + tag) */
  length: number
  /** length of the plaintext after decompression */
  rawLength: number
}

export const HEADER_AD = utf8Encode('p2pbak pack header v1')
const BLOB_AD_PREFIX = utf8Encode('p2pbak blob v1')

/** Associated data binding a blob's ciphertext to its type and id: a blob cannot be swapped for another. */
export function blobAssociatedData (type: BlobType, id: Uint8Array): Uint8Array {
  const ad = new Uint8Array(BLOB_AD_PREFIX.byteLength + 1 + id.byteLength)
  ad.set(BLOB_AD_PREFIX, 0)
  ad[BLOB_AD_PREFIX.byteLength] = type
  ad.set(id, BLOB_AD_PREFIX.byteLength + 1)
  return ad
}

export function encodePackPrefix (sealedKey: Uint8Array): Uint8Array {
  if (sealedKey.byteLength !== SEALED_KEY_BYTES) throw new FormatError(`sealed pack key must be ${SEALED_KEY_BYTES} bytes`)
  return new ByteWriter(PACK_PREFIX_BYTES).raw(PACK_MAGIC).u8(PACK_VERSION).raw(sealedKey).finish()
}

export function decodePackPrefix (bytes: Uint8Array): { sealedKey: Uint8Array } {
  const r = new ByteReader(bytes, 'pack prefix')
  const magic = r.raw(PACK_MAGIC.byteLength)
  if (!magic.every((b, i) => b === PACK_MAGIC[i])) throw new FormatError('not a p2pbak pack (bad magic)')
  const version = r.u8()
  if (version !== PACK_VERSION) throw new FormatError(`pack version ${version} is not supported (this p2pbak reads version ${PACK_VERSION}); upgrade p2pbak`)
  return { sealedKey: r.raw(SEALED_KEY_BYTES) }
}

/** Bytes of the header plaintext for these entries, before padding. */
export function packHeaderLength (entries: readonly PackEntry[]): number {
  return encodeEntries(entries).byteLength
}

function encodeEntries (entries: readonly PackEntry[]): Uint8Array {
  const w = new ByteWriter(16 + entries.length * 48)
  w.uvarint(entries.length)
  for (const e of entries) {
    if (e.id.byteLength !== 32) throw new FormatError('blob id must be 32 bytes')
    w.u8(e.type).raw(e.id).u8(e.compression).uvarint(e.offset).uvarint(e.length).uvarint(e.rawLength)
  }
  return w.finish()
}

/** Header plaintext padded with zeros to `paddedLength` bytes (>= its natural length). */
export function encodePackHeader (entries: readonly PackEntry[], paddedLength?: number): Uint8Array {
  const plain = encodeEntries(entries)
  if (paddedLength === undefined || paddedLength <= plain.byteLength) return plain
  const out = new Uint8Array(paddedLength)
  out.set(plain)
  return out
}

/**
 * Parses a decrypted header. `blobAreaEnd` is the offset where the encrypted header starts:
 * every entry must lie inside [PACK_PREFIX_BYTES, blobAreaEnd) and entries must not overlap.
 */
export function decodePackHeader (bytes: Uint8Array, blobAreaEnd: number): PackEntry[] {
  const r = new ByteReader(bytes, 'pack header')
  const count = r.uvarint(MAX_ENTRIES)
  if (count * 37 > r.remaining) throw new FormatError(`pack header claims ${count} entries but has only ${r.remaining} bytes`)
  const entries: PackEntry[] = []
  let expected = PACK_PREFIX_BYTES
  for (let i = 0; i < count; i++) {
    const type = r.u8()
    if (type !== BlobType.Data && type !== BlobType.Tree) throw new FormatError(`pack header entry ${i}: unknown blob type ${type}`)
    const id = r.raw(32).slice()
    const compression = r.u8()
    if (compression !== Compression.None && compression !== Compression.Zstd) throw new FormatError(`pack header entry ${i}: unknown compression ${compression}`)
    const offset = r.uvarint()
    const length = r.uvarint()
    const rawLength = r.uvarint()
    if (offset !== expected) throw new FormatError(`pack header entry ${i}: offset ${offset}, expected ${expected} (blobs must be contiguous)`)
    if (length < AEAD_OVERHEAD || offset + length > blobAreaEnd) throw new FormatError(`pack header entry ${i}: blob [${offset}, ${offset + length}) outside the blob area`)
    expected = offset + length
    entries.push({ type, id, compression, offset, length, rawLength })
  }
  if (expected !== blobAreaEnd) throw new FormatError(`pack header: blobs end at ${expected} but the header starts at ${blobAreaEnd}`)
  while (!r.done) if (r.u8() !== 0) throw new FormatError('pack header padding is not zero')
  return entries
}

/** Reads the trailer: where the encrypted header starts and how long it is. */
export function decodePackTrailer (packLength: number, trailer: Uint8Array): { headerOffset: number, headerLength: number } {
  if (trailer.byteLength !== PACK_TRAILER_BYTES) throw new FormatError('pack trailer must be 4 bytes')
  const headerLength = new DataView(trailer.buffer, trailer.byteOffset, 4).getUint32(0, true)
  const headerOffset = packLength - PACK_TRAILER_BYTES - headerLength
  if (headerLength < AEAD_OVERHEAD || headerLength > MAX_HEADER_BYTES || headerOffset < PACK_PREFIX_BYTES) {
    throw new FormatError(`pack trailer: header length ${headerLength} does not fit a pack of ${packLength} bytes`)
  }
  return { headerOffset, headerLength }
}

export function encodePackTrailer (headerLength: number): Uint8Array {
  return new ByteWriter(4).u32(headerLength).finish()
}

const KiB = 1024
const MiB = 1024 * KiB
/**
 * Size classes: multiples of 64 KiB up to 1 MiB, then multiples of 1 MiB. A pack's size therefore
 * tells a persister at most "which megabyte", never the sizes of the chunks inside.
 */
export function paddedPackSize (unpadded: number): number {
  const step = unpadded <= MiB ? 64 * KiB : MiB
  return Math.max(step, Math.ceil(unpadded / step) * step)
}
