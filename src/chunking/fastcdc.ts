/**
 * FastCDC (Xia et al., 2016/2020): gear rolling hash, normalized chunking, cut-point skipping.
 *
 * The hash is 32 bits so V8 keeps it in int32 registers: h = ((h << 1) + gear[byte]) mod 2^32.
 * A byte is shifted out after 32 steps, so h depends on exactly the last 32 bytes; the masks test
 * its highest bits, which are the ones that depend on all 32. Hashing starts 31 bytes before the
 * first candidate cut (minSize), so every cut decision depends only on the 32 bytes that end at it
 * and on the distance from the chunk start. Byte-exact spec: docs/format/chunking.md.
 */
import { InvalidArgumentError } from '../errors.js'
import { type ChunkerParams, DEFAULT_CHUNKER_PARAMS, cutMaskBits, topBitsMask, validateChunkerParams } from './params.js'

/** Number of entries of a gear table (one per byte value). */
export const GEAR_TABLE_LENGTH = 256
/** Bytes of the rolling hash window (a 32-bit hash shifted one bit per byte). */
export const GEAR_WINDOW = 32

export class FastCdc {
  readonly params: ChunkerParams
  /** Copy of the caller's table as int32, so loads never box to doubles and later edits by the caller do not matter. */
  private readonly gear: Int32Array
  private readonly maskSmall: number
  private readonly maskLarge: number
  private readonly minSize: number
  private readonly avgSize: number
  private readonly maxSize: number

  constructor (gear: Uint32Array, params: ChunkerParams = DEFAULT_CHUNKER_PARAMS) {
    if (!(gear instanceof Uint32Array) || gear.length !== GEAR_TABLE_LENGTH) {
      throw new InvalidArgumentError(`a gear table is ${GEAR_TABLE_LENGTH} uint32 values`)
    }
    validateChunkerParams(params)
    this.params = Object.freeze({
      minSize: params.minSize,
      avgSize: params.avgSize,
      maxSize: params.maxSize,
      normalization: params.normalization
    })
    this.gear = new Int32Array(GEAR_TABLE_LENGTH)
    for (let i = 0; i < GEAR_TABLE_LENGTH; i++) this.gear[i] = gear[i]! | 0
    const bits = cutMaskBits(this.params)
    this.maskSmall = topBitsMask(bits.small)
    this.maskLarge = topBitsMask(bits.large)
    this.minSize = params.minSize
    this.avgSize = params.avgSize
    this.maxSize = params.maxSize
  }

  /**
   * Length of the next chunk that starts at buf[start], given data up to buf[end] (exclusive).
   * If eof is false and no cut point is found before `end` and end - start < maxSize, returns 0 (feed more data).
   * If eof is true, always returns > 0 when end > start (the tail becomes a chunk). Never returns more than maxSize.
   * A non-zero result never changes when more data follows `end`.
   */
  nextCut (buf: Uint8Array, start: number, end: number, eof: boolean): number {
    if (!(start >= 0 && end <= buf.length)) throw new InvalidArgumentError('nextCut: range outside the buffer')
    const n = end - start
    if (n <= 0) return 0
    const min = this.minSize
    const max = this.maxSize
    // Candidate chunk lengths are min .. max-1 (tested) and max (forced). Fewer than min bytes: no candidate.
    if (n < min) return eof ? n : 0
    // Candidate lengths min .. avg-1 use the small (harder) mask, avg .. max-1 the large one.
    // Index k = start + length - 1 is the last byte of a candidate chunk of that length.
    const first = start + min - 1
    const limit = n < max ? end : start + max - 1 // exclusive bound on k
    const normal = start + this.avgSize - 1
    const stop1 = normal < limit ? normal : limit
    let k = gearScan(this.gear, buf, first, stop1, this.maskSmall)
    if (k < 0 && stop1 < limit) k = gearScan(this.gear, buf, stop1, limit, this.maskLarge)
    if (k >= 0) return k + 1 - start
    if (n >= max) return max
    return eof ? n : 0
  }
}

/**
 * First index k in [from, stop) where the gear hash of the 32 bytes buf[k-31 .. k] has all `mask` bits
 * zero, or -1. Requires from >= 31. The hash is warmed up over buf[from-31 .. from-1] (it forgets
 * anything older), so the result does not depend on where hashing began. Unrolled by 8: V8 then runs
 * about twice as fast as the 1-byte loop; a block that holds a cut is rescanned byte by byte.
 */
function gearScan (g: Int32Array, buf: Uint8Array, from: number, stop: number, mask: number): number {
  let h = 0
  for (let j = from - (GEAR_WINDOW - 1); j < from; j++) h = ((h << 1) + g[buf[j]!]!) | 0
  let i = from
  for (; i + 7 < stop; i += 8) {
    const h1 = ((h << 1) + g[buf[i]!]!) | 0
    const h2 = ((h1 << 1) + g[buf[i + 1]!]!) | 0
    const h3 = ((h2 << 1) + g[buf[i + 2]!]!) | 0
    const h4 = ((h3 << 1) + g[buf[i + 3]!]!) | 0
    const h5 = ((h4 << 1) + g[buf[i + 4]!]!) | 0
    const h6 = ((h5 << 1) + g[buf[i + 5]!]!) | 0
    const h7 = ((h6 << 1) + g[buf[i + 6]!]!) | 0
    const h8 = ((h7 << 1) + g[buf[i + 7]!]!) | 0
    if ((h1 & mask) === 0 || (h2 & mask) === 0 || (h3 & mask) === 0 || (h4 & mask) === 0 ||
      (h5 & mask) === 0 || (h6 & mask) === 0 || (h7 & mask) === 0 || (h8 & mask) === 0) break
    h = h8
  }
  for (; i < stop; i++) {
    h = ((h << 1) + g[buf[i]!]!) | 0
    if ((h & mask) === 0) return i
  }
  return -1
}

/** Cut points of a whole buffer, as chunk lengths in order (empty for empty data). */
export function chunkLengths (cdc: FastCdc, data: Uint8Array): number[] {
  const out: number[] = []
  const end = data.length
  let pos = 0
  while (pos < end) {
    const len = cdc.nextCut(data, pos, end, true)
    out.push(len)
    pos += len
  }
  return out
}
