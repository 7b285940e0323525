import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import {
  SEGMENT_BYTES, challengeIndexes, contentHash, keyedHash, merklePaths, merkleRoot, pathLength, segmentCount, segmentLength, shareLeaves, shareRoot, verifyPath
} from '../../../src/crypto/index.js'

function segment (share: Uint8Array, i: number): Uint8Array {
  return share.subarray(i * SEGMENT_BYTES, i * SEGMENT_BYTES + segmentLength(share.byteLength, i))
}

describe('crypto/merkle: storage-proof commitments', () => {
  it('every segment of a share proves against the root, with a path of the announced length', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 40 * SEGMENT_BYTES + 17 }), fc.integer({ min: 0, max: 2 ** 31 }), (length, seed) => {
      const share = new Uint8Array(length).map((_, i) => (i * 31 + seed) & 0xff)
      const leaves = shareLeaves(share)
      const n = segmentCount(length)
      assert.equal(leaves.length, n)
      const root = merkleRoot(leaves)
      const all = Array.from({ length: n }, (_, i) => i)
      const paths = merklePaths(leaves, all)
      for (const i of all) {
        assert.equal(paths[i]?.length, pathLength(n, i))
        assert.ok(verifyPath(root, n, i, segment(share, i), paths[i] as Uint8Array[]))
      }
    }), { seed: 42, numRuns: 60 })
  })

  it('a flipped bit anywhere in a segment, a wrong position or a truncated path fails verification', () => {
    fc.assert(fc.property(fc.integer({ min: 2, max: 23 }), fc.nat(), fc.nat(), (segments, pick, bit) => {
      const share = new Uint8Array(randomBytes(segments * SEGMENT_BYTES - 100))
      const leaves = shareLeaves(share)
      const n = leaves.length
      const root = shareRoot(share)
      const i = pick % n
      const [path] = merklePaths(leaves, [i]) as [Uint8Array[]]
      const seg = Uint8Array.from(segment(share, i))
      const at = (bit >> 3) % seg.byteLength
      seg[at] = (seg[at] as number) ^ (1 << (bit & 7))
      assert.equal(verifyPath(root, n, i, seg, path), false)
      assert.equal(verifyPath(root, n, (i + 1) % n, segment(share, i), path), false)
      if (path.length > 0) assert.equal(verifyPath(root, n, i, segment(share, i), path.slice(1)), false)
      // a holder that kept only the leaf hashes cannot answer: the leaf is not the segment
      assert.equal(verifyPath(root, n, i, leaves[i] as Uint8Array, path), false)
    }), { seed: 7, numRuns: 80 })
  })

  it('a share of another length never verifies against the commitment (the tree shape is the verifier\'s)', () => {
    const share = new Uint8Array(randomBytes(5 * SEGMENT_BYTES))
    const root = shareRoot(share)
    const truncated = share.subarray(0, 4 * SEGMENT_BYTES)
    const leaves = shareLeaves(truncated)
    const [path] = merklePaths(leaves, [3]) as [Uint8Array[]]
    assert.equal(verifyPath(root, 5, 3, segment(truncated, 3), path), false)
  })

  it('challenge indexes are distinct, in range, determined by the nonce, and all segments when few', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 64 }), (nonce, n, count) => {
      const a = challengeIndexes(nonce, n, count)
      assert.deepEqual(a, challengeIndexes(nonce, n, count))
      assert.equal(a.length, Math.min(n, count))
      assert.equal(new Set(a).size, a.length)
      assert.ok(a.every(i => Number.isInteger(i) && i >= 0 && i < n))
      if (count >= n) assert.deepEqual(a, Array.from({ length: n }, (_, i) => i))
    }), { seed: 3, numRuns: 200 })
    const n = 4096
    const x = challengeIndexes(new Uint8Array(32).fill(1), n, 16)
    const y = challengeIndexes(new Uint8Array(32).fill(2), n, 16)
    assert.notDeepEqual(x, y)
  })

  it('is pinned by a known answer (any change to the tree or the draw is a format change)', () => {
    const share = new Uint8Array(3 * SEGMENT_BYTES + 5).map((_, i) => i & 0xff)
    // the spec restated by hand: four segments, two levels
    const key = (label: string): Uint8Array => contentHash(new TextEncoder().encode(label))
    const leaf = (i: number): Uint8Array => keyedHash(key('p2pbak merkle leaf v1'), share.subarray(i * SEGMENT_BYTES, Math.min((i + 1) * SEGMENT_BYTES, share.byteLength)))
    const node = (a: Uint8Array, b: Uint8Array): Uint8Array => keyedHash(key('p2pbak merkle node v1'), Buffer.concat([a, b]))
    const expected = node(node(leaf(0), leaf(1)), node(leaf(2), leaf(3)))
    assert.equal(Buffer.from(shareRoot(share)).toString('hex'), Buffer.from(expected).toString('hex'))
    assert.equal(Buffer.from(shareRoot(share)).toString('hex'), ROOT_VECTOR)
    assert.deepEqual(challengeIndexes(new Uint8Array(32), 1000, 5), INDEX_VECTOR)
  })
})

const ROOT_VECTOR = '930d8ed291c04c7cd8557c53a06c8256d467df0514d368d4c6842238430f5974'
const INDEX_VECTOR = [607, 91, 900, 515, 678]
