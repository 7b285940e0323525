/**
 * `HOME/device.key` sealed at rest (docs/format/keys.md §12): the device's libp2p private key,
 * encrypted with XChaCha20-Poly1305 under a subkey of the master seed (id 6) and bound to the user
 * and the peer id, so the file alone is useless (issue 11, finding 3: a stolen device.key let a thief
 * connect as the device). Pure: the caller reads and writes the file and decodes the key bytes.
 */
import { FormatError, StoreVersionError, UnauthenticatedError } from '../errors.js'
import { utf8Encode } from '../util/bytes.js'
import type { SodiumBackend } from './backend.js'
import { AEAD_NONCE_BYTES, AEAD_TAG_BYTES, KEY_BYTES, SEED_BYTES } from './constants.js'
import { IDENTITY_KDF_CONTEXT, SubkeyId } from './identity.js'
import { decodeBase64, encodeBase64 } from './keyfile-json.js'

export const DEVICE_KEY_FILE_FORMAT = 'p2pbak-device-key'
export const DEVICE_KEY_FILE_VERSION = 1
/** Largest sealed key a reader accepts (an Ed25519 key in libp2p's protobuf is 68 bytes). */
const MAX_KEY_BYTES = 1024
const MAX_TEXT = 8 * 1024
const HEX64 = /^[0-9a-f]{64}$/
/** A base58btc peer id, as libp2p prints it. */
const PEER_ID = /^[1-9A-HJ-NP-Za-km-z]{16,128}$/

/** The JSON of a sealed device.key. */
export interface DeviceKeyFile {
  readonly format: typeof DEVICE_KEY_FILE_FORMAT
  readonly version: 1
  /** the owner's user id: the seed whose subkey 6 opens the file */
  readonly userId: string
  /** the peer id of the sealed key; checked by the reader once decrypted */
  readonly peerId: string
  /** base64, 24 bytes */
  readonly nonce: string
  /** base64: the key's libp2p protobuf encoding, encrypted, with its 16-byte tag */
  readonly ciphertext: string
}

/** The 32-byte key that seals device.key: `crypto_kdf` subkey 6 of the master seed. */
export function deriveDeviceKeyWrap (backend: SodiumBackend, seed: Uint8Array): Uint8Array {
  if (!(seed instanceof Uint8Array) || seed.byteLength !== SEED_BYTES) throw new RangeError(`master seed must be ${SEED_BYTES} bytes`)
  return backend.kdfDerive(seed, SubkeyId.deviceKeyWrap, IDENTITY_KDF_CONTEXT, KEY_BYTES)
}

function associatedData (userId: string, peerId: string): Uint8Array {
  return utf8Encode(`${DEVICE_KEY_FILE_FORMAT}:${DEVICE_KEY_FILE_VERSION}:${userId}:${peerId}`)
}

/** True when the bytes of a device.key are the sealed JSON form (a clear one is libp2p protobuf, never `{`). */
export function isSealedDeviceKey (bytes: Uint8Array): boolean {
  for (const b of bytes) {
    if (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) continue
    return b === 0x7b
  }
  return false
}

/** The sealed device.key text for `keyBytes` (libp2p protobuf of the key whose peer id is `peerId`). */
export function sealDeviceKey (backend: SodiumBackend, wrapKey: Uint8Array, userId: string, peerId: string, keyBytes: Uint8Array): string {
  if (!HEX64.test(userId)) throw new RangeError('a user id is 64 lowercase hex characters')
  if (!PEER_ID.test(peerId)) throw new RangeError('a peer id is base58btc text')
  if (keyBytes.byteLength < 1 || keyBytes.byteLength > MAX_KEY_BYTES) throw new RangeError(`a device key is 1..${MAX_KEY_BYTES} bytes`)
  const nonce = backend.randomBytes(AEAD_NONCE_BYTES)
  const ciphertext = backend.aeadEncrypt(keyBytes, associatedData(userId, peerId), nonce, wrapKey)
  const file: DeviceKeyFile = { format: DEVICE_KEY_FILE_FORMAT, version: DEVICE_KEY_FILE_VERSION, userId, peerId, nonce: encodeBase64(nonce), ciphertext: encodeBase64(ciphertext) }
  return JSON.stringify(file, null, 2) + '\n'
}

/**
 * The key bytes and their claimed peer id (the caller checks that the key gives it). FormatError or
 * StoreVersionError for a malformed or newer file; UnauthenticatedError when it does not open with
 * this user's key (another user's file, or altered).
 */
export function openDeviceKey (backend: SodiumBackend, wrapKey: Uint8Array, userId: string, bytes: Uint8Array): { peerId: string, keyBytes: Uint8Array } {
  if (bytes.byteLength > MAX_TEXT) throw new FormatError(`device.key: ${bytes.byteLength} bytes is too large for a sealed device key`)
  let raw: unknown
  try { raw = JSON.parse(Buffer.from(bytes).toString('utf8')) } catch (err: unknown) { throw new FormatError('device.key is not valid JSON', { cause: err }) }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new FormatError('device.key: the top level is not an object')
  const f = raw as Record<string, unknown>
  if (f.format !== DEVICE_KEY_FILE_FORMAT) throw new FormatError(`device.key: format is not "${DEVICE_KEY_FILE_FORMAT}"`)
  if (typeof f.version !== 'number' || !Number.isInteger(f.version) || f.version < 1) throw new FormatError('device.key: version is not a positive integer')
  if (f.version > DEVICE_KEY_FILE_VERSION) throw new StoreVersionError(`device.key has version ${f.version}, written by a newer p2pbak; upgrade p2pbak`)
  if (typeof f.userId !== 'string' || !HEX64.test(f.userId)) throw new FormatError('device.key: userId is not 64 lowercase hex characters')
  if (typeof f.peerId !== 'string' || !PEER_ID.test(f.peerId)) throw new FormatError('device.key: peerId is not a peer id')
  if (typeof f.nonce !== 'string' || typeof f.ciphertext !== 'string') throw new FormatError('device.key: nonce and ciphertext must be base64 strings')
  const nonce = decodeBase64(f.nonce, AEAD_NONCE_BYTES, 'nonce')
  const length = Buffer.from(f.ciphertext, 'base64').byteLength
  if (length <= AEAD_TAG_BYTES || length > MAX_KEY_BYTES + AEAD_TAG_BYTES) throw new FormatError('device.key: the ciphertext has an impossible length')
  const ciphertext = decodeBase64(f.ciphertext, length, 'ciphertext')
  if (f.userId !== userId) throw new UnauthenticatedError(`device.key belongs to user ${f.userId.slice(0, 8)}, this home to ${userId.slice(0, 8)}`)
  const keyBytes = backend.aeadDecrypt(ciphertext, associatedData(userId, f.peerId), nonce, wrapKey)
  return { peerId: f.peerId, keyBytes }
}
