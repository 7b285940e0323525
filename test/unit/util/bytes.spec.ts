import assert from 'node:assert/strict'
import fc from 'fast-check'
import { ByteReader, ByteWriter, utf8Decode, utf8Encode, isAllZero } from '../../../src/util/bytes.js'

describe('util/bytes', () => {
  it('uvarint: number and bigint encodings agree, and both decoders read every value back', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (v) => {
      const big = new ByteWriter().uvarint(v).finish()
      const n = Number(v)
      if (Number.isSafeInteger(n)) assert.deepEqual(new ByteWriter().uvarint(n).finish(), big)
      assert.equal(new ByteReader(big).uvarintBig(), v)
      if (v <= BigInt(Number.MAX_SAFE_INTEGER)) {
        const r = new ByteReader(big)
        assert.equal(BigInt(r.uvarint()), v)
        assert.ok(r.done)
      }
    }), { numRuns: 5000, seed: 42 })
  })

  it('uvarint: non-minimal, overlong, too-large and truncated encodings are FormatErrors', () => {
    const cases: Array<[string, number[]]> = [
      ['non-minimal', [0x80, 0x00]],
      ['non-minimal long', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0x00]],
      ['truncated', [0x80]],
      ['beyond 2^64', [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]]
    ]
    for (const [name, bytes] of cases) {
      assert.throws(() => new ByteReader(Uint8Array.from(bytes)).uvarint(), { code: 'ERR_FORMAT' }, name)
    }
    assert.throws(() => new ByteReader(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])).uvarint(), { code: 'ERR_FORMAT' }, 'above safe integer')
    assert.throws(() => new ByteReader(Uint8Array.from([0x90, 0x01])).uvarint(100), { code: 'ERR_FORMAT' }, 'above limit')
  })

  it('svarint round-trips signed 64-bit values', () => {
    fc.assert(fc.property(fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), (v) => {
      assert.equal(new ByteReader(new ByteWriter().svarint(v).finish()).svarint(), v)
    }), { numRuns: 2000, seed: 7 })
  })

  it('utf8Decode keeps a leading byte-order mark and rejects invalid UTF-8', () => {
    assert.equal(utf8Decode(utf8Encode('\uFEFFhost')), '\uFEFFhost')
    assert.throws(() => utf8Decode(Uint8Array.from([0xff])), { code: 'ERR_FORMAT' })
  })

  it('isAllZero on aligned and unaligned views', () => {
    const b = new Uint8Array(1000)
    assert.ok(isAllZero(b))
    assert.ok(isAllZero(b.subarray(3, 997)))
    b[998] = 1
    assert.ok(!isAllZero(b))
    assert.ok(isAllZero(b.subarray(0, 998)))
  })
})
