/**
 * The key file: the master seed at rest. With a passphrase the seed is encrypted with
 * XChaCha20-Poly1305 under a key derived by Argon2id; without one it is stored in clear. Either
 * way the userId is stored beside it so that a damaged or mismatched file is detected on open.
 */
import { InvalidArgumentError, UnauthenticatedError, WrongPassphraseError, FormatError } from '../errors.js'
import { utf8Encode } from '../util/bytes.js'
import type { SodiumBackend } from './backend.js'
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, KEY_BYTES, PWHASH_SALT_BYTES, SEED_BYTES } from './constants.js'
import { deriveIdentity } from './identity.js'
import {
  KEY_FILE_FORMAT, KEY_FILE_MEM_MAX, KEY_FILE_MEM_MIN, KEY_FILE_OPS_MAX, KEY_FILE_OPS_MIN,
  KEY_FILE_VERSION, decodeBase64, encodeBase64, validateKeyFile
} from './keyfile-json.js'
import type { KeyFile, KeyFileKdf } from './keyfile-json.js'

export interface KdfParams { readonly opslimit: number, readonly memlimit: number }

/** Argon2id, 3 passes over 64 MiB (RFC 9106 second recommendation): memory stays well inside a backup's budget. */
export const DEFAULT_KDF: KdfParams = Object.freeze({ opslimit: 3, memlimit: 64 * 1024 * 1024 })
/** Minimal cost, for tests only (passed explicitly, never a global switch). */
export const TEST_KDF: KdfParams = Object.freeze({ opslimit: 1, memlimit: 8192 })

function associatedData (userId: string): Uint8Array {
  return utf8Encode(`${KEY_FILE_FORMAT}:${KEY_FILE_VERSION}:${userId}`)
}

function passphraseBytes (passphrase: string): Uint8Array {
  return utf8Encode(passphrase.normalize('NFC'))
}

function passphraseKey (backend: SodiumBackend, passphrase: string, kdf: KeyFileKdf): Uint8Array {
  const salt = decodeBase64(kdf.salt, PWHASH_SALT_BYTES, 'salt')
  return backend.pwhash(KEY_BYTES, passphraseBytes(passphrase), salt, kdf.opslimit, kdf.memlimit)
}

function checkKdfParams (kdf: KdfParams): void {
  const ok = (v: number, min: number, max: number): boolean => Number.isSafeInteger(v) && v >= min && v <= max
  if (!ok(kdf.opslimit, KEY_FILE_OPS_MIN, KEY_FILE_OPS_MAX) || !ok(kdf.memlimit, KEY_FILE_MEM_MIN, KEY_FILE_MEM_MAX) || kdf.memlimit % 1024 !== 0) {
    throw new RangeError(`kdf params out of range: opslimit ${KEY_FILE_OPS_MIN}..${KEY_FILE_OPS_MAX}, memlimit ${KEY_FILE_MEM_MIN}..${KEY_FILE_MEM_MAX} in steps of 1024`)
  }
}

export function createKeyFile (backend: SodiumBackend, seed: Uint8Array, passphrase: string | null, kdf: KdfParams = DEFAULT_KDF): KeyFile {
  const { userId } = deriveIdentity(backend, seed)
  if (passphrase === null) {
    return validateKeyFile({ format: KEY_FILE_FORMAT, version: KEY_FILE_VERSION, userId, kdf: null, seed: encodeBase64(seed) })
  }
  if (typeof passphrase !== 'string' || passphrase === '') {
    throw new InvalidArgumentError('the passphrase must not be empty (to store the key without one, choose no passphrase)')
  }
  checkKdfParams(kdf)
  const kdfRecord: KeyFileKdf = {
    algorithm: 'argon2id13',
    opslimit: kdf.opslimit,
    memlimit: kdf.memlimit,
    salt: encodeBase64(backend.randomBytes(PWHASH_SALT_BYTES))
  }
  const key = passphraseKey(backend, passphrase, kdfRecord)
  const nonce = backend.randomBytes(AEAD_NONCE_BYTES)
  const ciphertext = backend.aeadEncrypt(seed, associatedData(userId), nonce, key)
  return validateKeyFile({
    format: KEY_FILE_FORMAT,
    version: KEY_FILE_VERSION,
    userId,
    kdf: kdfRecord,
    nonce: encodeBase64(nonce),
    ciphertext: encodeBase64(ciphertext)
  })
}

/**
 * Returns the seed. Throws WrongPassphraseError if the passphrase is wrong or missing when needed,
 * FormatError/StoreVersionError if the file is malformed/newer. A passphrase given for a file
 * that has none is ignored.
 */
export function openKeyFile (backend: SodiumBackend, file: KeyFile, passphrase: string | null): Uint8Array {
  const checked = checkedForOpen(file, passphrase)
  const key = checked.kdf === null ? null : passphraseKey(backend, passphrase as string, checked.kdf)
  return seedOf(backend, checked, key)
}

