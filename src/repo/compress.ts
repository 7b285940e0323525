/**
 * Blob compression: zstd (native binding), kept only when it saves at least 1/32 of the size, so
 * incompressible chunks (media, archives, already-encrypted files) cost one fast failed attempt.
 */
import * as zstd from 'zstd-napi'
// the binding's one-shot context compresses into a buffer the caller gives (zstd-napi's Compressor allocates its output)
import zstdBinding from 'zstd-napi/binding.js'
import { Compression } from '../format/pack.js'
import { CorruptDataError } from '../errors.js'

export const DEFAULT_ZSTD_LEVEL = 3

export interface Compressed {
  compression: Compression
  data: Uint8Array
  /** gives the buffers under `data` back to their pool once the caller has copied it (pooled results only) */
  release?: () => void
}

/** One compression context per thread (each worker loads this module on its own). */
let cctx: zstdBinding.CCtx | undefined

/** Bytes an output buffer of compressInto needs for `length` bytes of input. */
export function compressedBound (length: number): number {
  return zstdBinding.compressBound(length)
}

/**
 * Compresses `plain` into `out` (at least compressedBound(plain.byteLength) bytes) and returns the
 * compressed length, or -1 when compression does not pay (the blob is stored as it is).
 */
export function compressInto (plain: Uint8Array, out: Uint8Array, level = DEFAULT_ZSTD_LEVEL): number {
  if (level <= 0 || plain.byteLength < 64) return -1
  cctx ??= new zstdBinding.CCtx()
  const n = cctx.compress(out, plain, level)
  return n > plain.byteLength - (plain.byteLength >>> 5) ? -1 : n
}

export function compressBlob (plain: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Compressed {
  if (level <= 0 || plain.byteLength < 64) return { compression: Compression.None, data: plain }
  const out = new Uint8Array(compressedBound(plain.byteLength))
  const n = compressInto(plain, out, level)
  if (n < 0) return { compression: Compression.None, data: plain }
  return { compression: Compression.Zstd, data: out.subarray(0, n) }
}

export function decompressBlob (compression: number, data: Uint8Array, rawLength: number): Uint8Array {
  if (compression === Compression.None) {
    if (data.byteLength !== rawLength) throw new CorruptDataError(`a stored blob has ${data.byteLength} bytes, its header says ${rawLength}`)
    return data
  }
  let out: Uint8Array
  try {
    out = zstd.decompress(data)
  } catch (err: unknown) {
    throw new CorruptDataError('a blob does not decompress', { cause: err })
  }
  if (out.byteLength !== rawLength) throw new CorruptDataError(`a blob decompressed to ${out.byteLength} bytes, expected ${rawLength}`)
  return out
}
