/**
 * The one libsodium interface p2pbak uses, with two interchangeable implementations that produce
 * identical bytes: `sodium-native` (native, default) and `libsodium-wrappers` (the portable WASM
 * build; the package used is `libsodium-wrappers-sumo`, the variant that includes crypto_pwhash).
 *
 * Both implementations are wrapped by {@link checkedBackend}, which validates every argument the
 * same way and turns authentication failures into {@link UnauthenticatedError}. Wrong key, seed or
 * nonce lengths are programming errors and throw RangeError; data that fails to authenticate
 * (including ciphertexts too short to hold a tag) throws UnauthenticatedError; `verify` never
 * throws for malformed signatures or public keys, it returns false.
 */
import { UnauthenticatedError } from '../errors.js'
import {
  AEAD_NONCE_BYTES, AEAD_TAG_BYTES, BOX_PUBLIC_KEY_BYTES, BOX_SECRET_KEY_BYTES, KDF_SUBKEY_MAX,
  KDF_SUBKEY_MIN, KEY_BYTES, PWHASH_MEM_MAX, PWHASH_MEM_MIN, PWHASH_OPS_MAX, PWHASH_OPS_MIN,
  PWHASH_OUT_MIN, PWHASH_SALT_BYTES, SEAL_OVERHEAD, SEED_BYTES, SIGNATURE_BYTES,
  SIGN_PUBLIC_KEY_BYTES, SIGN_SECRET_KEY_BYTES
} from './constants.js'

export interface KeyPair { publicKey: Uint8Array, secretKey: Uint8Array }

export type BackendName = 'sodium-native' | 'libsodium-wrappers'

