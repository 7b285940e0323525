/**
 * Which peer gets which share of a stripe (docs/placement-and-repair.md §5). Pure functions over plain
 * data: the caller gathers who is online, their free space and reliability; nothing here does I/O.
 */
import { InvalidArgumentError, PlacementFailedError } from '../errors.js'

export interface Candidate {
  peerId: string
  personId: string
  online: boolean
  /** free space the peer claims (its offer); counted only up to {@link creditedFreeBytes} */
  freeBytes: number
  /** 0..1, higher is better (audits passed, uptime) */
  reliability: number
  /** bytes of our shares this peer holds and has passed an audit of (what it proved it stores). @default 0 */
  provenBytes?: number
  /** the person joined the group recently (P9: the newest cohort). @default false */
  newcomer?: boolean
}

/**
 * P8: how much of a claimed free space a peer may count beyond what it proved it stores for us. A
 * peer that says it has 1e300 bytes free ranks as one with this much (plus its proven bytes).
 */
export const FREE_CLAIM_ALLOWANCE_BYTES = 16 * 1024 ** 3

/** P9: a person whose roster `joinedAt` is less than this long ago counts as a newcomer (30 days). */
export const NEWCOMER_PERIOD_MS = 30 * 24 * 3600_000

/** P8: the free space placement credits a peer with: min(claimed, provenBytes + FREE_CLAIM_ALLOWANCE_BYTES). */
export function creditedFreeBytes (c: Pick<Candidate, 'freeBytes' | 'provenBytes'>): number {
  return Math.min(c.freeBytes, (c.provenBytes ?? 0) + FREE_CLAIM_ALLOWANCE_BYTES)
}

export interface PlacementOptions {
  /** the publisher's own person: never used unless allowOwn */
  ownPersonId: string
  /** allow the publisher's own other devices, ranked after every other person */
  allowOwn?: boolean
  /** peers not to use (for example the ones that just failed) */
  exclude?: ReadonlySet<string>
  /**
   * P9: at most this many shares of the stripe (those already held included) go to newcomers while
   * other eligible people remain; the stripe's parity count m, so the newest cohort all vanishing
   * (or being one disk behind many names) loses no data. @default no bound
   */
  maxNewcomerShares?: number
}

export interface Holder { peerId: string, personId: string }

/** Higher reliability, then more credited free space (P8), then the smaller peer id (code-unit order). */
function comparePeers (a: Candidate, b: Candidate): number {
  if (a.reliability !== b.reliability) return b.reliability - a.reliability
  const fa = creditedFreeBytes(a)
  const fb = creditedFreeBytes(b)
  if (fa !== fb) return fb > fa ? 1 : -1
  return a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0
}

function checkCandidates (candidates: readonly Candidate[]): void {
  const seen = new Set<string>()
  for (const c of candidates) {
    if (seen.has(c.peerId)) throw new InvalidArgumentError(`peer ${c.peerId} is listed twice among the placement candidates`)
    seen.add(c.peerId)
    if (!(c.reliability >= 0 && c.reliability <= 1)) throw new InvalidArgumentError(`peer ${c.peerId}: reliability must be in 0..1, got ${c.reliability}`)
    if (!(c.freeBytes >= 0)) throw new InvalidArgumentError(`peer ${c.peerId}: free space must be >= 0, got ${c.freeBytes}`)
    if (c.provenBytes !== undefined && !(c.provenBytes >= 0)) throw new InvalidArgumentError(`peer ${c.peerId}: proven bytes must be >= 0, got ${c.provenBytes}`)
  }
}

function checkShareBytes (shareBytes: number): void {
  if (!(shareBytes >= 0) || !Number.isFinite(shareBytes)) throw new InvalidArgumentError(`share size must be a finite number >= 0, got ${shareBytes}`)
}

