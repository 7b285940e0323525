import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  contentHash, deriveGearTable, deriveIdentity, keyedHash, loadBackend, writeOnlyIdentity
} from '../../../src/crypto/index.js'
import type { SodiumBackend } from '../../../src/crypto/index.js'
import { UnauthenticatedError } from '../../../src/errors.js'
import { toHex, utf8Encode } from '../../../src/util/bytes.js'

const seedOf = (v: number): Uint8Array => new Uint8Array(32).fill(v)

describe('identity', () => {
  let b: SodiumBackend
  before(async () => { b = await loadBackend() })

  it('is deterministic, and its userId is the hex of the signing public key', () => {
    const a = deriveIdentity(b, seedOf(1))
    assert.deepEqual(deriveIdentity(b, seedOf(1)), a)
    assert.equal(a.userId, toHex(a.signPublicKey))
    assert.match(a.userId, /^[0-9a-f]{64}$/)
    assert.deepEqual([a.dedupKey.byteLength, a.chunkerKey.byteLength, a.boxPublicKey.byteLength], [32, 32, 32])
  })

  it('gives independent keys: no two derived keys are equal, and another seed changes all of them', () => {
    const a = deriveIdentity(b, seedOf(1))
    const c = deriveIdentity(b, seedOf(2))
    const keys = [a.signPublicKey, a.boxPublicKey, a.dedupKey, a.chunkerKey, a.boxSecretKey ?? new Uint8Array(0)].map(toHex)
    assert.equal(new Set(keys).size, keys.length)
    for (const k of ['signPublicKey', 'boxPublicKey', 'dedupKey', 'chunkerKey'] as const) assert.notDeepEqual(c[k], a[k], k)
  })

  it('signs with its secret key, verifiable with its public key', () => {
    const id = deriveIdentity(b, seedOf(3))
    const msg = utf8Encode('snapshot')
    assert.equal(b.verify(b.sign(msg, id.signSecretKey ?? new Uint8Array(0)), msg, id.signPublicKey), true)
  })

  it('a write-only publisher keeps what writing needs, drops what reading needs', () => {
    const full = deriveIdentity(b, seedOf(4))
    const pub = writeOnlyIdentity(full)
    assert.equal(pub.signSecretKey, null)
    assert.equal(pub.boxSecretKey, null)
    assert.equal(pub.userId, full.userId)
    assert.deepEqual([pub.signPublicKey, pub.boxPublicKey, pub.dedupKey, pub.chunkerKey], [full.signPublicKey, full.boxPublicKey, full.dedupKey, full.chunkerKey])
    assert.deepEqual(writeOnlyIdentity(pub), pub, 'idempotent')
    // It can seal a pack key that only the full identity opens.
    const sealed = b.seal(utf8Encode('pack key'), pub.boxPublicKey)
    assert.deepEqual(b.sealOpen(sealed, full.boxPublicKey, full.boxSecretKey ?? new Uint8Array(0)), utf8Encode('pack key'))
    assert.throws(() => b.sealOpen(sealed, pub.boxPublicKey, deriveIdentity(b, seedOf(5)).boxSecretKey ?? new Uint8Array(0)), UnauthenticatedError)
  })

  it('refuses a seed that is not 32 bytes', () => {
    assert.throws(() => deriveIdentity(b, new Uint8Array(16)), RangeError)
  })
})

describe('BLAKE3 hashes', () => {
  it('keyedHash depends on the key; contentHash is the unkeyed hash', () => {
    const data = utf8Encode('chunk')
    assert.notDeepEqual(keyedHash(seedOf(1), data), keyedHash(seedOf(2), data))
    assert.notDeepEqual(keyedHash(seedOf(1), data), contentHash(data))
    assert.equal(contentHash(data).byteLength, 32)
  })

  it('keyedHash gives the same answer with interleaved keys and after the caller mutates a key buffer (property)', () => {
    const fresh = (key: Uint8Array, data: Uint8Array): string => toHex(keyedHash(Uint8Array.from(key), Uint8Array.from(data)))
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(2), fc.uint8Array({ maxLength: 3000 })), { minLength: 1, maxLength: 10 }), (calls) => {
      const keys = [seedOf(1), seedOf(2), seedOf(3)]
      const expected = calls.map(([k, d]) => fresh(keys[k] ?? seedOf(0), d))
      const shared = seedOf(1)
      calls.forEach(([k, d], i) => {
        shared.set(keys[k] ?? seedOf(0)) // same buffer, new contents
        assert.equal(toHex(keyedHash(shared, d)), expected[i])
      })
    }), { seed: 6, numRuns: 100 })
  })

  it('hashes subarray views by their own bytes only', () => {
    const big = Uint8Array.from({ length: 100 }, (_, i) => i)
    assert.deepEqual(contentHash(big.subarray(10, 20)), contentHash(Uint8Array.from(big.subarray(10, 20))))
    assert.deepEqual(keyedHash(seedOf(1), big.subarray(10, 20)), keyedHash(seedOf(1), Uint8Array.from(big.subarray(10, 20))))
    assert.deepEqual(keyedHash(big.subarray(1, 33), big), keyedHash(Uint8Array.from(big.subarray(1, 33)), big))
  })

  it('refuses a key that is not 32 bytes', () => {
    assert.throws(() => keyedHash(new Uint8Array(16), new Uint8Array(1)), RangeError)
  })
})

describe('gear table', () => {
  it('has 256 entries, is deterministic, and changes completely with the key', () => {
    const a = deriveGearTable(seedOf(1))
    const c = deriveGearTable(seedOf(2))
    assert.equal(a.length, 256)
    assert.deepEqual(deriveGearTable(seedOf(1)), a)
    let same = 0
    for (let i = 0; i < 256; i++) if (a[i] === c[i]) same++
    assert.ok(same <= 1, `${same} equal entries`)
  })

  it('looks uniformly random: distinct values, each bit set in about half the entries', () => {
    const g = deriveGearTable(seedOf(7))
    assert.equal(new Set(g).size, 256)
    for (let bit = 0; bit < 32; bit++) {
      let ones = 0
      for (const x of g) ones += (x >>> bit) & 1
      assert.ok(ones > 80 && ones < 176, `bit ${bit}: ${ones}/256`) // > 6 sigma from 128
    }
  })

  it('refuses a key that is not 32 bytes', () => {
    assert.throws(() => deriveGearTable(new Uint8Array(31)), RangeError)
  })
})
