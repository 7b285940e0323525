/**
 * What the group pack store (erasure-pack-store.ts) is given: the group as plain data (who may hold
 * shares, their stores, the clock), and its settings. The node layer implements the directory.
 */
import type { Candidate } from '../placement/index.js'
import type { ShareStore } from '../store/index.js'
import type { ListBounds } from './bounded-list.js'
import type { TransferCounts } from './placement-tally.js'

/** What the pack store needs to know about the group, as plain data. */
export interface PeerDirectory {
  /** the user id of the person this node belongs to */
  readonly ownPersonId: string
  /** peers that may hold shares, with their person, liveness, space and reliability */
  candidates: () => Candidate[]
  /**
   * the devices that offer space, whatever their reliability (also those that get no new shares for
   * failed audits or a low uptime): whom reads, listings of shares and records, and deletes go to.
   * @default candidates()
   */
  holders?: () => Candidate[]
  /** the share store of one peer */
  storeFor: (peerId: string) => ShareStore
  /** how many other people of the group offer space (or have not said yet), answering or not; @default those among `candidates()` */
  otherPeople?: () => number
  /** why no friend can take a share now, in words for the user (null when some can) */
  whyLocal?: () => string | null
  /** the group's clock (commitments are dated with it unless `init.now` says otherwise) */
  now?: () => number
  /** the counters of requests to friends' nodes so far (for a job's summary) */
  transferCounts?: () => TransferCounts
  /**
   * Finds a peer again when its known addresses answer nobody (it restarted on another port, moved to
   * another network): its newest addresses from the peer book, then the group's DHT. Resolves when a
   * connection is open.
   */
  reconnect?: (peerId: string) => Promise<void>
  /**
   * Whether the roster lists another device of this person (a second machine, a write-only one, the
   * machine this one was recovered for): its snapshot records are then only on friends, and a head
   * no friend listed does not show them. Absent: assumed so.
   */
  hasOtherDevices?: () => boolean
}

export interface ErasurePackStoreInit {
  /** yearly loss target per pack (DESIGN §3). @default 1e-9 */
  targetYearlyLoss?: number
  /** largest storage expansion (k+m)/k accepted. @default 3 */
  maxExpansion?: number
  /** rounds of replacing failed peers before giving up. @default 3 */
  placementRounds?: number
  /** decoded packs kept for range reads (restore reads many blobs of one pack). @default 3 */
  cachedPacks?: number
  /** deadline for fetching the shares of one pack during repair, ms. @default 30000 */
  repairFetchTimeoutMs?: number
  /** a fixed (k, m) instead of the durability model's choice (simulations, tests); used when enough people are online */
  scheme?: { k: number, m: number } | null
  /** the clock commitments are dated with. @default Date.now */
  now?: () => number
  /** bounds of one peer's listing (bounded-list.ts). @default 120 s of waiting, 1,000,000 entries */
  listBounds?: ListBounds
  /**
   * whether a repair queues the replaced holder's old copy for deletion; false on a write-only
   * machine, whose deletes persisters refuse (the copy goes when a full machine prunes the pack). @default true
   */
  releasesOldCopies?: boolean
}
