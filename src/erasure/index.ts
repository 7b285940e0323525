/**
 * @packageDocumentation
 * Erasure coding of packs: k data shards + m parity shards, any k of which rebuild the pack.
 *
 * The code is the systematic Cauchy Reed-Solomon code of @ronomon/reed-solomon 6.0.0 (XOR-only
 * "bitmatrix" coding over GF(2^w), w ∈ {2, 4, 8} chosen per (k, m)). Shards 0..k-1 are the data cut
 * in k equal pieces and zero padded; shards k..k+m-1 are parity. docs/placement-and-repair.md §2 is
 * the byte-exact spec and test/vectors/erasure.json pins it.
 */
import { InvalidArgumentError, NotEnoughSharesError } from '../errors.js'
import { codeInPlace } from './binding.js'

/** k data shards and m parity shards: 1 <= k <= 24, 0 <= m <= 6 (m = 0 means the k data shards only). */
export interface ErasureParams { k: number, m: number }

export const MAX_K = 24
export const MAX_M = 6

/** The addon addresses buffers with 32-bit sizes. */
const MAX_STRIPE_BYTES = 0xffff_ffff

/** bytes per shard for data of this length: ceil(len / k) rounded up to a multiple of 8 (at least 8) */
export function shardSize (dataLength: number, k: number): number {
  if (!Number.isSafeInteger(dataLength) || dataLength < 0) throw new InvalidArgumentError(`data length must be a non-negative integer, got ${dataLength}`)
  if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw new InvalidArgumentError(`k must be an integer in 1..${MAX_K}, got ${k}`)
  return Math.max(8, Math.ceil(Math.ceil(dataLength / k) / 8) * 8)
}

function checkParams (p: ErasureParams): void {
  if (!Number.isInteger(p.k) || p.k < 1 || p.k > MAX_K) throw new InvalidArgumentError(`k must be an integer in 1..${MAX_K}, got ${p.k}`)
  if (!Number.isInteger(p.m) || p.m < 0 || p.m > MAX_M) throw new InvalidArgumentError(`m must be an integer in 0..${MAX_M}, got ${p.m}`)
}

function checkStripe (size: number, p: ErasureParams): void {
  if (size * Math.max(p.k, p.m) > MAX_STRIPE_BYTES) throw new InvalidArgumentError(`a stripe of ${p.k}+${p.m} shards of ${size} bytes is too large`)
}

/** k data shards (one Buffer) and m parity shards (another), all `size` bytes. */
interface Stripe { size: number, data: Buffer, parity: Buffer }

/**
 * Uninitialised memory is safe here: every byte the caller can see is either copied in or written by
 * the addon, which starts each computed packet with a copy (no row of its bit matrices is all zero:
 * they are invertible). Absent shards that were not asked for may hold garbage and are never returned.
 */
function newStripe (size: number, p: ErasureParams): Stripe {
  return { size, data: Buffer.allocUnsafeSlow(size * p.k), parity: Buffer.allocUnsafeSlow(size * p.m) }
}

const view = (buf: Buffer, i: number, size: number): Uint8Array => buf.subarray(i * size, (i + 1) * size)

function shardOf (s: Stripe, k: number, index: number): Uint8Array {
  return index < k ? view(s.data, index, s.size) : view(s.parity, index - k, s.size)
}

/**
 * Systematic Reed-Solomon: returns k + m shards of shardSize(len, k) bytes; shards 0..k-1 are the
 * data (zero padded), k..k+m-1 parity. The shards are views of two fresh buffers, not of `data`.
 */
export async function encodeShards (data: Uint8Array, p: ErasureParams): Promise<Uint8Array[]> {
  checkParams(p)
  const { k, m } = p
  const size = shardSize(data.byteLength, k)
  checkStripe(size, p)
  const s = newStripe(size, p)
  s.data.set(data)
  s.data.fill(0, data.byteLength)
  if (m > 0) await codeInPlace(k, m, ones(0, k), ones(k, k + m), s.data, s.parity)
  return Array.from({ length: k + m }, (_, i) => shardOf(s, k, i))
}

