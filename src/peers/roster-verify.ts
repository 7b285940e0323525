/**
 * Deciding whether a roster is authentic and may replace the one we hold
 * (docs/format/group.md §5.3). Throws UnauthenticatedError or NotMemberError with the reason.
 */
import type { SodiumBackend } from '../crypto/index.js'
import { FormatError, NotMemberError, UnauthenticatedError } from '../errors.js'
import { fromHex } from '../util/bytes.js'
import { canonicalJson, decodeBase64 } from './canonical.js'
import { verifyDeviceCert } from './device-cert.js'
import { ROSTER_VERSION, findMember, memberOfPeer, parseRoster, rosterHash, rosterSigningBytes } from './roster.js'
import type { Roster, RosterMember } from './roster.js'

function reject (reason: string): never {
  throw new UnauthenticatedError(`roster update refused: ${reason}`)
}

/** A version may be dated at most this far ahead of the receiving node's clock (a far-future date would make every later person a newcomer for good). */
export const MAX_ROSTER_CLOCK_AHEAD_MS = 24 * 60 * 60 * 1000
/**
 * A member who is not an admin may not make the revoked-devices list longer than this: the rest of
 * MAX_REMOVED_DEVICES stays for admins, who must always be able to revoke a stolen device, and a
 * run of members' versions stays small enough to send in one chain answer.
 */
export const MAX_MEMBER_REVOKED_DEVICES = 1024
/**
 * Every version whose serial is a multiple of this is a checkpoint: only an admin signs it. So at
 * most ROSTER_CHECKPOINT − 1 versions in a row are members' own, a bound every node computes alike
 * from the two versions alone; nodes keep every version since the newest checkpoint
 * (roster-chain.ts keptHistory), so a member cannot push a node that was away out of reach.
 */
export const ROSTER_CHECKPOINT = 64

export interface VerifyOptions {
  /** the receiving node's clock: a version dated more than MAX_ROSTER_CLOCK_AHEAD_MS after it is refused */
  now?: number
}

/** Structure, consistency and the roster's own signature: one verification, before any rule is checked. */
function checkSelf (sodium: SodiumBackend, r: Roster): void {
  try { parseRoster(r) } catch (err: unknown) {
    if (err instanceof FormatError) reject(err.message)
    throw err
  }
  const sig = decodeBase64(r.signature)
  if (sig === undefined || !sodium.verify(sig, rosterSigningBytes(r), fromHex(r.updatedBy))) {
    reject(`the signature of roster serial ${r.serial} does not verify under ${r.updatedBy}`)
  }
}

/**
 * Every device certificate, last: a version refused by the rules costs one signature check, not one
 * per made-up device. Certificates byte-identical to one in `trusted` (the roster already accepted)
 * were verified then and are skipped.
 */
function checkCerts (sodium: SodiumBackend, r: Roster, trusted?: Roster): void {
  const known = new Set(trusted?.members.flatMap(m => m.devices.map(d => canonicalJson(d))) ?? [])
  for (const m of r.members) {
    for (const d of m.devices) {
      if (!known.has(canonicalJson(d)) && !verifyDeviceCert(sodium, d)) reject(`the certificate of device ${d.peerId} (member ${m.userId}) does not verify`)
    }
  }
}

function byUser (r: Roster): Map<string, RosterMember> {
  return new Map(r.members.map(m => [m.userId, m]))
}

/**
 * Accepts `next` as the successor of `current` only if: format version 3, same groupId, serial
 * exactly `current.serial + 1` and `prev` the hash of `current` (the chain: no serial can be
 * skipped, so nobody freezes the roster with a huge serial), `updatedAt` not before `current`'s,
 * signature valid, signer a member of `current` (an admin for any change that only admins may make,
 * adding a new person among them, whose `joinedAt` is then `next.updatedAt`), every device cert
 * valid and issued by its member's userId, nothing removed brought back. For a first roster (`current` undefined):
 * internal consistency, and the signer is a member of `next` (an admin of it when the serial is 1,
 * i.e. the group's creator).
 */
export function verifyRosterUpdate (sodium: SodiumBackend, current: Roster | undefined, next: Roster, options: VerifyOptions = {}): void {
  checkSelf(sodium, next)
  if (options.now !== undefined && next.updatedAt > options.now + MAX_ROSTER_CLOCK_AHEAD_MS) {
    reject(`roster serial ${next.serial} is dated ${new Date(next.updatedAt).toISOString()}, more than a day after this node's clock (${new Date(options.now).toISOString()}); if this clock is wrong, set it right`)
  }
  const signer = next.updatedBy
  if (current === undefined) {
    const m = findMember(next, signer)
    if (m === undefined) throw new NotMemberError(`roster refused: it was signed by ${signer}, who is not on it`)
    if (next.serial === 1 && !m.admin) reject(`the first roster version must be signed by an admin, ${signer} is not one`)
    checkCerts(sodium, next)
    return
  }
  checkRules(current, next)
  checkCerts(sodium, next, current)
}

