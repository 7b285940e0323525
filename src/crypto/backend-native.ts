/** The default backend: libsodium through the native `sodium-native` binding (about 1.46 GB/s AEAD). */
import sodium from 'sodium-native'
import type { KeyPair, RawSodium } from './backend.js'
import {
  AEAD_TAG_BYTES, BOX_PUBLIC_KEY_BYTES, BOX_SECRET_KEY_BYTES, SEAL_OVERHEAD, SIGNATURE_BYTES,
  SIGN_PUBLIC_KEY_BYTES, SIGN_SECRET_KEY_BYTES
} from './constants.js'

const ascii = new TextEncoder()

export function nativeSodium (): RawSodium {
  return {
    name: 'sodium-native',
    randomBytes (n) {
      const out = new Uint8Array(n)
      if (n > 0) sodium.randombytes_buf(out)
      return out
    },
    kdfDerive (key, subkeyId, context, length) {
      const out = new Uint8Array(length)
      sodium.crypto_kdf_derive_from_key(out, subkeyId, ascii.encode(context), key)
      return out
    },
    aeadEncrypt (plaintext, ad, nonce, key) {
      const out = new Uint8Array(plaintext.byteLength + AEAD_TAG_BYTES)
      sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, ad, null, nonce, key)
      return out
    },
    aeadEncryptInto (out, plaintext, ad, nonce, key) {
      sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(out, plaintext, ad, null, nonce, key)
    },
    aeadDecrypt (ciphertext, ad, nonce, key) {
      const out = new Uint8Array(ciphertext.byteLength - AEAD_TAG_BYTES)
      try {
        sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(out, null, ciphertext, ad, nonce, key)
      } catch {
        return null // every argument was validated: the only failure left is the tag
      }
      return out
    },
    signKeypairFromSeed (seed): KeyPair {
      const publicKey = new Uint8Array(SIGN_PUBLIC_KEY_BYTES)
      const secretKey = new Uint8Array(SIGN_SECRET_KEY_BYTES)
      sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed)
      return { publicKey, secretKey }
    },
    sign (message, secretKey) {
      const sig = new Uint8Array(SIGNATURE_BYTES)
      sodium.crypto_sign_detached(sig, message, secretKey)
      return sig
    },
    verify (signature, message, publicKey) {
      return sodium.crypto_sign_verify_detached(signature, message, publicKey)
    },
    boxKeypairFromSeed (seed): KeyPair {
      const publicKey = new Uint8Array(BOX_PUBLIC_KEY_BYTES)
      const secretKey = new Uint8Array(BOX_SECRET_KEY_BYTES)
      sodium.crypto_box_seed_keypair(publicKey, secretKey, seed)
      return { publicKey, secretKey }
    },
    seal (message, publicKey) {
      const out = new Uint8Array(message.byteLength + SEAL_OVERHEAD)
      sodium.crypto_box_seal(out, message, publicKey)
      return out
    },
    sealOpen (ciphertext, publicKey, secretKey) {
      const out = new Uint8Array(ciphertext.byteLength - SEAL_OVERHEAD)
      return sodium.crypto_box_seal_open(out, ciphertext, publicKey, secretKey) ? out : null
    },
    pwhash (length, passphrase, salt, opslimit, memlimit) {
      const out = new Uint8Array(length)
      sodium.crypto_pwhash(out, passphrase, salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13)
      return out
    },
    async pwhashAsync (length, passphrase, salt, opslimit, memlimit) {
      const out = new Uint8Array(length)
      // queued on libuv's thread pool before the first await: the main thread goes on (loading modules, say)
      await sodium.crypto_pwhash_async(out, passphrase, salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13)
      return out
    }
  }
}
