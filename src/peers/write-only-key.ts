/**
 * The write-only key file (docs/format/keys.md §11): what a write-only machine holds instead of the
 * master seed. It is made on the owner's full machine (`p2pbak export-write-only-key`) or from the
 * phrase (`init --write-only --from-phrase-file`), and carries
 *
 *   public:  userId, boxPublicKey, the machine's device certificate (version 2, writeOnly: true)
 *   secret:  dedupKey (32) || chunkerKey (32) || device seed (32) || gc view seed (32, version 2)
 *
 * where the device seed is the Ed25519 seed of the machine's libp2p key (its peer id is the
 * certificate's), and the gc view seed (subkey 5) opens the condemnation records, so the machine
 * looks before it commits a snapshot as full devices do (docs/gc.md §6.3). A version 1 file (no gc
 * view seed) is still read: that machine cannot look, and says so. The secret part is encrypted under a passphrase exactly as the key file's seed is
 * (Argon2id + XChaCha20-Poly1305), or stored in clear. No secret key of the user is ever in it.
 */
import {
  checkKdf, decodeKeyFileBase64, encodeKeyFileBase64, gcViewKeys, openWithPassphrase, sealWithPassphrase,
  type GcViewKeys, type Identity, type KdfParams, type KeyFileKdf, type SodiumBackend
} from '../crypto/index.js'
import { FormatError, InvalidArgumentError, StoreVersionError } from '../errors.js'
import { fromHex, utf8Encode } from '../util/bytes.js'
import { isWriteOnlyCert, issueDeviceCert, parseDeviceCert, verifyDeviceCert, type DeviceCert } from './device-cert.js'
import { peerIdOfEd25519 } from './peer-key.js'

export const WRITE_ONLY_KEY_FORMAT = 'p2pbak-write-only-key'
export const WRITE_ONLY_KEY_VERSION = 2
/** The secret part's length in each version: version 2 adds the gc view seed. */
const SECRET_BYTES: Readonly<Record<number, number>> = { 1: 96, 2: 128 }
const MAX_TEXT = 64 * 1024

export interface WriteOnlyKeyFile {
  format: typeof WRITE_ONLY_KEY_FORMAT
  /** 2 is written; 1 (no gc view seed) is still read */
  version: 1 | 2
  userId: string
  /** base64, 32 bytes: pack keys and records are sealed to it */
  boxPublicKey: string
  deviceCert: DeviceCert
  kdf: KeyFileKdf | null
  /** kdf null: base64 of the secret bytes (96 in version 1, 128 in version 2) */
  secrets?: string
  /** kdf set: base64, 24 bytes */
  nonce?: string
  /** kdf set: base64, the secret bytes + a 16-byte tag */
  ciphertext?: string
}

/** What a write-only machine works with once its key file is open. */
export interface WriteOnlyKey {
  /** public keys, dedup and chunker keys, the gc view keys (null from a version 1 file); both secret keys null */
  identity: Identity
  deviceCert: DeviceCert
  /** the Ed25519 seed of the device (libp2p) key: it signs this machine's snapshot records */
  deviceSeed: Uint8Array
}

function associatedData (version: number, userId: string, peerId: string): Uint8Array {
  return utf8Encode(`${WRITE_ONLY_KEY_FORMAT}:${version}:${userId}:${peerId}`)
}

function secretBytes (version: number): number {
  const n = SECRET_BYTES[version]
  if (n === undefined) throw new StoreVersionError(`write-only key file version ${version} is not one this p2pbak understands (1 to ${WRITE_ONLY_KEY_VERSION}); upgrade p2pbak`)
  return n
}

/**
 * Makes the key file of a new write-only machine from the owner's full identity: a fresh device key,
 * a version 2 certificate for it signed by the owner, and the keys writing needs.
 */
export function createWriteOnlyKey (
  sodium: SodiumBackend, owner: Identity, name: string, now: number, passphrase: string | null, kdf?: KdfParams
): { file: WriteOnlyKeyFile, key: WriteOnlyKey } {
  if (owner.signSecretKey === null || owner.boxSecretKey === null || owner.gcView === null) throw new InvalidArgumentError('a write-only key is made from the full identity (the recovery phrase or a full machine), not from another write-only key')
  const deviceSeed = sodium.randomBytes(32)
  const peerId = peerIdOfEd25519(sodium.signKeypairFromSeed(deviceSeed).publicKey)
  const deviceCert = issueDeviceCert(sodium, owner, peerId, name, now, { writeOnly: true })
  const secret = new Uint8Array(secretBytes(WRITE_ONLY_KEY_VERSION))
  secret.set(owner.dedupKey, 0)
  secret.set(owner.chunkerKey, 32)
  secret.set(deviceSeed, 64)
  secret.set(owner.gcView.seed, 96)
  const base = { format: WRITE_ONLY_KEY_FORMAT, version: WRITE_ONLY_KEY_VERSION, userId: owner.userId, boxPublicKey: encodeKeyFileBase64(owner.boxPublicKey), deviceCert } as const
  const file: WriteOnlyKeyFile = passphrase === null
    ? { ...base, kdf: null, secrets: encodeKeyFileBase64(secret) }
    : { ...base, ...sealWithPassphrase(sodium, secret, associatedData(WRITE_ONLY_KEY_VERSION, owner.userId, peerId), passphrase, kdf) }
  return { file, key: { identity: writeOnlyIdentityOf(owner.userId, owner.boxPublicKey, owner.dedupKey, owner.chunkerKey, owner.gcView), deviceCert, deviceSeed } }
}

