/**
 * Rosters as a hash chain (docs/format/group.md §5.5–§5.7): sending a run of consecutive versions,
 * checking the run a joiner gets against the version its invite pins, and reconciling two members'
 * histories — catching up, or choosing one branch of a fork the same way on every node.
 */
import type { Identity, SodiumBackend } from '../crypto/index.js'
import { FormatError, NotMemberError, UnauthenticatedError, isP2pbakError } from '../errors.js'
import { utf8Decode, utf8Encode } from '../util/bytes.js'
import { canonicalJson, expectArray, parseCanonicalJson } from './canonical.js'
import { MAX_ROSTER_BYTES } from './constants.js'
import type { Invite } from './invite.js'
import { addMember, removeDevice, removeMember, renameGroup, setAdmin, setRetention } from './roster-build.js'
import { findMember, memberOfPeer, parseRoster, rosterHash } from './roster.js'
import type { Roster } from './roster.js'
import { ROSTER_CHECKPOINT, verifyRosterUpdate, type VerifyOptions } from './roster-verify.js'

/**
 * Versions a node keeps before its current one, at least: how deep a fork it can resolve, how far
 * back a joiner's invite may pin. A node also keeps every version since the newest checkpoint
 * (keptHistory), so that members' versions alone never push a node that was away out of reach.
 */
export const MAX_ROSTER_HISTORY = 32
/** Most versions in one chain answer, and most a node keeps in all (the current one included). */
export const MAX_ROSTER_CHAIN = MAX_ROSTER_HISTORY + ROSTER_CHECKPOINT + 1
/** Largest encoded run of versions (a chain answer, a join answer). */
export const MAX_ROSTER_CHAIN_BYTES = 8 * 1024 * 1024

function reject (reason: string): never {
  throw new UnauthenticatedError(`roster refused: ${reason}`)
}

/** Canonical JSON array of the rosters, oldest first (UTF-8). */
export function encodeRosterChain (chain: readonly Roster[]): Uint8Array {
  const b = utf8Encode(canonicalJson(chain))
  if (b.byteLength > MAX_ROSTER_CHAIN_BYTES) throw new FormatError(`a run of ${chain.length} roster versions is ${b.byteLength} bytes, more than ${MAX_ROSTER_CHAIN_BYTES}`)
  return b
}

/**
 * What a node keeps of `chain` (oldest first, the last one current): the last MAX_ROSTER_HISTORY
 * versions before the current one, and every version since the newest checkpoint (a serial that is
 * a multiple of ROSTER_CHECKPOINT, which only an admin signs), at most MAX_ROSTER_CHAIN in all.
 */
export function keptHistory (chain: readonly Roster[]): Roster[] {
  const head = chain.at(-1)
  if (head === undefined) return []
  const checkpoint = Math.floor(head.serial / ROSTER_CHECKPOINT) * ROSTER_CHECKPOINT
  const oldest = Math.max(head.serial - MAX_ROSTER_CHAIN + 1, Math.min(head.serial - MAX_ROSTER_HISTORY, checkpoint))
  return chain.filter(r => r.serial >= oldest && r !== head)
}

/**
 * The oldest versions of `chain` whose encoding fits MAX_ROSTER_CHAIN_BYTES (at least the first
 * one): a chain answer starts where the asker asked, so that it links to what the asker holds; the
 * asker asks again from the last version it got (Membership.syncRoster).
 */
export function oldestThatFit (chain: readonly Roster[]): Roster[] {
  const out: Roster[] = []
  let bytes = 2
  for (const r of chain) {
    bytes += utf8Encode(canonicalJson(r)).byteLength + 1
    if (out.length > 0 && (bytes > MAX_ROSTER_CHAIN_BYTES || out.length >= MAX_ROSTER_CHAIN)) break
    out.push(r)
  }
  return out
}

/**
 * Strict: a canonical JSON array of 1..MAX_ROSTER_CHAIN rosters, each well formed, consecutive
 * (serial + 1) and linked (each `prev` the hash of the one before). No signature checks.
 */
