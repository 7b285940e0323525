/** The persister's unfinished putPart uploads (src/protocols/shard/staging.ts): order, repeats, bounds. */
import assert from 'node:assert/strict'
import { Staging } from '../../../src/protocols/shard/staging.js'

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill)

describe('protocols/shard staging', () => {
  it('assembles parts in order, takes repeats, refuses gaps with what it has', () => {
    const s = new Staging(() => 0)
    assert.deepEqual(s.accept('k', 10, 4, bytes(3, 1)), { kind: 'mismatch', have: 0 })
    assert.deepEqual(s.accept('k', 10, 0, bytes(4, 1)), { kind: 'partial', have: 4 })
    assert.deepEqual(s.accept('k', 10, 0, bytes(4, 1)), { kind: 'partial', have: 4 }) // a retried part
    assert.deepEqual(s.accept('k', 10, 8, bytes(2, 3)), { kind: 'mismatch', have: 4 })
    assert.deepEqual(s.accept('k', 10, 4, bytes(4, 2)), { kind: 'partial', have: 8 })
    const last = s.accept('k', 10, 8, bytes(2, 3))
    assert.equal(last.kind, 'complete')
    assert.deepEqual(last.kind === 'complete' ? last.parts.flatMap(p => [...p]) : [], [1, 1, 1, 1, 2, 2, 2, 2, 3, 3])
    assert.equal(s.stagedBytes, 0)
    // no memory of completed uploads (the server answers a retried part from the store, which holds
    // the share whole): a new upload starts afresh, and a forgotten one is gone
    assert.deepEqual(s.accept('k', 10, 8, bytes(2, 3)), { kind: 'mismatch', have: 0 })
    assert.deepEqual(s.accept('k', 10, 0, bytes(4, 9)), { kind: 'partial', have: 4 })
    s.forget('k')
    assert.deepEqual(s.accept('k', 10, 4, bytes(2, 3)), { kind: 'mismatch', have: 0 })
  })

  it('keeps the parts as they came, and only the new bytes of a part that overlaps what it has', () => {
    const s = new Staging(() => 0)
    const first = bytes(4, 1)
    s.accept('k', 10, 0, first)
    s.accept('k', 10, 2, Uint8Array.from([7, 7, 2, 2])) // repeats bytes 2..3 (with other bytes: nothing changes), adds 4..5
    const last = s.accept('k', 10, 6, bytes(4, 3))
    assert.equal(last.kind, 'complete')
    if (last.kind !== 'complete') return
    assert.equal(last.parts[0], first) // not copied
    assert.deepEqual(last.parts.flatMap(p => [...p]), [1, 1, 1, 1, 2, 2, 3, 3, 3, 3])
  })

  it('is bounded: least recently touched uploads go first, idle ones expire', () => {
    let t = 0
    const s = new Staging(() => t, 25, 1000)
    s.accept('a', 10, 0, bytes(1, 1))
    s.accept('b', 10, 0, bytes(1, 1))
    s.accept('a', 10, 1, bytes(1, 1)) // a is now the most recent
    s.accept('c', 10, 0, bytes(1, 1)) // 30 > 25: b goes
    assert.equal(s.stagedBytes, 20)
    assert.deepEqual(s.accept('b', 10, 1, bytes(1, 1)), { kind: 'mismatch', have: 0 })
    t = 5000
    assert.deepEqual(s.accept('a', 10, 2, bytes(1, 1)), { kind: 'mismatch', have: 0 })
    assert.equal(s.stagedBytes, 0)
  })
})
