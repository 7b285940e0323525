/**
 * Types for the part of @ronomon/reed-solomon 6.0.0 that p2pbak calls (the package ships none).
 * It is a CommonJS native addon (`main` is binding.node), loaded with createRequire in binding.ts.
 *
 * Shards live in two Buffers: `buffer` holds the k data shards back to back, `parity` the m parity
 * shards. `sources` and `targets` are bit sets over share indexes 0..k+m-1 (bit i = share i). The
 * addon throws synchronously on bad arguments (sources < k, more than m targets, a shard size that is
 * not a multiple of 8, …) and otherwise calls `end` from the libuv pool with no argument.
 */
declare module '@ronomon/reed-solomon' {
  /** 24 */
  export const MAX_K: number
  /** 6 */
  export const MAX_M: number
  /** An encoding context for (k, m): 1 <= k <= 24, 1 <= m <= 6 (m = 0 throws). Reusable concurrently. */
  export function create (k: number, m: number): Buffer
  /**
   * Computes every share in `targets` (and, in general, every share not in `sources`) from the shares
   * in `sources`, in place. Every shard is (bufferSize / k) bytes, which must equal paritySize / m.
   */
  export function encode (
    context: Buffer, sources: number, targets: number,
    buffer: Buffer, bufferOffset: number, bufferSize: number,
    parity: Buffer, parityOffset: number, paritySize: number,
    end: (error?: Error) => void
  ): void
}