export function decodeRosterChain (b: Uint8Array): Roster[] {
  if (b.byteLength > MAX_ROSTER_CHAIN_BYTES) throw new FormatError(`a roster run is ${b.byteLength} bytes, more than ${MAX_ROSTER_CHAIN_BYTES}`)
  const items = expectArray(parseCanonicalJson(utf8Decode(b), 'roster run'), 'roster run', MAX_ROSTER_CHAIN)
  if (items.length === 0) throw new FormatError('a roster run has at least one version')
  const chain = items.map(parseRoster)
  for (let i = 1; i < chain.length; i++) {
    const a = chain[i - 1] as Roster
    const r = chain[i] as Roster
    if (r.serial !== a.serial + 1 || r.prev !== rosterHash(a)) throw new FormatError(`roster run: serial ${r.serial} does not follow serial ${a.serial}`)
    if (utf8Encode(canonicalJson(r)).byteLength > MAX_ROSTER_BYTES) throw new FormatError(`roster serial ${r.serial} is larger than ${MAX_ROSTER_BYTES} bytes`)
  }
  return chain
}

/** Every link of `links` is a valid update of the one before it, the first of `anchor` (UnauthenticatedError or NotMemberError otherwise). */
export function verifyChain (sodium: SodiumBackend, anchor: Roster, links: readonly Roster[], options: VerifyOptions = {}): void {
  let current = anchor
  for (const next of links) {
    verifyRosterUpdate(sodium, current, next, options)
    current = next
  }
}

/**
 * What a joiner checks on the run of versions the inviter answers with: it starts at the version the
 * invite pins (serial and hash, signed by the inviter when it issued the invite), every later version
 * is a valid update of the one before, and the newest has the inviter as a member and the joiner's
 * device under the joiner's userId. Returns the newest.
 */
export function verifyJoinChain (sodium: SodiumBackend, invite: Invite, chain: readonly Roster[], joinerUserId: string, joinerPeerId: string, options: VerifyOptions = {}): Roster {
  const first = chain[0]
  const head = chain.at(-1)
  if (first === undefined || head === undefined) reject('the inviter sent no roster')
  if (invite.rosterHash === undefined || invite.rosterSerial === undefined) reject('the invite pins no roster (made by an older p2pbak); ask for a new invite')
  if (first.serial !== invite.rosterSerial || rosterHash(first) !== invite.rosterHash) {
    reject(`the inviter's roster history does not start at the version the invite pins (serial ${invite.rosterSerial}): it is not the group the invite was made for`)
  }
  verifyRosterUpdate(sodium, undefined, first, options)
  verifyChain(sodium, first, chain.slice(1), options)
  if (head.groupId !== invite.groupId) reject(`it belongs to group ${head.groupId}, but the invite is for ${invite.groupId}`)
  if (findMember(head, invite.inviter) === undefined) throw new NotMemberError(`the inviter ${invite.inviter} is not on the roster`)
  if (memberOfPeer(head, joinerPeerId)?.userId !== joinerUserId) throw new NotMemberError(`this device (${joinerPeerId}) is not on the roster as a device of ${joinerUserId}`)
  return head
}

/** Two different valid versions with the same serial and the same predecessor. */
export interface RosterFork {
  serial: number
  ours: Roster
  theirs: Roster
  /** both signed by one member: they signed two histories on purpose (honest nodes never do) */
  equivocation: boolean
}

export type Reconciled =
  /** nothing newer than what we hold */
  | { kind: 'current' }
  /** `adopted` are valid successors of our current version, oldest first */
  | { kind: 'advance', adopted: Roster[] }
  /** a fork whose branch we keep (ours has the lower hash at the fork) */
  | { kind: 'keep', fork: RosterFork }
  /** a fork whose other branch wins: drop `abandoned` (ours after `anchor`), take `adopted` */
  | { kind: 'switch', fork: RosterFork, anchor: Roster, adopted: Roster[], abandoned: Roster[] }
  /** their run does not connect to any version we keep (a gap, or a fork older than our history) */
  | { kind: 'unlinked', reason: string }

/**
 * Compares our history (`local`: kept versions then the current one, oldest first, consecutive) with
 * a member's run (`remote`, as decodeRosterChain returns it). Their versions past the last one we
 * share must be valid updates (thrown otherwise). When both sides have a version after the last
 * shared one, the branch whose first version there has the smaller hash (hex, compared as text)
 * wins — the same choice on every node, whichever branch it saw first.
 */
