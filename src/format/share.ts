/**
 * Share format (version 1): one of the n = k + m erasure-coded fragments of a pack, as stored by a
 * share store (local disk or a friend's node).
 *
 *   share  = magic "P2PBSHRD"(8) || version u8 (=1) || k u8 || m u8 || index u8 || reserved u32 (=0)
 *            || packLength u64le || packId(32) || dataHash(32) || data
 *
 * dataHash = BLAKE3(data) lets any holder verify a share on its own. With k = 1, m = 0 (the embedded
 * default) data is the pack itself, so blob i of the pack sits at SHARE_HEADER_BYTES + entry.offset.
 * docs/format/packs.md is the full spec.
 */
import { FormatError } from '../errors.js'
import { ByteReader, ByteWriter, utf8Encode } from '../util/bytes.js'

export const SHARE_MAGIC = utf8Encode('P2PBSHRD')
export const SHARE_VERSION = 1
export const SHARE_HEADER_BYTES = 8 + 1 + 1 + 1 + 1 + 4 + 8 + 32 + 32

export interface ShareHeader {
  k: number
  m: number
  index: number
  packLength: number
  packId: Uint8Array
  dataHash: Uint8Array
}

export function encodeShareHeader (h: ShareHeader): Uint8Array {
  validate(h)
  return new ByteWriter(SHARE_HEADER_BYTES)
    .raw(SHARE_MAGIC).u8(SHARE_VERSION).u8(h.k).u8(h.m).u8(h.index).u32(0)
    .u64(h.packLength).raw(h.packId).raw(h.dataHash).finish()
}

export function decodeShareHeader (bytes: Uint8Array): ShareHeader {
  const r = new ByteReader(bytes.subarray(0, SHARE_HEADER_BYTES), 'share header')
  const magic = r.raw(SHARE_MAGIC.byteLength)
  if (!magic.every((b, i) => b === SHARE_MAGIC[i])) throw new FormatError('not a p2pbak share (bad magic)')
  const version = r.u8()
  if (version !== SHARE_VERSION) throw new FormatError(`share version ${version} is not supported; upgrade p2pbak`)
  const k = r.u8()
  const m = r.u8()
  const index = r.u8()
  if (r.u32() !== 0) throw new FormatError('share header: reserved field is not zero')
  const packLength = r.u64()
  if (packLength > BigInt(Number.MAX_SAFE_INTEGER)) throw new FormatError('share header: pack length out of range')
  const h = { k, m, index, packLength: Number(packLength), packId: r.raw(32).slice(), dataHash: r.raw(32).slice() }
  validate(h)
  return h
}

function validate (h: ShareHeader): void {
  if (h.k < 1 || h.k + h.m > 255 || h.index >= h.k + h.m) throw new FormatError(`share header: invalid k=${h.k} m=${h.m} index=${h.index}`)
  if (h.packId.byteLength !== 32 || h.dataHash.byteLength !== 32) throw new FormatError('share header: ids must be 32 bytes')
}
