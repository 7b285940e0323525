import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { chunkLengths, FastCdc, StreamChunker, type ChunkerParams } from '../../../src/chunking/index.js'
import { buildVectorData, testGearTable, type DataPart } from './fixtures.js'

interface VectorFile {
  gearTables: Record<string, { first4: number[], sha256OfLittleEndianBytes: string }>
  cases: Array<{ name: string, params: ChunkerParams, gearSeed: number, data: DataPart[], dataLength: number, dataSha256: string, lengths: number[] }>
}

const vectors = JSON.parse(readFileSync(new URL('../../vectors/chunking.json', import.meta.url), 'utf8')) as VectorFile
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

describe('chunking golden vectors (test/vectors/chunking.json)', () => {
  it('the documented PRNG rebuilds the recorded gear tables', () => {
    for (const [seed, t] of Object.entries(vectors.gearTables)) {
      const gear = testGearTable(Number(seed))
      const bytes = new Uint8Array(1024)
      const view = new DataView(bytes.buffer)
      gear.forEach((v, i) => { view.setUint32(4 * i, v, true) })
      assert.deepEqual(Array.from(gear.subarray(0, 4)), t.first4)
      assert.equal(sha256(bytes), t.sha256OfLittleEndianBytes)
    }
  })

  for (const c of vectors.cases) {
    it(`cut points unchanged: ${c.name}`, () => {
      const data = buildVectorData(c.data)
      assert.equal(data.length, c.dataLength)
      assert.equal(sha256(data), c.dataSha256)
      const cdc = new FastCdc(testGearTable(c.gearSeed), c.params)
      assert.deepEqual(chunkLengths(cdc, data), c.lengths)
      const sc = new StreamChunker(cdc)
      const streamed: number[] = []
      for (let off = 0; off < data.length; off += 65_537) for (const ch of sc.push(data.subarray(off, off + 65_537))) streamed.push(ch.length)
      for (const ch of sc.finish()) streamed.push(ch.length)
      assert.deepEqual(streamed, c.lengths)
    })
  }

  it('covers cuts by the small mask, by the large mask, at maxSize and a short tail', () => {
    const kinds = new Set<string>()
    for (const c of vectors.cases) {
      c.lengths.forEach((l, i) => {
        if (i === c.lengths.length - 1 && l < c.params.minSize) kinds.add('tail')
        else if (l === c.params.maxSize) kinds.add('max')
        else if (l < c.params.avgSize) kinds.add('small')
        else kinds.add('large')
      })
    }
    assert.deepEqual([...kinds].sort(), ['large', 'max', 'small', 'tail'])
  })
})