export function reconcileRosters (sodium: SodiumBackend, local: readonly Roster[], remote: readonly Roster[], options: VerifyOptions = {}): Reconciled {
  const head = local.at(-1)
  if (head === undefined) throw new FormatError('reconcileRosters needs our current roster')
  const oldest = (local[0] as Roster).serial
  const hashes = new Map(local.map(r => [rosterHash(r), r]))
  const theirs = remote.filter(r => r.serial >= oldest)
  let i = 0
  while (i < theirs.length && hashes.has(rosterHash(theirs[i] as Roster))) i++
  const rest = theirs.slice(i)
  const first = rest[0]
  if (first === undefined) return { kind: 'current' }
  if (first.groupId !== head.groupId) reject(`it belongs to group ${first.groupId}, not ${head.groupId}`)
  const anchor = first.prev === undefined ? undefined : hashes.get(first.prev)
  if (anchor === undefined || anchor.serial !== first.serial - 1) {
    return { kind: 'unlinked', reason: `their serial ${first.serial} follows no version this node keeps (serials ${oldest}..${head.serial})` }
  }
  verifyChain(sodium, anchor, rest, options)
  if (anchor === head) return { kind: 'advance', adopted: rest }
  const ours = local.find(r => r.serial === first.serial) as Roster
  const fork: RosterFork = { serial: first.serial, ours, theirs: first, equivocation: ours.updatedBy === first.updatedBy }
  if (rosterHash(first) < rosterHash(ours)) {
    return { kind: 'switch', fork, anchor, adopted: rest, abandoned: local.filter(r => r.serial > anchor.serial) }
  }
  return { kind: 'keep', fork }
}

/**
 * After switching branches, signs again on top of `head` the changes `signer` made on the abandoned
 * branch (people and devices added, removals, revocations, admin flags, retention, the group's
 * name), so that an honest member's work — admitting a friend who joined at the same moment as
 * someone else — survives the fork. Returns the new versions after `head`, oldest first; changes
 * that no longer apply are reported in `skipped`.
 */
export function rebaseOwnChanges (sodium: SodiumBackend, head: Roster, anchor: Roster, abandoned: readonly Roster[], signer: Identity, now: number): { versions: Roster[], skipped: string[] } {
  const skipped: string[] = []
  const versions: Roster[] = []
  let out = head
  const step = (what: string, fn: (r: Roster) => Roster): void => {
    try {
      const next = fn(out)
      if (next !== out) versions.push(next)
      out = next
    } catch (err: unknown) {
      if (!isP2pbakError(err)) throw err
      skipped.push(`${what}: ${err.message}`)
    }
  }
  let before = anchor
  for (const r of abandoned) {
    if (r.updatedBy === signer.userId) {
      for (const m of r.members) {
        const was = findMember(before, m.userId)
        for (const d of m.devices) {
          if (was?.devices.some(e => e.peerId === d.peerId) === true) continue
          step(`adding device ${d.peerId} of ${m.userId}`, x => addMember(sodium, x, signer, { userId: m.userId, name: m.name, device: d }, now))
        }
        if (was !== undefined && was.admin !== m.admin) step(`admin flag of ${m.userId}`, x => setAdmin(sodium, x, signer, m.userId, m.admin, now))
      }
      for (const u of r.removed) if (!before.removed.includes(u)) step(`removing ${u}`, x => findMember(x, u) === undefined ? x : removeMember(sodium, x, signer, u, now))
      for (const p of r.removedDevices) if (!before.removedDevices.includes(p)) step(`revoking ${p}`, x => memberOfPeer(x, p) === undefined ? x : removeDevice(sodium, x, signer, p, now))
      if (canonicalJson(r.retention) !== canonicalJson(before.retention)) step('retention', x => setRetention(sodium, x, signer, r.retention, now))
      if (r.name !== before.name) step('group name', x => renameGroup(sodium, x, signer, r.name, now))
    }
    before = r
  }
  return { versions, skipped }
}
