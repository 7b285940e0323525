import assert from 'node:assert/strict'
import fc from 'fast-check'
import { chunkLengths, DEFAULT_CHUNKER_PARAMS, StreamChunker, type FastCdc } from '../../../src/chunking/index.js'
import { prngBytes, SMALL_PARAMS, testChunker, xorshift32 } from './fixtures.js'

/** Feeds `data` in pieces of the given sizes (cycled), then finishes; returns every chunk. */
function streamChunks (cdc: FastCdc, data: Uint8Array, sizes: number[]): Uint8Array[] {
  const sc = new StreamChunker(cdc)
  const out: Uint8Array[] = []
  let off = 0
  for (let i = 0; off < data.length; i++) {
    const size = sizes.length === 0 ? data.length : sizes[i % sizes.length]!
    out.push(...sc.push(data.subarray(off, off + size)))
    off += size
  }
  out.push(...sc.finish())
  return out
}

function assertSameChunks (chunks: Uint8Array[], cdc: FastCdc, data: Uint8Array): void {
  assert.deepEqual(chunks.map((c) => c.length), chunkLengths(cdc, data))
  assert.ok(Buffer.concat(chunks).equals(data), 'chunks concatenate to the input')
}

describe('chunking/StreamChunker', () => {
  it('gives the same chunks as chunkLengths whatever the piece sizes (including empty pieces)', () => {
    const cdc = testChunker(2, SMALL_PARAMS)
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 1 << 30 }),
      fc.integer({ min: 0, max: 60_000 }),
      fc.array(fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 20_000 })), { minLength: 1, maxLength: 20 }),
      (seed, len, sizes) => {
        if (!sizes.some((s) => s > 0)) sizes.push(1)
        const data = prngBytes(seed, len)
        assertSameChunks(streamChunks(cdc, data, sizes), cdc, data)
      }), { seed: 424242, numRuns: 120 })
  })

  it('default parameters, 16 MiB in random piece sizes from 1 byte to 9 MiB: identical chunks', () => {
    const cdc = testChunker(7)
    const data = prngBytes(99, 16 << 20)
    const sizes: number[] = []
    let x = 12345
    for (let i = 0; i < 64; i++) {
      x = xorshift32(x)
      const kind = x % 4 // tiny, medium, around maxSize, large
      x = xorshift32(x)
      sizes.push(kind === 0 ? 1 + x % 100 : kind === 1 ? x % (1 << 20) : kind === 2 ? (4 << 20) - 2 + x % 5 : x % (9 << 20))
    }
    const expected = chunkLengths(cdc, data)
    assert.ok(expected.length > 10)
    assertSameChunks(streamChunks(cdc, data, sizes), cdc, data)
    assertSameChunks(streamChunks(cdc, data, [1 << 20]), cdc, data)
    assertSameChunks(streamChunks(cdc, data, []), cdc, data)
  })

  it('returns fresh arrays: they alias neither the input nor each other, and the input may be reused at once', () => {
    const cdc = testChunker(3, SMALL_PARAMS)
    const data = prngBytes(8, 100_000)
    const expected = chunkLengths(cdc, data)
    const sc = new StreamChunker(cdc)
    const readBuf = new Uint8Array(3000) // like fs.readSync into one reused buffer
    const got: Uint8Array[] = []
    for (let off = 0; off < data.length; off += readBuf.length) {
      const n = Math.min(readBuf.length, data.length - off)
      readBuf.set(data.subarray(off, off + n))
      got.push(...sc.push(readBuf.subarray(0, n)))
      readBuf.fill(0xee)
    }
    got.push(...sc.finish())
    assertSameChunks(got, cdc, data)
    const big = sc.push(data) // large piece: scanned in place, still copied out
    big.push(...sc.finish())
    assertSameChunks(big, cdc, data)
    for (const c of [...got, ...big]) {
      assert.notEqual(c.buffer, data.buffer)
      assert.notEqual(c.buffer, readBuf.buffer)
      assert.equal(c.byteOffset, 0)
      assert.equal(c.byteLength, c.buffer.byteLength)
    }
    assert.equal(new Set(big.map((c) => c.buffer)).size, big.length)
    data.fill(0)
    assertSameChunks(big, cdc, prngBytes(8, 100_000))
  })

  it('finish returns nothing for an empty stream and can start over', () => {
    const cdc = testChunker(1, SMALL_PARAMS)
    const sc = new StreamChunker(cdc)
    assert.deepEqual(sc.finish(), [])
    assert.deepEqual(sc.push(new Uint8Array(0)), [])
    assert.deepEqual(sc.finish(), [])
    const a = prngBytes(1, 10_000)
    const first = [...sc.push(a), ...sc.finish()]
    assertSameChunks(first, cdc, a)
    const b = prngBytes(2, 10_000)
    const second = [...sc.push(b), ...sc.finish()]
    assertSameChunks(second, cdc, b)
  })

  it('never holds a complete chunk back: after a push, fewer than maxSize bytes wait', () => {
    const cdc = testChunker(4, DEFAULT_CHUNKER_PARAMS)
    const data = prngBytes(4, 12 << 20)
    const sc = new StreamChunker(cdc)
    let emitted = 0
    for (let off = 0; off < data.length; off += 300_001) {
      const piece = data.subarray(off, off + 300_001)
      for (const c of sc.push(piece)) emitted += c.length
      assert.ok(off + piece.length - emitted < DEFAULT_CHUNKER_PARAMS.maxSize)
    }
    for (const c of sc.finish()) emitted += c.length
    assert.equal(emitted, data.length)
  })
})
