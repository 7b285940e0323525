/**
 * The durability model (docs/placement-and-repair.md §3) and the choice of erasure parameters from it.
 * Pure arithmetic: no I/O, no clock.
 */
import { MAX_K, MAX_M } from '../erasure/index.js'
import { InvalidArgumentError } from '../errors.js'

export interface DurabilityModel {
  /** probability that one person's storage is lost for good in a month (read as a rate λ per month) */
  monthlyLossRate: number
  /** days to detect a loss and repair (T) */
  repairDays: number
}

export const DEFAULT_MODEL: DurabilityModel = Object.freeze({ monthlyLossRate: 0.02, repairDays: 1 })

/** Days in a year and in a month (Julian year, month = year / 12). */
export const DAYS_PER_YEAR = 365.25
export const DAYS_PER_MONTH = DAYS_PER_YEAR / 12

export const DEFAULT_TARGET_YEARLY_LOSS = 1e-9
export const DEFAULT_MAX_EXPANSION = 3

function checkModel (model: DurabilityModel): void {
  const { monthlyLossRate: r, repairDays: t } = model
  if (!Number.isFinite(r) || r < 0) throw new InvalidArgumentError(`monthly loss rate must be a finite number >= 0, got ${r}`)
  if (!Number.isFinite(t) || t < 0) throw new InvalidArgumentError(`repair time must be a finite number of days >= 0, got ${t}`)
}

function binomial (n: number, r: number): number {
  let c = 1
  for (let i = 1; i <= r; i++) c = c * (n - r + i) / i
  return c
}

/**
 * DESIGN §3 first-order model: the yearly probability that a stripe of n = k+m shards on n different
 * people is lost, n·λ·Y·C(n−1, m)·(λT)^m with λ = monthlyLossRate / DAYS_PER_MONTH per day,
 * Y = DAYS_PER_YEAR days and T = repairDays days; capped at 1. Only n matters besides m: which k
 * shares survive does not, any k rebuild the stripe.
 */
export function yearlyLossProbability (k: number, m: number, model: DurabilityModel = DEFAULT_MODEL): number {
  if (!Number.isInteger(k) || k < 1) throw new InvalidArgumentError(`k must be an integer >= 1, got ${k}`)
  if (!Number.isInteger(m) || m < 0) throw new InvalidArgumentError(`m must be an integer >= 0, got ${m}`)
  checkModel(model)
  const n = k + m
  const lambda = model.monthlyLossRate / DAYS_PER_MONTH
  const p = n * lambda * DAYS_PER_YEAR * binomial(n - 1, m) * Math.pow(lambda * model.repairDays, m)
  return Math.min(1, p)
}

/**
 * The yearly loss of k+m on `people` other people after one holder has left the group for good
 * (docs/placement-and-repair.md §4): with a person to spare (k + m < people) the lost share is rebuilt
 * on them and the stripe is whole again; without one it cannot be rebuilt until someone joins, and the
 * stripe runs with m − 1 parity shares. λ counts such departures (a friend gone is storage lost for
 * good), and a group of n people sees about n·λ·Y of them a year (1.2 for five people at 2 %/month).
 */
export function lossAfterDeparture (k: number, m: number, people: number, model: DurabilityModel = DEFAULT_MODEL): number {
  return k + m < people || m === 0 ? yearlyLossProbability(k, m, model) : yearlyLossProbability(k, m - 1, model)
}

/**
 * Whether the publisher keeps its own copy of a pack placed as k+m (docs/placement-and-repair.md §4):
 * a stripe with at most one parity share is lost when a second holder is lost before the first is
 * rebuilt, and only the publisher rebuilds; its own copy is the one holder it is never away from.
 */
export function keepsOwnCopy (m: number): boolean {
  return m <= 1
}

export interface SchemeChoice {
  k: number
  m: number
  yearlyLoss: number
  /** (k + m) / k: bytes stored on friends per byte of pack */
  expansion: number
  /** the target is met by `lossAfterDeparture` too: the stripe stays within it when a holder leaves */
  meetsTarget: boolean
  /** the publisher keeps its own copy of each pack (`keepsOwnCopy`) */
  ownCopy: boolean
  explanation: string
}

export interface ChooseSchemeOptions {
  /** default 1e-9 */
  targetYearlyLoss?: number
  /** default 3 */
  maxExpansion?: number
  model?: DurabilityModel
}

interface Scheme { k: number, m: number, loss: number, robust: number }

/** a is cheaper than b: smaller expansion (exact, by cross-multiplication), then smaller n. */
function cheaper (a: Scheme, b: Scheme): number {
  const byExpansion = (a.k + a.m) * b.k - (b.k + b.m) * a.k
  return byExpansion !== 0 ? byExpansion : (a.k + a.m) - (b.k + b.m)
}

