import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { InvalidArgumentError } from '../../../src/errors.js'
import {
  chooseScheme, DEFAULT_MODEL, formatLoss, keepsOwnCopy, lossAfterDeparture, yearlyLossProbability, type DurabilityModel, type SchemeChoice
} from '../../../src/placement/index.js'

const FC = { seed: 424242, numRuns: 300 }

const arbModel: fc.Arbitrary<DurabilityModel> = fc.record({
  monthlyLossRate: fc.double({ min: 0.001, max: 0.2, noNaN: true }),
  repairDays: fc.double({ min: 0.1, max: 30, noNaN: true })
})
const arbOpts = fc.record({
  targetYearlyLoss: fc.constantFrom(1e-15, 1e-12, 1e-9, 1e-6, 1e-3, 0.1),
  maxExpansion: fc.constantFrom(1, 1.25, 1.5, 2, 2.5, 3, 4, 6),
  model: arbModel
})

const within = (actual: number, nominal: number, factor: number): boolean => actual <= nominal * factor && actual >= nominal / factor

describe('placement/yearlyLossProbability', () => {
  it('gives the worked numbers of DESIGN §3 at 2 %/month', () => {
    const at = (k: number, m: number, repairDays: number): number => yearlyLossProbability(k, m, { monthlyLossRate: 0.02, repairDays })
    assert.ok(within(at(4, 2, 4), 1e-4, 1.5), `4+2, T=4 days: ${at(4, 2, 4)}`)
    assert.ok(within(at(4, 3, 1), 1e-8, 1.5), `4+3, T=1 day: ${at(4, 3, 1)}`)
    assert.ok(within(at(4, 4, 1), 1e-11, 1.5), `4+4, T=1 day: ${at(4, 4, 1)}`)
    assert.ok(within(at(8, 4, 1), 2e-10, 1.5), `8+4, T=1 day: ${at(8, 4, 1)}`)
  })

  it('follows the worked example of the doc digit for digit (units: per day, Y = 365.25 days, month = Y/12)', () => {
    const lambda = 0.02 / 30.4375
    const expected = 6 * lambda * 365.25 * 10 * (lambda * 4) ** 2
    assert.ok(Math.abs(yearlyLossProbability(4, 2, { monthlyLossRate: 0.02, repairDays: 4 }) - expected) < 1e-15)
    assert.equal(formatLoss(expected), '9.9e-5')
    assert.deepEqual(DEFAULT_MODEL, { monthlyLossRate: 0.02, repairDays: 1 })
    assert.equal(yearlyLossProbability(4, 4), yearlyLossProbability(4, 4, DEFAULT_MODEL))
  })

  it('falls with more parity, rises with a longer repair, a higher loss rate and more data shards; stays in [0, 1]', () => {
    // where a first-order model means something: n·λ·T well below 1 (here at most 0.7)
    const sane = fc.record({ monthlyLossRate: fc.double({ min: 0.001, max: 0.1, noNaN: true }), repairDays: fc.double({ min: 0.1, max: 7, noNaN: true }) })
    fc.assert(fc.property(fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 5 }), sane, (k, m, model) => {
      const p = yearlyLossProbability(k, m, model)
      assert.ok(p >= 0 && p <= 1)
      if (p < 1) {
        assert.ok(yearlyLossProbability(k, m + 1, model) <= p)
        assert.ok(yearlyLossProbability(k + 1, m, model) >= p)
        assert.ok(yearlyLossProbability(k, m, { ...model, repairDays: model.repairDays * 2 }) >= p)
        assert.ok(yearlyLossProbability(k, m, { ...model, monthlyLossRate: model.monthlyLossRate * 2 }) >= p)
      }
    }), FC)
    assert.equal(yearlyLossProbability(24, 0, { monthlyLossRate: 0.5, repairDays: 1 }), 1)
    assert.equal(yearlyLossProbability(4, 2, { monthlyLossRate: 0, repairDays: 1 }), 0)
  })

  it('refuses nonsense', () => {
    assert.throws(() => yearlyLossProbability(0, 1), InvalidArgumentError)
    assert.throws(() => yearlyLossProbability(2, -1), InvalidArgumentError)
    assert.throws(() => yearlyLossProbability(2, 1, { monthlyLossRate: -0.1, repairDays: 1 }), InvalidArgumentError)
    assert.throws(() => yearlyLossProbability(2, 1, { monthlyLossRate: 0.02, repairDays: Number.NaN }), InvalidArgumentError)
  })
})