/** Every eligible person's best peer, best first, and why the others were refused. */
interface Ranking { ranked: Candidate[], refusals: Array<{ peer: string, error: string }>, counts: Map<Label, number> }

/** Ranks the eligible persons (P3, P4). `blocked` maps persons that may not be used to the reason. */
function rankPeople (
  shareBytes: number, candidates: readonly Candidate[], opts: PlacementOptions,
  blocked: ReadonlyMap<string, string>, blockedPeers: ReadonlySet<string>
): Ranking {
  checkShareBytes(shareBytes)
  checkCandidates(candidates)
  const refusals: Array<{ peer: string, error: string }> = []
  const counts = new Map<Label, number>()
  const bestOfPerson = new Map<string, Candidate>()
  for (const c of candidates) {
    const why = refusal(c, shareBytes, opts, blocked, blockedPeers)
    if (why !== undefined) {
      refusals.push({ peer: c.peerId, error: why.error })
      counts.set(why.label, (counts.get(why.label) ?? 0) + 1)
      continue
    }
    const prev = bestOfPerson.get(c.personId)
    if (prev === undefined || comparePeers(c, prev) < 0) bestOfPerson.set(c.personId, c)
  }
  const own = (c: Candidate): number => (c.personId === opts.ownPersonId ? 1 : 0)
  const ranked = [...bestOfPerson.values()].sort((a, b) => own(a) - own(b) || comparePeers(a, b))
  const newPersons = new Set(candidates.filter(c => c.newcomer === true).map(c => c.personId))
  const heldByNew = [...blocked.keys()].filter(p => newPersons.has(p)).length
  return { ranked: spreadCohorts(ranked, opts.maxNewcomerShares, heldByNew), refusals, counts }
}

/**
 * P9: keeps the ranking, but moves newcomers beyond the first `max − heldByNew` to the end, so they
 * are taken only when nobody older is left. Everyone new (a group made today): the order is unchanged.
 */
function spreadCohorts (ranked: Candidate[], max: number | undefined, heldByNew: number): Candidate[] {
  if (max === undefined) return ranked
  const first: Candidate[] = []
  const later: Candidate[] = []
  let taken = heldByNew
  for (const c of ranked) {
    if (c.newcomer !== true) first.push(c)
    else if (taken < max) { first.push(c); taken++ } else later.push(c)
  }
  return [...first, ...later]
}

/** P5: the failure to place `count` shares when only `eligible` people qualify. */
function placementFailed (count: number, eligible: number, shareBytes: number, candidates: readonly Candidate[], r: Ranking, extra = ''): PlacementFailedError {
  const people = new Set(candidates.map((c) => c.personId)).size
  return new PlacementFailedError(
    `cannot place ${count} share(s) of ${shareBytes} bytes on ${count} different people: only ${eligible} ` +
    `eligible (${candidates.length} peer(s) of ${people} people offered${LABELS.filter((l) => r.counts.has(l)).map((l) => `; ${r.counts.get(l) ?? 0} ${l}`).join('')}${extra})`,
    { errors: r.refusals })
}

/**
 * The best peer of each of `count` different people, best first, or PlacementFailedError. `blocked`
 * maps persons that may not be used to the reason.
 */
function pickPeople (
  count: number, shareBytes: number, candidates: readonly Candidate[], opts: PlacementOptions,
  blocked: ReadonlyMap<string, string>, blockedPeers: ReadonlySet<string>
): Candidate[] {
  const r = rankPeople(shareBytes, candidates, opts, blocked, blockedPeers)
  if (r.ranked.length < count) throw placementFailed(count, r.ranked.length, shareBytes, candidates, r)
  return r.ranked.slice(0, count)
}

/** The reasons a peer is refused, in the order the failure message lists them. */
const LABELS = ['offline', 'full', 'excluded', 'your own', 'already holding a share'] as const
type Label = typeof LABELS[number]

