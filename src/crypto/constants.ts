/** Sizes of every key, nonce and tag p2pbak's crypto uses (all in bytes). */

/** Symmetric keys (AEAD, dedup, chunker), the master seed and KDF master keys. */
export const KEY_BYTES = 32
/** XChaCha20-Poly1305-IETF public nonce. */
export const AEAD_NONCE_BYTES = 24
/** Poly1305 tag appended to every AEAD ciphertext. */
export const AEAD_TAG_BYTES = 16
/** crypto_box_seal: 32-byte ephemeral public key + 16-byte tag. */
export const SEAL_OVERHEAD = 48
/** Detached Ed25519 signature. */
export const SIGNATURE_BYTES = 64

/** The master seed (and the BIP39 entropy of the recovery phrase). */
export const SEED_BYTES = 32
export const SIGN_PUBLIC_KEY_BYTES = 32
/** libsodium's Ed25519 secret key: the 32-byte seed followed by the 32-byte public key. */
export const SIGN_SECRET_KEY_BYTES = 64
export const BOX_PUBLIC_KEY_BYTES = 32
export const BOX_SECRET_KEY_BYTES = 32

/** crypto_kdf: the context is exactly 8 bytes; subkeys are 16..64 bytes. */
export const KDF_CONTEXT_BYTES = 8
export const KDF_SUBKEY_MIN = 16
export const KDF_SUBKEY_MAX = 64

/** crypto_pwhash (Argon2id v1.3) limits, identical for both backends. */
export const PWHASH_SALT_BYTES = 16
export const PWHASH_OUT_MIN = 16
export const PWHASH_OPS_MIN = 1
export const PWHASH_OPS_MAX = 0xffffffff
export const PWHASH_MEM_MIN = 8192
/** The WASM build cannot address more; the native build allows more but we keep both identical. */
export const PWHASH_MEM_MAX = 2 ** 31
