/**
 * Builds one pack: compresses and encrypts blobs under a fresh pack key, then seals the key to the
 * user's public key and appends the encrypted, padded header. See src/format/pack.ts for the layout.
 */
import type { SodiumBackend } from '../crypto/index.js'
import {
  AEAD_OVERHEAD, blobAssociatedData, encodePackHeader, encodePackPrefix, encodePackTrailer, HEADER_AD,
  packHeaderLength, paddedPackSize, PACK_PREFIX_BYTES, PACK_TRAILER_BYTES, type BlobType, type PackEntry
} from '../format/pack.js'
import { compressBlob } from './compress.js'

const NONCE_BYTES = 24

export interface SealedPack { bytes: Uint8Array, entries: PackEntry[], dataBytes: number }

export class Packer {
  private readonly key: Uint8Array
  private readonly parts: Uint8Array[] = []
  readonly entries: PackEntry[] = []
  private offset = PACK_PREFIX_BYTES
  /** plaintext bytes added */
  rawBytes = 0

  constructor (
    private readonly sodium: SodiumBackend,
    private readonly recipient: Uint8Array,
    private readonly compressionLevel: number
  ) {
    this.key = sodium.randomBytes(32)
  }

  /** bytes of blob data so far (the pack is sealed once this passes the target size) */
  get size (): number { return this.offset }
  get count (): number { return this.entries.length }

  add (type: BlobType, id: Uint8Array, plaintext: Uint8Array): number {
    const { compression, data } = compressBlob(plaintext, this.compressionLevel)
    const nonce = this.sodium.randomBytes(NONCE_BYTES)
    const sealed = this.sodium.aeadEncrypt(data, blobAssociatedData(type, id), nonce, this.key)
    const blob = new Uint8Array(NONCE_BYTES + sealed.byteLength)
    blob.set(nonce, 0)
    blob.set(sealed, NONCE_BYTES)
    this.parts.push(blob)
    this.entries.push({ type, id: Uint8Array.from(id), compression, offset: this.offset, length: blob.byteLength, rawLength: plaintext.byteLength })
    this.offset += blob.byteLength
    this.rawBytes += plaintext.byteLength
    return blob.byteLength
  }

  seal (): SealedPack {
    const natural = packHeaderLength(this.entries)
    const total = paddedPackSize(this.offset + natural + AEAD_OVERHEAD + PACK_TRAILER_BYTES)
    const headerPlain = encodePackHeader(this.entries, total - this.offset - AEAD_OVERHEAD - PACK_TRAILER_BYTES)
    const nonce = this.sodium.randomBytes(NONCE_BYTES)
    const headerCt = this.sodium.aeadEncrypt(headerPlain, HEADER_AD, nonce, this.key)
    const out = new Uint8Array(total)
    out.set(encodePackPrefix(this.sodium.seal(this.key, this.recipient)), 0)
    let pos = PACK_PREFIX_BYTES
    for (const p of this.parts) { out.set(p, pos); pos += p.byteLength }
    out.set(nonce, pos); pos += NONCE_BYTES
    out.set(headerCt, pos); pos += headerCt.byteLength
    out.set(encodePackTrailer(NONCE_BYTES + headerCt.byteLength), pos)
    this.parts.length = 0
    return { bytes: out, entries: this.entries, dataBytes: this.rawBytes }
  }
}
