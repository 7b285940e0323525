/**
 * Pack format (version 1). A pack holds many encrypted blobs plus an encrypted header listing them.
 *
 *   pack      = magic "P2PBPACK"(8) || version u8 (=1) || sealedKeyInfo(84) || blob* || encHeader
 *   keyInfo   = packKey(32) || headerOffset u32le                     (sealedKeyInfo = crypto_box_seal(keyInfo))
 *   blob      = nonce(24) || XChaCha20-Poly1305(packKey, nonce, AD = blobAD(type, id), stored) (ciphertext || tag(16))
 *   stored    = zstd(plaintext) if compression = 1, else plaintext
 *   encHeader = nonce(24) || XChaCha20-Poly1305(packKey, nonce, AD = "p2pbak pack header v1", header), to the end of the pack
 *   header    = count uvarint || entry{count} || zero padding
 *   entry     = type u8 || id(32) || compression u8 || offset uvarint || length uvarint || rawLength uvarint
 *
 * sealedKeyInfo is the random 32-byte pack key and the offset of encHeader, sealed (crypto_box_seal) to
 * the user's X25519 public key. Nothing outside it says where the blobs end. The zero padding makes the
 * whole pack exactly `paddedPackSize(unpadded)` bytes, so the pack's size reveals neither the number nor
 * the sizes of its blobs. docs/format/packs.md is the full spec.
 * This module is pure: callers do the encryption.
 */
import { FormatError } from '../errors.js'
import { ByteReader, ByteWriter, utf8Encode } from '../util/bytes.js'

export const PACK_MAGIC = utf8Encode('P2PBPACK')
export const PACK_VERSION = 1
/** packKey(32) || headerOffset u32le: the plaintext of the sealed key info */
export const KEY_INFO_BYTES = 32 + 4
/** crypto_box_seal adds an ephemeral public key (32) and a tag (16) */
export const SEALED_KEY_INFO_BYTES = KEY_INFO_BYTES + 48
export const PACK_PREFIX_BYTES = PACK_MAGIC.byteLength + 1 + SEALED_KEY_INFO_BYTES
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

export function encodePackPrefix (sealedKeyInfo: Uint8Array): Uint8Array {
  if (sealedKeyInfo.byteLength !== SEALED_KEY_INFO_BYTES) throw new FormatError(`sealed key info must be ${SEALED_KEY_INFO_BYTES} bytes`)
  return new ByteWriter(PACK_PREFIX_BYTES).raw(PACK_MAGIC).u8(PACK_VERSION).raw(sealedKeyInfo).finish()
}

export function decodePackPrefix (bytes: Uint8Array): { sealedKeyInfo: Uint8Array } {
  const r = new ByteReader(bytes, 'pack prefix')
  const magic = r.raw(PACK_MAGIC.byteLength)
  if (!magic.every((b, i) => b === PACK_MAGIC[i])) throw new FormatError('not a p2pbak pack (bad magic)')
  const version = r.u8()
  if (version !== PACK_VERSION) throw new FormatError(`pack version ${version} is not supported (this p2pbak reads version ${PACK_VERSION}); upgrade p2pbak`)
  return { sealedKeyInfo: r.raw(SEALED_KEY_INFO_BYTES) }
}

/** The plaintext sealed in the prefix: the pack key and where the encrypted header starts. */
export function encodeKeyInfo (packKey: Uint8Array, headerOffset: number): Uint8Array {
  if (packKey.byteLength !== 32) throw new FormatError('pack key must be 32 bytes')
  if (!Number.isInteger(headerOffset) || headerOffset < PACK_PREFIX_BYTES || headerOffset > 0xffffffff) {
    throw new FormatError(`pack header offset ${headerOffset} must be an integer in [${PACK_PREFIX_BYTES}, 2^32)`)
  }
  return new ByteWriter(KEY_INFO_BYTES).raw(packKey).u32(headerOffset).finish()
}

export function decodeKeyInfo (plain: Uint8Array): { packKey: Uint8Array, headerOffset: number } {
  if (plain.byteLength !== KEY_INFO_BYTES) throw new FormatError(`pack key info must be ${KEY_INFO_BYTES} bytes, got ${plain.byteLength}`)
  const r = new ByteReader(plain, 'pack key info')
  return { packKey: r.raw(32).slice(), headerOffset: r.u32() }
}

/**
 * Checks a header offset (from the opened key info) against the pack's length and returns where the
 * encrypted header lies: from `headerOffset` to the end of the pack.
 */
export function packHeaderSpan (packLength: number, headerOffset: number): { headerOffset: number, headerLength: number } {
  const headerLength = packLength - headerOffset
  if (headerOffset < PACK_PREFIX_BYTES || headerLength < AEAD_OVERHEAD || headerLength > MAX_HEADER_BYTES) {
    throw new FormatError(`pack header offset ${headerOffset} does not fit a pack of ${packLength} bytes`)
  }
  return { headerOffset, headerLength }
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
