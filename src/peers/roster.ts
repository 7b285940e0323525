/**
 * The roster: the signed, versioned list of a group's members and their devices
 * (docs/format/group.md §5). Types, queries, the signing bytes and the strict codec.
 */
import { contentHash } from '../crypto/index.js'
import { FormatError } from '../errors.js'
import { concatBytes, toHex, utf8Decode, utf8Encode } from '../util/bytes.js'
import {
  canonicalJson, expectArray, expectBase64, expectBool, expectGroupId, expectName, expectObject, expectPeerId,
  expectUint, expectUserId, parseCanonicalJson
} from './canonical.js'
import {
  MAX_DEVICES_PER_MEMBER, MAX_MEMBERS, MAX_MIN_SHARD_AGE_DAYS, MAX_REMOVED, MAX_REMOVED_DEVICES, MAX_ROSTER_BYTES,
  ROSTER_DOMAIN
} from './constants.js'
import { parseDeviceCert } from './device-cert.js'
import type { DeviceCert } from './device-cert.js'
import { shown } from '../util/text.js'

export interface RosterMember {
  userId: string
  /** a label for people */
  name: string
  /** ms since the Unix epoch */
  joinedAt: number
  /** at least one; each certificate is signed by this member's userId */
  devices: DeviceCert[]
  /** admins may remove members, grant or revoke admin, rename the group and change retention */
  admin: boolean
}

export interface Retention {
  /** a persister never deletes a shard younger than this, whoever asks */
  minShardAgeDays: number
}

/**
 * 1: the first format (no chain; still read, as the roster a node already holds or an update's
 * predecessor). 2: chained — every version after the first names the hash of the one it follows
 * (still read the same way). 3: the same fields; an update adding a new person must be signed by an
 * admin, the person's `joinedAt` is the version's `updatedAt`, and `updatedAt` never goes back
 * (docs/format/group.md §5.3, issue 11 finding 4).
 */
export type RosterVersion = 1 | 2 | 3

export interface Roster {
  version: RosterVersion
  /** 32 lowercase hex characters (16 random bytes), fixed at creation */
  groupId: string
  name: string
  /** starts at 1; each version is its predecessor's serial + 1 */
  serial: number
  /** version 2 with serial > 1: {@link rosterHash} of the version this one follows; absent otherwise */
  prev?: string
  members: RosterMember[]
  /** userIds that may never rejoin (append-only) */
  removed: string[]
  /** peer ids whose certificates were revoked and may never be re-added (append-only) */
  removedDevices: string[]
  retention: Retention
  /** the userId whose key signed this version */
  updatedBy: string
  updatedAt: number
  /** base64 of the Ed25519 signature over {@link rosterSigningBytes} */
  signature: string
}

const ROSTER_KEYS = ['version', 'groupId', 'name', 'serial', 'members', 'removed', 'removedDevices', 'retention', 'updatedBy', 'updatedAt', 'signature'] as const
/** the roster format this program writes */
export const ROSTER_VERSION = 3
const MEMBER_KEYS = ['userId', 'name', 'joinedAt', 'devices', 'admin'] as const

export function memberOfPeer (roster: Roster, peerId: string): RosterMember | undefined {
  return roster.members.find(m => m.devices.some(d => d.peerId === peerId))
}

export function findMember (roster: Roster, userId: string): RosterMember | undefined {
  return roster.members.find(m => m.userId === userId)
}

export function isMember (roster: Roster, userId: string): boolean {
  return findMember(roster, userId) !== undefined
}

export function isAdmin (roster: Roster, userId: string): boolean {
  return findMember(roster, userId)?.admin === true
}

/** Every device peer id on the roster (what a connection gater admits). */
export function rosterPeerIds (roster: Roster): string[] {
  return roster.members.flatMap(m => m.devices.map(d => d.peerId))
}

/** ROSTER_DOMAIN || canonical JSON of the roster without `signature`. */
export function rosterSigningBytes (roster: Omit<Roster, 'signature'> & { signature?: string }): Uint8Array {
  const { signature: _omit, ...body } = roster
  return concatBytes([utf8Encode(ROSTER_DOMAIN), utf8Encode(canonicalJson(body))])
}

/** hex(BLAKE3(the roster's canonical JSON, signature included)): what the next version's `prev` names, and invites pin. */
export function rosterHash (r: Roster): string {
  return toHex(contentHash(encodeRoster(r)))
}

/** Canonical JSON, UTF-8. */
export function encodeRoster (r: Roster): Uint8Array {
  return utf8Encode(canonicalJson(r))
}

