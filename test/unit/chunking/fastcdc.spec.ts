import assert from 'node:assert/strict'
import fc from 'fast-check'
import { chunkLengths, FastCdc, type ChunkerParams } from '../../../src/chunking/index.js'
import { prngBytes, SMALL_PARAMS, testChunker, testGearTable } from './fixtures.js'

/**
 * The spec of docs/format/chunking.md written as plainly as possible: the hash of each candidate is
 * computed from scratch over its 32-byte window (no rolling, no unrolling), one candidate at a time.
 */
function referenceLengths (gear: Uint32Array, p: ChunkerParams, data: Uint8Array): number[] {
  const bits = Math.log2(p.avgSize)
  const topMask = (b: number): number => (0xffffffff << (32 - b)) >>> 0
  const maskSmall = topMask(bits + p.normalization)
  const maskLarge = topMask(bits - p.normalization)
  const windowHash = (end: number): number => { // hash of data[end-32 .. end-1]
    let h = 0
    for (let j = 0; j < 32; j++) h = (h + ((gear[data[end - 1 - j]!]! << j) >>> 0)) >>> 0
    return h
  }
  const out: number[] = []
  let s = 0
  while (s < data.length) {
    const n = data.length - s
    let len = Math.min(n, p.maxSize)
    for (let l = p.minSize; l < Math.min(n + 1, p.maxSize); l++) {
      const mask = l < p.avgSize ? maskSmall : maskLarge
      if ((windowHash(s + l) & mask) === 0) { len = l; break }
    }
    out.push(len)
    s += len
  }
  return out
}

/** Data that mixes random runs with constant runs (constant runs force max-size cuts). */
const arbData = (maxLen: number): fc.Arbitrary<Uint8Array> => fc.array(
  fc.oneof(
    fc.record({ seed: fc.integer({ min: 1, max: 0x7fffffff }), len: fc.integer({ min: 0, max: maxLen }) })
      .map(({ seed, len }) => prngBytes(seed, len)),
    fc.record({ byte: fc.integer({ min: 0, max: 255 }), len: fc.integer({ min: 0, max: maxLen }) })
      .map(({ byte, len }) => new Uint8Array(len).fill(byte))
  ), { maxLength: 6 }
).map((parts) => Buffer.concat(parts))

const arbParams: fc.Arbitrary<ChunkerParams> = fc.record({
  avgBits: fc.integer({ min: 8, max: 12 }),
  minDiv: fc.integer({ min: 2, max: 8 }),
  maxMul: fc.integer({ min: 2, max: 8 }),
  normalization: fc.integer({ min: 0, max: 3 })
}).map(({ avgBits, minDiv, maxMul, normalization }) => ({
  minSize: Math.max(64, Math.floor((1 << avgBits) / minDiv)),
  avgSize: 1 << avgBits,
  maxSize: (1 << avgBits) * maxMul,
  normalization
}))

const FC = { seed: 20240601, numRuns: 150 }

