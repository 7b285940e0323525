/**
 * The user-visible promise of content-defined chunking: an insertion in the middle of a big file costs
 * about the inserted bytes plus a few chunks, not the rest of the file.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { chunkLengths, DEFAULT_CHUNKER_PARAMS } from '../../../src/chunking/index.js'
import { prngBytes, testChunker } from './fixtures.js'

const MiB = 1 << 20

interface Chunk { offset: number, length: number, hash: string }

function chunksOf (data: Uint8Array, lengths: number[]): Chunk[] {
  const out: Chunk[] = []
  let offset = 0
  for (const length of lengths) {
    out.push({ offset, length, hash: createHash('sha256').update(data.subarray(offset, offset + length)).digest('hex') })
    offset += length
  }
  return out
}

describe('chunking: insertion in the middle of a 100 MiB file (default parameters)', function () {
  this.timeout(30_000)
  const insertAt = 50 * MiB
  const insertLength = MiB + 12_345
  let old: Chunk[] = []
  let now: Chunk[] = []
  let fileLength = 0

  before(() => {
    const original = prngBytes(100, 100 * MiB)
    const inserted = prngBytes(101, insertLength)
    const modified = new Uint8Array(original.length + insertLength)
    modified.set(original.subarray(0, insertAt))
    modified.set(inserted, insertAt)
    modified.set(original.subarray(insertAt), insertAt + insertLength)
    const cdc = testChunker(1, DEFAULT_CHUNKER_PARAMS)
    old = chunksOf(original, chunkLengths(cdc, original))
    now = chunksOf(modified, chunkLengths(cdc, modified))
    fileLength = original.length
  })

  it('chunks are about 1 MiB on average', () => {
    const mean = fileLength / old.length
    assert.ok(mean > 0.9 * MiB && mean < 1.4 * MiB, `mean chunk ${mean} bytes`)
  })

  it('every chunk entirely before the insertion point is unchanged', () => {
    const kept = old.filter((c) => c.offset + c.length <= insertAt)
    assert.ok(kept.length > 30)
    assert.deepEqual(now.slice(0, kept.length), kept)
  })

  it('new chunks (content not stored before) total at most 5 MiB', () => {
    const known = new Set(old.map((c) => c.hash))
    const fresh = now.filter((c) => !known.has(c.hash))
    const newBytes = fresh.reduce((a, c) => a + c.length, 0)
    assert.ok(newBytes >= insertLength, 'the inserted bytes are new')
    assert.ok(newBytes <= 5 * MiB, `${(newBytes / MiB).toFixed(2)} MiB in ${fresh.length} new chunks`)
    // Everything after the resynchronisation point is shared again: the new chunks form one run.
    const first = now.indexOf(fresh[0]!)
    assert.deepEqual(now.slice(first, first + fresh.length), fresh)
  })
})