export interface SodiumBackend {
  readonly name: BackendName
  randomBytes (n: number): Uint8Array
  /** crypto_kdf_derive_from_key (BLAKE2b); context is exactly 8 ASCII chars */
  kdfDerive (key: Uint8Array, subkeyId: number, context: string, length: number): Uint8Array
  /** XChaCha20-Poly1305-IETF; returns ciphertext || tag(16) */
  aeadEncrypt (plaintext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array
  /** The same, written into `out` (exactly plaintext length + 16 bytes; must not overlap the plaintext): no allocation on the hot path. */
  aeadEncryptInto (out: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): void
  /** throws UnauthenticatedError when the tag does not verify */
  aeadDecrypt (ciphertext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array
  /** Ed25519 */
  signKeypairFromSeed (seed: Uint8Array): KeyPair
  /** detached, 64 bytes */
  sign (message: Uint8Array, secretKey: Uint8Array): Uint8Array
  verify (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
  /** X25519 (crypto_box_seed_keypair) */
  boxKeypairFromSeed (seed: Uint8Array): KeyPair
  /** crypto_box_seal, +48 bytes */
  seal (message: Uint8Array, publicKey: Uint8Array): Uint8Array
  /** throws UnauthenticatedError */
  sealOpen (ciphertext: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array
  /** Argon2id v1.3 (crypto_pwhash ALG_ARGON2ID13) */
  pwhash (length: number, passphrase: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number): Uint8Array
  /**
   * The same Argon2id, the same bytes, off the main thread where the binding can (sodium-native: on
   * libuv's thread pool, started before this returns); the WASM backend derives synchronously and
   * returns a settled promise.
   */
  pwhashAsync (length: number, passphrase: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number): Promise<Uint8Array>
}

/**
 * What each binding must provide. Arguments are already validated; `aeadDecrypt` and `sealOpen`
 * return null instead of throwing when the data does not authenticate.
 */
export interface RawSodium {
  readonly name: BackendName
  randomBytes (n: number): Uint8Array
  kdfDerive (key: Uint8Array, subkeyId: number, context: string, length: number): Uint8Array
  aeadEncrypt (plaintext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array
  aeadEncryptInto (out: Uint8Array, plaintext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): void
  aeadDecrypt (ciphertext: Uint8Array, ad: Uint8Array | null, nonce: Uint8Array, key: Uint8Array): Uint8Array | null
  signKeypairFromSeed (seed: Uint8Array): KeyPair
  sign (message: Uint8Array, secretKey: Uint8Array): Uint8Array
  verify (signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
  boxKeypairFromSeed (seed: Uint8Array): KeyPair
  seal (message: Uint8Array, publicKey: Uint8Array): Uint8Array
  sealOpen (ciphertext: Uint8Array, publicKey: Uint8Array, secretKey: Uint8Array): Uint8Array | null
  pwhash (length: number, passphrase: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number): Uint8Array
  /** absent when the binding has no asynchronous Argon2id: `pwhash` is used instead */
  pwhashAsync?: (length: number, passphrase: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number) => Promise<Uint8Array>
}

function needLength (bytes: Uint8Array, n: number, what: string): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`)
  if (bytes.byteLength !== n) throw new RangeError(`${what} must be ${n} bytes, got ${bytes.byteLength}`)
}

function needInt (v: number, min: number, max: number, what: string): void {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${v}`)
}

function needBytes (bytes: Uint8Array | null, what: string): void {
  if (bytes !== null && !(bytes instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`)
}

const KDF_CONTEXT = /^[\x20-\x7e]{8}$/

function checkPwhash (length: number, passphrase: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number): void {
  needInt(length, PWHASH_OUT_MIN, 0xffffffff, 'pwhash output length')
  needBytes(passphrase, 'passphrase')
  needLength(salt, PWHASH_SALT_BYTES, 'pwhash salt')
  needInt(opslimit, PWHASH_OPS_MIN, PWHASH_OPS_MAX, 'pwhash opslimit')
  needInt(memlimit, PWHASH_MEM_MIN, PWHASH_MEM_MAX, 'pwhash memlimit')
}

/** Wraps a binding with the argument checks and error mapping both backends share. */
export function checkedBackend (raw: RawSodium): SodiumBackend {
  return {
    name: raw.name,
    randomBytes (n) {
      needInt(n, 0, 2 ** 31 - 1, 'randomBytes length')
      return raw.randomBytes(n)
    },
    kdfDerive (key, subkeyId, context, length) {
      needLength(key, KEY_BYTES, 'kdf master key')
      needInt(subkeyId, 0, Number.MAX_SAFE_INTEGER, 'kdf subkey id')
      if (!KDF_CONTEXT.test(context)) throw new RangeError(`kdf context must be exactly 8 printable ASCII characters, got ${JSON.stringify(context)}`)
      needInt(length, KDF_SUBKEY_MIN, KDF_SUBKEY_MAX, 'kdf subkey length')
      return raw.kdfDerive(key, subkeyId, context, length)
    },
    aeadEncrypt (plaintext, ad, nonce, key) {
      needBytes(plaintext, 'plaintext')
      needBytes(ad, 'associated data')
      needLength(nonce, AEAD_NONCE_BYTES, 'AEAD nonce')
      needLength(key, KEY_BYTES, 'AEAD key')
      return raw.aeadEncrypt(plaintext, ad, nonce, key)
    },
    aeadEncryptInto (out, plaintext, ad, nonce, key) {
      needBytes(plaintext, 'plaintext')
      needBytes(ad, 'associated data')
      needLength(nonce, AEAD_NONCE_BYTES, 'AEAD nonce')
      needLength(key, KEY_BYTES, 'AEAD key')
      needLength(out, plaintext.byteLength + AEAD_TAG_BYTES, 'AEAD output')
      if (out.buffer === plaintext.buffer && out.byteOffset < plaintext.byteOffset + plaintext.byteLength && plaintext.byteOffset < out.byteOffset + out.byteLength) {
        throw new RangeError('AEAD output must not overlap the plaintext')
      }
      raw.aeadEncryptInto(out, plaintext, ad, nonce, key)
    },
    aeadDecrypt (ciphertext, ad, nonce, key) {
      needBytes(ciphertext, 'ciphertext')
      needBytes(ad, 'associated data')
      needLength(nonce, AEAD_NONCE_BYTES, 'AEAD nonce')
      needLength(key, KEY_BYTES, 'AEAD key')
      const plain = ciphertext.byteLength < AEAD_TAG_BYTES ? null : raw.aeadDecrypt(ciphertext, ad, nonce, key)
      if (plain === null) throw new UnauthenticatedError('decryption failed: the data was altered or belongs to another key')
      return plain
    },
    signKeypairFromSeed (seed) {
      needLength(seed, SEED_BYTES, 'Ed25519 seed')
      return raw.signKeypairFromSeed(seed)
    },
    sign (message, secretKey) {
      needBytes(message, 'message')
      needLength(secretKey, SIGN_SECRET_KEY_BYTES, 'Ed25519 secret key')
      return raw.sign(message, secretKey)
    },
    verify (signature, message, publicKey) {
      needBytes(message, 'message')
      if (!(signature instanceof Uint8Array) || signature.byteLength !== SIGNATURE_BYTES) return false
      if (!(publicKey instanceof Uint8Array) || publicKey.byteLength !== SIGN_PUBLIC_KEY_BYTES) return false
      return raw.verify(signature, message, publicKey)
    },
    boxKeypairFromSeed (seed) {
      needLength(seed, SEED_BYTES, 'X25519 seed')
      return raw.boxKeypairFromSeed(seed)
    },
    seal (message, publicKey) {
      needBytes(message, 'message')
      needLength(publicKey, BOX_PUBLIC_KEY_BYTES, 'X25519 public key')
      return raw.seal(message, publicKey)
    },
    sealOpen (ciphertext, publicKey, secretKey) {
      needBytes(ciphertext, 'sealed box')
      needLength(publicKey, BOX_PUBLIC_KEY_BYTES, 'X25519 public key')
      needLength(secretKey, BOX_SECRET_KEY_BYTES, 'X25519 secret key')
      const plain = ciphertext.byteLength < SEAL_OVERHEAD ? null : raw.sealOpen(ciphertext, publicKey, secretKey)
      if (plain === null) throw new UnauthenticatedError('sealed box does not open: it was altered or sealed to another key')
      return plain
    },
    pwhash (length, passphrase, salt, opslimit, memlimit) {
      checkPwhash(length, passphrase, salt, opslimit, memlimit)
      return raw.pwhash(length, passphrase, salt, opslimit, memlimit)
    },
    // async: a bad argument becomes a rejection; the binding's work starts before the first await
    async pwhashAsync (length, passphrase, salt, opslimit, memlimit) {
      checkPwhash(length, passphrase, salt, opslimit, memlimit)
      if (raw.pwhashAsync === undefined) return raw.pwhash(length, passphrase, salt, opslimit, memlimit)
      return await raw.pwhashAsync(length, passphrase, salt, opslimit, memlimit)
    }
  }
}
