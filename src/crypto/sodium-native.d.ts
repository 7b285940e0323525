/**
 * Types for the few sodium-native 5.1.0 functions p2pbak calls (the package ships none, and
 * @types/sodium-native describes an older API). sodium-native writes every result into a
 * caller-provided typed array; functions throw on bad sizes or a failed libsodium call, except
 * the two verify-style calls, which return a boolean.
 */
declare module 'sodium-native' {
  interface SodiumNative {
    readonly crypto_pwhash_ALG_ARGON2ID13: number

    randombytes_buf (buffer: Uint8Array): void

    /** `ctx` must be exactly crypto_kdf_CONTEXTBYTES (8) bytes; subkey 16..64 bytes; key 32 bytes. */
    crypto_kdf_derive_from_key (subkey: Uint8Array, subkeyId: number, ctx: Uint8Array, key: Uint8Array): void

    /** `c` must be m.byteLength + 16 bytes; `nsec` must be null. Returns the ciphertext length. */
    crypto_aead_xchacha20poly1305_ietf_encrypt (
      c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array
    ): number
    /** `m` must be c.byteLength - 16 bytes. Throws when the tag does not verify. */
    crypto_aead_xchacha20poly1305_ietf_decrypt (
      m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array
    ): number

    crypto_sign_seed_keypair (pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void
    crypto_sign_detached (sig: Uint8Array, m: Uint8Array, sk: Uint8Array): void
    crypto_sign_verify_detached (sig: Uint8Array, m: Uint8Array, pk: Uint8Array): boolean

    crypto_box_seed_keypair (pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void
    /** `c` must be m.byteLength + 48 bytes. */
    crypto_box_seal (c: Uint8Array, m: Uint8Array, pk: Uint8Array): void
    /** `m` must be c.byteLength - 48 bytes. Returns false when the box does not open. */
    crypto_box_seal_open (m: Uint8Array, c: Uint8Array, pk: Uint8Array, sk: Uint8Array): boolean

    crypto_pwhash (
      out: Uint8Array, passwd: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number, alg: number
    ): void
    /** The same on libuv's thread pool: the promise settles when `out` holds the hash (rejects on a failed call). */
    crypto_pwhash_async (
      out: Uint8Array, passwd: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number, alg: number
    ): Promise<void>
  }
  const sodium: SodiumNative
  export default sodium
}
