/**
 * The SodiumBackend contract, run against both backends, and across them: anything one backend
 * writes the other must read.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  AEAD_NONCE_BYTES, AEAD_TAG_BYTES, KEY_BYTES, SEAL_OVERHEAD, SIGNATURE_BYTES, loadBackend
} from '../../../src/crypto/index.js'
import type { SodiumBackend } from '../../../src/crypto/index.js'
import { UnauthenticatedError } from '../../../src/errors.js'
import { utf8Encode } from '../../../src/util/bytes.js'

const NAMES = ['sodium-native', 'libsodium-wrappers'] as const
const isUnauthenticated = (err: unknown): boolean => err instanceof UnauthenticatedError && err.code === 'ERR_UNAUTHENTICATED'
const flip = (b: Uint8Array, i: number): Uint8Array => { const c = b.slice(); c[i] = (c[i] ?? 0) ^ 0x01; return c }
const fill = (n: number, v: number): Uint8Array => new Uint8Array(n).fill(v)

for (const name of NAMES) {
  describe(`SodiumBackend (${name})`, () => {
    let b: SodiumBackend
    before(async () => { b = await loadBackend(name) })

    it('loadBackend returns the same instance each time', async () => {
      assert.equal(await loadBackend(name), b)
    })

    it('randomBytes gives the requested length and different bytes each call', () => {
      assert.equal(b.randomBytes(0).byteLength, 0)
      const x = b.randomBytes(32)
      const y = b.randomBytes(32)
      assert.equal(x.byteLength, 32)
      assert.notDeepEqual(x, y)
    })

    it('AEAD round-trips any plaintext and associated data (property)', () => {
      const key = b.randomBytes(KEY_BYTES)
      fc.assert(fc.property(fc.uint8Array({ maxLength: 2000 }), fc.option(fc.uint8Array({ maxLength: 64 })), fc.uint8Array({ minLength: 24, maxLength: 24 }),
        (m, ad, nonce) => {
          const c = b.aeadEncrypt(m, ad, nonce, key)
          assert.equal(c.byteLength, m.byteLength + AEAD_TAG_BYTES)
          assert.deepEqual(b.aeadDecrypt(c, ad, nonce, key), m)
          // the in-place variant writes the same bytes at an offset of a larger buffer
          const big = new Uint8Array(m.byteLength + AEAD_TAG_BYTES + 10)
          b.aeadEncryptInto(big.subarray(5, 5 + m.byteLength + AEAD_TAG_BYTES), m, ad, nonce, key)
          assert.deepEqual(big.subarray(5, 5 + c.byteLength), c)
          assert.ok(big.subarray(0, 5).every(x => x === 0) && big.subarray(5 + c.byteLength).every(x => x === 0))
        }), { seed: 1, numRuns: 100 })
    })

    it('AEAD into: a wrong output size or an overlap with the plaintext is refused', () => {
      const key = fill(32, 1)
      const nonce = fill(24, 2)
      const buf = new Uint8Array(64)
      assert.throws(() => b.aeadEncryptInto(new Uint8Array(10), new Uint8Array(4), null, nonce, key), RangeError)
      assert.throws(() => b.aeadEncryptInto(buf.subarray(8, 28), buf.subarray(10, 14), null, nonce, key), RangeError)
      assert.throws(() => b.aeadEncryptInto(buf.subarray(0, 20), buf.subarray(10, 14), null, nonce, key), RangeError)
    })

    it('AEAD: null and empty associated data are the same', () => {
      const key = fill(32, 1)
      const nonce = fill(24, 2)
      const c = b.aeadEncrypt(utf8Encode('x'), null, nonce, key)
      assert.deepEqual(b.aeadEncrypt(utf8Encode('x'), new Uint8Array(0), nonce, key), c)
      assert.deepEqual(b.aeadDecrypt(c, new Uint8Array(0), nonce, key), utf8Encode('x'))
    })

    it('AEAD refuses any altered byte, wrong ad, nonce or key, or a truncated ciphertext', () => {
      const key = b.randomBytes(KEY_BYTES)
      const nonce = b.randomBytes(AEAD_NONCE_BYTES)
      const ad = utf8Encode('header')
      const c = b.aeadEncrypt(utf8Encode('pack key and secrets'), ad, nonce, key)
      for (let i = 0; i < c.byteLength; i++) assert.throws(() => b.aeadDecrypt(flip(c, i), ad, nonce, key), isUnauthenticated, `byte ${i}`)
      assert.throws(() => b.aeadDecrypt(c, utf8Encode('Header'), nonce, key), isUnauthenticated)
      assert.throws(() => b.aeadDecrypt(c, null, nonce, key), isUnauthenticated)
      assert.throws(() => b.aeadDecrypt(c, ad, flip(nonce, 23), key), isUnauthenticated)
      assert.throws(() => b.aeadDecrypt(c, ad, nonce, flip(key, 0)), isUnauthenticated)
      assert.throws(() => b.aeadDecrypt(c.subarray(0, c.byteLength - 1), ad, nonce, key), isUnauthenticated)
      for (const n of [0, 1, 15]) assert.throws(() => b.aeadDecrypt(new Uint8Array(n), ad, nonce, key), isUnauthenticated, `length ${n}`)
    })

    it('AEAD rejects wrong key and nonce lengths as programming errors (RangeError)', () => {
      assert.throws(() => b.aeadEncrypt(new Uint8Array(1), null, fill(24, 0), fill(31, 0)), RangeError)
      assert.throws(() => b.aeadEncrypt(new Uint8Array(1), null, fill(12, 0), fill(32, 0)), RangeError)
      assert.throws(() => b.aeadDecrypt(new Uint8Array(20), null, fill(24, 0), fill(33, 0)), RangeError)
    })

    it('signatures verify, and fail on another message, key, or an altered signature', () => {
      const kp = b.signKeypairFromSeed(fill(32, 7))
      const msg = utf8Encode('snapshot record')
      const sig = b.sign(msg, kp.secretKey)
      assert.equal(sig.byteLength, SIGNATURE_BYTES)
      assert.equal(b.verify(sig, msg, kp.publicKey), true)
      assert.equal(b.verify(sig, utf8Encode('snapshot recorD'), kp.publicKey), false)
      assert.equal(b.verify(flip(sig, 10), msg, kp.publicKey), false)
      assert.equal(b.verify(sig, msg, b.signKeypairFromSeed(fill(32, 8)).publicKey), false)
    })

    it('verify returns false (never throws) for malformed signatures and public keys', () => {
      const kp = b.signKeypairFromSeed(fill(32, 7))
      const msg = utf8Encode('m')
      const sig = b.sign(msg, kp.secretKey)
      assert.equal(b.verify(sig.subarray(0, 63), msg, kp.publicKey), false)
      assert.equal(b.verify(new Uint8Array(65), msg, kp.publicKey), false)
      assert.equal(b.verify(sig, msg, kp.publicKey.subarray(0, 31)), false)
      assert.equal(b.verify(sig, msg, new Uint8Array(32)), false)
    })

    it('key pairs from seeds have libsodium sizes and are deterministic', () => {
      const s = b.signKeypairFromSeed(fill(32, 3))
      const x = b.boxKeypairFromSeed(fill(32, 3))
      assert.deepEqual([s.publicKey.byteLength, s.secretKey.byteLength, x.publicKey.byteLength, x.secretKey.byteLength], [32, 64, 32, 32])
      assert.deepEqual(b.boxKeypairFromSeed(fill(32, 3)), x)
      assert.throws(() => b.signKeypairFromSeed(fill(16, 3)), RangeError)
      assert.throws(() => b.boxKeypairFromSeed(fill(33, 3)), RangeError)
    })

    it('a sealed box opens with the right key pair only, and refuses alteration', () => {
      const kp = b.boxKeypairFromSeed(fill(32, 9))
      const other = b.boxKeypairFromSeed(fill(32, 10))
      const m = utf8Encode('pack key')
      const c = b.seal(m, kp.publicKey)
      assert.equal(c.byteLength, m.byteLength + SEAL_OVERHEAD)
      assert.notDeepEqual(b.seal(m, kp.publicKey), c, 'sealing is randomized')
      assert.deepEqual(b.sealOpen(c, kp.publicKey, kp.secretKey), m)
      assert.throws(() => b.sealOpen(c, other.publicKey, other.secretKey), isUnauthenticated)
      for (const i of [0, 31, 32, 40, c.byteLength - 1]) assert.throws(() => b.sealOpen(flip(c, i), kp.publicKey, kp.secretKey), isUnauthenticated, `byte ${i}`)
      for (const n of [0, 47]) assert.throws(() => b.sealOpen(new Uint8Array(n), kp.publicKey, kp.secretKey), isUnauthenticated)
      assert.deepEqual(b.sealOpen(b.seal(new Uint8Array(0), kp.publicKey), kp.publicKey, kp.secretKey), new Uint8Array(0))
    })

    it('kdfDerive checks context, id and length, and separates ids and contexts', () => {
      const key = fill(32, 5)
      const a = b.kdfDerive(key, 1, 'p2pbak01', 32)
      assert.notDeepEqual(b.kdfDerive(key, 2, 'p2pbak01', 32), a)
      assert.notDeepEqual(b.kdfDerive(key, 1, 'p2pbak02', 32), a)
      assert.equal(b.kdfDerive(key, 1, 'p2pbak01', 64).byteLength, 64)
      assert.deepEqual(b.kdfDerive(key, 2 ** 40, 'p2pbak01', 16), b.kdfDerive(key, 2 ** 40, 'p2pbak01', 16))
      for (const ctx of ['p2pbak0', 'p2pbak012', 'p2pbak0\u00e9']) assert.throws(() => b.kdfDerive(key, 1, ctx, 32), RangeError, ctx)
      assert.throws(() => b.kdfDerive(key, -1, 'p2pbak01', 32), RangeError)
      assert.throws(() => b.kdfDerive(key, 1.5, 'p2pbak01', 32), RangeError)
      assert.throws(() => b.kdfDerive(key, 1, 'p2pbak01', 15), RangeError)
      assert.throws(() => b.kdfDerive(key, 1, 'p2pbak01', 65), RangeError)
      assert.throws(() => b.kdfDerive(fill(16, 0), 1, 'p2pbak01', 32), RangeError)
    })

    it('pwhash depends on passphrase, salt and cost, and checks its limits', () => {
      const salt = fill(16, 1)
      const out = b.pwhash(32, utf8Encode('pw'), salt, 1, 8192)
      assert.equal(out.byteLength, 32)
      assert.notDeepEqual(b.pwhash(32, utf8Encode('pW'), salt, 1, 8192), out)
      assert.notDeepEqual(b.pwhash(32, utf8Encode('pw'), fill(16, 2), 1, 8192), out)
      assert.notDeepEqual(b.pwhash(32, utf8Encode('pw'), salt, 2, 8192), out)
      assert.throws(() => b.pwhash(32, utf8Encode('pw'), fill(8, 1), 1, 8192), RangeError)
      assert.throws(() => b.pwhash(32, utf8Encode('pw'), salt, 0, 8192), RangeError)
      assert.throws(() => b.pwhash(32, utf8Encode('pw'), salt, 1, 4096), RangeError)
      assert.throws(() => b.pwhash(8, utf8Encode('pw'), salt, 1, 8192), RangeError)
    })

    it('pwhashAsync derives the same bytes as pwhash, and rejects bad limits', async () => {
      for (const [ops, mem, pw, salt] of [[1, 8192, 'pw', fill(16, 1)], [2, 65536, 'another', fill(16, 9)]] as const) {
        assert.deepEqual(await b.pwhashAsync(32, utf8Encode(pw), salt, ops, mem), b.pwhash(32, utf8Encode(pw), salt, ops, mem))
      }
      await assert.rejects(b.pwhashAsync(32, utf8Encode('pw'), fill(8, 1), 1, 8192), RangeError)
      await assert.rejects(b.pwhashAsync(32, utf8Encode('pw'), fill(16, 1), 0, 8192), RangeError)
    })
  })
}

describe('SodiumBackend (sodium-native): pwhashAsync runs off the main thread', () => {
  it('the event loop keeps turning while Argon2id (3 passes, 64 MiB) runs', async function () {
    this.timeout(20_000)
    const b = await loadBackend('sodium-native')
    let turns = 0
    let done = false
    const spin = (): void => { if (!done) { turns++; setImmediate(spin) } }
    const hash = b.pwhashAsync(32, utf8Encode('pw'), fill(16, 3), 3, 64 * 1024 * 1024)
    setImmediate(spin)
    const out = await hash
    done = true
    // a derivation on the main thread would finish before the first turn
    assert.ok(turns >= 3, `the event loop turned ${turns} times during the derivation`)
    assert.deepEqual(out, b.pwhash(32, utf8Encode('pw'), fill(16, 3), 3, 64 * 1024 * 1024))
  })
})

describe('SodiumBackend: both backends agree', () => {
  let native: SodiumBackend
  let wasm: SodiumBackend
  before(async () => { [native, wasm] = await Promise.all([loadBackend('sodium-native'), loadBackend('libsodium-wrappers')]) })

  it('defaults to sodium-native and rejects unknown names', async () => {
    assert.equal((await loadBackend()).name, 'sodium-native')
    await assert.rejects(loadBackend('openssl' as 'sodium-native'), RangeError)
  })

  it('a box sealed by either backend opens in the other', () => {
    const kp = native.boxKeypairFromSeed(fill(32, 11))
    const m = utf8Encode('sealed across backends')
    assert.deepEqual(wasm.sealOpen(native.seal(m, kp.publicKey), kp.publicKey, kp.secretKey), m)
    assert.deepEqual(native.sealOpen(wasm.seal(m, kp.publicKey), kp.publicKey, kp.secretKey), m)
  })

  it('produce identical bytes for every deterministic primitive (property)', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ minLength: 24, maxLength: 24 }),
      fc.oneof(fc.nat(1000), fc.maxSafeNat()), (key, data, nonce, id) => {
        assert.deepEqual(wasm.kdfDerive(key, id, 'testctx1', 32), native.kdfDerive(key, id, 'testctx1', 32))
        const c = native.aeadEncrypt(data, key, nonce, key)
        assert.deepEqual(wasm.aeadEncrypt(data, key, nonce, key), c)
        assert.deepEqual(wasm.aeadDecrypt(c, key, nonce, key), data)
        const s = native.signKeypairFromSeed(key)
        assert.deepEqual(wasm.signKeypairFromSeed(key), s)
        assert.deepEqual(wasm.sign(data, s.secretKey), native.sign(data, s.secretKey))
        assert.equal(wasm.verify(native.sign(data, s.secretKey), data, s.publicKey), true)
        assert.deepEqual(wasm.boxKeypairFromSeed(key), native.boxKeypairFromSeed(key))
      }), { seed: 2, numRuns: 50 })
  })
})
