import assert from 'node:assert/strict'
import fc from 'fast-check'
import { applyRetention, formatDuration, isEmptyPolicy, parseDuration, type RetentionGroup, type RetentionInput, type RetentionPolicy } from '../../../src/repo/retention.js'
import { InvalidArgumentError } from '../../../src/errors.js'

const H = 3_600_000
const D = 24 * H
const YEAR = 365.25 * D
const MONTH = YEAR / 12
const UTC = { now: new Date('2027-06-01T00:00:00Z'), timeZone: 'UTC' } as const
const FC = { seed: 20261120, numRuns: 150 }
const COUNTS = ['last', 'hourly', 'daily', 'weekly', 'monthly', 'yearly'] as const

function snap (id: string, iso: string, extra: Partial<RetentionInput> = {}): RetentionInput {
  return { id, time: new Date(iso), host: 'h', paths: ['/data'], tags: [], ...extra }
}
function kept (groups: readonly RetentionGroup[]): Set<string> {
  return new Set(groups.flatMap(g => g.decisions.filter(d => d.keep).map(d => d.id)))
}
function keptList (groups: readonly RetentionGroup[]): string[] {
  return groups.flatMap(g => g.decisions.filter(d => d.keep).map(d => d.id))
}
function reasonsById (groups: readonly RetentionGroup[]): Map<string, string[]> {
  return new Map(groups.flatMap(g => g.decisions.map(d => [d.id, d.reasons] as const)))
}
function newestFirst (xs: readonly RetentionInput[]): RetentionInput[] {
  return [...xs].sort((a, b) => b.time.getTime() - a.time.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
}
function utcDay (t: Date): string { return t.toISOString().slice(0, 10) }
function rejects (fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => err instanceof InvalidArgumentError && err.code === 'ERR_INVALID_ARGUMENT')
}

// Snapshots clustered at one of several spacings, so hours, days, weeks, months and years collide often.
const arbSnapshots = fc.array(fc.record({
  step: fc.constantFrom(7 * 60_000, H, 5 * H, D, 3 * D, 11 * D, 47 * D),
  k: fc.integer({ min: 0, max: 400 }),
  host: fc.constantFrom('alpha', 'beta'),
  paths: fc.constantFrom(['/x'], ['/x', '/y'], ['/y', '/x'], ['/z']),
  tags: fc.subarray(['t1', 't2', 't3'])
}), { maxLength: 60 }).map(rs => rs.map((r, i): RetentionInput => ({
  id: `s${String(i).padStart(3, '0')}`,
  time: new Date(Date.UTC(2024, 0, 1) + r.k * r.step),
  host: r.host,
  paths: [...r.paths],
  tags: r.tags
})))
const arbCount = fc.option(fc.integer({ min: -1, max: 6 }), { nil: undefined })
const arbPolicy: fc.Arbitrary<RetentionPolicy> = fc.record({
  last: arbCount, hourly: arbCount, daily: arbCount, weekly: arbCount, monthly: arbCount, yearly: arbCount,
  withinMs: fc.option(fc.integer({ min: 0, max: 900 }).map(h => h * H), { nil: undefined }),
  tags: fc.option(fc.subarray(['t1', 't2', 'zz']), { nil: undefined })
}).filter(p => !isEmptyPolicy(p))

/** Each non-empty rule of a policy, as a policy of its own. */
function singleRules (p: RetentionPolicy): RetentionPolicy[] {
  const out: RetentionPolicy[] = []
  for (const name of COUNTS) if ((p[name] ?? 0) !== 0) out.push({ [name]: p[name] })
  if ((p.withinMs ?? 0) !== 0) out.push({ withinMs: p.withinMs })
  if ((p.tags ?? []).length > 0) out.push({ tags: p.tags })
  return out
}

