/**
 * Chunker parameters: their defaults, their validation and the two cut masks derived from them.
 * The exact rules are specified in docs/format/chunking.md; the parameters are part of the repository
 * format (they fix the cut points, hence deduplication) and are stored in the repository config.
 */
import { InvalidConfigError } from '../errors.js'

export interface ChunkerParams {
  /** No chunk but the last of a stream is shorter; no cut point is tested below it. */
  minSize: number
  /** A power of two; the normalization point and the scale of both masks. */
  avgSize: number
  /** No chunk is longer; a chunk that reaches it is cut there. */
  maxSize: number
  /** Normalization level (FastCDC "NC"): masks have log2(avgSize) ± this many bits. 0 turns it off. */
  normalization: number
}

const KiB = 1024
const MiB = 1024 * KiB

/**
 * About 1 MiB chunks (mean 0.93 MiB on random data: minSize + avgSize), like restic: min 448 KiB,
 * avgSize 512 KiB, max 4 MiB, normalization 0. Chosen by measurement (docs/format/chunking.md
 * §Default parameters): after a 1 MiB insertion this stores 2.4 MiB of new chunks on average and more
 * than 5 MiB in under 1 % of cases, where 256 KiB / 1 MiB / 4 MiB with normalization 2 exceeds 5 MiB in 13 %.
 */
export const DEFAULT_CHUNKER_PARAMS: ChunkerParams = Object.freeze({
  minSize: 448 * KiB,
  avgSize: 512 * KiB,
  maxSize: 4 * MiB,
  normalization: 0
})

/** Limits of the format (docs/format/chunking.md §Parameters). */
export const CHUNKER_LIMITS = Object.freeze({
  /** The hash window is 32 bytes and needs 31 bytes of warm-up inside the chunk. */
  minMinSize: 64,
  maxMaxSize: 64 * MiB,
  maxNormalization: 3
})

/** Bits of the 32-bit gear hash that must be zero for a cut (the mask's top-aligned width). */
export interface CutMasks {
  /** Used for chunk lengths below avgSize: log2(avgSize) + normalization bits (harder to match). */
  small: number
  /** Used for chunk lengths from avgSize on: log2(avgSize) - normalization bits (easier to match). */
  large: number
}

function isPositiveInt (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0
}

function isPowerOfTwo (v: number): boolean {
  return v > 0 && (v & (v - 1)) === 0
}

/** Throws InvalidConfigError unless `p` obeys every rule of docs/format/chunking.md §Parameters. */
export function validateChunkerParams (p: ChunkerParams): void {
  const bad = (why: string): never => {
    throw new InvalidConfigError(`invalid chunker parameters (${why}): ` +
      `min=${String(p.minSize)} avg=${String(p.avgSize)} max=${String(p.maxSize)} normalization=${String(p.normalization)}`)
  }
  if (typeof p !== 'object' || p === null) bad('not an object')
  if (!isPositiveInt(p.minSize) || !isPositiveInt(p.avgSize) || !isPositiveInt(p.maxSize)) bad('sizes must be positive integers')
  if (!Number.isInteger(p.normalization) || p.normalization < 0 || p.normalization > CHUNKER_LIMITS.maxNormalization) {
    bad(`normalization must be an integer from 0 to ${CHUNKER_LIMITS.maxNormalization}`)
  }
  if (p.maxSize > CHUNKER_LIMITS.maxMaxSize) bad('maxSize must be at most 64 MiB')
  if (!isPowerOfTwo(p.avgSize)) bad('avgSize must be a power of two')
  if (p.minSize < CHUNKER_LIMITS.minMinSize) bad(`minSize must be at least ${CHUNKER_LIMITS.minMinSize}`)
  if (!(p.minSize < p.avgSize && p.avgSize < p.maxSize)) bad('need minSize < avgSize < maxSize')
}

/** Mask widths for valid params (validate first). */
export function cutMaskBits (p: ChunkerParams): CutMasks {
  const bits = Math.log2(p.avgSize)
  return { small: bits + p.normalization, large: bits - p.normalization }
}

/** A 32-bit mask with its `bits` highest bits set, as a signed int32 (so V8 keeps it a small integer). */
export function topBitsMask (bits: number): number {
  if (bits <= 0) return 0
  if (bits >= 32) return -1
  return (~0 << (32 - bits)) | 0
}
