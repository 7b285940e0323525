import assert from 'node:assert/strict'
import fc from 'fast-check'
import { InvalidArgumentError } from '../../../src/errors.js'
import { redundancyThresholds, stripeHealth } from '../../../src/placement/index.js'

const arbHolders = fc.array(fc.record({ personId: fc.constantFrom('ann', 'bob', 'cat', 'dan', 'eve', 'fay', 'gus', 'hal'), online: fc.boolean() }), { maxLength: 12 })
const arbKm = fc.record({ k: fc.integer({ min: 1, max: 8 }), m: fc.integer({ min: 0, max: 6 }) })

describe('placement/stripeHealth', () => {
  it('counts distinct online persons; canLose = max(0, available - k); readable = available >= k', () => {
    fc.assert(fc.property(arbKm, arbHolders, ({ k, m }, holders) => {
      const h = stripeHealth(k, m, holders)
      const persons = new Set(holders.filter((x) => x.online).map((x) => x.personId))
      assert.deepEqual(h, { k, m, available: persons.size, canLose: Math.max(0, persons.size - k), readable: persons.size >= k })
    }), { seed: 5, numRuns: 300 })
  })

  it('never gets better when a holder goes offline', () => {
    fc.assert(fc.property(arbKm, arbHolders, fc.nat(), ({ k, m }, holders, i) => {
      if (holders.length === 0) return
      const before = stripeHealth(k, m, holders)
      const after = stripeHealth(k, m, holders.map((x, j) => (j === i % holders.length ? { ...x, online: false } : x)))
      assert.ok(after.available <= before.available && after.canLose <= before.canLose)
      if (after.readable) assert.ok(before.readable)
    }), { seed: 6, numRuns: 300 })
  })

  it('worked claim: 4+4 on 8 friends can lose any 4 and stays readable; the 5th loss makes it unreadable', () => {
    const friends = ['ann', 'bob', 'cat', 'dan', 'eve', 'fay', 'gus', 'hal']
    const all = friends.map((personId) => ({ personId, online: true }))
    assert.deepEqual(stripeHealth(4, 4, all), { k: 4, m: 4, available: 8, canLose: 4, readable: true })
    const lose = (n: number): ReturnType<typeof stripeHealth> => stripeHealth(4, 4, all.map((h, i) => ({ ...h, online: i >= n })))
    assert.deepEqual([1, 2, 3, 4, 5].map((n) => [lose(n).canLose, lose(n).readable]), [[3, true], [2, true], [1, true], [0, true], [0, false]])
    // two shares on one person count once: losing that person loses both
    assert.equal(stripeHealth(2, 1, [{ personId: 'ann', online: true }, { personId: 'ann', online: true }]).readable, false)
  })

  it('refuses k < 1 and m < 0', () => {
    assert.throws(() => stripeHealth(0, 1, []), InvalidArgumentError)
    assert.throws(() => stripeHealth(1, -1, []), InvalidArgumentError)
  })
})

describe('placement/redundancyThresholds (required <= repair <= optimal <= total)', () => {
  const rows: Array<{ k: number, m: number, rep?: number, opt?: number, want?: [number, number, number, number], err?: RegExp }> = [
    { k: 4, m: 4, want: [4, 4, 8, 8] },
    { k: 8, m: 4, rep: 10, want: [8, 10, 12, 12] },
    { k: 8, m: 4, rep: 10, opt: 11, want: [8, 10, 11, 12] },
    { k: 1, m: 0, want: [1, 1, 1, 1] },
    { k: 4, m: 2, rep: 3, err: /repair threshold 3 is less than required 4/ },
    { k: 4, m: 2, rep: 6, opt: 5, err: /repair threshold 6 is greater than optimal threshold 5/ },
    { k: 4, m: 2, opt: 7, err: /optimal threshold 7 is greater than total 6/ },
    { k: 0, m: 2, err: /k must be/ }
  ]
  for (const r of rows) {
    it(`${r.k}+${r.m} repair=${r.rep ?? 'default'} optimal=${r.opt ?? 'default'}`, () => {
      const run = (): ReturnType<typeof redundancyThresholds> => redundancyThresholds(r.k, r.m, r.rep, r.opt)
      if (r.err !== undefined) { assert.throws(run, (e: unknown) => e instanceof InvalidArgumentError && r.err?.test(e.message) === true); return }
      const t = run()
      assert.deepEqual([t.required, t.repair, t.optimal, t.total], r.want)
    })
  }
})
