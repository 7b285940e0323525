/**
 * Building the k + m shares of a pack (docs/format/packs.md §shares) and recording, for each share
 * placed on a peer, the commitment its holder will be challenged against (docs/format/proofs.md).
 * The code is systematic and deterministic: the same pack always gives byte-identical shares, so a
 * repair re-creates exactly the share that was lost, and its commitment is unchanged.
 */
import { contentHash, pieceRoots } from '../crypto/index.js'
import { decodeShareHeader, encodeShareHeader, SHARE_HEADER_BYTES } from '../format/share.js'
import { encodeShards, MAX_M, shardSize } from '../erasure/index.js'
import { InvalidArgumentError } from '../errors.js'
import type { PackId } from '../ids.js'
import type { IndexDb } from '../store/index.js'

export interface EncodeSharesOptions {
  /**
   * Writable bytes before `pack` in its ArrayBuffer (the packer leaves SHARE_HEADER_BYTES). With
   * enough of them, and room after the pack for the zero padding of its last data shard, share 0 is
   * built in place around the pack instead of in a copy; the caller's buffer is then part of share 0
   * until the shares are no longer used.
   */
  headroom?: number
  /** allocates the buffer of a share (a pool); contents may be dirty, every byte is overwritten. @default new Uint8Array */
  alloc?: (bytes: number) => Uint8Array
}

/**
 * The k + m shares (header || shard) of a pack, by index. Memory: with k = 1 (every shard is the data
 * shard, docs/placement-and-repair.md §2) no coding is done and each share is one allocation and one
 * copy (share 0 none at all when built in place); with k > 1 the stripe is coded once and each share
 * is header || a copy of its shard.
 */
export async function encodeShares (id: PackId, pack: Uint8Array, k: number, m: number, options: EncodeSharesOptions = {}): Promise<Uint8Array[]> {
  if (!Number.isInteger(m) || m < 0 || m > MAX_M) throw new InvalidArgumentError(`m must be an integer in 0..${MAX_M}, got ${m}`)
  const size = shardSize(pack.byteLength, k)
  const alloc = options.alloc ?? ((bytes: number) => new Uint8Array(bytes))
  const header = (index: number, dataHash: Uint8Array): Uint8Array =>
    encodeShareHeader({ k, m, index, packLength: pack.byteLength, packId: id, dataHash })
  if (k === 1) {
    // systematic with k = 1: the data shard is the pack zero padded to `size`, each parity shard a copy of it
    const first = inPlaceShare(pack, size, options.headroom ?? 0) ?? withHeaderRoom(pack, size, alloc)
    const shard = first.subarray(SHARE_HEADER_BYTES)
    const dataHash = contentHash(shard)
    first.set(header(0, dataHash), 0)
    const shares = [first]
    for (let index = 1; index < 1 + m; index++) {
      const share = alloc(SHARE_HEADER_BYTES + size)
      share.set(header(index, dataHash), 0)
      share.set(shard, SHARE_HEADER_BYTES)
      shares.push(share)
    }
    return shares
  }
  const shards = await encodeShards(pack, { k, m })
  return shards.map((shard, index) => {
    const share = alloc(SHARE_HEADER_BYTES + shard.byteLength)
    share.set(header(index, contentHash(shard)), 0)
    share.set(shard, SHARE_HEADER_BYTES)
    return share
  })
}

/**
 * A share as pieces: their concatenation is the share. What a share store may send or write without
 * joining them (ShareStore.putParts).
 */
export type SharePieces = readonly Uint8Array[]

/**
 * {@link encodeShares} without the copies of the shard with k = 1: share 0 is one piece (in place
 * around the pack when the headroom allows), and every parity share is two, its own header and share
 * 0's shard (the same view), so a pack put to a group costs one shard of memory, not 1 + m. With
 * k > 1 every share is one piece, as encodeShares makes it. The pieces stay valid while share 0 is.
 */
export async function encodeSharePieces (id: PackId, pack: Uint8Array, k: number, m: number, options: EncodeSharesOptions = {}): Promise<SharePieces[]> {
  if (k !== 1) return (await encodeShares(id, pack, k, m, options)).map(share => [share])
  const [first] = await encodeShares(id, pack, 1, 0, options) as [Uint8Array]
  const shard = first.subarray(SHARE_HEADER_BYTES)
  // share 0's header says m = 0 above: every share of the stripe carries the stripe's (k, m), and
  // the shard's hash, computed once
  const { dataHash } = decodeShareHeader(first)
  const header = (index: number): Uint8Array => encodeShareHeader({ k: 1, m, index, packLength: pack.byteLength, packId: id, dataHash })
  first.set(header(0), 0)
  const shares: SharePieces[] = [[first]]
  for (let index = 1; index < 1 + m; index++) shares.push([header(index), shard])
  return shares
}

/** The byte length of a share given as pieces. */
export function piecesLength (share: SharePieces): number {
  return share.reduce((n, p) => n + p.byteLength, 0)
}

/**
 * header room || pack || zero padding to `size`, as a view of the pack's own buffer, when the buffer
 * has `headroom` >= SHARE_HEADER_BYTES before the pack and room for the padding after it; else undefined.
 */
function inPlaceShare (pack: Uint8Array, size: number, headroom: number): Uint8Array | undefined {
  if (headroom < SHARE_HEADER_BYTES || pack.byteOffset < SHARE_HEADER_BYTES) return undefined
  if (pack.byteOffset + size > pack.buffer.byteLength) return undefined
  const share = new Uint8Array(pack.buffer, pack.byteOffset - SHARE_HEADER_BYTES, SHARE_HEADER_BYTES + size)
  share.fill(0, SHARE_HEADER_BYTES + pack.byteLength)
  return share
}

/** A new SHARE_HEADER_BYTES + size buffer holding the pack (zero padded) after the header room. */
function withHeaderRoom (pack: Uint8Array, size: number, alloc: (bytes: number) => Uint8Array): Uint8Array {
  const share = alloc(SHARE_HEADER_BYTES + size)
  share.set(pack, SHARE_HEADER_BYTES)
  share.fill(0, SHARE_HEADER_BYTES + pack.byteLength)
  return share
}

/**
 * Records the commitment of each share in `indexes` as freshly placed: never challenged yet, due at
 * `now` (the first audit confirms the upload landed; the auditor's budget spreads the load).
 */
export async function recordCommitments (index: IndexDb, id: PackId, shares: ReadonlyArray<Uint8Array | SharePieces>, indexes: Iterable<number>, now = Date.now()): Promise<void> {
  const pieces = (i: number): SharePieces => { const s = shares[i] as Uint8Array | SharePieces; return s instanceof Uint8Array ? [s] : s }
  const chosen = [...indexes].filter(i => shares[i] !== undefined)
  const roots = pieceRoots(chosen.map(pieces))
  for (const [n, i] of chosen.entries()) {
    await index.audit.putShare(id, i, { root: roots[n] as Uint8Array, length: piecesLength(pieces(i)), nextDueMs: now, lastCheckMs: now, lastPassMs: 0, state: 'unknown', strikes: 0, reason: '' })
  }
}
