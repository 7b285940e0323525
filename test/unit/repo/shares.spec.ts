import assert from 'node:assert/strict'
import fc from 'fast-check'
import { contentHash, pieceRoots, shareRoot, shareRoots } from '../../../src/crypto/index.js'
import { encodeShards } from '../../../src/erasure/index.js'
import { decodeShareHeader, encodeShareHeader, SHARE_HEADER_BYTES } from '../../../src/format/share.js'
import { asPackId } from '../../../src/ids.js'
import { encodeShares } from '../../../src/repo/index.js'
import { encodeSharePieces } from '../../../src/repo/shares.js'
import { concatBytes } from '../../../src/util/bytes.js'

/** The shares as docs/format/packs.md defines them, built the plain way: header || shard, shard from the codec. */
async function reference (pack: Uint8Array, k: number, m: number): Promise<Uint8Array[]> {
  const id = asPackId(contentHash(pack))
  const shards = await encodeShards(pack, { k, m })
  return shards.map((shard, index) => concatBytes([
    encodeShareHeader({ k, m, index, packLength: pack.byteLength, packId: id, dataHash: contentHash(shard) }), shard
  ]))
}

function bytes (length: number, seed: number): Uint8Array {
  return new Uint8Array(length).map((_, i) => (i * 131 + seed * 7 + (i >> 8)) & 0xff)
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('repo/shares: encodeShares', () => {
  it('gives byte-identical shares to header || codec shard, for every k, m and length (k = 1 skips the codec)', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 20_000 }), fc.nat(),
      async (k, m, length, seed) => {
        const pack = bytes(length, seed)
        const id = asPackId(contentHash(pack))
        const got = await encodeShares(id, pack, k, m)
        assert.deepEqual(got.map(hex), (await reference(pack, k, m)).map(hex))
      }), { seed: 7, numRuns: 60 })
  })

  it('builds share 0 in place around a pack with header room, and the bytes are the same as a copy', async () => {
    for (const [k, m, length] of [[1, 2, 65536], [1, 0, 1000], [1, 3, 4100], [2, 1, 9000]] as const) {
      const pack0 = bytes(length, k + m)
      const id = asPackId(contentHash(pack0))
      // a packer-like buffer: header room, the pack, then spare (dirty) bytes
      const buffer = new Uint8Array(SHARE_HEADER_BYTES + length + 64).fill(0xee)
      buffer.set(pack0, SHARE_HEADER_BYTES)
      const pack = buffer.subarray(SHARE_HEADER_BYTES, SHARE_HEADER_BYTES + length)
      const got = await encodeShares(id, pack, k, m, { headroom: SHARE_HEADER_BYTES })
      assert.deepEqual(got.map(hex), (await reference(pack0, k, m)).map(hex), `${k}+${m}, ${length} bytes`)
      if (k === 1) assert.equal(got[0]?.buffer, buffer.buffer, 'share 0 is a view of the pack\'s buffer')
      assert.equal(decodeShareHeader(got[0] as Uint8Array).index, 0)
    }
  })

  it('does not build in place without enough header room', async () => {
    const pack = bytes(8192, 1)
    const id = asPackId(contentHash(pack))
    const got = await encodeShares(id, pack, 1, 1, { headroom: SHARE_HEADER_BYTES - 1 })
    assert.notEqual(got[0]?.buffer, pack.buffer)
    assert.deepEqual(got.map(hex), (await reference(pack, 1, 1)).map(hex))
  })
})

describe('crypto/merkle: shareRoots', () => {
  it('equals shareRoot of each share, for shares with shared tails (k = 1) and without', async () => {
    for (const [k, m, length] of [[1, 2, 3 * 4096 + 5], [1, 3, 40_000], [2, 2, 50_000], [1, 1, 100], [1, 2, 4096 - SHARE_HEADER_BYTES + 1]] as const) {
      const shares = await encodeShares(asPackId(new Uint8Array(32)), bytes(length, 3), k, m)
      assert.deepEqual(shareRoots(shares).map(hex), shares.map(s => hex(shareRoot(s))), `${k}+${m}, ${length} bytes`)
    }
  })

  it('is not fooled by shares of equal length that differ after the first segment', () => {
    const a = bytes(5 * 4096, 1)
    const b = Uint8Array.from(a)
    b[4 * 4096 + 3] = (b[4 * 4096 + 3] as number) ^ 1
    const c = Uint8Array.from(a)
    c[0] = (c[0] as number) ^ 1
    assert.deepEqual(shareRoots([a, b, c]).map(hex), [a, b, c].map(s => hex(shareRoot(s))))
    assert.notEqual(hex(shareRoot(a)), hex(shareRoot(b)))
  })
})

describe('repo/shares: encodeSharePieces', () => {
  it('pieces that join to encodeShares\' shares; with k = 1 the parity shares hold share 0\'s shard itself, not a copy', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 20_000 }), fc.nat(),
      async (k, m, length, seed) => {
        const pack = bytes(length, seed)
        const id = asPackId(contentHash(pack))
        const got = await encodeSharePieces(id, pack, k, m)
        assert.deepEqual(got.map(p => hex(concatBytes(p))), (await reference(pack, k, m)).map(hex))
        const first = got[0]?.[0] as Uint8Array
        for (const share of got.slice(1)) {
          if (k > 1) { assert.equal(share.length, 1); continue }
          assert.equal(share.length, 2)
          assert.equal(share[1]?.buffer, first.buffer, 'the same memory as share 0')
          assert.equal(share[1]?.byteOffset, first.byteOffset + SHARE_HEADER_BYTES)
        }
      }), { seed: 11, numRuns: 60 })
  })

  it('pieceRoots equals shareRoot of each joined share, and is not fooled by a second piece that only looks alike', async () => {
    for (const [k, m, length] of [[1, 2, 3 * 4096 + 5], [1, 3, 40_000], [2, 2, 50_000], [1, 1, 100], [1, 2, 4096 - SHARE_HEADER_BYTES + 1]] as const) {
      const pieces = await encodeSharePieces(asPackId(new Uint8Array(32)), bytes(length, 3), k, m)
      assert.deepEqual(pieceRoots(pieces).map(hex), pieces.map(p => hex(shareRoot(concatBytes(p)))), `${k}+${m}, ${length} bytes`)
    }
    // a header and a copy of share 0's shard with one byte changed: joined and hashed, not taken for a twin
    const [[zero]] = await encodeSharePieces(asPackId(new Uint8Array(32)), bytes(50_000, 4), 1, 0) as [[Uint8Array]]
    const body = Uint8Array.from(zero.subarray(SHARE_HEADER_BYTES))
    body[30_000] = (body[30_000] as number) ^ 1
    const other = [zero.subarray(0, SHARE_HEADER_BYTES), body]
    assert.deepEqual(pieceRoots([[zero], other]).map(hex), [hex(shareRoot(zero)), hex(shareRoot(concatBytes(other)))])
  })
})
