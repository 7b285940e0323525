/**
 * Blob compression: zstd (native binding), kept only when it saves at least 1/32 of the size, so
 * incompressible chunks (media, archives, already-encrypted files) cost one fast failed attempt.
 */
import * as zstd from 'zstd-napi'
import { Compression } from '../format/pack.js'
import { CorruptDataError } from '../errors.js'

export const DEFAULT_ZSTD_LEVEL = 3

export interface Compressed { compression: Compression, data: Uint8Array }

export function compressBlob (plain: Uint8Array, level = DEFAULT_ZSTD_LEVEL): Compressed {
  if (level <= 0 || plain.byteLength < 64) return { compression: Compression.None, data: plain }
  const out = zstd.compress(plain, { compressionLevel: level })
  if (out.byteLength > plain.byteLength - (plain.byteLength >>> 5)) return { compression: Compression.None, data: plain }
  return { compression: Compression.Zstd, data: out }
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
