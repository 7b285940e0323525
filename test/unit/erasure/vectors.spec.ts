import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { decodeShards, encodeShards, rebuildShards, shardSize } from '../../../src/erasure/index.js'
import { formulaData, type ErasureVectors } from '../../vectors/generate-erasure.js'

const vectors = JSON.parse(readFileSync(new URL('../../vectors/erasure.json', import.meta.url), 'utf8')) as ErasureVectors
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const fromHex = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, 'hex'))
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('erasure golden vectors (test/vectors/erasure.json)', () => {
  it('has the cases the doc lists', () => {
    assert.equal(vectors.small.length, 6)
    assert.equal(vectors.large.length, 2)
  })

  for (const c of vectors.small) {
    it(`shards unchanged: ${c.name}`, async () => {
      const data = fromHex(c.data)
      assert.equal(shardSize(data.byteLength, c.k), c.shardSize)
      assert.deepEqual((await encodeShards(data, c)).map(hex), c.shards)
      // and the recorded bytes decode and rebuild from the last k shards (parity first)
      const n = c.k + c.m
      const lastK = new Map(c.shards.slice(n - c.k).map((s, i) => [n - c.k + i, fromHex(s)]))
      assert.equal(hex(await decodeShards(lastK, c, data.byteLength)), c.data)
      const rebuilt = await rebuildShards(lastK, c, Array.from({ length: n }, (_, i) => i))
      assert.deepEqual([...rebuilt.values()].map(hex), c.shards)
    })
  }

  for (const c of vectors.large) {
    it(`shard hashes unchanged: ${c.name}`, async () => {
      const data = formulaData(c.dataLength)
      assert.equal(sha256(data), c.dataSha256)
      assert.equal(shardSize(c.dataLength, c.k), c.shardSize)
      assert.deepEqual((await encodeShards(data, c)).map(sha256), c.shardSha256)
    })
  }
})