/** The rules of §5.3 between two versions (no signature checked here). */
function checkRules (current: Roster, next: Roster): void {
  const signer = next.updatedBy
  if (next.groupId !== current.groupId) reject(`it belongs to group ${next.groupId}, not ${current.groupId}`)
  if (next.version !== ROSTER_VERSION) reject(`roster serial ${next.serial} is in format version ${next.version}; updates must be version ${ROSTER_VERSION} (the member who made it must update p2pbak)`)
  if (next.serial !== current.serial + 1) reject(`serial ${next.serial} does not follow the current serial ${current.serial} (each version is the previous one + 1)`)
  if (next.prev !== rosterHash(current)) reject(`roster serial ${next.serial} does not name the current version ${current.serial} as its predecessor (a fork or a made-up history)`)
  if (next.updatedAt < current.updatedAt) reject(`roster serial ${next.serial} is dated before the version it follows (${next.updatedAt} < ${current.updatedAt})`)
  const actor = findMember(current, signer)
  if (actor === undefined) throw new NotMemberError(`roster update refused: signer ${signer} is not a member of the group (serial ${current.serial})`)
  const needAdmin = (what: string): void => {
    if (!actor.admin) reject(`only an admin may ${what}; ${signer} is not an admin`)
  }
  if (next.serial % ROSTER_CHECKPOINT === 0) needAdmin(`sign roster serial ${next.serial} (every ${ROSTER_CHECKPOINT}th version is a checkpoint)`)
  if (next.name !== current.name) needAdmin('rename the group')
  if (canonicalJson(next.retention) !== canonicalJson(current.retention)) needAdmin('change the retention policy')

  const removedBefore = new Set(current.removed)
  for (const u of current.removed) if (!next.removed.includes(u)) reject(`removed user ${u} was taken off the removed list`)
  for (const p of current.removedDevices) if (!next.removedDevices.includes(p)) reject(`revoked device ${p} was taken off the revoked list`)
  for (const u of next.removed) if (!removedBefore.has(u)) needAdmin('remove members')

  const before = byUser(current)
  const after = byUser(next)
  for (const [userId, old] of before) {
    const now = after.get(userId)
    if (now === undefined) {
      needAdmin('remove members')
      if (!next.removed.includes(userId)) reject(`member ${userId} left the roster without being put on the removed list`)
      continue
    }
    if (now.name !== old.name) reject(`the name of member ${userId} changed`)
    if (now.joinedAt !== old.joinedAt) reject(`the join time of member ${userId} changed`)
    if (now.admin !== old.admin) needAdmin('grant or revoke admin')
    for (const d of old.devices) {
      const replaced = now.devices.find(e => e.peerId === d.peerId)
      if (replaced === undefined) {
        if (userId !== signer) needAdmin('remove another member\'s device')
        if (!next.removedDevices.includes(d.peerId)) reject(`device ${d.peerId} left the roster without being put on the revoked list`)
      } else if (replaced.issuedAt <= d.issuedAt && canonicalJson(replaced) !== canonicalJson(d)) {
        reject(`the certificate of device ${d.peerId} was replaced by one that is not newer`)
      }
    }
  }
  for (const m of next.members) {
    if (before.has(m.userId)) continue
    if (m.admin) needAdmin('add an admin')
    // a new person: only an admin approves them (a device of someone on the roster carries that person's own signature)
    needAdmin('add a new person')
    if (m.joinedAt !== next.updatedAt) reject(`new member ${m.userId} joined at ${m.joinedAt}, not at the time of the version that adds them (${next.updatedAt})`)
  }
  const revokedBefore = new Set(current.removedDevices)
  for (const p of next.removedDevices) {
    if (revokedBefore.has(p)) continue
    const owner = memberOfPeer(current, p)
    if (owner?.userId !== signer) needAdmin('revoke another member\'s device')
  }
  if (!actor.admin && next.removedDevices.length > current.removedDevices.length && next.removedDevices.length > MAX_MEMBER_REVOKED_DEVICES) {
    reject(`the revoked-devices list would hold ${next.removedDevices.length} devices; beyond ${MAX_MEMBER_REVOKED_DEVICES} only an admin may revoke a device (${signer} is not an admin): ask an admin to run \`p2pbak group remove-device\``)
  }
}
