import assert from 'node:assert/strict'
import { DEFAULT_CHUNKER_PARAMS, FastCdc, validateChunkerParams, type ChunkerParams } from '../../../src/chunking/index.js'
import { InvalidArgumentError, InvalidConfigError } from '../../../src/errors.js'
import { testGearTable } from './fixtures.js'

const KiB = 1024
const MiB = 1024 * KiB

describe('chunking/params', () => {
  it('defaults: 448 KiB / 512 KiB / 4 MiB, normalization 0 (about 1 MiB chunks), valid, and frozen', () => {
    assert.deepEqual({ ...DEFAULT_CHUNKER_PARAMS }, { minSize: 448 * KiB, avgSize: 512 * KiB, maxSize: 4 * MiB, normalization: 0 })
    validateChunkerParams(DEFAULT_CHUNKER_PARAMS)
    assert.ok(Object.isFrozen(DEFAULT_CHUNKER_PARAMS))
  })

  it('accepts the extremes of the allowed range', () => {
    validateChunkerParams({ minSize: 64, avgSize: 128, maxSize: 129, normalization: 0 })
    validateChunkerParams({ minSize: 64, avgSize: 128, maxSize: 256, normalization: 3 })
    validateChunkerParams({ minSize: 32 * MiB - 1, avgSize: 32 * MiB, maxSize: 64 * MiB, normalization: 3 })
    validateChunkerParams({ minSize: 100_000, avgSize: 262_144, maxSize: 1_000_000, normalization: 2 })
  })

  const bad: Array<[string, ChunkerParams]> = [
    ['avg not a power of two', { minSize: 256 * KiB, avgSize: MiB + 1, maxSize: 4 * MiB, normalization: 2 }],
    ['min equal to avg', { minSize: MiB, avgSize: MiB, maxSize: 4 * MiB, normalization: 2 }],
    ['min above avg', { minSize: 2 * MiB, avgSize: MiB, maxSize: 4 * MiB, normalization: 2 }],
    ['max equal to avg', { minSize: 256 * KiB, avgSize: MiB, maxSize: MiB, normalization: 2 }],
    ['max above 64 MiB', { minSize: 256 * KiB, avgSize: MiB, maxSize: 64 * MiB + 1, normalization: 2 }],
    ['min below the 64-byte floor', { minSize: 63, avgSize: 128, maxSize: 512, normalization: 1 }],
    ['negative normalization', { minSize: 256 * KiB, avgSize: MiB, maxSize: 4 * MiB, normalization: -1 }],
    ['normalization above 3', { minSize: 256 * KiB, avgSize: MiB, maxSize: 4 * MiB, normalization: 4 }],
    ['fractional normalization', { minSize: 256 * KiB, avgSize: MiB, maxSize: 4 * MiB, normalization: 1.5 }],
    ['fractional size', { minSize: 256 * KiB + 0.5, avgSize: MiB, maxSize: 4 * MiB, normalization: 2 }],
    ['NaN size', { minSize: Number.NaN, avgSize: MiB, maxSize: 4 * MiB, normalization: 2 }],
    ['zero sizes', { minSize: 0, avgSize: 0, maxSize: 0, normalization: 0 }]
  ]
  for (const [name, p] of bad) {
    it(`rejects ${name} with InvalidConfigError`, () => {
      assert.throws(() => { validateChunkerParams(p) }, InvalidConfigError)
      assert.throws(() => new FastCdc(testGearTable(1), p), InvalidConfigError)
    })
  }

  it('FastCdc rejects a gear table that is not 256 uint32 values', () => {
    assert.throws(() => new FastCdc(new Uint32Array(255)), InvalidArgumentError)
    assert.throws(() => new FastCdc(new Uint32Array(257)), InvalidArgumentError)
  })

  it('FastCdc keeps its own copy of the params and of the gear table', () => {
    const p = { minSize: 256, avgSize: 1024, maxSize: 4096, normalization: 2 }
    const gear = testGearTable(5)
    const cdc = new FastCdc(gear, p)
    const data = new Uint8Array(64 * KiB).map((_, i) => (i * 2654435761) >>> 24)
    const before = cdc.nextCut(data, 0, data.length, true)
    p.maxSize = 8192
    gear.fill(0)
    assert.equal(cdc.params.maxSize, 4096)
    assert.ok(Object.isFrozen(cdc.params))
    assert.equal(cdc.nextCut(data, 0, data.length, true), before)
  })
})
