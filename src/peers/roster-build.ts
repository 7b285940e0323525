/**
 * Building roster versions: each change copies the roster, applies one edit, increments the serial
 * and signs with the acting member's key. The rules enforced here are the ones
 * verifyRosterUpdate checks on the receiving side (docs/format/group.md §5.3).
 */
import type { Identity, SodiumBackend } from '../crypto/index.js'
import { FormatError, InvalidArgumentError, NotMemberError } from '../errors.js'
import { toHex } from '../util/bytes.js'
import { encodeBase64, expectName, expectUint } from './canonical.js'
import { DEFAULT_MIN_SHARD_AGE_DAYS, GROUP_ID_BYTES, MAX_DEVICES_PER_MEMBER, MAX_MEMBERS, MAX_MIN_SHARD_AGE_DAYS, MAX_ROSTER_BYTES } from './constants.js'
import { sameDeviceCert, signingKey, verifyDeviceCert } from './device-cert.js'
import type { DeviceCert } from './device-cert.js'
import { ROSTER_VERSION, checkRosterShape, encodeRoster, findMember, memberOfPeer, parseRoster, rosterHash, rosterSigningBytes } from './roster.js'
import { MAX_MEMBER_REVOKED_DEVICES, ROSTER_CHECKPOINT } from './roster-verify.js'
import type { Retention, Roster, RosterMember } from './roster.js'

export interface CreateRosterOptions {
  /** the creator's name on the roster. @default the first 8 hex characters of their userId */
  memberName?: string
  /** @default { minShardAgeDays: 30 } (DEFAULT_MIN_SHARD_AGE_DAYS) */
  retention?: Retention
}

function argument<T> (fn: () => T): T {
  try { return fn() } catch (err: unknown) {
    if (err instanceof FormatError) throw new InvalidArgumentError(err.message)
    throw err
  }
}

function checkRetention (retention: Retention): Retention {
  return { minShardAgeDays: argument(() => expectUint(retention.minShardAgeDays, 'minimum shard age (days)', 0, MAX_MIN_SHARD_AGE_DAYS)) }
}

function checkCert (sodium: SodiumBackend, cert: DeviceCert, userId: string): DeviceCert {
  if (!verifyDeviceCert(sodium, cert)) throw new InvalidArgumentError(`the device certificate for ${String(cert.peerId)} does not verify`)
  if (cert.userId !== userId) throw new InvalidArgumentError(`device ${cert.peerId} is certified by ${cert.userId}, not by ${userId}`)
  return structuredClone(cert)
}

function requireMember (roster: Roster, signer: Identity): RosterMember {
  const m = findMember(roster, signer.userId)
  if (m === undefined) throw new NotMemberError(`user ${signer.userId} is not a member of group "${roster.name}"`)
  return m
}

function requireAdmin (roster: Roster, signer: Identity, action: string): void {
  if (requireMember(roster, signer).admin !== true) throw new InvalidArgumentError(`only a group admin can ${action}`)
}

/**
 * Re-signs `draft` (a copy of `previous` with one edit) as the next version: format version 2,
 * serial + 1, chained to `previous` by its hash (a version 1 predecessor is upgraded this way).
 */
function finish (sodium: SodiumBackend, previous: Roster | undefined, draft: Roster, signer: Identity, now: number): Roster {
  argument(() => expectUint(now, 'time'))
  if (previous !== undefined && (previous.serial + 1) % ROSTER_CHECKPOINT === 0 && findMember(previous, signer.userId)?.admin !== true) {
    throw new InvalidArgumentError(`the next version of the roster of group "${previous.name}" (serial ${previous.serial + 1}) is a checkpoint, which only an admin signs (every ${ROSTER_CHECKPOINT}th): ask an admin to make a change first (any \`p2pbak group\` command that changes the roster, or an invite), then try again`)
  }
  // a version is never dated before the one it follows (verifyRosterUpdate), whatever this clock says
  const at = Math.max(now, previous?.updatedAt ?? 0)
  const { prev: _old, ...body } = draft
  const next: Roster = {
    ...body,
    version: ROSTER_VERSION,
    serial: previous === undefined ? 1 : previous.serial + 1,
    ...(previous !== undefined ? { prev: rosterHash(previous) } : {}),
    updatedBy: signer.userId,
    updatedAt: at,
    signature: ''
  }
  argument(() => { checkRosterShape(next) })
  next.signature = encodeBase64(sodium.sign(rosterSigningBytes(next), signingKey(signer)))
  // every limit a receiver checks (list lengths, size): a version no member would take is never made, nor saved as ours
  argument(() => {
    parseRoster(next)
    const bytes = encodeRoster(next).byteLength
    if (bytes > MAX_ROSTER_BYTES) throw new FormatError(`the new roster version would be ${bytes} bytes, more than ${MAX_ROSTER_BYTES}`)
  })
  return next
}

