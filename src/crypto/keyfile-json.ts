/**
 * The key file's JSON shape (version 1) and its strict validation. Anything malformed is a
 * FormatError; a version newer than 1 is a StoreVersionError. Unknown extra fields are ignored.
 */
import { FormatError, StoreVersionError } from '../errors.js'
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, PWHASH_SALT_BYTES, SEED_BYTES } from './constants.js'

export const KEY_FILE_FORMAT = 'p2pbak-key'
export const KEY_FILE_VERSION = 1
/** Limits a reader enforces on a key file's Argon2id parameters (a damaged number must not hang it). */
export const KEY_FILE_OPS_MIN = 1
export const KEY_FILE_OPS_MAX = 64
export const KEY_FILE_MEM_MIN = 8192
export const KEY_FILE_MEM_MAX = 2 ** 30
const MAX_TEXT = 64 * 1024

export interface KeyFileKdf {
  readonly algorithm: 'argon2id13'
  readonly opslimit: number
  /** bytes; a multiple of 1024 */
  readonly memlimit: number
  /** base64, 16 bytes */
  readonly salt: string
}

interface KeyFileCommon {
  readonly format: typeof KEY_FILE_FORMAT
  readonly version: 1
  /** lowercase hex of the Ed25519 public key the seed derives; checked on open */
  readonly userId: string
}

/** Seed encrypted with XChaCha20-Poly1305 under an Argon2id key derived from the passphrase. */
export interface EncryptedKeyFile extends KeyFileCommon {
  readonly kdf: KeyFileKdf
  /** base64, 24 bytes */
  readonly nonce: string
  /** base64, 48 bytes: encrypted seed (32) || tag (16) */
  readonly ciphertext: string
}

/** Seed in clear: no passphrase was set. */
export interface ClearKeyFile extends KeyFileCommon {
  readonly kdf: null
  /** base64, 32 bytes */
  readonly seed: string
}

/** JSON-serializable key file (`JSON.stringify` it to save). */
export type KeyFile = EncryptedKeyFile | ClearKeyFile

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

export function encodeBase64 (bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

/** Strict RFC 4648 base64 with padding, of exactly `length` bytes. */
export function decodeBase64 (text: string, length: number, what: string): Uint8Array {
  if (!BASE64.test(text)) throw new FormatError(`key file: ${what} is not base64`)
  const bytes = new Uint8Array(Buffer.from(text, 'base64'))
  if (bytes.byteLength !== length) throw new FormatError(`key file: ${what} must be ${length} bytes, got ${bytes.byteLength}`)
  if (encodeBase64(bytes) !== text) throw new FormatError(`key file: ${what} is not canonical base64`)
  return bytes
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function field (obj: Record<string, unknown>, name: string): unknown {
  if (!Object.prototype.hasOwnProperty.call(obj, name)) throw new FormatError(`key file: missing field "${name}"`)
  return obj[name]
}

function str (obj: Record<string, unknown>, name: string): string {
  const v = field(obj, name)
  if (typeof v !== 'string') throw new FormatError(`key file: "${name}" must be a string`)
  return v
}

function int (obj: Record<string, unknown>, name: string, min: number, max: number): number {
  const v = field(obj, name)
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new FormatError(`key file: "${name}" must be an integer in [${min}, ${max}]`)
  }
  return v
}

/** Validates a key file's `kdf` object (also used by the write-only key file, docs/format/keys.md §11). */
export function checkKdf (v: unknown): KeyFileKdf {
  if (!isRecord(v)) throw new FormatError('key file: "kdf" must be an object or null')
  const algorithm = str(v, 'algorithm')
  if (algorithm !== 'argon2id13') throw new FormatError(`key file: unknown kdf algorithm "${algorithm.slice(0, 32)}"`)
  const opslimit = int(v, 'opslimit', KEY_FILE_OPS_MIN, KEY_FILE_OPS_MAX)
  const memlimit = int(v, 'memlimit', KEY_FILE_MEM_MIN, KEY_FILE_MEM_MAX)
  if (memlimit % 1024 !== 0) throw new FormatError('key file: "memlimit" must be a multiple of 1024')
  const salt = str(v, 'salt')
  decodeBase64(salt, PWHASH_SALT_BYTES, 'salt')
  return { algorithm, opslimit, memlimit, salt }
}

/** Validates an already-parsed value and returns a clean, frozen copy holding only known fields. */
export function validateKeyFile (value: unknown): KeyFile {
  if (!isRecord(value)) throw new FormatError('key file: not a JSON object')
  if (field(value, 'format') !== KEY_FILE_FORMAT) throw new FormatError(`key file: "format" must be "${KEY_FILE_FORMAT}"`)
  const version = field(value, 'version')
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new FormatError('key file: "version" must be a positive integer')
  }
  if (version > KEY_FILE_VERSION) {
    throw new StoreVersionError(`key file version ${version} is newer than this p2pbak understands (${KEY_FILE_VERSION}); upgrade p2pbak`)
  }
  const userId = str(value, 'userId')
  if (!/^[0-9a-f]{64}$/.test(userId)) throw new FormatError('key file: "userId" must be 64 lowercase hex characters')
  const kdf = field(value, 'kdf')
  if (kdf === null) {
    const seed = str(value, 'seed')
    decodeBase64(seed, SEED_BYTES, 'seed')
    return Object.freeze({ format: KEY_FILE_FORMAT, version: KEY_FILE_VERSION, userId, kdf: null, seed })
  }
  const checkedKdf = Object.freeze(checkKdf(kdf))
  const nonce = str(value, 'nonce')
  decodeBase64(nonce, AEAD_NONCE_BYTES, 'nonce')
  const ciphertext = str(value, 'ciphertext')
  decodeBase64(ciphertext, SEED_BYTES + AEAD_TAG_BYTES, 'ciphertext')
  return Object.freeze({ format: KEY_FILE_FORMAT, version: KEY_FILE_VERSION, userId, kdf: checkedKdf, nonce, ciphertext })
}

/** Parse + validate JSON text into a KeyFile (FormatError on anything malformed). */
export function parseKeyFile (text: string): KeyFile {
  if (typeof text !== 'string') throw new FormatError('key file: not text')
  if (text.length > MAX_TEXT) throw new FormatError(`key file: larger than ${MAX_TEXT} characters`)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new FormatError('key file: not valid JSON')
  }
  return validateKeyFile(value)
}
