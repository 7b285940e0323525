/**
 * The one duration grammar (docs/cli.md, "Durations"): parseDuration in src/repo/retention.ts, used by
 * every duration option. Property tests: terms round-trip, the canonical spelling of any length parses
 * back to it, formatDuration's reasons parse back under --keep-within's rules, and garbage is refused.
 */
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { formatDuration, parseDuration } from '../../../src/repo/retention.js'
import { InvalidArgumentError } from '../../../src/errors.js'

const S = 1000
const MIN = 60 * S
const H = 60 * MIN
const D = 24 * H
const W = 7 * D
const Y = 365.25 * D
const MO = Y / 12
const FC = { seed: 20261214, numRuns: 300 }

/** The units in grammar order; `mo` stands for months (bare `m` is tested on its own). */
const UNITS: ReadonlyArray<readonly [string, number]> = [['y', Y], ['mo', MO], ['w', W], ['d', D], ['h', H], ['min', MIN], ['s', S], ['ms', 1]]

function refuses (text: string, options?: { bareM: 'refuse' | 'months' }): void {
  assert.throws(() => parseDuration(text, options), (e: unknown) => e instanceof InvalidArgumentError, JSON.stringify(text))
}

/** The greedy spelling of `ms` with every unit: each whole number of milliseconds has exactly one. */
function spell (ms: number): string {
  if (ms === 0) return '0s'
  let rest = ms
  let out = ''
  for (const [u, size] of UNITS) {
    const n = Math.floor(rest / size)
    if (n > 0) { out += `${n}${u}`; rest -= n * size }
  }
  return out
}

describe('durations (one grammar for every option)', () => {
  it('reads what people type: seconds, minutes, hours, days, weeks, months, years', () => {
    const cases: Array<[string, number]> = [
      ['30s', 30 * S], ['10min', 10 * MIN], ['1h30min', 90 * MIN], ['2w', 2 * W], ['3s', 3 * S], ['90s', 90 * S],
      ['1d12h', 36 * H], ['3mo', 3 * MO], ['12mo', Y], ['1y6mo', Y + 6 * MO], ['250ms', 250], ['1min30s', 90 * S],
      ['0s', 0], ['007d', 7 * D], ['1y2mo3w4d5h6min7s8ms', Y + 2 * MO + 3 * W + 4 * D + 5 * H + 6 * MIN + 7 * S + 8]
    ]
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text)
  })

  it('refuses a bare m as ambiguous, with a hint, except where restic compatibility asks for months', () => {
    for (const text of ['10m', '1h10m', '1y2m', '2m3d']) {
      assert.throws(() => parseDuration(text), (e: unknown) => e instanceof InvalidArgumentError && /min for minutes or \d+mo for months/.test(e.message), text)
    }
    assert.equal(parseDuration('1y2m3d', { bareM: 'months' }), Y + 2 * MO + 3 * D)
    assert.equal(parseDuration('10m', { bareM: 'months' }), 10 * MO)
    // min and mo mean the same with either setting
    for (const bareM of ['refuse', 'months'] as const) {
      assert.equal(parseDuration('10min', { bareM }), 10 * MIN)
      assert.equal(parseDuration('2mo', { bareM }), 2 * MO)
      assert.equal(parseDuration('1ms', { bareM }), 1)
    }
  })

  it('refuses garbage', () => {
    const bad = [
      '', ' ', 'd', '7', '-1d', '+1d', '1.5h', '1,5h', '7D', '7 d', ' 7d', '7d ', '1e3s', '1d1d', '1s1h', '1min1h', '1mo1y',
      '1m1mo', '1mo1m', '1h 30min', '1h,30min', '10mins', '10sec', '1hour', 'min', 'mo', 'ms', '10M', '1MIN', '\n1h',
      '99999999999999y', '9'.repeat(400) + 's', 'Infinity', 'NaN', '0x10s', '1_000s', '١s'
    ]
    for (const text of bad) { refuses(text); refuses(text, { bareM: 'months' }) }
  })

  it('sums its terms (any subset of the units, in order)', () => {
    fc.assert(fc.property(fc.array(fc.option(fc.integer({ min: 0, max: 9999 }), { nil: undefined }), { minLength: UNITS.length, maxLength: UNITS.length }).filter(xs => xs.some(x => x !== undefined)), xs => {
      const text = xs.map((x, i) => (x === undefined ? '' : `${x}${UNITS[i]?.[0] ?? ''}`)).join('')
      const want = xs.reduce<number>((sum, x, i) => sum + (x ?? 0) * (UNITS[i]?.[1] ?? 0), 0)
      assert.equal(parseDuration(text), want, text)
      // with bare m as months, mo spelled m means the same
      assert.equal(parseDuration(text.replace(/(\d)mo/, '$1m'), { bareM: 'months' }), want, text)
    }), FC)
  })

  it('round-trips: the canonical spelling of any length parses back to it', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), ms => {
      assert.equal(parseDuration(spell(ms)), ms)
    }), FC)
  })

  it('round-trips the reasons forget writes (formatDuration) under --keep-within rules', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), ms => {
      assert.equal(parseDuration(formatDuration(ms), { bareM: 'months' }), ms)
    }), FC)
  })

  it('refuses units out of order or repeated', () => {
    const units = [...UNITS.map(u => u[0])]
    fc.assert(fc.property(fc.integer({ min: 0, max: units.length - 1 }), fc.integer({ min: 0, max: units.length - 1 }), fc.nat(999), fc.nat(999), (i, j, a, b) => {
      fc.pre(i >= j) // the second term's unit is not smaller than the first's
      refuses(`${a}${units[i] ?? ''}${b}${units[j] ?? ''}`)
    }), FC)
  })

  it('refuses random strings that are not a sequence of terms', () => {
    const valid = /^(?:\d+y)?(?:\d+mo)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+min)?(?:\d+s)?(?:\d+ms)?$/
    fc.assert(fc.property(fc.string({ maxLength: 12, unit: fc.constantFrom(...'0123456789ymowdhinsMD .-+,:'.split('')) }), text => {
      fc.pre(!(text !== '' && valid.test(text)))
      refuses(text)
    }), FC)
  })
})
