/**
 * @packageDocumentation
 * Placement and health: which (k, m) to use for a group of friends, which peer holds which share, and
 * how healthy a stripe is. Pure functions over plain data (no I/O, no libp2p, no clock), so that the
 * simulations in `simulations/` and the property tests run the very code the node runs.
 * docs/placement-and-repair.md is the spec.
 */
export {
  DEFAULT_MODEL, DAYS_PER_MONTH, DAYS_PER_YEAR, DEFAULT_MAX_EXPANSION, DEFAULT_TARGET_YEARLY_LOSS,
  chooseScheme, formatLoss, keepsOwnCopy, lossAfterDeparture, yearlyLossProbability,
  type ChooseSchemeOptions, type DurabilityModel, type SchemeChoice
} from './durability.js'
export { FREE_CLAIM_ALLOWANCE_BYTES, NEWCOMER_PERIOD_MS, avoidHeldIndexes, creditedFreeBytes, holdsIndex, type HeldIndexes, planPlacement, planReplacements, type Candidate, type Holder, type PlacementOptions, type ReplacementOptions } from './assign.js'
export { redundancyThresholds, stripeHealth, type RedundancyThresholds, type StripeHealth } from './health.js'
