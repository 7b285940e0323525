/** The daemon's soft memory limit (src/cli/memory-limit.ts), on injected readings and a virtual clock. */
import assert from 'node:assert/strict'
import { BACKOFF_BYTES, BACKOFF_MS, MIN_GAP_MS, MemoryLimit, START_AT } from '../../../src/cli/memory-limit.js'

const MiB = 1024 * 1024

/**
 * A daemon whose resident size is `live` plus `garbage`. As in V8, a collection only marks the
 * garbage: it leaves the resident size when the background sweep has run (by the next check).
 */
function fakeDaemon (limitMiB: number) {
  const d = { live: 0, garbage: 0, swept: 0, t: 0, collections: 0, trims: 0, warnings: [] as string[] }
  const limit = new MemoryLimit(limitMiB * MiB, {
    rss: () => d.live + d.garbage,
    collect: () => { d.swept = d.garbage; d.collections++ },
    trim: () => { d.trims++ },
    now: () => d.t,
    warn: (m) => { d.warnings.push(m) }
  })
  /** one tick of the timer: the sweep of the last collection has run by then */
  const tick = (): void => { d.garbage -= d.swept; d.swept = 0; limit.check() }
  return { d, limit, tick }
}

describe('cli/memory-limit', () => {
  it('collects only near the limit, judges the collection at the next check, and not more often than MIN_GAP_MS', () => {
    const { d, limit, tick } = fakeDaemon(128)
    d.live = 90 * MiB
    d.garbage = 128 * MiB * START_AT - d.live - 1
    tick()
    assert.equal(d.collections, 0) // just under the threshold
    d.garbage += 2
    limit.check() // the collection: right after it, nothing is swept yet
    assert.equal(d.collections, 1)
    assert.equal(d.trims, 0)
    tick() // judged with the garbage gone: no backoff, no warning
    assert.equal(d.trims, 1)
    assert.equal(limit.stats.lastAfterBytes, 90 * MiB)
    assert.equal(limit.stats.overLimit, false)
    d.garbage = 40 * MiB
    d.t += MIN_GAP_MS - 1
    tick()
    assert.equal(d.collections, 1) // too soon
    d.t += 1
    tick()
    assert.equal(d.collections, 2)
    assert.deepEqual(d.warnings, [])
  })

  it('between 90 % and the limit after a collection: backs off, without a warning', () => {
    const { d, limit, tick } = fakeDaemon(128)
    d.live = 120 * MiB
    tick()
    tick()
    assert.equal(d.collections, 1)
    assert.equal(limit.stats.overLimit, true)
    assert.deepEqual(d.warnings, [])
    d.t += MIN_GAP_MS
    tick()
    assert.equal(d.collections, 1) // backing off
  })

  it('a daemon whose live memory exceeds the limit is told so once per episode, and collections back off', () => {
    const { d, limit, tick } = fakeDaemon(128)
    d.live = 150 * MiB
    tick()
    tick()
    assert.equal(d.collections, 1)
    assert.equal(d.warnings.length, 1)
    assert.match(d.warnings[0] as string, /holds 150 MiB .* more than --max-memory 128 MiB allows: .*raise --max-memory/)
    assert.equal(limit.stats.overLimit, true)
    // time alone (short of BACKOFF_MS) and growth short of BACKOFF_BYTES do not collect again
    for (let i = 0; i < 20; i++) { d.t += MIN_GAP_MS; d.garbage = BACKOFF_BYTES - 1; tick() }
    assert.equal(d.collections, 1)
    d.garbage = BACKOFF_BYTES
    tick()
    assert.equal(d.collections, 2)
    tick()
    d.t += BACKOFF_MS
    tick()
    assert.equal(d.collections, 3)
    tick()
    assert.equal(d.warnings.length, 1) // once per episode
    // the work ends: under 90 % again, and a later episode is told again
    d.live = 80 * MiB
    d.garbage = 0
    d.t += BACKOFF_MS
    tick()
    assert.equal(limit.stats.overLimit, false)
    d.live = 200 * MiB
    d.t += MIN_GAP_MS
    tick()
    tick()
    assert.equal(d.warnings.length, 2)
  })

  it('auto: lifted while a command of the daemon\'s own runs, and silent', () => {
    const d = { rss: 200 * MiB, collections: 0 }
    const limit = new MemoryLimit(128 * MiB, { rss: () => d.rss, collect: () => { d.collections++ }, trim: () => {}, now: () => 0 })
    limit.lift()
    limit.lift() // nested
    limit.check()
    limit.restore()
    limit.check()
    assert.equal(d.collections, 0)
    assert.equal(limit.stats.lifted, true)
    limit.restore()
    assert.equal(limit.stats.lifted, false)
    limit.check()
    limit.check() // judged: over the limit, and nobody to tell
    assert.equal(d.collections, 1)
    assert.equal(limit.stats.overLimit, true)
  })

  it('auto: while lifted, the command limit holds instead (collects near 240 MiB, not near 128 MiB)', () => {
    const d = { rss: 200 * MiB, collections: 0, t: 0 }
    const limit = new MemoryLimit(128 * MiB, { rss: () => d.rss, collect: () => { d.collections++ }, trim: () => {}, now: () => d.t }, { commandLimitBytes: 240 * MiB })
    limit.lift()
    limit.check()
    assert.equal(d.collections, 0, '200 MiB is under 90 % of the command limit')
    d.rss = 240 * MiB * START_AT + 1
    limit.check()
    assert.equal(d.collections, 1)
    d.rss = 150 * MiB // the garbage went
    limit.check()
    assert.equal(limit.stats.overLimit, false, 'judged against the command limit')
    limit.restore()
    d.t += MIN_GAP_MS
    limit.check()
    assert.equal(d.collections, 2, 'back at rest: 150 MiB is over 90 % of 128 MiB')
  })

  it('a backoff under the command limit does not hold back the collections at rest once the command ends', () => {
    const d = { rss: 250 * MiB, collections: 0, t: 0 }
    const limit = new MemoryLimit(128 * MiB, { rss: () => d.rss, collect: () => { d.collections++ }, trim: () => {}, now: () => d.t }, { commandLimitBytes: 240 * MiB })
    limit.lift()
    limit.check()
    limit.check() // judged: still over 240 MiB, live: backing off for BACKOFF_BYTES or BACKOFF_MS
    assert.equal(limit.stats.overLimit, true)
    d.t += MIN_GAP_MS
    limit.check()
    assert.equal(d.collections, 1, 'backing off')
    // the backup ends: what it held is garbage now, and the limit at rest collects at once
    limit.restore()
    assert.equal(limit.stats.overLimit, false)
    d.t += MIN_GAP_MS
    limit.check()
    assert.equal(d.collections, 2)
  })
})