/** Ensures `cert` can be added: its peer id is neither another member's device nor revoked. */
function checkNewDevice (roster: Roster, cert: DeviceCert): 'new' | 'same' | 'newer' {
  if (roster.removedDevices.includes(cert.peerId)) throw new InvalidArgumentError(`device ${cert.peerId} was revoked and cannot be added again`)
  const owner = memberOfPeer(roster, cert.peerId)
  if (owner === undefined) return 'new'
  if (owner.userId !== cert.userId) throw new InvalidArgumentError(`device ${cert.peerId} already belongs to ${owner.userId}`)
  const old = owner.devices.find(d => d.peerId === cert.peerId) as DeviceCert
  if (sameDeviceCert(old, cert)) return 'same'
  if (cert.issuedAt <= old.issuedAt) throw new InvalidArgumentError(`device ${cert.peerId} already has a certificate issued at or after this one`)
  return 'newer'
}

export function createRoster (sodium: SodiumBackend, identity: Identity, name: string, deviceCert: DeviceCert, now: number, options: CreateRosterOptions = {}): Roster {
  argument(() => expectName(name, 'group name'))
  const memberName = options.memberName ?? identity.userId.slice(0, 8)
  argument(() => expectName(memberName, 'member name'))
  const cert = checkCert(sodium, deviceCert, identity.userId)
  const genesis: Roster = {
    version: ROSTER_VERSION,
    groupId: toHex(sodium.randomBytes(GROUP_ID_BYTES)),
    name,
    serial: 1,
    members: [{ userId: identity.userId, name: memberName, joinedAt: now, devices: [cert], admin: true }],
    removed: [],
    removedDevices: [],
    retention: checkRetention(options.retention ?? { minShardAgeDays: DEFAULT_MIN_SHARD_AGE_DAYS }),
    updatedBy: identity.userId,
    updatedAt: now,
    signature: ''
  }
  return finish(sodium, undefined, genesis, identity, now)
}

/**
 * Only an admin adds a new person (as a non-admin; issue 11 finding 4: a member could otherwise add
 * any number of made-up people). For someone already a member, any member adds `device` to them
 * instead (a second device joining with an invite: the certificate is that person's own signature);
 * if that exact certificate is already there the roster is returned unchanged. The new person's
 * `joinedAt` is the version's `updatedAt`.
 */
export function addMember (sodium: SodiumBackend, roster: Roster, signer: Identity, member: { userId: string, name: string, device: DeviceCert }, now: number): Roster {
  const me = requireMember(roster, signer)
  const cert = checkCert(sodium, member.device, member.userId)
  if (roster.removed.includes(member.userId)) throw new InvalidArgumentError(`user ${member.userId} was removed from group "${roster.name}" and cannot rejoin`)
  const existing = findMember(roster, member.userId)
  if (existing !== undefined) return withDevice(sodium, roster, signer, cert, now)
  if (!me.admin) throw new InvalidArgumentError(`only a group admin can add a new person to group "${roster.name}"; ask an admin to invite them (a member who is not an admin may add devices of people already in the group)`)
  argument(() => expectName(member.name, 'member name'))
  if (roster.members.length >= MAX_MEMBERS) throw new InvalidArgumentError(`group "${roster.name}" already has ${MAX_MEMBERS} members`)
  checkNewDevice(roster, cert)
  const draft = structuredClone(roster)
  draft.members.push({ userId: member.userId, name: member.name, joinedAt: Math.max(now, roster.updatedAt), devices: [cert], admin: false })
  return finish(sodium, roster, draft, signer, now)
}

/** A member adds a device of their own (or replaces its certificate with a newer one). */
export function addDevice (sodium: SodiumBackend, roster: Roster, signer: Identity, cert: DeviceCert, now: number): Roster {
  requireMember(roster, signer)
  return withDevice(sodium, roster, signer, checkCert(sodium, cert, signer.userId), now)
}