describe('repo/retention', () => {
  describe('properties', () => {
    it('keeps exactly the union of what each rule keeps alone, with the union of their reasons', () => {
      fc.assert(fc.property(arbSnapshots, arbPolicy, (snaps, policy) => {
        const whole = reasonsById(applyRetention(snaps, policy, UTC))
        const union = new Map<string, string[]>(snaps.map(s => [s.id, []]))
        for (const single of singleRules(policy)) {
          for (const [id, rs] of reasonsById(applyRetention(snaps, single, UTC))) union.get(id)?.push(...rs)
        }
        assert.equal(whole.size, snaps.length)
        for (const [id, rs] of whole) assert.deepEqual([...rs].sort(), [...(union.get(id) ?? [])].sort(), id)
      }), FC)
    })

    it('keep-last N keeps exactly the min(N, size) newest of each group and nothing else', () => {
      fc.assert(fc.property(arbSnapshots, fc.integer({ min: 1, max: 12 }), (snaps, n) => {
        for (const g of applyRetention(snaps, { last: n }, UTC)) {
          const members = newestFirst(snaps.filter(s => s.host === g.host && [...s.paths].sort().join('\0') === g.paths.join('\0')))
          const expected = members.slice(0, Math.min(n, members.length)).map(s => s.id)
          assert.deepEqual(g.decisions.filter(d => d.keep).map(d => d.id), expected)
          for (const d of g.decisions) assert.deepEqual(d.reasons, d.keep ? ['last'] : [])
        }
      }), FC)
    })

    it('keep-daily N keeps at most N per group, each the newest of its UTC day, for the N latest days', () => {
      fc.assert(fc.property(arbSnapshots, fc.integer({ min: 1, max: 8 }), (snaps, n) => {
        const byId = new Map(snaps.map(s => [s.id, s]))
        for (const g of applyRetention(snaps, { daily: n }, UTC)) {
          const members = g.decisions.map(d => byId.get(d.id) as RetentionInput)
          const keptHere = g.decisions.filter(d => d.keep).map(d => byId.get(d.id) as RetentionInput)
          assert.ok(keptHere.length <= n)
          const days = [...new Set(newestFirst(members).map(s => utcDay(s.time)))]
          assert.deepEqual(keptHere.map(s => utcDay(s.time)), days.slice(0, n))
          for (const s of keptHere) {
            const newestOfDay = newestFirst(members.filter(m => utcDay(m.time) === utcDay(s.time)))[0]
            assert.equal(newestOfDay?.id, s.id)
          }
        }
      }), FC)
    })

    it('is monotonic: raising any count (or making it unlimited) never forgets a kept snapshot', () => {
      fc.assert(fc.property(arbSnapshots, arbPolicy, fc.constantFrom(...COUNTS), fc.integer({ min: 0, max: 5 }), (snaps, policy, field, extra) => {
        const before = policy[field] ?? 0
        const raised = before < 0 || extra === 0 ? -1 : before + extra
        const a = kept(applyRetention(snaps, policy, UTC))
        const b = kept(applyRetention(snaps, { ...policy, [field]: raised }, UTC))
        for (const id of a) assert.ok(b.has(id), `${id} forgotten after raising ${field} ${before} -> ${raised}`)
      }), FC)
    })

    it('never forgets a whole non-empty group when any count is >= 1 or unlimited: the newest is kept', () => {
      fc.assert(fc.property(arbSnapshots, arbPolicy.filter(p => COUNTS.some(c => (p[c] ?? 0) !== 0)), (snaps, policy) => {
        for (const g of applyRetention(snaps, policy, UTC)) {
          assert.ok(g.decisions.length > 0)
          assert.equal(g.decisions[0]?.keep, true)
        }
      }), FC)
    })

    it('decides each group independently of the others', () => {
      fc.assert(fc.property(arbSnapshots, arbPolicy, (snaps, policy) => {
        for (const g of applyRetention(snaps, policy, UTC)) {
          const ids = new Set(g.decisions.map(d => d.id))
          assert.deepEqual(applyRetention(snaps.filter(s => ids.has(s.id)), policy, UTC), [g])
        }
      }), FC)
    })

    it('gives the same answer whatever the input order; decisions newest first, every snapshot once', () => {
      fc.assert(fc.property(arbSnapshots.chain(s => fc.tuple(fc.constant(s), fc.shuffledSubarray(s, { minLength: s.length, maxLength: s.length }))), arbPolicy, ([snaps, shuffled], policy) => {
        const a = applyRetention(snaps, policy, UTC)
        assert.deepEqual(applyRetention(shuffled, policy, UTC), a)
        assert.deepEqual(a.flatMap(g => g.decisions.map(d => d.id)).sort(), snaps.map(s => s.id).sort())
        const byId = new Map(snaps.map(s => [s.id, s.time.getTime()]))
        for (const g of a) {
          const times = g.decisions.map(d => byId.get(d.id) ?? 0)
          assert.deepEqual(times, [...times].sort((x, y) => y - x))
        }
      }), FC)
    })
  })

  describe('restic documented examples', () => {
    // restic doc/060_forget.rst: one backup every Sunday at 11:00 for 12 weeks.
    const sundays = ['0a1f9759', '46cfe4d5', 'f6b1f037', 'eb430a5d', '8cf1cb9a', '5d33b116', 'b9553125', 'e1a7b58b', '8f8018c0', '59403279', 'dfee9fb4', 'e1ae2f40']
      .map((id, i) => snap(id, new Date(Date.UTC(2019, 8, 1, 11) + i * 7 * D).toISOString(), { host: 'mopped', paths: ['/home/user/work'] }))

    it('--keep-daily 4 keeps the last four Sundays and removes the other eight', () => {
      const groups = applyRetention(sundays, { daily: 4 }, UTC)
      assert.equal(groups.length, 1)
      assert.deepEqual(keptList(groups), ['e1ae2f40', 'dfee9fb4', '59403279', '8f8018c0'])
      assert.deepEqual(groups[0]?.decisions[0], { id: 'e1ae2f40', keep: true, reasons: ['daily 2019-11-17'] })
      assert.equal(groups[0]?.decisions.filter(d => !d.keep).length, 8)
    })

    it('--keep-weekly 4 and --keep-monthly 3 on the same Sundays (weeks run Monday to Sunday)', () => {
      assert.deepEqual(keptList(applyRetention(sundays, { weekly: 4 }, UTC)), ['e1ae2f40', 'dfee9fb4', '59403279', '8f8018c0'])
      const monthly = applyRetention(sundays, { monthly: 3 }, UTC)
      assert.deepEqual(keptList(monthly), ['e1ae2f40', '8f8018c0', '8cf1cb9a'])
      assert.deepEqual(reasonsById(monthly).get('8cf1cb9a'), ['monthly 2019-09'])
      assert.deepEqual(reasonsById(applyRetention(sundays, { weekly: 1 }, UTC)).get('e1ae2f40'), ['weekly 2019-W46'])
    })

    it('unlimited (-1) keeps everything; a policy of zeros is refused as empty', () => {
      assert.equal(kept(applyRetention(sundays, { last: -1 }, UTC)).size, 12)
      assert.equal(kept(applyRetention(sundays, { daily: -1 }, UTC)).size, 12)
      assert.equal(kept(applyRetention(sundays, { monthly: -1 }, UTC)).size, 3)
      rejects(() => applyRetention(sundays, { last: 0 }, UTC))
    })

    it('daily backups for 100 years, --keep-daily 7 --keep-weekly 5 --keep-monthly 12 --keep-yearly 75', () => {
      const end = Date.UTC(2019, 10, 17, 5) // a Sunday
      const snaps: RetentionInput[] = []
      for (let t = Date.UTC(1919, 10, 18, 5); t <= end; t += D) snaps.push({ id: `d${t}`, time: new Date(t), host: 'h', paths: ['/'], tags: [] })
      const decisions = applyRetention(snaps, { daily: 7, weekly: 5, monthly: 12, yearly: 75 }, UTC)[0]?.decisions ?? []
      const reasons = decisions.flatMap(d => d.reasons)
      for (const [rule, n] of [['daily', 7], ['weekly', 5], ['monthly', 12], ['yearly', 75]] as const) {
        assert.equal(reasons.filter(r => r.startsWith(`${rule} `)).length, n, rule)
      }
      // 7 daily + 4 more weekly (the 7 days hold one Sunday) + 11 more month ends (Nov 17 is a daily)
      // + 73 more year ends (2019 is Nov 17, 2018 is the monthly Dec 31) = 95
      assert.equal(decisions.filter(d => d.keep).length, 95)
      assert.deepEqual(decisions[0]?.reasons, ['daily 2019-11-17', 'weekly 2019-W46', 'monthly 2019-11', 'yearly 2019'])
      assert.deepEqual(reasonsById([{ host: 'h', paths: ['/'], decisions }]).get(`d${Date.UTC(2018, 11, 31, 5)}`), ['monthly 2018-12', 'yearly 2018'])
    })

    it('groups by host and paths: --keep-last 1 keeps one per group', () => {
      const snaps = [
        snap('40dc1520', '2015-05-08T21:38:30Z', { host: 'kasimir', paths: ['/home/user/work'] }),
        snap('79766175', '2015-05-08T21:40:19Z', { host: 'kasimir', paths: ['/home/user/work'] }),
        snap('bdbd3439', '2015-05-08T21:45:17Z', { host: 'luigi', paths: ['/home/art'] }),
        snap('590c8fc8', '2015-05-08T21:47:38Z', { host: 'kazik', paths: ['/srv'] }),
        snap('9f0bc19e', '2015-05-08T21:46:11Z', { host: 'luigi', paths: ['/srv'] })
      ]
      const groups = applyRetention(snaps, { last: 1 }, UTC)
      assert.deepEqual(groups.map(g => [g.host, g.paths]), [['kasimir', ['/home/user/work']], ['kazik', ['/srv']], ['luigi', ['/home/art']], ['luigi', ['/srv']]])
      assert.deepEqual([...kept(groups)].sort(), ['590c8fc8', '79766175', '9f0bc19e', 'bdbd3439'])
    })
  })

  describe('rules', () => {
    const now = new Date('2026-11-20T12:00:00Z')
    const opts = { now, timeZone: 'UTC' } as const

    it('keep-within keeps times strictly after now - duration, including the future', () => {
      const snaps = [snap('future', '2026-11-21T00:00:00Z'), snap('edge+1', '2026-11-13T12:00:00.001Z'), snap('edge', '2026-11-13T12:00:00Z'), snap('old', '2026-10-01T00:00:00Z')]
      const groups = applyRetention(snaps, { withinMs: parseDuration('7d') }, opts)
      assert.deepEqual(groups[0]?.decisions, [
        { id: 'future', keep: true, reasons: ['within 7d'] },
        { id: 'edge+1', keep: true, reasons: ['within 7d'] },
        { id: 'edge', keep: false, reasons: [] },
        { id: 'old', keep: false, reasons: [] }
      ])
    })

    it('keep-tag keeps every snapshot with any listed tag, one reason per tag; a group may be forgotten whole', () => {
      const snaps = [snap('a', '2026-11-19T00:00:00Z', { tags: ['important', 'x'] }), snap('b', '2026-11-18T00:00:00Z', { tags: ['x'] }), snap('c', '2026-11-17T00:00:00Z'),
        snap('d', '2026-11-17T00:00:00Z', { paths: ['/other'] })]
      const r = reasonsById(applyRetention(snaps, { tags: ['important', 'x', 'x'] }, opts))
      assert.deepEqual([...r], [['a', ['tag important', 'tag x']], ['b', ['tag x']], ['c', []], ['d', []]])
    })

    it('collects every reason in rule order: last, hourly … yearly, within, tag', () => {
      const snaps = [snap('new', '2026-11-20T11:30:00Z', { tags: ['keep'] }), snap('same-hour', '2026-11-20T11:10:00Z'), snap('earlier', '2026-11-20T09:00:00Z')]
      const policy = { last: 1, hourly: 2, daily: 1, weekly: 1, monthly: 1, yearly: 1, withinMs: 36 * H, tags: ['keep'] }
      const r = reasonsById(applyRetention(snaps, policy, opts))
      assert.deepEqual(r.get('new'), ['last', 'hourly 2026-11-20T11', 'daily 2026-11-20', 'weekly 2026-W47', 'monthly 2026-11', 'yearly 2026', 'within 1d12h', 'tag keep'])
      assert.deepEqual(r.get('same-hour'), ['within 1d12h'])
      assert.deepEqual(r.get('earlier'), ['hourly 2026-11-20T09', 'within 1d12h'])
    })

    it('uses ISO weeks across a year boundary', () => {
      const snaps = [snap('mon', '2021-01-04T10:00:00Z'), snap('sun', '2021-01-03T10:00:00Z'), snap('thu', '2020-12-31T10:00:00Z'), snap('mon19', '2019-12-30T10:00:00Z'), snap('sun19', '2019-12-29T10:00:00Z')]
      const r = reasonsById(applyRetention(snaps, { weekly: -1 }, opts))
      assert.deepEqual([...r], [['mon', ['weekly 2021-W01']], ['sun', ['weekly 2020-W53']], ['thu', []], ['mon19', ['weekly 2020-W01']], ['sun19', ['weekly 2019-W52']]])
    })

    it('equal times are ordered by id, so the choice between them is stable', () => {
      const snaps = [snap('b', '2026-11-20T10:00:00Z'), snap('a', '2026-11-20T10:00:00Z')]
      assert.deepEqual(keptList(applyRetention(snaps, { last: 1 }, opts)), ['a'])
      assert.deepEqual(keptList(applyRetention([...snaps].reverse(), { daily: 1 }, opts)), ['a'])
    })

    it("takes calendar buckets in the machine's zone by default", () => {
      const saved = process.env.TZ
      process.env.TZ = 'America/New_York'
      try {
        // the same UTC day, but Nov 19 22:00 and Nov 20 05:00 in New York
        const snaps = [snap('late', '2026-11-20T10:00:00Z'), snap('early', '2026-11-20T03:00:00Z')]
        assert.deepEqual(keptList(applyRetention(snaps, { daily: -1 }, { now })), ['late', 'early'])
        assert.deepEqual(keptList(applyRetention(snaps, { daily: -1 }, { now, timeZone: 'local' })), ['late', 'early'])
        assert.deepEqual(reasonsById(applyRetention(snaps, { daily: -1 }, { now })).get('early'), ['daily 2026-11-19'])
        assert.deepEqual(keptList(applyRetention(snaps, { daily: -1 }, opts)), ['late'])
      } finally {
        if (saved === undefined) delete process.env.TZ
        else process.env.TZ = saved
      }
    })

    it('an empty snapshot list gives no groups', () => {
      assert.deepEqual(applyRetention([], { last: 3 }, opts), [])
    })
  })

  describe('validation', () => {
    const s = [snap('a', '2026-11-20T10:00:00Z')]
    const now = new Date('2026-11-20T12:00:00Z')

    it('refuses a policy that keeps nothing by construction, even with no snapshots', () => {
      for (const p of [{}, { last: 0 }, { last: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, hourly: 0, withinMs: 0, tags: [] }]) {
        assert.equal(isEmptyPolicy(p), true)
        rejects(() => applyRetention(s, p, { now }))
        rejects(() => applyRetention([], p, { now }))
      }
      for (const p of [{ last: -1 }, { yearly: 1 }, { withinMs: 1 }, { tags: ['x'] }]) assert.equal(isEmptyPolicy(p), false)
    })

    it('refuses malformed counts, durations, tags, snapshots and options', () => {
      for (const p of [{ last: 1.5 }, { daily: Number.NaN }, { weekly: Number.POSITIVE_INFINITY }, { hourly: 2 ** 60 }, { withinMs: -1 }, { withinMs: 0.5 }, { tags: [''] }]) {
        rejects(() => applyRetention(s, p, { now }))
      }
      rejects(() => applyRetention([...s, snap('a', '2026-11-19T10:00:00Z')], { last: 1 }, { now }))
      rejects(() => applyRetention([snap('x', 'not a date')], { last: 1 }, { now }))
      rejects(() => applyRetention(s, { last: 1 }, { now: new Date(Number.NaN) }))
      rejects(() => applyRetention(s, { last: 1 }, { now, timeZone: 'Europe/Paris' as 'UTC' }))
    })
  })

  describe('parseDuration', () => {
    it('parses y, m (months), w, d and h terms in that order', () => {
      const cases: Array<[string, number]> = [
        ['7d', 7 * D], ['2w', 14 * D], ['3m', 3 * MONTH], ['1y', YEAR], ['12h', 12 * H], ['1y6m', YEAR + 6 * MONTH],
        ['12m', YEAR], ['1y2m3w4d5h', YEAR + 2 * MONTH + 25 * D + 5 * H], ['0d', 0], ['007d', 7 * D], ['36h', 36 * H]
      ]
      for (const [text, ms] of cases) assert.equal(parseDuration(text, { bareM: 'months' }), ms, text)
    })

    it('rejects anything else', () => {
      for (const text of ['', 'd', '7', '7x', '-1d', '+1d', '1.5d', '1d1d', '1d1y', '6m1y', ' 7d', '7d ', '7D', '1e3d', '7 d', '99999999999999y', '1y,6m']) {
        rejects(() => parseDuration(text, { bareM: 'months' }))
      }
    })

    it('sums its terms', () => {
      fc.assert(fc.property(fc.array(fc.option(fc.integer({ min: 0, max: 999 }), { nil: undefined }), { minLength: 5, maxLength: 5 }).filter(xs => xs.some(x => x !== undefined)), xs => {
        const units: Array<[string, number]> = [['y', YEAR], ['m', MONTH], ['w', 7 * D], ['d', D], ['h', H]]
        const text = xs.map((x, i) => (x === undefined ? '' : `${x}${units[i]?.[0] ?? ''}`)).join('')
        assert.equal(parseDuration(text, { bareM: 'months' }), xs.reduce<number>((sum, x, i) => sum + (x ?? 0) * (units[i]?.[1] ?? 0), 0))
      }), FC)
    })

    it('formats durations for reasons in the shortest spelling', () => {
      const cases: Array<[number, string]> = [[7 * D, '7d'], [14 * D, '14d'], [YEAR + 6 * MONTH, '1y6m'], [3 * MONTH, '3m'], [45 * D, '45d'], [36 * H, '1d12h'], [90 * 60_000, '1h30min'], [1, '1ms']]
      for (const [ms, text] of cases) assert.equal(formatDuration(ms), text, text)
    })
  })
})
