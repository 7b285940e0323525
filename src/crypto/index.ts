/**
 * p2pbak's cryptography: the ONLY module that imports libsodium or the BLAKE3 binding.
 * Byte-exact specification: docs/format/keys.md.
 */
export type { KeyPair, SodiumBackend } from './backend.js'
export { KEY_BYTES, AEAD_NONCE_BYTES, AEAD_TAG_BYTES, SEAL_OVERHEAD, SIGNATURE_BYTES } from './constants.js'
export { loadBackend } from './load.js'
export type { GcViewKeys, Identity } from './identity.js'
export { deriveIdentity, gcViewKeys, writeOnlyIdentity } from './identity.js'
// The recovery phrase (seedToPhrase, phraseToSeed) is not exported here: its word list and SHA-256
// (@scure/bip39, @noble/hashes) are imported, as './phrase.js', only by the commands that need them
// (init, recover, init --write-only --from-phrase-file, demo), not by every command.
export { keyedHash, keyedHashFunction, contentHash, contentHasher, type ContentHasher } from './hash.js'
export { deriveGearTable } from './gear.js'
export type { KdfParams, PassphraseSealed } from './keyfile.js'
export { DEFAULT_KDF, TEST_KDF, createKeyFile, openKeyFile, openKeyFileAsync, keyFileNeedsPassphrase, sealWithPassphrase, openWithPassphrase } from './keyfile.js'
export type { KeyFile, KeyFileKdf } from './keyfile-json.js'
export { parseKeyFile, checkKdf, decodeBase64 as decodeKeyFileBase64, encodeBase64 as encodeKeyFileBase64 } from './keyfile-json.js'
export type { DeviceKeyFile } from './device-key-file.js'
export { deriveDeviceKeyWrap, isSealedDeviceKey, openDeviceKey, sealDeviceKey } from './device-key-file.js'
export { SEGMENT_BYTES, MERKLE_HASH_BYTES, segmentCount, segmentLength, leafHash, shareLeaves, merkleRoot, shareRoot, shareRoots, pieceRoots, pathLength, merklePaths, verifyPath, challengeIndexes } from './merkle.js'
