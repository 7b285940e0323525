import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CompressPool } from '../../../src/repo/compress-pool.js'
import { compressBlob, decompressBlob } from '../../../src/repo/compress.js'
import { Compression } from '../../../src/format/pack.js'

describe('repo/CompressPool', function () {
  this.timeout(30_000)
  let pool: CompressPool
  beforeEach(() => { pool = new CompressPool(2, 3) })
  afterEach(async () => { await pool.close() })

  it('gives the same bytes as inline compression, for compressible, zero and random data', async () => {
    const inputs = [new Uint8Array(4 << 20), Buffer.from('log line status=ok\n'.repeat(20_000)), randomBytes(300_000)]
    for (const input of inputs) {
      const inline = compressBlob(input, 3)
      const c = await pool.compress(new Uint8Array(input))
      assert.equal(c.compression, inline.compression)
      assert.deepEqual(Buffer.from(c.data), Buffer.from(inline.data))
      assert.deepEqual(Buffer.from(decompressBlob(c.compression, c.data, input.byteLength)), Buffer.from(input))
    }
  })

  it('never detaches memory the caller still holds (Buffer views are copied, not transferred)', async () => {
    const slab = Buffer.from('x'.repeat(100_000) + 'y'.repeat(100_000))
    const view = slab.subarray(100_000)
    const c = await pool.compress(view)
    assert.equal(slab.byteLength, 200_000)
    assert.equal(view.toString('latin1', 0, 3), 'yyy')
    assert.equal(c.compression, Compression.Zstd)
  })

  it('many jobs in parallel all come back right', async () => {
    const inputs = Array.from({ length: 64 }, (_, i) => Buffer.from(`blob ${i} `.repeat(3000 + i)))
    const out = await Promise.all(inputs.map(async b => await pool.compress(b)))
    out.forEach((c, i) => assert.deepEqual(Buffer.from(decompressBlob(c.compression, c.data, (inputs[i] as Buffer).byteLength)), inputs[i]))
  })
})

describe('repo/CompressPool buffers', function () {
  this.timeout(30_000)

  it('reuses the buffers of a released result for the next blob instead of allocating new ones', async () => {
    const pool = new CompressPool(1, 3)
    try {
      const blob = (i: number): Buffer => Buffer.from(`chunk ${i} `.repeat(100_000)) // about 1 MiB each
      const first = await pool.compress(blob(1))
      assert.equal(pool.spareBytes, 0, 'nothing spare while the first result is held')
      assert.deepEqual(Buffer.from(decompressBlob(first.compression, first.data, blob(1).byteLength)), blob(1))
      first.release?.()
      const spare = pool.spareBytes
      assert.ok(spare >= 2 * blob(1).byteLength, `the plaintext copy and the output came back: ${spare} bytes`)
      for (let i = 2; i < 10; i++) {
        const c = await pool.compress(blob(i))
        assert.equal(pool.spareBytes, 0, 'the next blob took the spare buffers')
        assert.deepEqual(Buffer.from(decompressBlob(c.compression, c.data, blob(i).byteLength)), blob(i))
        c.release?.()
        assert.equal(pool.spareBytes, spare, 'and gave them back: no new buffers')
      }
      // incompressible: the result is the plaintext copy, in the same buffers
      const random = randomBytes(900_000)
      const r = await pool.compress(random)
      assert.equal(r.compression, Compression.None)
      assert.deepEqual(Buffer.from(r.data), random)
      r.release?.()
      assert.equal(pool.spareBytes, spare)
    } finally {
      await pool.close()
    }
  })
})