/**
 * {@link openKeyFile} with Argon2id off the main thread (sodium-native: libuv's thread pool), started
 * before this returns, so that the caller can load modules meanwhile. Same seed, same errors (as
 * rejections).
 */
export async function openKeyFileAsync (backend: SodiumBackend, file: KeyFile, passphrase: string | null): Promise<Uint8Array> {
  const checked = checkedForOpen(file, passphrase)
  if (checked.kdf === null) return seedOf(backend, checked, null)
  const salt = decodeBase64(checked.kdf.salt, PWHASH_SALT_BYTES, 'salt')
  const key = await backend.pwhashAsync(KEY_BYTES, passphraseBytes(passphrase as string), salt, checked.kdf.opslimit, checked.kdf.memlimit)
  return seedOf(backend, checked, key)
}

/** The validated file; WrongPassphraseError when it needs a passphrase and none was given. */
function checkedForOpen (file: KeyFile, passphrase: string | null): KeyFile {
  const checked = validateKeyFile(file)
  if (checked.kdf !== null && (typeof passphrase !== 'string' || passphrase === '')) {
    throw new WrongPassphraseError('this key file is protected by a passphrase, and none was given')
  }
  return checked
}

/** The seed, decrypted with `key` (null: the file holds it in clear), checked against the file's userId. */
function seedOf (backend: SodiumBackend, checked: KeyFile, key: Uint8Array | null): Uint8Array {
  let seed: Uint8Array
  if (checked.kdf === null) {
    seed = decodeBase64(checked.seed, SEED_BYTES, 'seed')
  } else {
    if (key === null) throw new TypeError('an encrypted key file opens only with the passphrase\'s key')
    const nonce = decodeBase64(checked.nonce, AEAD_NONCE_BYTES, 'nonce')
    const ciphertext = decodeBase64(checked.ciphertext, SEED_BYTES + AEAD_TAG_BYTES, 'ciphertext')
    try {
      seed = backend.aeadDecrypt(ciphertext, associatedData(checked.userId), nonce, key)
    } catch (err: unknown) {
      if (err instanceof UnauthenticatedError) throw new WrongPassphraseError('wrong passphrase (or the key file was altered)', { cause: err })
      throw err
    }
  }
  if (deriveIdentity(backend, seed).userId !== checked.userId) {
    throw new FormatError('key file is damaged: its seed does not belong to its userId')
  }
  return seed
}

export function keyFileNeedsPassphrase (file: KeyFile): boolean {
  return file.kdf !== null
}

/** A secret encrypted under a passphrase: the same scheme as the key file's seed (docs/format/keys.md §8.1). */
export interface PassphraseSealed { kdf: KeyFileKdf, nonce: string, ciphertext: string }

/** Encrypts `secret` with XChaCha20-Poly1305 under Argon2id(passphrase), binding `ad`. */
export function sealWithPassphrase (backend: SodiumBackend, secret: Uint8Array, ad: Uint8Array, passphrase: string, kdf: KdfParams = DEFAULT_KDF): PassphraseSealed {
  if (typeof passphrase !== 'string' || passphrase === '') {
    throw new InvalidArgumentError('the passphrase must not be empty (to store the key without one, choose no passphrase)')
  }
  checkKdfParams(kdf)
  const kdfRecord: KeyFileKdf = { algorithm: 'argon2id13', opslimit: kdf.opslimit, memlimit: kdf.memlimit, salt: encodeBase64(backend.randomBytes(PWHASH_SALT_BYTES)) }
  const nonce = backend.randomBytes(AEAD_NONCE_BYTES)
  const ciphertext = backend.aeadEncrypt(secret, ad, nonce, passphraseKey(backend, passphrase, kdfRecord))
  return { kdf: kdfRecord, nonce: encodeBase64(nonce), ciphertext: encodeBase64(ciphertext) }
}

/** Opens what {@link sealWithPassphrase} made (WrongPassphraseError for a wrong or missing passphrase or altered bytes). */
export function openWithPassphrase (backend: SodiumBackend, sealed: PassphraseSealed, ad: Uint8Array, passphrase: string | null, secretLength: number): Uint8Array {
  if (typeof passphrase !== 'string' || passphrase === '') throw new WrongPassphraseError('this key file is protected by a passphrase, and none was given')
  const nonce = decodeBase64(sealed.nonce, AEAD_NONCE_BYTES, 'nonce')
  const ciphertext = decodeBase64(sealed.ciphertext, secretLength + AEAD_TAG_BYTES, 'ciphertext')
  try {
    return backend.aeadDecrypt(ciphertext, ad, nonce, passphraseKey(backend, passphrase, sealed.kdf))
  } catch (err: unknown) {
    if (err instanceof UnauthenticatedError) throw new WrongPassphraseError('wrong passphrase (or the key file was altered)', { cause: err })
    throw err
  }
}
