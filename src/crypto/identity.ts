/**
 * Everything a user is, derived from one 32-byte master seed with libsodium's KDF
 * (crypto_kdf_derive_from_key, BLAKE2b) under the context "p2pbak01". Subkey ids are fixed forever;
 * ids 7 and up are reserved for later keys and MUST NOT be reused for another purpose.
 */
import { toHex } from '../util/bytes.js'
import type { SodiumBackend } from './backend.js'
import { KEY_BYTES, SEED_BYTES } from './constants.js'

export const IDENTITY_KDF_CONTEXT = 'p2pbak01'

/** crypto_kdf subkey ids under {@link IDENTITY_KDF_CONTEXT}. */
export const SubkeyId = {
  /** 32-byte seed of the Ed25519 signing key pair. */
  signSeed: 1,
  /** 32-byte seed of the X25519 (crypto_box) key pair. */
  boxSeed: 2,
  /** 32-byte BLAKE3 key for chunk and tree ids. */
  dedupKey: 3,
  /** 32-byte key from which the FastCDC gear table is derived. */
  chunkerKey: 4,
  /** 32-byte seed of the "gc view" X25519 key pair: condemnation records are sealed to it (docs/format/keys.md §5). */
  gcViewSeed: 5,
  /** 32-byte XChaCha20-Poly1305 key sealing HOME/device.key (keys.md §12). */
  deviceKeyWrap: 6,
  /** The first id not yet assigned (7 and up are reserved). */
  firstReserved: 7
} as const

/**
 * The "gc view" box key pair: condemnation records (docs/format/gc-records.md) are sealed to it, so
 * a write-only machine, which carries it, can see what prunes condemned without reading any backup.
 */
export interface GcViewKeys {
  /** subkey 5 of the master seed: what a write-only key file carries */
  readonly seed: Uint8Array
  readonly publicKey: Uint8Array
  readonly secretKey: Uint8Array
}

/** Everything derived from the 32-byte master seed. Secret parts are null on a write-only publisher. */
export interface Identity {
  /** lowercase hex of signPublicKey */
  readonly userId: string
  readonly signPublicKey: Uint8Array
  /** libsodium format: Ed25519 seed (32) || public key (32) */
  readonly signSecretKey: Uint8Array | null
  readonly boxPublicKey: Uint8Array
  readonly boxSecretKey: Uint8Array | null
  /** 32 bytes, keys BLAKE3 for chunk/tree ids */
  readonly dedupKey: Uint8Array
  /** 32 bytes, derives the FastCDC gear table */
  readonly chunkerKey: Uint8Array
  /**
   * The gc view key pair: every full identity has it; a write-only machine has it when its key file
   * carries it (version 2, docs/format/keys.md §11.2), else null (it cannot look before commit).
   */
  readonly gcView: GcViewKeys | null
}

/** The gc view key pair of its 32-byte seed (subkey 5). */
export function gcViewKeys (backend: SodiumBackend, seed: Uint8Array): GcViewKeys {
  const pair = backend.boxKeypairFromSeed(seed)
  return Object.freeze({ seed, publicKey: pair.publicKey, secretKey: pair.secretKey })
}

export function deriveIdentity (backend: SodiumBackend, seed: Uint8Array): Identity {
  if (!(seed instanceof Uint8Array) || seed.byteLength !== SEED_BYTES) throw new RangeError(`master seed must be ${SEED_BYTES} bytes`)
  const sub = (id: number): Uint8Array => backend.kdfDerive(seed, id, IDENTITY_KDF_CONTEXT, KEY_BYTES)
  const sign = backend.signKeypairFromSeed(sub(SubkeyId.signSeed))
  const box = backend.boxKeypairFromSeed(sub(SubkeyId.boxSeed))
  return Object.freeze({
    userId: toHex(sign.publicKey),
    signPublicKey: sign.publicKey,
    signSecretKey: sign.secretKey,
    boxPublicKey: box.publicKey,
    boxSecretKey: box.secretKey,
    dedupKey: sub(SubkeyId.dedupKey),
    chunkerKey: sub(SubkeyId.chunkerKey),
    gcView: gcViewKeys(backend, sub(SubkeyId.gcViewSeed))
  })
}

/**
 * The public + dedup + chunker + gc view parts only (write-only publisher): can write new backups and
 * see what prunes condemned, cannot read old backups, list them or sign anything as the user.
 */
export function writeOnlyIdentity (identity: Identity): Identity {
  return Object.freeze({
    userId: identity.userId,
    signPublicKey: identity.signPublicKey,
    signSecretKey: null,
    boxPublicKey: identity.boxPublicKey,
    boxSecretKey: null,
    dedupKey: identity.dedupKey,
    chunkerKey: identity.chunkerKey,
    gcView: identity.gcView
  })
}
