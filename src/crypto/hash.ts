/**
 * BLAKE3 through the native @napi-rs/blake-hash binding (about 3.6-4 GB/s on one core here).
 * Keyed mode is BLAKE3's own `keyed_hash` (Blake3Hasher.newKeyed), checked against the official
 * BLAKE3 test vectors in the unit tests.
 */
import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash'
import { KEY_BYTES } from './constants.js'

export const HASH_BYTES = 32

/**
 * Creating a keyed hasher crosses into native code and costs about 10 us; resetting one costs
 * almost nothing. The last key's hasher is kept (with its own copy of the key, compared on every
 * call, so a caller mutating its key buffer cannot get a stale hasher).
 */
let cachedKey: Buffer | null = null
let cachedHasher: Blake3Hasher | null = null

function plain (digest: Buffer): Uint8Array {
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength)
}

function keyedHasher (key: Uint8Array): Blake3Hasher {
  if (cachedHasher !== null && cachedKey !== null && cachedKey.equals(key)) {
    cachedHasher.reset()
    return cachedHasher
  }
  const copy = Buffer.from(key)
  const hasher = Blake3Hasher.newKeyed(copy)
  cachedKey = copy
  cachedHasher = hasher
  return hasher
}

/** A Buffer view of the same bytes (no copy): the binding's types ask for Buffer. */
function asBuffer (data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength)
}

/** BLAKE3 keyed (32-byte key) -> 32 bytes. Hot path: must use @napi-rs/blake-hash (about 3.6 GB/s). */
export function keyedHash (key: Uint8Array, data: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || key.byteLength !== KEY_BYTES) throw new RangeError(`BLAKE3 key must be ${KEY_BYTES} bytes`)
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array')
  const hasher = keyedHasher(key)
  hasher.update(asBuffer(data))
  return plain(hasher.digestBuffer())
}

/**
 * BLAKE3 keyed with one fixed key, as a function with its own native hasher: for hot loops that hash
 * many small inputs under one key (Merkle leaves and nodes), without keyedHash's per-call key check
 * and without evicting keyedHash's cached hasher. Same output as keyedHash(key, data).
 */
export function keyedHashFunction (key: Uint8Array): (data: Uint8Array) => Uint8Array {
  if (!(key instanceof Uint8Array) || key.byteLength !== KEY_BYTES) throw new RangeError(`BLAKE3 key must be ${KEY_BYTES} bytes`)
  const hasher = Blake3Hasher.newKeyed(Buffer.from(key))
  return (data: Uint8Array): Uint8Array => {
    hasher.reset()
    hasher.update(asBuffer(data))
    return plain(hasher.digestBuffer())
  }
}

/** BLAKE3 unkeyed -> 32 bytes. */
export function contentHash (data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array')
  return plain(blake3(asBuffer(data)))
}

/** An unkeyed BLAKE3 over bytes given piece by piece. */
export interface ContentHasher {
  update: (data: Uint8Array) => void
  /** The hash of everything given; the hasher is then done. */
  digest: () => Uint8Array
}

/** BLAKE3 unkeyed, streamed: digest() equals contentHash of the pieces joined. */
export function contentHasher (): ContentHasher {
  const hasher = new Blake3Hasher()
  return {
    update: (data) => { hasher.update(asBuffer(data)) },
    digest: () => plain(hasher.digestBuffer())
  }
}
