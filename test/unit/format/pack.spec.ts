import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  BlobType, Compression, decodePackHeader, decodePackPrefix, decodePackTrailer, encodePackHeader, encodePackPrefix,
  paddedPackSize, PACK_PREFIX_BYTES, type PackEntry
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

  it('prefix and trailer: magic, version and bounds are checked', () => {
    const prefix = encodePackPrefix(new Uint8Array(80).fill(7))
    assert.equal(prefix.byteLength, PACK_PREFIX_BYTES)
    assert.deepEqual(decodePackPrefix(prefix).sealedKey, new Uint8Array(80).fill(7))
    const bad = prefix.slice(); bad[0] = 0x58
    assert.throws(() => decodePackPrefix(bad), { code: 'ERR_FORMAT' })
    const v2 = prefix.slice(); v2[8] = 2
    assert.throws(() => decodePackPrefix(v2), /upgrade p2pbak/)
    assert.throws(() => decodePackTrailer(1000, Uint8Array.from([0xff, 0xff, 0, 0])), { code: 'ERR_FORMAT' })
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
