/**
 * Reading packs: opening the sealed key info (pack key and header offset), decrypting the header
 * (index rebuild, check) and decrypting single blobs by range (restore). Every failure is typed:
 * UnauthenticatedError when a tag fails (damage or tampering), FormatError when a structure is malformed.
 */
import { UnauthenticatedError, WriteOnlyError } from '../errors.js'
import type { Identity, SodiumBackend } from '../crypto/index.js'
import {
  blobAssociatedData, decodeKeyInfo, decodePackHeader, decodePackPrefix, HEADER_AD, packHeaderSpan,
  PACK_PREFIX_BYTES, type BlobType, type PackEntry
} from '../format/pack.js'
import type { PackId } from '../ids.js'
import type { PackStore } from './pack-store.js'
import { decompressBlob } from './compress.js'

const NONCE_BYTES = 24

/** What the sealed key info of a pack holds once opened. */
export interface PackKeyInfo {
  key: Uint8Array
  /** offset of the encrypted header, not yet checked against the pack's length (see packHeaderSpan) */
  headerOffset: number
}

export class PackReader {
  /** pack id (hex) -> opened key info; small, the cache is bounded by `maxKeys` */
  private readonly keys = new Map<string, PackKeyInfo>()

  constructor (
    private readonly sodium: SodiumBackend,
    private readonly identity: Identity,
    private readonly packs: PackStore,
    private readonly maxKeys = 4096
  ) {}

  /** Opens the sealed key info in a pack prefix (the first PACK_PREFIX_BYTES bytes). */
  openKey (prefix: Uint8Array): PackKeyInfo {
    const sk = this.identity.boxSecretKey
    if (sk === null) throw new WriteOnlyError('this machine holds a write-only key: it can back up but not read backups; use the recovery phrase to restore')
    const { sealedKeyInfo } = decodePackPrefix(prefix)
    let plain: Uint8Array
    try {
      plain = this.sodium.sealOpen(sealedKeyInfo, this.identity.boxPublicKey, sk)
    } catch (err: unknown) {
      throw new UnauthenticatedError('a pack key does not open with this identity: the pack is damaged or belongs to another user', { cause: err })
    }
    const { packKey, headerOffset } = decodeKeyInfo(plain)
    return { key: packKey, headerOffset }
  }

  private async keyInfo (id: PackId): Promise<PackKeyInfo> {
    const k = Buffer.from(id).toString('hex')
    let info = this.keys.get(k)
    if (info === undefined) {
      info = this.openKey(await this.packs.getPackRange(id, 0, PACK_PREFIX_BYTES))
      if (this.keys.size >= this.maxKeys) this.keys.delete(this.keys.keys().next().value as string)
      this.keys.set(k, info)
    }
    return info
  }

  async packKey (id: PackId): Promise<Uint8Array> {
    return (await this.keyInfo(id)).key
  }

  /** Parses a whole pack already in memory: its key and entries. */
  parsePack (pack: Uint8Array): { key: Uint8Array, entries: PackEntry[] } {
    const { key, headerOffset } = this.openKey(pack.subarray(0, PACK_PREFIX_BYTES))
    packHeaderSpan(pack.byteLength, headerOffset)
    const header = decryptWithNonce(this.sodium, pack.subarray(headerOffset), HEADER_AD, key, 'pack header')
    return { key, entries: decodePackHeader(header, headerOffset) }
  }

  /** Reads only the prefix and the header of a stored pack. */
  async readHeader (id: PackId): Promise<PackEntry[]> {
    const size = await this.packs.packSize(id)
    const { key, headerOffset: at } = await this.keyInfo(id)
    const { headerOffset, headerLength } = packHeaderSpan(size, at)
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
