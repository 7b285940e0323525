/**
 * Storage-proof commitments (docs/format/proofs.md): a binary Merkle tree over the fixed-size
 * segments of a share, and the challenge indexes a nonce selects. The publisher keeps only the root
 * and the share's length; a holder proves it still has a segment by sending the segment itself and
 * the sibling hashes on its way to the root.
 *
 *   segment i   = share[i*SEGMENT_BYTES, min((i+1)*SEGMENT_BYTES, length))
 *   leaf        = BLAKE3-keyed(LEAF_KEY, segment)
 *   parent      = BLAKE3-keyed(NODE_KEY, left || right)
 *   a level with an odd number of nodes promotes its last node unchanged to the next level
 *   root        = the single node of the top level (a one-segment share's root is its leaf)
 */
import { contentHash, HASH_BYTES, keyedHash, keyedHashFunction } from './hash.js'
import { equalBytes, utf8Encode } from '../util/bytes.js'

/** Bytes per segment (the last one may be shorter). Fixed by proof format version 1. */
export const SEGMENT_BYTES = 4096
export const MERKLE_HASH_BYTES = HASH_BYTES

const LEAF_KEY = contentHash(utf8Encode('p2pbak merkle leaf v1'))
const NODE_KEY = contentHash(utf8Encode('p2pbak merkle node v1'))
const INDEX_KEY = contentHash(utf8Encode('p2pbak challenge index v1'))

/** Number of segments of a share of `length` bytes (an empty share has one empty segment). */
export function segmentCount (length: number): number {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`a share length is a non-negative integer, got ${length}`)
  return Math.max(1, Math.ceil(length / SEGMENT_BYTES))
}

/** Byte length of segment `i` of a share of `length` bytes. */
export function segmentLength (length: number, i: number): number {
  const n = segmentCount(length)
  if (!Number.isInteger(i) || i < 0 || i >= n) throw new RangeError(`segment ${i} of ${n}`)
  return Math.min(SEGMENT_BYTES, length - i * SEGMENT_BYTES)
}

const leafHasher = keyedHashFunction(LEAF_KEY)
const nodeHasher = keyedHashFunction(NODE_KEY)
/** left || right, reused: the hasher copies its input before nodeHash returns */
const pair = new Uint8Array(2 * HASH_BYTES)

export function leafHash (segment: Uint8Array): Uint8Array {
  return leafHasher(segment)
}

function nodeHash (left: Uint8Array, right: Uint8Array): Uint8Array {
  pair.set(left, 0)
  pair.set(right, HASH_BYTES)
  return nodeHasher(pair)
}

/** The leaf hashes of a whole share, in segment order. */
export function shareLeaves (share: Uint8Array): Uint8Array[] {
  const n = segmentCount(share.byteLength)
  const out: Uint8Array[] = new Array<Uint8Array>(n)
  for (let i = 0; i < n; i++) out[i] = leafHash(share.subarray(i * SEGMENT_BYTES, Math.min((i + 1) * SEGMENT_BYTES, share.byteLength)))
  return out
}

/** Every level of the tree, leaves first, root last. */
function levels (leaves: readonly Uint8Array[]): Uint8Array[][] {
  if (leaves.length === 0) throw new RangeError('a Merkle tree needs at least one leaf')
  const out: Uint8Array[][] = [[...leaves]]
  let level = out[0] as Uint8Array[]
  while (level.length > 1) {
    const next: Uint8Array[] = []
    for (let i = 0; i < level.length; i += 2) {
      next.push(i + 1 < level.length ? nodeHash(level[i] as Uint8Array, level[i + 1] as Uint8Array) : level[i] as Uint8Array)
    }
    out.push(next)
    level = next
  }
  return out
}

export function merkleRoot (leaves: readonly Uint8Array[]): Uint8Array {
  const all = levels(leaves)
  return (all[all.length - 1] as Uint8Array[])[0] as Uint8Array
}

/** The commitment of a share: the root of its segment tree. */
export function shareRoot (share: Uint8Array): Uint8Array {
  return merkleRoot(shareLeaves(share))
}

/**
 * The commitments of several shares at once: the same as `shares.map(shareRoot)`. Shares whose bytes
 * after the first segment are identical (with k = 1 every share is its own header followed by the same
 * shard) share those leaves and nodes: only the first leaf and its path to the root are recomputed.
 */
export function shareRoots (shares: readonly Uint8Array[]): Uint8Array[] {
  return pieceRoots(shares.map(share => [share]))
}

/**
 * {@link shareRoots} of shares given as pieces (each share the concatenation of its pieces). A share of
 * two pieces whose second is the same view as the bytes after the header of an earlier one-piece share
 * (with k = 1, every share is its own header followed by share 0's shard) reuses that share's tree:
 * only its first segment (4 KiB, joined) is hashed. Any other share is joined and hashed.
 */