function writeOnlyIdentityOf (userId: string, boxPublicKey: Uint8Array, dedupKey: Uint8Array, chunkerKey: Uint8Array, gcView: GcViewKeys | null): Identity {
  return Object.freeze({ userId, signPublicKey: fromHex(userId), signSecretKey: null, boxPublicKey, boxSecretKey: null, dedupKey, chunkerKey, gcView })
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function str (o: Record<string, unknown>, name: string): string {
  const v = o[name]
  if (typeof v !== 'string') throw new FormatError(`write-only key file: "${name}" must be a string`)
  return v
}

/** True when `text` looks like a write-only key file (its `format`), so a home can tell the two kinds apart. */
export function isWriteOnlyKeyText (text: string): boolean {
  try {
    const v: unknown = JSON.parse(text)
    return isRecord(v) && v.format === WRITE_ONLY_KEY_FORMAT
  } catch {
    return false // not JSON: the caller's own parser reports it
  }
}

/** Strict validation (FormatError; StoreVersionError for a newer version). Signatures are checked on open. */
export function parseWriteOnlyKey (text: string): WriteOnlyKeyFile {
  if (typeof text !== 'string' || text.length > MAX_TEXT) throw new FormatError(`write-only key file: not text of at most ${MAX_TEXT} characters`)
  let v: unknown
  try { v = JSON.parse(text) } catch { throw new FormatError('write-only key file: not valid JSON') }
  if (!isRecord(v)) throw new FormatError('write-only key file: not a JSON object')
  if (v.format !== WRITE_ONLY_KEY_FORMAT) throw new FormatError(`write-only key file: "format" must be "${WRITE_ONLY_KEY_FORMAT}"`)
  const version = v.version
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) throw new FormatError('write-only key file: "version" must be a positive integer')
  if (version > WRITE_ONLY_KEY_VERSION) throw new StoreVersionError(`write-only key file version ${version} is newer than this p2pbak understands (${WRITE_ONLY_KEY_VERSION}); upgrade p2pbak`)
  const userId = str(v, 'userId')
  if (!/^[0-9a-f]{64}$/.test(userId)) throw new FormatError('write-only key file: "userId" must be 64 lowercase hex characters')
  const boxPublicKey = str(v, 'boxPublicKey')
  decodeKeyFileBase64(boxPublicKey, 32, 'boxPublicKey')
  const deviceCert = parseDeviceCert(v.deviceCert, 'write-only key file: deviceCert')
  if (!isWriteOnlyCert(deviceCert) || deviceCert.userId !== userId) throw new FormatError('write-only key file: deviceCert must be a write-only certificate of the file\'s user')
  const base = { format: WRITE_ONLY_KEY_FORMAT, version: version as 1 | 2, userId, boxPublicKey, deviceCert } as const
  const size = secretBytes(version)
  if (v.kdf === null) {
    const secrets = str(v, 'secrets')
    decodeKeyFileBase64(secrets, size, 'secrets')
    return { ...base, kdf: null, secrets }
  }
  const kdf = checkKdf(v.kdf)
  const nonce = str(v, 'nonce')
  decodeKeyFileBase64(nonce, 24, 'nonce')
  const ciphertext = str(v, 'ciphertext')
  decodeKeyFileBase64(ciphertext, size + 16, 'ciphertext')
  return { ...base, kdf, nonce, ciphertext }
}

/**
 * Opens a write-only key file: decrypts the secrets (WrongPassphraseError), then checks that the
 * certificate is the owner's signature and names the device key the file holds (FormatError).
 */
export function openWriteOnlyKey (sodium: SodiumBackend, file: WriteOnlyKeyFile, passphrase: string | null): WriteOnlyKey {
  const peerId = file.deviceCert.peerId
  const size = secretBytes(file.version)
  const secret = file.kdf === null
    ? decodeKeyFileBase64(file.secrets ?? '', size, 'secrets')
    : openWithPassphrase(sodium, { kdf: file.kdf, nonce: file.nonce ?? '', ciphertext: file.ciphertext ?? '' }, associatedData(file.version, file.userId, peerId), passphrase, size)
  if (!verifyDeviceCert(sodium, file.deviceCert)) throw new FormatError('write-only key file: the device certificate is not signed by its user (the file was altered)')
  const deviceSeed = secret.slice(64, 96)
  if (peerIdOfEd25519(sodium.signKeypairFromSeed(deviceSeed).publicKey) !== peerId) throw new FormatError('write-only key file is damaged: its device key is not the certified device')
  const gcView = size >= 128 ? gcViewKeys(sodium, secret.slice(96, 128)) : null
  const identity = writeOnlyIdentityOf(file.userId, decodeKeyFileBase64(file.boxPublicKey, 32, 'boxPublicKey'), secret.slice(0, 32), secret.slice(32, 64), gcView)
  return { identity, deviceCert: file.deviceCert, deviceSeed }
}

/** The device's Ed25519 key pair (libsodium layout) from its seed: it signs this machine's records. */
export function deviceSigningKey (sodium: SodiumBackend, key: WriteOnlyKey): { publicKey: Uint8Array, secretKey: Uint8Array } {
  return sodium.signKeypairFromSeed(key.deviceSeed)
}
