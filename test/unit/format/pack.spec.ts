import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  BlobType, Compression, decodeKeyInfo, decodePackHeader, decodePackPrefix, encodeKeyInfo, encodePackHeader, encodePackPrefix,
  KEY_INFO_BYTES, MAX_HEADER_BYTES, packHeaderSpan, paddedPackSize, PACK_PREFIX_BYTES, SEALED_KEY_INFO_BYTES, type PackEntry
} from '../../../src/format/pack.js'
import { decodeShareHeader, encodeShareHeader, SHARE_HEADER_BYTES } from '../../../src/format/share.js'

const entriesArb = fc.array(fc.record({
  type: fc.constantFrom(BlobType.Data, BlobType.Tree),
  id: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  compression: fc.constantFrom(Compression.None, Compression.Zstd),
  length: fc.integer({ min: 40, max: 5_000_000 }),
  rawLength: fc.integer({ min: 0, max: 8_000_000 })
}), { maxLength: 60 }).map(list => {
  let offset = PACK_PREFIX_BYTES
  return list.map(e => { const out: PackEntry = { ...e, offset }; offset += e.length; return out })
})

const blobEnd = (entries: PackEntry[]): number => entries.reduce((end, e) => e.offset + e.length, PACK_PREFIX_BYTES)

describe('format/pack', () => {
  it('header round-trips with and without padding', () => {
    fc.assert(fc.property(entriesArb, fc.nat(4096), (entries, pad) => {
      const plain = encodePackHeader(entries)
      const padded = encodePackHeader(entries, plain.byteLength + pad)
      assert.equal(padded.byteLength, plain.byteLength + pad)
      assert.deepEqual(decodePackHeader(padded, blobEnd(entries)), entries)
    }), { numRuns: 300, seed: 1 })
  })

  it('decoding arbitrary or mutated headers throws only FormatError', () => {
    fc.assert(fc.property(entriesArb, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 }), (entries, at, byte, junk) => {
      const bytes = encodePackHeader(entries)
      if (bytes.byteLength > 0) bytes[at % bytes.byteLength] = byte
      for (const input of [bytes, junk]) {
        try { decodePackHeader(input, blobEnd(entries)) } catch (err: unknown) { assert.equal((err as { code?: string }).code, 'ERR_FORMAT', String(err)) }
      }
    }), { numRuns: 500, seed: 2 })
  })

  it('rejects overlapping, gapped or out-of-area blobs and non-zero padding', () => {
    const e: PackEntry = { type: BlobType.Data, id: new Uint8Array(32), compression: Compression.None, offset: PACK_PREFIX_BYTES, length: 100, rawLength: 60 }
    assert.throws(() => decodePackHeader(encodePackHeader([e]), PACK_PREFIX_BYTES + 99), { code: 'ERR_FORMAT' })
    assert.throws(() => decodePackHeader(encodePackHeader([{ ...e, offset: PACK_PREFIX_BYTES + 1 }]), PACK_PREFIX_BYTES + 101), { code: 'ERR_FORMAT' })
    const padded = encodePackHeader([e], 200)
    padded[199] = 1
    assert.throws(() => decodePackHeader(padded, PACK_PREFIX_BYTES + 100), { code: 'ERR_FORMAT' })
  })

  it('prefix: magic, version and the 84-byte sealed key info are checked', () => {
    assert.equal(SEALED_KEY_INFO_BYTES, 84)
    assert.equal(PACK_PREFIX_BYTES, 93)
    const prefix = encodePackPrefix(new Uint8Array(84).fill(7))
    assert.equal(prefix.byteLength, PACK_PREFIX_BYTES)
    assert.deepEqual(decodePackPrefix(prefix).sealedKeyInfo, new Uint8Array(84).fill(7))
    assert.throws(() => encodePackPrefix(new Uint8Array(80)), { code: 'ERR_FORMAT' })
    assert.throws(() => decodePackPrefix(prefix.subarray(0, 92)), { code: 'ERR_FORMAT' })
    const bad = prefix.slice(); bad[0] = 0x58
    assert.throws(() => decodePackPrefix(bad), { code: 'ERR_FORMAT' })
    const v2 = prefix.slice(); v2[8] = 2
    assert.throws(() => decodePackPrefix(v2), /upgrade p2pbak/)
  })

  it('key info round-trips as packKey || headerOffset u32le; a wrong length or offset is a FormatError', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: PACK_PREFIX_BYTES, max: 0xffffffff }), (key, offset) => {
      const info = encodeKeyInfo(key, offset)
      assert.equal(info.byteLength, KEY_INFO_BYTES)
      assert.deepEqual(info.subarray(0, 32), key)
      assert.equal(Buffer.from(info).readUInt32LE(32), offset)
      assert.deepEqual(decodeKeyInfo(info), { packKey: key, headerOffset: offset })
    }), { numRuns: 200, seed: 6 })
    for (const n of [0, 32, 35, 37, 80]) assert.throws(() => decodeKeyInfo(new Uint8Array(n)), { code: 'ERR_FORMAT' }, String(n))
    for (const at of [0, PACK_PREFIX_BYTES - 1, 2 ** 32, 1.5]) assert.throws(() => encodeKeyInfo(new Uint8Array(32), at), { code: 'ERR_FORMAT' }, String(at))
    assert.throws(() => encodeKeyInfo(new Uint8Array(31), 100), { code: 'ERR_FORMAT' })
  })

  it('header span: the header runs from headerOffset to the end and must fit the pack', () => {
    assert.deepEqual(packHeaderSpan(65536, 1541), { headerOffset: 1541, headerLength: 63995 })
    assert.deepEqual(packHeaderSpan(65536, 65536 - 40), { headerOffset: 65496, headerLength: 40 })
    assert.deepEqual(packHeaderSpan(PACK_PREFIX_BYTES + 40, PACK_PREFIX_BYTES), { headerOffset: PACK_PREFIX_BYTES, headerLength: 40 })
    for (const [len, at] of [[65536, PACK_PREFIX_BYTES - 1], [65536, 65536 - 39], [65536, 70000], [65536, 0], [MAX_HEADER_BYTES + 200, 100]] as const) {
      assert.throws(() => packHeaderSpan(len, at), { code: 'ERR_FORMAT' }, `${len} ${at}`)
    }
  })

  it('padded sizes are size classes that never shrink a pack', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 64 << 20 }), n => {
      const p = paddedPackSize(n)
      assert.ok(p >= n)
      assert.equal(p % (n <= 1 << 20 ? 65536 : 1 << 20), 0)
      assert.ok(p - n < (n <= 1 << 20 ? 65536 : 1 << 20))
    }), { numRuns: 1000, seed: 3 })
  })
})

describe('format/share', () => {
  it('header round-trips and any decode failure is a FormatError', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 6 }), fc.nat(), fc.nat({ max: 2 ** 40 }),
      fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ minLength: 32, maxLength: 32 }),
      (k, m, i, packLength, packId, dataHash) => {
        const h = { k, m, index: i % (k + m), packLength, packId, dataHash }
        const bytes = encodeShareHeader(h)
        assert.equal(bytes.byteLength, SHARE_HEADER_BYTES)
        assert.deepEqual(decodeShareHeader(bytes), h)
      }), { numRuns: 300, seed: 4 })
    fc.assert(fc.property(fc.uint8Array({ minLength: 0, maxLength: 120 }), junk => {
      try { decodeShareHeader(junk) } catch (err: unknown) { assert.equal((err as { code?: string }).code, 'ERR_FORMAT') }
    }), { numRuns: 300, seed: 5 })
  })
})