/**
 * The original data (exactly `dataLength` bytes) from ANY k shards (index -> shard). Fewer than k
 * -> NotEnoughSharesError naming how many were available. A shard that is not
 * shardSize(dataLength, k) bytes, or an index outside 0..k+m-1 -> InvalidArgumentError.
 */
export async function decodeShards (shards: ReadonlyMap<number, Uint8Array>, p: ErasureParams, dataLength: number): Promise<Uint8Array> {
  checkParams(p)
  const size = shardSize(dataLength, p.k)
  checkShards(shards, p, size)
  const missing = dataShardsMissing(shards, p.k)
  if (missing.length === 0) { // systematic: the data shards are the data
    const out = new Uint8Array(dataLength)
    for (let i = 0, off = 0; off < dataLength; i++, off += size) {
      out.set((shards.get(i) as Uint8Array).subarray(0, Math.min(size, dataLength - off)), off)
    }
    return out
  }
  const s = await complete(shards, p, size, missing)
  return s.data.subarray(0, dataLength)
}

/**
 * Rebuilds the listed shard indexes from any k others (repair). Every given shard must have the same
 * size, a positive multiple of 8. The result holds exactly the wanted indexes (fresh copies, also
 * for wanted shards that were given).
 */
export async function rebuildShards (shards: ReadonlyMap<number, Uint8Array>, p: ErasureParams, want: readonly number[]): Promise<Map<number, Uint8Array>> {
  checkParams(p)
  const n = p.k + p.m
  for (const i of want) {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new InvalidArgumentError(`share index ${i} is outside 0..${n - 1} for ${p.k}+${p.m}`)
  }
  const first = shards.values().next()
  const size = first.done === true ? 8 : first.value.byteLength
  if (size === 0 || size % 8 !== 0) throw new InvalidArgumentError(`shards must be a positive multiple of 8 bytes, got ${size}`)
  checkShards(shards, p, size)
  const missing = want.filter((i) => !shards.has(i))
  const s = await complete(shards, p, size, missing)
  const out = new Map<number, Uint8Array>()
  for (const i of want) out.set(i, shardOf(s, p.k, i))
  return out
}

function checkShards (shards: ReadonlyMap<number, Uint8Array>, p: ErasureParams, size: number): void {
  const n = p.k + p.m
  checkStripe(size, p)
  for (const [i, shard] of shards) {
    if (!Number.isInteger(i) || i < 0 || i >= n) throw new InvalidArgumentError(`share index ${i} is outside 0..${n - 1} for ${p.k}+${p.m}`)
    if (shard.byteLength !== size) throw new InvalidArgumentError(`share ${i} is ${shard.byteLength} bytes, expected ${size}`)
  }
  if (shards.size < p.k) {
    throw new NotEnoughSharesError(`only ${shards.size} of the ${p.k} shares needed to rebuild the data are available (${p.k}+${p.m} stripe)`)
  }
}

function dataShardsMissing (shards: ReadonlyMap<number, Uint8Array>, k: number): number[] {
  const out: number[] = []
  for (let i = 0; i < k; i++) if (!shards.has(i)) out.push(i)
  return out
}

/**
 * Copies the given shards into a stripe and computes the `targets` (indexes absent from `shards`).
 * Needs at least k shards (checked by the caller), so at most m targets.
 */
async function complete (shards: ReadonlyMap<number, Uint8Array>, p: ErasureParams, size: number, targets: readonly number[]): Promise<Stripe> {
  const { k, m } = p
  const s = newStripe(size, p)
  let present = 0
  for (const [i, shard] of shards) {
    (i < k ? s.data : s.parity).set(shard, (i < k ? i : i - k) * size)
    present |= 1 << i
  }
  let want = 0
  for (const i of targets) want |= 1 << i
  // m = 0 never gets here with targets: all k shards are then present (checkShards).
  if (want !== 0) await codeInPlace(k, m, present, want, s.data, s.parity)
  return s
}

/** The bit set {from, …, to - 1}. */
function ones (from: number, to: number): number {
  let bits = 0
  for (let i = from; i < to; i++) bits |= 1 << i
  return bits
}
