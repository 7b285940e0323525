/**
 * Health of one stripe and the four redundancy thresholds (docs/placement-and-repair.md §6–§7).
 */
import { InvalidArgumentError } from '../errors.js'

export interface StripeHealth {
  k: number
  m: number
  /** shares held by online peers, distinct persons counted once */
  available: number
  /** how many more holders (people) may be lost with the stripe still readable: max(0, available - k) */
  canLose: number
  /** available >= k */
  readable: boolean
}

function checkKm (k: number, m: number): void {
  if (!Number.isInteger(k) || k < 1) throw new InvalidArgumentError(`k must be an integer >= 1, got ${k}`)
  if (!Number.isInteger(m) || m < 0) throw new InvalidArgumentError(`m must be an integer >= 0, got ${m}`)
}

/**
 * available = shares held by online peers (distinct persons counted once, so two shares on one person
 * count as one: losing that person loses both); canLose = max(0, available - k); readable = available >= k.
 */
export function stripeHealth (k: number, m: number, holders: ReadonlyArray<{ personId: string, online: boolean }>): StripeHealth {
  checkKm(k, m)
  const persons = new Set<string>()
  for (const h of holders) if (h.online) persons.add(h.personId)
  const available = persons.size
  return { k, m, available, canLose: Math.max(0, available - k), readable: available >= k }
}

/**
 * storj's four numbers for a k+m stripe, required <= repair <= optimal <= total:
 * required = k (fewer: unreadable); repair = the available count at or below which a stripe is
 * repaired even though its missing holders may only be offline (default k, i.e. canLose < 1);
 * optimal = total = n = k + m (every share on its own person; n is small, so no long tail to cut).
 */
export interface RedundancyThresholds { required: number, repair: number, optimal: number, total: number }

/** Builds and checks the thresholds once; each violation has its own message. */
export function redundancyThresholds (k: number, m: number, repair = k, optimal = k + m): RedundancyThresholds {
  checkKm(k, m)
  const total = k + m
  if (!Number.isInteger(repair) || !Number.isInteger(optimal)) throw new InvalidArgumentError('thresholds must be integers')
  if (repair < k) throw new InvalidArgumentError(`repair threshold ${repair} is less than required ${k}`)
  if (repair > optimal) throw new InvalidArgumentError(`repair threshold ${repair} is greater than optimal threshold ${optimal}`)
  if (optimal > total) throw new InvalidArgumentError(`optimal threshold ${optimal} is greater than total ${total}`)
  return { required: k, repair, optimal, total }
}