/** Why a candidate may not take a share: a short label for the summary and the message for `errors`. */
function refusal (
  c: Candidate, shareBytes: number, opts: PlacementOptions,
  blocked: ReadonlyMap<string, string>, blockedPeers: ReadonlySet<string>
): { label: Label, error: string } | undefined {
  if (!c.online) return { label: 'offline', error: 'offline' }
  if (creditedFreeBytes(c) < shareBytes) return { label: 'full', error: `not enough free space (${creditedFreeBytes(c)} < ${shareBytes} bytes)` }
  if (opts.exclude?.has(c.peerId) === true) return { label: 'excluded', error: 'excluded' }
  if (blockedPeers.has(c.peerId)) return { label: 'already holding a share', error: 'already holds a share of this stripe' }
  if (c.personId === opts.ownPersonId && opts.allowOwn !== true) return { label: 'your own', error: 'one of your own devices' }
  const held = blocked.get(c.personId)
  if (held !== undefined) return { label: 'already holding a share', error: held }
  return undefined
}

/**
 * Assigns share indexes 0..n-1 to peers: never two shares on peers of the same person; never the
 * publisher's own person unless allowOwn (and then only after every other person); only online peers
 * with credited free space (P8) >= shareBytes and not in `exclude`; prefers higher reliability, then
 * more credited free space, then the smaller peer id; newcomers beyond `maxNewcomerShares` only when
 * nobody older is eligible (P9). Returns peer ids by share index (share 0 to the best person), or throws
 * PlacementFailedError saying how many people were eligible vs needed.
 */
export function planPlacement (n: number, shareBytes: number, candidates: readonly Candidate[], opts: PlacementOptions): string[] {
  if (!Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`the number of shares must be an integer >= 0, got ${n}`)
  return pickPeople(n, shareBytes, candidates, opts, new Map(), new Set()).map((c) => c.peerId)
}

export interface ReplacementOptions extends PlacementOptions {
  /**
   * P7: the peer that held each missing index before it was lost (a failed audit: a wiped folder, a
   * replaced disk). Only when fewer other people are eligible than shares are missing, that peer may
   * take the same index back, if it is a candidate and eligible except for being in `exclude`.
   */
  previous?: ReadonlyMap<number, string>
  /**
   * Place what can be placed and leave the other indexes out of the result instead of failing;
   * PlacementFailedError only when nothing at all can be placed. @default false
   */
  partial?: boolean
}

/**
 * Replacement targets for the missing share indexes of an existing placement (repair/retry), keeping
 * the one-share-per-person rule against the holders that remain: no person who holds a share of the
 * stripe gets another. The best person gets the smallest missing index (P6). When fewer other people
 * are eligible than indexes are missing, the new people take first the indexes whose previous holder
 * cannot take them back, then the others in index order, and each index still left goes back to its
 * previous holder when P7 allows it (docs/placement-and-repair.md §5).
 */