describe('chunking/FastCdc', () => {
  it('lengths sum to the input, none exceeds maxSize, all but the last are >= minSize', () => {
    fc.assert(fc.property(arbData(20_000), arbParams, fc.integer({ min: 1, max: 1000 }), (data, params, seed) => {
      const lens = chunkLengths(testChunker(seed, params), data)
      assert.equal(lens.reduce((a, b) => a + b, 0), data.length)
      for (const l of lens) assert.ok(l > 0 && l <= params.maxSize, `length ${l}`)
      for (const l of lens.slice(0, -1)) assert.ok(l >= params.minSize, `length ${l} < min ${params.minSize}`)
    }), FC)
  })

  it('matches the plain reference algorithm of the spec (every mask level, short and constant runs)', () => {
    fc.assert(fc.property(arbData(8000), arbParams, fc.integer({ min: 1, max: 1000 }), (data, params, seed) => {
      const gear = testGearTable(seed)
      assert.deepEqual(chunkLengths(new FastCdc(gear, params), data), referenceLengths(gear, params, data))
    }), { ...FC, numRuns: 80 })
  })

  it('a cut found in a prefix never moves when more data arrives (nextCut with eof=false)', () => {
    fc.assert(fc.property(arbData(10_000), fc.nat(), fc.nat(), (data, a, b) => {
      const cdc = testChunker(3, SMALL_PARAMS)
      const start = data.length === 0 ? 0 : a % data.length
      const end = start + (data.length === 0 ? 0 : b % (data.length - start + 1))
      const full = cdc.nextCut(data, start, data.length, true)
      const real = cdc.nextCut(data, start, data.length, false) // 0 if the rest is only a tail
      const n = end - start
      // Either the same cut, or 0 = "feed more data" when the prefix holds no cut yet.
      assert.equal(cdc.nextCut(data, start, end, false), real > 0 && real <= n ? real : 0)
      assert.ok(real === 0 || real === full)
      // With eof the prefix is cut at the same place, or is entirely the tail.
      assert.equal(cdc.nextCut(data, start, end, true), n === 0 ? 0 : Math.min(full, n))
    }), FC)
  })

  it('nextCut contract at the edges: empty range, short tails, exactly maxSize', () => {
    const cdc = testChunker(1, SMALL_PARAMS)
    const zeros = new Uint8Array(3 * SMALL_PARAMS.maxSize)
    assert.equal(cdc.nextCut(zeros, 10, 10, true), 0)
    assert.equal(cdc.nextCut(zeros, 0, 100, false), 0)
    assert.equal(cdc.nextCut(zeros, 0, 100, true), 100)
    // Constant data has a constant window hash; this gear table does not cut it, so max applies.
    assert.equal(cdc.nextCut(zeros, 0, SMALL_PARAMS.maxSize - 1, false), 0)
    assert.equal(cdc.nextCut(zeros, 0, SMALL_PARAMS.maxSize - 1, true), SMALL_PARAMS.maxSize - 1)
    assert.equal(cdc.nextCut(zeros, 0, SMALL_PARAMS.maxSize, false), SMALL_PARAMS.maxSize)
    assert.equal(cdc.nextCut(zeros, 5, zeros.length, false), SMALL_PARAMS.maxSize)
    assert.deepEqual(chunkLengths(cdc, zeros), [4096, 4096, 4096])
    assert.deepEqual(chunkLengths(cdc, new Uint8Array(0)), [])
  })

  it('cut points depend only on content: the same bytes at another offset give the same chunks', () => {
    const cdc = testChunker(9, SMALL_PARAMS)
    const data = prngBytes(77, 200_000)
    const shifted = new Uint8Array(data.length + 1234)
    shifted.set(data, 1234)
    const lens = chunkLengths(cdc, data)
    let pos = 1234
    for (const l of lens) {
      assert.equal(cdc.nextCut(shifted, pos, shifted.length, true), l)
      pos += l
    }
  })

  it('different gear tables (different keys) give different cut points', () => {
    const data = prngBytes(11, 4 << 20)
    const offsets = (seed: number): Set<number> => {
      const set = new Set<number>()
      let pos = 0
      for (const l of chunkLengths(testChunker(seed, SMALL_PARAMS), data)) set.add(pos += l)
      return set
    }
    const a = offsets(1)
    const b = offsets(2)
    let shared = 0
    for (const x of a) if (b.has(x)) shared++
    assert.notDeepEqual([...a], [...b])
    // Independent keys share only chance cut points (plus the end of the data).
    assert.ok(shared < a.size * 0.02, `${shared} of ${a.size} cut points shared`)
  })

  it('chunk lengths are normalized around avgSize (most chunks within [min, 2 x avg])', () => {
    const data = prngBytes(5, 8 << 20)
    const lens = chunkLengths(testChunker(4, SMALL_PARAMS), data).slice(0, -1)
    const mean = lens.reduce((a, b) => a + b, 0) / lens.length
    assert.ok(mean > SMALL_PARAMS.avgSize * 0.9 && mean < SMALL_PARAMS.avgSize * 1.5, `mean ${mean}`)
    const within = lens.filter((l) => l <= 2 * SMALL_PARAMS.avgSize).length
    assert.ok(within > lens.length * 0.85, `${within} of ${lens.length} chunks <= 2 x avg`)
  })
})