export function pieceRoots (shares: ReadonlyArray<readonly Uint8Array[]>): Uint8Array[] {
  const built: Array<{ share: Uint8Array, levels: Uint8Array[][] }> = []
  return shares.map(pieces => {
    const [head, body] = pieces
    const twin = pieces.length === 1 && head !== undefined
      ? twinOf(built, head)
      : pieces.length === 2 && head !== undefined && body !== undefined && head.byteLength < SEGMENT_BYTES
        ? built.find(b => b.share.byteLength === head.byteLength + body.byteLength && b.share.byteLength > SEGMENT_BYTES && sameView(b.share.subarray(head.byteLength), body))
        : undefined
    if (twin === undefined) {
      const share = pieces.length === 1 ? pieces[0] as Uint8Array : joined(pieces)
      const all = levels(shareLeaves(share))
      built.push({ share, levels: all })
      return (all[all.length - 1] as Uint8Array[])[0] as Uint8Array
    }
    const first = pieces.length === 1 ? (head as Uint8Array).subarray(0, SEGMENT_BYTES) : joined([head as Uint8Array, (body as Uint8Array).subarray(0, SEGMENT_BYTES - (head as Uint8Array).byteLength)])
    let h = leafHash(first)
    for (let l = 0; l < twin.levels.length - 1; l++) {
      const level = twin.levels[l] as Uint8Array[]
      if (level.length > 1) h = nodeHash(h, level[1] as Uint8Array)
    }
    return h
  })
}

/** An earlier share whose bytes after the first segment are those of `share`. */
function twinOf<T extends { share: Uint8Array }> (built: readonly T[], share: Uint8Array): T | undefined {
  if (share.byteLength <= SEGMENT_BYTES) return undefined
  return built.find(b => b.share.byteLength === share.byteLength && equalBytes(b.share.subarray(SEGMENT_BYTES), share.subarray(SEGMENT_BYTES)))
}

/** True when `a` and `b` view the very same bytes (same buffer, offset and length). */
function sameView (a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.byteLength === b.byteLength
}

function joined (pieces: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.byteLength, 0))
  let off = 0
  for (const p of pieces) { out.set(p, off); off += p.byteLength }
  return out
}

/** Number of sibling hashes on the path of leaf `i` in a tree of `n` leaves. */
export function pathLength (n: number, i: number): number {
  let count = 0
  let width = n
  let pos = i
  while (width > 1) {
    if ((pos ^ 1) < width) count++
    pos >>= 1
    width = Math.ceil(width / 2)
  }
  return count
}

/**
 * The sibling hashes from leaf `i` up to the root, for several leaves at once (one tree build).
 * Each path lists only the levels where the node has a sibling.
 */
export function merklePaths (leaves: readonly Uint8Array[], indexes: readonly number[]): Uint8Array[][] {
  const all = levels(leaves)
  return indexes.map(i => {
    if (!Number.isInteger(i) || i < 0 || i >= leaves.length) throw new RangeError(`leaf ${i} of ${leaves.length}`)
    const path: Uint8Array[] = []
    let pos = i
    for (let l = 0; l < all.length - 1; l++) {
      const level = all[l] as Uint8Array[]
      const sib = pos ^ 1
      if (sib < level.length) path.push(level[sib] as Uint8Array)
      pos >>= 1
    }
    return path
  })
}

/** True iff `segment` at position `i` of a tree of `n` leaves, with `path`, leads to `root`. */
export function verifyPath (root: Uint8Array, n: number, i: number, segment: Uint8Array, path: readonly Uint8Array[]): boolean {
  if (!Number.isInteger(i) || i < 0 || i >= n || path.length !== pathLength(n, i)) return false
  let h = leafHash(segment)
  let pos = i
  let width = n
  let p = 0
  while (width > 1) {
    const sib = pos ^ 1
    if (sib < width) {
      const s = path[p++] as Uint8Array
      if (s.byteLength !== HASH_BYTES) return false
      h = (pos & 1) === 0 ? nodeHash(h, s) : nodeHash(s, h)
    }
    pos >>= 1
    width = Math.ceil(width / 2)
  }
  if (h.byteLength !== root.byteLength) return false
  let diff = 0
  for (let j = 0; j < h.byteLength; j++) diff |= (h[j] as number) ^ (root[j] as number)
  return diff === 0
}

/**
 * The segments a challenge with `nonce` asks for in a share of `n` segments: min(n, count) distinct
 * indexes, in the order drawn. Draw j is u32le(BLAKE3-keyed(INDEX_KEY, nonce || u32le(j))[0..4]) mod n;
 * a draw already taken is skipped. With count >= n every segment is asked, in index order.
 */
export function challengeIndexes (nonce: Uint8Array, n: number, count: number): number[] {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`a share has at least one segment, got ${n}`)
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`a challenge asks for at least one segment, got ${count}`)
  if (count >= n) return Array.from({ length: n }, (_, i) => i)
  const taken = new Set<number>()
  const out: number[] = []
  const input = new Uint8Array(nonce.byteLength + 4)
  input.set(nonce, 0)
  const view = new DataView(input.buffer)
  for (let j = 0; out.length < count; j++) {
    view.setUint32(nonce.byteLength, j, true)
    const h = keyedHash(INDEX_KEY, input)
    const draw = new DataView(h.buffer, h.byteOffset, 4).getUint32(0, true) % n
    if (taken.has(draw)) continue
    taken.add(draw)
    out.push(draw)
  }
  return out
}