export function planReplacements (
  missing: readonly number[], holders: ReadonlyMap<number, Holder>, shareBytes: number,
  candidates: readonly Candidate[], opts: ReplacementOptions
): Map<number, string> {
  const wanted = [...new Set(missing)].sort((a, b) => a - b)
  for (const i of wanted) {
    if (!Number.isSafeInteger(i) || i < 0) throw new InvalidArgumentError(`share index must be an integer >= 0, got ${i}`)
    if (holders.has(i)) throw new InvalidArgumentError(`share ${i} is listed as missing but still has a holder (${holders.get(i)?.peerId ?? ''})`)
  }
  const blocked = new Map<string, string>()
  const blockedPeers = new Set<string>()
  for (const [index, h] of holders) {
    blocked.set(h.personId, `that person already holds share ${index}`)
    blockedPeers.add(h.peerId)
  }
  const r = rankPeople(shareBytes, candidates, opts, blocked, blockedPeers)
  if (r.ranked.length >= wanted.length) return new Map(wanted.map((index, i) => [index, (r.ranked[i] as Candidate).peerId]))
  // P7: previous holders that may take their own index back (one index per person)
  const back = new Map<number, Candidate>()
  const backPersons = new Set<string>()
  for (const i of wanted) {
    const c = candidates.find((x) => x.peerId === opts.previous?.get(i))
    if (c === undefined || backPersons.has(c.personId)) continue
    const others = new Set([...(opts.exclude ?? [])].filter((p) => p !== c.peerId))
    if (refusal(c, shareBytes, { ...opts, exclude: others }, blocked, blockedPeers) !== undefined) continue
    back.set(i, c)
    backPersons.add(c.personId)
  }
  // a person taking its own index back takes no other
  const fresh = r.ranked.filter((c) => !backPersons.has(c.personId))
  const order = [...wanted.filter((i) => !back.has(i)), ...wanted.filter((i) => back.has(i))]
  const out = new Map<number, string>()
  for (const [n, index] of order.entries()) {
    const c = fresh[n] ?? back.get(index)
    if (c !== undefined) out.set(index, c.peerId)
  }
  if (out.size === wanted.length || (opts.partial === true && out.size > 0)) {
    return new Map([...out].sort(([a], [b]) => a - b))
  }
  throw placementFailed(wanted.length, fresh.length, shareBytes, candidates, r, back.size > 0 ? `; ${back.size} may take its own share back` : '')
}

/** Index → the peer (or peers) holding a share of an older stripe of a pack at that index. */
export type HeldIndexes = ReadonlyMap<number, string | ReadonlySet<string>>

/** Whether `peer` holds a share of an older stripe at `index` (HeldIndexes). */
export function holdsIndex (held: HeldIndexes | undefined, index: number, peer: string | undefined): boolean {
  const h = held?.get(index)
  return h !== undefined && peer !== undefined && (typeof h === 'string' ? h === peer : h.has(peer))
}

/**
 * Re-deals the peers of a planned stripe among its share indexes so that no peer is given an index
 * at which it still holds a share of an older stripe of the same pack (`held`: index → peer, or the
 * peers, when leftovers of several earlier tries hold that index). Such a
 * put would be a replace of other bytes, which persisters refuse without the owner's signature and
 * which would break the older stripe while it is still the one recorded. Tries every rotation of the
 * planned peers first (never fails when the plan has more shares than `held` has entries and its
 * peers are distinct: each entry rules out at most one rotation), then any dealing (a matching of
 * peers to indexes: leftovers of an earlier try can rule out every rotation while another dealing
 * fits); undefined when none avoids them all.
 */
export function avoidHeldIndexes (planned: ReadonlyMap<number, string>, held: HeldIndexes): Map<number, string> | undefined {
  const indexes = [...planned.keys()].sort((a, b) => a - b)
  const peers = indexes.map(i => planned.get(i) as string)
  for (let r = 0; r < peers.length; r++) {
    const dealt = new Map(indexes.map((index, j) => [index, peers[(j + r) % peers.length] as string]))
    if (indexes.every(i => !holdsIndex(held, i, dealt.get(i)))) return dealt
  }
  if (indexes.length === 0) return new Map()
  // a perfect matching of peers to indexes avoiding held pairs (augmenting paths; stripes are small)
  const owner = new Map<number, number>() // index position → peer position
  const tryPeer = (p: number, seen: Set<number>): boolean => {
    for (let j = 0; j < indexes.length; j++) {
      if (seen.has(j) || holdsIndex(held, indexes[j] as number, peers[p])) continue
      seen.add(j)
      const other = owner.get(j)
      if (other === undefined || tryPeer(other, seen)) { owner.set(j, p); return true }
    }
    return false
  }
  for (let p = 0; p < peers.length; p++) if (!tryPeer(p, new Set())) return undefined
  return new Map(indexes.map((index, j) => [index, peers[owner.get(j) as number] as string]))
}
