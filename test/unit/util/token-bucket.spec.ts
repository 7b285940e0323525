import assert from 'node:assert/strict'
import { TokenBucket, type BucketClock } from '../../../src/util/token-bucket.js'

/** Virtual time: a sleep moves the clock. */
function virtual (): BucketClock & { t: number } {
  const c = { t: 0, now: () => c.t, sleep: async (ms: number) => { c.t += ms } }
  return c
}

describe('util/TokenBucket (--limit-upload, --limit-download)', () => {
  it('lets a second\'s worth go at once, then exactly the rate', async () => {
    const c = virtual()
    const b = new TokenBucket(1000, c, 1000)
    await b.take(1000)
    assert.equal(c.t, 0)
    await b.take(3000)
    assert.ok(c.t >= 3000 && c.t <= 3003, `took ${c.t} ms for 3000 bytes at 1000 B/s`)
    assert.equal(b.taken, 4000)
  })

  it('serves takers in order, each at the rate, and refills while idle', async () => {
    const c = virtual()
    const b = new TokenBucket(10_000, c, 10_000)
    const done: string[] = []
    await Promise.all(['a', 'b', 'c'].map(async (n) => { await b.take(10_000); done.push(n) }))
    assert.deepEqual(done, ['a', 'b', 'c'])
    assert.ok(c.t >= 2000 && c.t < 2010, String(c.t))
    c.t += 5000
    const before = c.t
    await b.take(10_000)
    assert.equal(c.t, before, 'a full bucket after an idle time')
  })

  it('a cancelled take fails with the signal\'s reason and does not block the next', async () => {
    const c = virtual()
    const b = new TokenBucket(1000, c, 1000)
    await b.take(1000)
    const ac = new AbortController()
    ac.abort(new Error('stopped'))
    await assert.rejects(b.take(5000, ac.signal), /stopped/)
    await b.take(500)
    assert.equal(b.taken, 1500)
  })

  it('refuses a rate that is not a positive number', () => {
    for (const r of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) assert.throws(() => new TokenBucket(r), RangeError)
  })
})
