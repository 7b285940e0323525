import assert from 'node:assert/strict'
import { ShareBufferPool } from '../../../src/repo/share-buffers.js'

const MiB = 1024 * 1024

describe('repo/share-buffers: ShareBufferPool', () => {
  it('reuses a given-back buffer for the next request that fits, as a view of exactly the size asked', () => {
    const pool = new ShareBufferPool(64 * MiB)
    const a = pool.take(3 * MiB + 5)
    assert.equal(a.byteLength, 3 * MiB + 5)
    pool.give([a])
    const b = pool.take(3 * MiB - 100)
    assert.equal(b.buffer, a.buffer)
    assert.equal(b.byteLength, 3 * MiB - 100)
    // while lent, the same buffer is never handed out twice
    const c = pool.take(3 * MiB - 100)
    assert.notEqual(c.buffer, b.buffer)
  })

  it('never takes in buffers it did not lend (a pack built in place in the packer\'s buffer), nor one twice', () => {
    const pool = new ShareBufferPool(64 * MiB)
    const foreign = new Uint8Array(4 * MiB)
    pool.give([foreign])
    assert.notEqual(pool.take(2 * MiB).buffer, foreign.buffer)
    const a = pool.take(2 * MiB)
    pool.give([a, a])
    const x = pool.take(2 * MiB)
    const y = pool.take(2 * MiB)
    assert.equal(x.buffer, a.buffer)
    assert.notEqual(y.buffer, a.buffer)
  })

  it('keeps at most maxSpareBytes and does not pool small requests', () => {
    const pool = new ShareBufferPool(5 * MiB)
    const bufs = [pool.take(2 * MiB), pool.take(2 * MiB), pool.take(2 * MiB)]
    pool.give(bufs)
    const again = [pool.take(2 * MiB), pool.take(2 * MiB), pool.take(2 * MiB)]
    assert.equal(again.filter(v => bufs.some(b => b.buffer === v.buffer)).length, 2)
    const small = pool.take(1000)
    pool.give([small])
    assert.notEqual(pool.take(1000).buffer, small.buffer)
  })
})