/** A probability in plain words, two significant digits: "24 %" from 1 % up, else "3.1e-7", "1e-9". */
export function formatLoss (p: number): string {
  if (p >= 0.01) return `${Number((p * 100).toPrecision(2))} %`
  if (p === 0) return '0'
  return p.toExponential(1).replace('.0e', 'e')
}

const friends = (n: number): string => `${n} friend${n === 1 ? '' : 's'}`

/**
 * The cheapest (k, m) — smallest expansion (k+m)/k, then smallest n — with k+m <= people (each share
 * on a different person), k <= 24, m <= 6, expansion <= maxExpansion, whose yearly loss meets the
 * target both as placed and after one holder has left for good (`lossAfterDeparture`: a stripe on
 * every other person is judged with one parity share less, since nobody could take the leaver's
 * share). `people` = number of OTHER people offering storage. When nothing meets the target: the
 * scheme with the lowest yearlyLoss within the limits (ties: cheaper first), meetsTarget false, and a
 * plain explanation. people 0 -> local store only (k=1, m=0); people 1 -> one full copy on that
 * friend. With m <= 1 the publisher keeps its own copy too (`keepsOwnCopy`); docs/placement-and-repair.md
 * §4 says why.
 */
export function chooseScheme (people: number, opts: ChooseSchemeOptions = {}): SchemeChoice {
  const target = opts.targetYearlyLoss ?? DEFAULT_TARGET_YEARLY_LOSS
  const maxExpansion = opts.maxExpansion ?? DEFAULT_MAX_EXPANSION
  const model = opts.model ?? DEFAULT_MODEL
  if (!Number.isSafeInteger(people) || people < 0) throw new InvalidArgumentError(`the number of people must be an integer >= 0, got ${people}`)
  if (!(target > 0 && target <= 1)) throw new InvalidArgumentError(`the target yearly loss must be in (0, 1], got ${target}`)
  if (!(maxExpansion >= 1)) throw new InvalidArgumentError(`the maximum expansion must be >= 1, got ${maxExpansion}`)
  checkModel(model)
  const wanted = formatLoss(target)

  if (people === 0) {
    const loss = yearlyLossProbability(1, 0, model)
    return { k: 1, m: 0, yearlyLoss: loss, expansion: 1, meetsTarget: false, ownCopy: true, explanation: 'no friends yet: local store only' }
  }

  let best: Scheme | undefined // cheapest that meets the target
  let safest: Scheme | undefined // lowest loss overall
  for (let k = 1; k <= Math.min(MAX_K, people); k++) {
    for (let m = 0; m <= MAX_M && k + m <= people; m++) {
      if (k + m > maxExpansion * k) break
      const s: Scheme = { k, m, loss: yearlyLossProbability(k, m, model), robust: lossAfterDeparture(k, m, people, model) }
      if (s.robust <= target && (best === undefined || cheaper(s, best) < 0)) best = s
      if (safest === undefined || s.loss < safest.loss || (s.loss === safest.loss && cheaper(s, safest) < 0)) safest = s
    }
  }
  // k = 1, m = 0 always qualifies, so `safest` is set.
  const chosen = best ?? safest ?? { k: 1, m: 0, loss: yearlyLossProbability(1, 0, model) }
  const { k, m, loss } = chosen
  const n = k + m
  const ownCopy = keepsOwnCopy(m)
  const result = { k, m, yearlyLoss: loss, expansion: n / k, meetsTarget: best !== undefined, ownCopy }
  const own = ownCopy ? '; this disk keeps its own copy too' : ''
  let explanation: string
  if (people === 1 && best === undefined) {
    explanation = `only 1 friend: a single full copy on that friend (1+0)${own}; the group is too small to survive losing them (yearly loss about ${formatLoss(loss)}); add friends to reach ${wanted}`
  } else if (best === undefined) {
    const mirror = k === 1 && m > 0 ? ' (a full copy on each)' : ''
    explanation = `with ${friends(people)} the best is ${k}+${m}${mirror}${own}, yearly loss about ${formatLoss(loss)}; add friends to reach ${wanted}`
  } else {
    const copies = k === 1 ? (m === 0 ? 'one full copy' : `${n} full copies`) : `${n} shares, any ${k} rebuild a pack`
    const spare = n < people ? `; ${people - n === 1 ? 'one friend is' : `${people - n} friends are`} left to take the shares of one who leaves` : ''
    explanation = `${k}+${m} on ${n} of ${friends(people)}: ${copies}; up to ${m} of them may be lost${spare}; ` +
      `yearly loss about ${formatLoss(loss)} (target ${wanted}); stores ${formatExpansion(n / k)} the data`
  }
  return { ...result, explanation }
}

function formatExpansion (x: number): string {
  return `${Number.isInteger(x) ? x.toFixed(0) : x.toFixed(2).replace(/0$/, '')}×`
}
