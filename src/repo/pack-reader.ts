/**
 * Reading packs: opening the sealed pack key, decrypting the header (index rebuild, check) and
 * decrypting single blobs by range (restore). Every failure is typed: UnauthenticatedError when a tag
 * fails (damage or tampering), FormatError when a structure is malformed.
 */
import { UnauthenticatedError, WriteOnlyError } from '../errors.js'
import type { Identity, SodiumBackend } from '../crypto/index.js'
import {
  blobAssociatedData, decodePackHeader, decodePackPrefix, decodePackTrailer, HEADER_AD,
  PACK_PREFIX_BYTES, PACK_TRAILER_BYTES, type BlobType, type PackEntry
} from '../format/pack.js'
import type { PackId } from '../ids.js'
import type { PackStore } from './pack-store.js'
import { decompressBlob } from './compress.js'

const NONCE_BYTES = 24

export class PackReader {
  /** pack id (hex) -> pack key; pack keys are small, the cache is bounded by `maxKeys` */
  private readonly keys = new Map<string, Uint8Array>()

  constructor (
    private readonly sodium: SodiumBackend,
    private readonly identity: Identity,
    private readonly packs: PackStore,
    private readonly maxKeys = 4096
  ) {}

  openKey (prefix: Uint8Array): Uint8Array {
    const sk = this.identity.boxSecretKey
    if (sk === null) throw new WriteOnlyError('this machine holds a write-only key: it can back up but not read backups; use the recovery phrase to restore')
    const { sealedKey } = decodePackPrefix(prefix)
    try {
      return this.sodium.sealOpen(sealedKey, this.identity.boxPublicKey, sk)
    } catch (err: unknown) {
      throw new UnauthenticatedError('a pack key does not open with this identity: the pack is damaged or belongs to another user', { cause: err })
    }
  }

  async packKey (id: PackId): Promise<Uint8Array> {
    const k = Buffer.from(id).toString('hex')
    let key = this.keys.get(k)
    if (key === undefined) {
      key = this.openKey(await this.packs.getPackRange(id, 0, PACK_PREFIX_BYTES))
      if (this.keys.size >= this.maxKeys) this.keys.delete(this.keys.keys().next().value as string)
      this.keys.set(k, key)
    }
    return key
  }

  /** Parses a whole pack already in memory: its key and entries. */
  parsePack (pack: Uint8Array): { key: Uint8Array, entries: PackEntry[] } {
    const key = this.openKey(pack.subarray(0, PACK_PREFIX_BYTES))
    const { headerOffset, headerLength } = decodePackTrailer(pack.byteLength, pack.subarray(pack.byteLength - PACK_TRAILER_BYTES))
    const header = decryptWithNonce(this.sodium, pack.subarray(headerOffset, headerOffset + headerLength), HEADER_AD, key, 'pack header')
    return { key, entries: decodePackHeader(header, headerOffset) }
  }

  /** Reads only the prefix, trailer and header of a stored pack. */
  async readHeader (id: PackId): Promise<PackEntry[]> {
    const size = await this.packs.packSize(id)
    const key = await this.packKey(id)
    const trailer = await this.packs.getPackRange(id, size - PACK_TRAILER_BYTES, PACK_TRAILER_BYTES)
    const { headerOffset, headerLength } = decodePackTrailer(size, trailer)
    const enc = await this.packs.getPackRange(id, headerOffset, headerLength)
    return decodePackHeader(decryptWithNonce(this.sodium, enc, HEADER_AD, key, 'pack header'), headerOffset)
  }

  /** Decrypts and decompresses one blob from its encrypted bytes. */
  openBlob (key: Uint8Array, type: BlobType, id: Uint8Array, compression: number, rawLength: number, enc: Uint8Array): Uint8Array {
    const stored = decryptWithNonce(this.sodium, enc, blobAssociatedData(type, id), key, 'blob')
    return decompressBlob(compression, stored, rawLength)
  }
}

function decryptWithNonce (sodium: SodiumBackend, enc: Uint8Array, ad: Uint8Array, key: Uint8Array, what: string): Uint8Array {
  if (enc.byteLength < NONCE_BYTES + 16) throw new UnauthenticatedError(`a ${what} is truncated`)
  try {
    return sodium.aeadDecrypt(enc.subarray(NONCE_BYTES), ad, enc.subarray(0, NONCE_BYTES), key)
  } catch (err: unknown) {
    throw new UnauthenticatedError(`a ${what} failed authentication: it was damaged or altered`, { cause: err })
  }
}
