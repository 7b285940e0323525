/**
 * The parameters and the report of a friend-group simulation (simulations/README.md): what a run is
 * told (nodes, churn, disk losses, scheme, policies) and what it measures.
 */
import type { AuditPolicy } from '../src/repair/auditor.js'
import type { RepairPolicy } from '../src/repair/repairer.js'

const HOUR = 3600_000
/** a disk lost, a friend gone for good, or a node away (switched off, on a trip) for `hours` */
export interface ScriptedEvent { atHour: number, node: number, kind: 'disk-loss' | 'death' | 'away', hours?: number }

export interface SimParams {
  /** nodes in the group, one person each. @default 20 */
  nodes: number
  /** the first `publishers` nodes back up (they never die). @default 5 */
  publishers: number
  /** @default 30 */
  days: number
  /** @default 1 */
  seed: number
  /** a fixed erasure scheme; a pack waits until k + m other people are online. @default 2+3 */
  scheme: { k: number, m: number }
  /** share of always-on desktops; the rest are laptops. @default 0.3 */
  alwaysOnFraction: number
  /** chance a laptop is opened on a given day. @default 0.8 */
  laptopDailyUse: number
  /** outages of a desktop per year (1-24 h each). @default 12 */
  desktopOutagesPerYear: number
  /** trips per laptop per year (2-10 days offline). @default 4 */
  laptopTripsPerYear: number
  /** disk losses per node-year: every share held is gone, back empty after 2-48 h. @default 2 */
  diskLossesPerNodeYear: number
  /** permanent deaths per non-publisher node-year. @default 0.5 */
  deathsPerNodeYear: number
  /** silently damaged shares per node-year (one byte flipped). @default 2 */
  corruptionsPerNodeYear: number
  /** a holder's scrub reports damage this long after it happened (0 = never reports). @default 72 */
  scrubDelayHours: number
  /** packs each publisher has at hour 0. @default 8 */
  initialPacks: number
  /** packs each publisher adds at its first online hour of each day. @default 2 */
  packsPerDay: number
  /** pack sizes, uniform in [min, max] bytes. @default 8-64 KiB */
  packBytes: { min: number, max: number }
  /** peers that fail `mayReceiveShares` get no shares, as in the daemon (false: they are only ranked last). @default true */
  reliabilityFilter: boolean
  /** space each node offers. @default 256 MiB */
  capacityBytes: number
  audit: Partial<AuditPolicy> & { enabled: boolean }
  repair: Partial<RepairPolicy> & { enabled: boolean }
  /** events at fixed hours, on top of the random ones */
  events: ScriptedEvent[]
  /** health and loss are sampled every this many hours. @default 12 */
  sampleEveryHours: number
}

export const DEFAULT_PARAMS: SimParams = {
  nodes: 20, publishers: 5, days: 30, seed: 1, scheme: { k: 2, m: 3 },
  alwaysOnFraction: 0.3, laptopDailyUse: 0.8, desktopOutagesPerYear: 12, laptopTripsPerYear: 4,
  diskLossesPerNodeYear: 2, deathsPerNodeYear: 0.5, corruptionsPerNodeYear: 2, scrubDelayHours: 72,
  initialPacks: 8, packsPerDay: 2, packBytes: { min: 8 * 1024, max: 64 * 1024 }, capacityBytes: 256 * 1024 * 1024, reliabilityFilter: true,
  audit: { enabled: true, intervalMs: 24 * HOUR },
  repair: { enabled: true, offlineGraceMs: 72 * HOUR, maxPacksPerRound: 32 },
  events: [], sampleEveryHours: 12
}

export interface SimReport {
  scheme: string
  nodes: number
  publishers: number
  days: number
  seed: number
  events: { diskLosses: number, deaths: number, corruptions: number }
  /** mean share of nodes online over all hours */
  onlineFraction: number
  packsPlaced: number
  /** packs still waiting at the end for k + m people to be online */
  packsPending: number
  packBytes: number
  /** packs with fewer than k intact shares left on any node that is not dead */
  packsLost: number
  /** packs the publisher also keeps on its own disk at the end (keepsOwnCopy: a stripe with m <= 1) */
  ownCopies: number
  /** packs that had fewer than k intact shares on friends at some sample, kept by their publisher's own copy */
  packsRescuedByOwnCopy: number
  /** first day a loss was seen, or null */
  firstLossDay: number | null
  /** shares rebuilt and placed by the repairer, packs repaired, attempts that failed */
  repairs: number
  repairedPacks: number
  repairFailures: number
  placementBytes: number
  repairUploadBytes: number
  /** k shares per repaired pack */
  repairDownloadBytes: number
  /** k shares per pack decoded for a repair that then found no peer to place on */
  repairWastedDownloadBytes: number
  repairTrafficBytes: number
  auditBytes: number
  auditChallenges: number
  auditFailures: number
  /** bytes held by nodes that are not dead (stale copies included) / pack bytes placed */
  storageOverhead: number
  /** health = shares of a pack whose recorded holder is not dead and has them intact (max k + m) */
  healthAvg: number
  healthMin: number
  finalHealthAvg: number
  finalHealthMin: number
  /** samples at which a pack could be read from the holders online then */
  availability: number
}