function withDevice (sodium: SodiumBackend, roster: Roster, signer: Identity, cert: DeviceCert, now: number): Roster {
  const kind = checkNewDevice(roster, cert)
  if (kind === 'same') return roster
  const draft = structuredClone(roster)
  const owner = findMember(draft, cert.userId) as RosterMember
  if (kind === 'newer') {
    owner.devices = owner.devices.map(d => d.peerId === cert.peerId ? cert : d)
  } else {
    if (owner.devices.length >= MAX_DEVICES_PER_MEMBER) throw new InvalidArgumentError(`a member has at most ${MAX_DEVICES_PER_MEMBER} devices`)
    owner.devices.push(cert)
  }
  return finish(sodium, roster, draft, signer, now)
}

/** The device's owner or an admin revokes a device; it can never be added again. A member's last device cannot be removed (remove the member). */
export function removeDevice (sodium: SodiumBackend, roster: Roster, signer: Identity, peerId: string, now: number): Roster {
  const me = requireMember(roster, signer)
  const owner = memberOfPeer(roster, peerId)
  if (owner === undefined) throw new NotMemberError(`device ${peerId} is not on the roster of group "${roster.name}"`)
  if (owner.userId !== signer.userId && !me.admin) throw new InvalidArgumentError('only the device\'s owner or a group admin can remove a device')
  if (owner.devices.length === 1) throw new InvalidArgumentError(`device ${peerId} is the last device of ${owner.userId}; remove the member instead`)
  if (!me.admin && roster.removedDevices.length >= MAX_MEMBER_REVOKED_DEVICES) {
    throw new InvalidArgumentError(`group "${roster.name}" already lists ${roster.removedDevices.length} revoked devices; beyond ${MAX_MEMBER_REVOKED_DEVICES} only an admin may revoke one: ask an admin to run \`p2pbak group remove-device ${peerId}\``)
  }
  const draft = structuredClone(roster)
  const o = findMember(draft, owner.userId) as RosterMember
  o.devices = o.devices.filter(d => d.peerId !== peerId)
  draft.removedDevices.push(peerId)
  return finish(sodium, roster, draft, signer, now)
}

/** Only an admin; the user goes to `removed` and may never rejoin. The last admin cannot be removed. */
export function removeMember (sodium: SodiumBackend, roster: Roster, signer: Identity, userId: string, now: number): Roster {
  requireAdmin(roster, signer, 'remove members')
  const target = findMember(roster, userId)
  if (target === undefined) throw new NotMemberError(`user ${userId} is not a member of group "${roster.name}"`)
  const draft = structuredClone(roster)
  draft.members = draft.members.filter(m => m.userId !== userId)
  if (!draft.members.some(m => m.admin)) throw new InvalidArgumentError('cannot remove the last admin; make someone else an admin first')
  draft.removed.push(userId)
  return finish(sodium, roster, draft, signer, now)
}

/** Only an admin grants or revokes admin; the group always keeps at least one admin. Unchanged roster if nothing changes. */
export function setAdmin (sodium: SodiumBackend, roster: Roster, signer: Identity, userId: string, admin: boolean, now: number): Roster {
  requireAdmin(roster, signer, 'grant or revoke admin')
  const target = findMember(roster, userId)
  if (target === undefined) throw new NotMemberError(`user ${userId} is not a member of group "${roster.name}"`)
  if (target.admin === admin) return roster
  const draft = structuredClone(roster)
  ;(findMember(draft, userId) as RosterMember).admin = admin
  if (!draft.members.some(m => m.admin)) throw new InvalidArgumentError('cannot revoke the last admin')
  return finish(sodium, roster, draft, signer, now)
}

/** Only an admin changes the retention policy (a shorter minimum age lets a stolen key delete more). */
export function setRetention (sodium: SodiumBackend, roster: Roster, signer: Identity, retention: Retention, now: number): Roster {
  requireAdmin(roster, signer, 'change the retention policy')
  const draft = structuredClone(roster)
  draft.retention = checkRetention(retention)
  return finish(sodium, roster, draft, signer, now)
}

/** Only an admin renames the group. */
export function renameGroup (sodium: SodiumBackend, roster: Roster, signer: Identity, name: string, now: number): Roster {
  requireAdmin(roster, signer, 'rename the group')
  argument(() => expectName(name, 'group name'))
  return finish(sodium, roster, { ...structuredClone(roster), name }, signer, now)
}
