/**
 * Deterministic test inputs for the chunker, also used by test/vectors/generate-chunking.ts.
 * The PRNG is Marsaglia's xorshift32 (shifts 13, 17, 5), specified in docs/format/chunking.md
 * §Test vectors so that another implementation can rebuild the same gear tables and data.
 */
import { FastCdc, type ChunkerParams } from '../../../src/chunking/index.js'

/** Next xorshift32 state (also the output), as an unsigned 32-bit integer. */
export function xorshift32 (x: number): number {
  x ^= x << 13
  x ^= x >>> 17
  x ^= x << 5
  return x >>> 0
}

/** 256 successive xorshift32 outputs from `seed` (seed itself is not an output). */
export function testGearTable (seed: number): Uint32Array {
  const gear = new Uint32Array(256)
  let x = seed >>> 0
  for (let i = 0; i < 256; i++) { x = xorshift32(x); gear[i] = x }
  return gear
}

/** `length` bytes: successive xorshift32 outputs from `seed`, each written little-endian. */
export function prngBytes (seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed >>> 0
  let i = 0
  for (; i + 4 <= length; i += 4) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    out[i] = x; out[i + 1] = x >>> 8; out[i + 2] = x >>> 16; out[i + 3] = x >>> 24
  }
  if (i < length) {
    x = xorshift32(x)
    for (let k = 0; i < length; i++, k++) out[i] = x >>> (8 * k)
  }
  return out
}

/** Small parameters so that property tests see many chunks in little data. */
export const SMALL_PARAMS: ChunkerParams = { minSize: 256, avgSize: 1024, maxSize: 4096, normalization: 2 }

export function testChunker (seed = 1, params?: ChunkerParams): FastCdc {
  return new FastCdc(testGearTable(seed), params)
}

/** One part of a test vector's data: xorshift32 bytes from a seed, or a run of one byte value. */
export type DataPart = { prng: number, length: number } | { fill: number, length: number }

export function buildVectorData (parts: DataPart[]): Uint8Array {
  return Buffer.concat(parts.map((p) => 'prng' in p ? prngBytes(p.prng, p.length) : new Uint8Array(p.length).fill(p.fill)))
}