/** Strict: canonical JSON of a well-formed roster (structure and internal consistency), else FormatError. No signature checks. */
export function decodeRoster (b: Uint8Array): Roster {
  if (b.byteLength > MAX_ROSTER_BYTES) throw new FormatError(`roster is ${b.byteLength} bytes, more than ${MAX_ROSTER_BYTES}`)
  return parseRoster(parseCanonicalJson(utf8Decode(b), 'roster'))
}

function parseMember (v: unknown, i: number): RosterMember {
  const what = `roster member ${i}`
  const o = expectObject(v, what, MEMBER_KEYS)
  return {
    userId: expectUserId(o.userId, `${what} userId`),
    name: expectName(o.name, `${what} name`),
    joinedAt: expectUint(o.joinedAt, `${what} joinedAt`),
    devices: expectArray(o.devices, `${what} devices`, MAX_DEVICES_PER_MEMBER).map((d, j) => parseDeviceCert(d, `${what} device ${j}`)),
    admin: expectBool(o.admin, `${what} admin`)
  }
}

/** Checks an untrusted value's structure and consistency (FormatError); returns a fresh copy. */
export function parseRoster (v: unknown): Roster {
  const o = expectObject(v, 'roster', ROSTER_KEYS, ['prev'])
  const retention = expectObject(o.retention, 'roster retention', ['minShardAgeDays'])
  const r: Roster = {
    version: expectRosterVersion(o.version),
    groupId: expectGroupId(o.groupId, 'roster groupId'),
    name: expectName(o.name, 'group name'),
    serial: expectUint(o.serial, 'roster serial', 1),
    ...(o.prev !== undefined ? { prev: expectHash(o.prev, 'roster prev') } : {}),
    members: expectArray(o.members, 'roster members', MAX_MEMBERS).map(parseMember),
    removed: expectArray(o.removed, 'roster removed', MAX_REMOVED).map((u, i) => expectUserId(u, `roster removed ${i}`)),
    removedDevices: expectArray(o.removedDevices, 'roster removedDevices', MAX_REMOVED_DEVICES).map((p, i) => expectPeerId(p, `roster removedDevices ${i}`)),
    retention: { minShardAgeDays: expectUint(retention.minShardAgeDays, 'roster retention minShardAgeDays', 0, MAX_MIN_SHARD_AGE_DAYS) },
    updatedBy: expectUserId(o.updatedBy, 'roster updatedBy'),
    updatedAt: expectUint(o.updatedAt, 'roster updatedAt'),
    signature: expectBase64(o.signature, 'roster signature', 64)
  }
  if (r.version === 1 && r.prev !== undefined) throw new FormatError('a version 1 roster has no prev field')
  if (r.version >= 2 && (r.serial > 1) !== (r.prev !== undefined)) throw new FormatError(`a version ${r.version} roster has a prev field exactly when its serial is above 1 (serial ${r.serial})`)
  checkRosterShape(r)
  return r
}

function expectRosterVersion (v: unknown): RosterVersion {
  if (v !== 1 && v !== 2 && v !== 3) throw new FormatError(`roster has version ${shown(v)}; this program reads versions 1 to 3 (update p2pbak)`)
  return v
}

function expectHash (v: unknown, what: string): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) throw new FormatError(`${what} must be 64 lowercase hex characters`)
  return v
}

/**
 * The consistency rules that need no cryptography (docs §5.2): at least one member and one admin;
 * userIds and peer ids unique; every member has 1..32 devices, each certified for that member's
 * userId; nobody on `removed` is a member; no device on `removedDevices` is on the roster.
 */
export function checkRosterShape (r: Roster): void {
  if (r.members.length === 0) throw new FormatError('a roster has at least one member')
  if (!r.members.some(m => m.admin)) throw new FormatError('a roster has at least one admin')
  const users = new Set<string>()
  const peers = new Set<string>()
  for (const m of r.members) {
    if (users.has(m.userId)) throw new FormatError(`user ${m.userId} appears twice on the roster`)
    users.add(m.userId)
    if (m.devices.length === 0) throw new FormatError(`member ${m.userId} has no device`)
    for (const d of m.devices) {
      if (d.userId !== m.userId) throw new FormatError(`device ${d.peerId} is listed under ${m.userId} but certified by ${d.userId}`)
      if (peers.has(d.peerId)) throw new FormatError(`device ${d.peerId} appears twice on the roster`)
      peers.add(d.peerId)
    }
  }
  const removed = new Set(r.removed)
  if (removed.size !== r.removed.length) throw new FormatError('a user appears twice in the removed list')
  for (const u of r.removed) if (users.has(u)) throw new FormatError(`removed user ${u} is on the roster`)
  const removedDevices = new Set(r.removedDevices)
  if (removedDevices.size !== r.removedDevices.length) throw new FormatError('a device appears twice in the removed devices list')
  for (const p of r.removedDevices) if (peers.has(p)) throw new FormatError(`revoked device ${p} is on the roster`)
}