/** Every scheme chooseScheme may consider, written independently of the code. */
function allowed (people: number, maxExpansion: number): Array<{ k: number, m: number }> {
  const out: Array<{ k: number, m: number }> = []
  for (let k = 1; k <= 24; k++) for (let m = 0; m <= 6; m++) if (k + m <= people && (k + m) / k <= maxExpansion + 1e-12) out.push({ k, m })
  return out
}

describe('placement/chooseScheme', () => {
  it('returns a scheme within the limits; meetsTarget means the loss as placed and after a departure are <= target', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 40 }), arbOpts, (people, opts) => {
      const c = chooseScheme(people, opts)
      assert.equal(c.yearlyLoss, yearlyLossProbability(c.k, c.m, opts.model))
      assert.equal(c.expansion, (c.k + c.m) / c.k)
      assert.ok(c.k >= 1 && c.k <= 24 && c.m >= 0 && c.m <= 6)
      assert.ok(c.k + c.m <= Math.max(1, people))
      assert.ok(c.expansion <= opts.maxExpansion)
      if (c.meetsTarget) assert.ok(c.yearlyLoss <= opts.targetYearlyLoss && lossAfterDeparture(c.k, c.m, people, opts.model) <= opts.targetYearlyLoss)
      assert.equal(c.ownCopy, c.m <= 1)
      assert.ok(c.explanation.length > 0)
    }), FC)
  })

  it('is the cheapest that meets the target, or else the safest (checked by brute force)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 40 }), arbOpts, (people, opts) => {
      const c = chooseScheme(people, opts)
      // after one holder leaves for good: a stripe on every other person loses a parity share for good
      const after = (s: { k: number, m: number }): number => yearlyLossProbability(s.k, s.k + s.m < people || s.m === 0 ? s.m : s.m - 1, opts.model)
      const all = allowed(people, opts.maxExpansion).map((s) => ({ ...s, loss: yearlyLossProbability(s.k, s.m, opts.model) }))
      const meeting = all.filter((s) => after(s) <= opts.targetYearlyLoss)
      assert.equal(c.meetsTarget, meeting.length > 0)
      if (c.meetsTarget) {
        for (const s of meeting) {
          const e = (s.k + s.m) / s.k
          assert.ok(e > c.expansion || (e === c.expansion && s.k + s.m >= c.k + c.m), `${s.k}+${s.m} is cheaper than ${c.k}+${c.m}`)
        }
      } else {
        for (const s of all) assert.ok(s.loss >= c.yearlyLoss, `${s.k}+${s.m} is safer than ${c.k}+${c.m}`)
        assert.match(c.explanation, /add friends to reach/)
      }
    }), FC)
  })

  it('more people: once the target is met it stays met and expansion never rises; until then loss never rises', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 39 }), fc.integer({ min: 1, max: 10 }), arbOpts, (p, more, opts) => {
      const a = chooseScheme(p, opts)
      const b = chooseScheme(p + more, opts)
      if (a.meetsTarget) {
        assert.ok(b.meetsTarget)
        assert.ok(b.expansion <= a.expansion)
      }
      if (!b.meetsTarget) assert.ok(b.yearlyLoss <= a.yearlyLoss)
      assert.ok(b.yearlyLoss <= Math.max(opts.targetYearlyLoss, a.yearlyLoss))
    }), FC)
  })

  it('a stripe on every other person is judged one parity share weaker: from 7 people on one person is kept spare', () => {
    // 3+4 on 7 people: 4.7e-12 as placed, but 4.1e-9 once a holder has left and nobody can take its share
    assert.ok(yearlyLossProbability(3, 4) <= 1e-9 && lossAfterDeparture(3, 4, 7) > 1e-9)
    assert.equal(lossAfterDeparture(2, 4, 7), yearlyLossProbability(2, 4))
    for (const [people, km] of [[7, '2+4'], [8, '3+4'], [12, '7+4']] as const) {
      const c = chooseScheme(people)
      assert.equal(`${c.k}+${c.m}`, km)
      assert.ok(c.k + c.m < people && c.meetsTarget)
    }
    assert.match(chooseScheme(7).explanation, /one friend is left to take the shares of one who leaves/)
  })

  it('the publisher keeps its own copy when the stripe survives one loss only (m <= 1)', () => {
    assert.deepEqual([0, 1, 2, 3, 4].map(p => chooseScheme(p).ownCopy), [true, true, true, false, false])
    assert.ok(keepsOwnCopy(1) && keepsOwnCopy(0) && !keepsOwnCopy(2))
  })

  it('the loss of a scheme that meets the target can rise with more people (the margin buys a lower expansion)', () => {
    const eight = chooseScheme(8)
    const twelve = chooseScheme(12)
    assert.ok(eight.meetsTarget && twelve.meetsTarget)
    assert.ok(twelve.yearlyLoss > eight.yearlyLoss && twelve.expansion < eight.expansion)
  })

  it('is deterministic', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 40 }), arbOpts, (people, opts) => {
      assert.deepEqual(chooseScheme(people, opts), chooseScheme(people, { ...opts, model: { ...opts.model } }))
    }), { ...FC, numRuns: 100 })
  })

  it('says plainly when the group is too small', () => {
    const none = chooseScheme(0)
    assert.deepEqual({ k: none.k, m: none.m, meetsTarget: none.meetsTarget }, { k: 1, m: 0, meetsTarget: false })
    assert.equal(none.explanation, 'no friends yet: local store only')
    const one = chooseScheme(1)
    assert.deepEqual({ k: one.k, m: one.m, meetsTarget: one.meetsTarget }, { k: 1, m: 0, meetsTarget: false })
    assert.match(one.explanation, /single full copy/)
    assert.match(one.explanation, /too small/)
    assert.equal(chooseScheme(2).explanation, 'with 2 friends the best is 1+1 (a full copy on each); this disk keeps its own copy too, yearly loss about 3.2e-4; add friends to reach 1e-9')
    assert.equal(chooseScheme(3).explanation, 'with 3 friends the best is 1+2 (a full copy on each), yearly loss about 3.1e-7; add friends to reach 1e-9')
    assert.match(chooseScheme(9).explanation, /^4\+4 on 8 of 9 friends: 8 shares, any 4 rebuild a pack; up to 4 of them may be lost; one friend is left/)
  })

  it('refuses nonsense options', () => {
    assert.throws(() => chooseScheme(-1), InvalidArgumentError)
    assert.throws(() => chooseScheme(2.5), InvalidArgumentError)
    assert.throws(() => chooseScheme(5, { targetYearlyLoss: 0 }), InvalidArgumentError)
    assert.throws(() => chooseScheme(5, { maxExpansion: 0.5 }), InvalidArgumentError)
  })

  it('matches the table of docs/placement-and-repair.md §4', () => {
    const doc = readFileSync(new URL('../../../docs/placement-and-repair.md', import.meta.url), 'utf8')
    const section = doc.slice(doc.indexOf('## 4.'), doc.indexOf('## 5.'))
    const rows = section.split('\n').filter((l) => /^\| \d+ \|/.test(l)).map((l) => l.split('|').map((c) => c.trim()).slice(1, 6))
    assert.equal(rows.length, 13)
    for (const [people, km, expansion, loss, meets] of rows) {
      const c: SchemeChoice = chooseScheme(Number(people))
      assert.equal(`${c.k}+${c.m}`, km, `people ${people}`)
      assert.equal(String(Number(c.expansion.toFixed(2))), expansion, `people ${people}`)
      assert.equal(formatLoss(c.yearlyLoss), loss, `people ${people}`)
      assert.equal(c.meetsTarget ? 'yes' : 'no', meets?.split(' ')[0], `people ${people}`)
    }
  })
})
