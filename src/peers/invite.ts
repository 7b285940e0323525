/**
 * Invites (docs/format/group.md §6): what `p2pbak group invite` prints and `p2pbak join CODE`
 * takes, and the proof a joiner gives that it holds one.
 */
import { keyedHash } from '../crypto/index.js'
import type { Identity, SodiumBackend } from '../crypto/index.js'
import { FormatError, InvalidArgumentError, InvalidInviteError, NotMemberError } from '../errors.js'
import { concatBytes, fromHex, toHex, utf8Decode, utf8Encode } from '../util/bytes.js'
import {
  canonicalJson, constantTimeEqual, decodeBase64, decodeBase64Url, encodeBase64, encodeBase64Url, expectArray,
  expectBase64, expectGroupId, expectName, expectObject, expectUint, expectUserId, parseCanonicalJson
} from './canonical.js'
import {
  INVITE_CODE_PREFIX, INVITE_DOMAIN, INVITE_ID_LABEL, INVITE_PROOF_DOMAIN, INVITE_PROOF_KEY_LABEL, INVITE_SECRET_BYTES,
  MAX_ADDR_CHARS, MAX_INVITE_ADDRS, MAX_INVITE_CODE_CHARS, MAX_INVITE_TTL_MS
} from './constants.js'
import { parseDeviceCert, signingKey, verifyDeviceCert } from './device-cert.js'
import type { DeviceCert } from './device-cert.js'
import { findMember, memberOfPeer, rosterHash } from './roster.js'
import type { Roster } from './roster.js'
import { shown } from '../util/text.js'

export interface Invite {
  /** 2 pins the roster; 1 (older p2pbak) does not and is refused by decodeInviteCode */
  version: 1 | 2
  groupId: string
  groupName: string
  /** userId of the member who issued it */
  inviter: string
  /** the inviter's device the joiner connects to */
  inviterDevice: DeviceCert
  /** multiaddrs of that device, each ending in /p2p/<inviterDevice.peerId> */
  addrs: string[]
  /** ms since the Unix epoch; the invite is refused from this instant on */
  expiresAt: number
  /** 32 random bytes, unpadded base64url */
  secret: string
  /** version 2: the serial of the inviter's roster when it issued the invite (the joiner's history starts there) */
  rosterSerial?: number
  /** version 2: {@link rosterHash} of that roster */
  rosterHash?: string
  /** base64 of the inviter's Ed25519 signature over {@link inviteSigningBytes} */
  signature: string
}

const INVITE_KEYS = ['version', 'groupId', 'groupName', 'inviter', 'inviterDevice', 'addrs', 'expiresAt', 'secret', 'signature'] as const

/** INVITE_DOMAIN || canonical JSON of the invite without `signature`. */
export function inviteSigningBytes (invite: Omit<Invite, 'signature'> & { signature?: string }): Uint8Array {
  const { signature: _omit, ...body } = invite
  return concatBytes([utf8Encode(INVITE_DOMAIN), utf8Encode(canonicalJson(body))])
}

const ADDR = /^\/[\x21-\x7e]*$/
function expectAddr (v: unknown, what: string, peerId: string): string {
  if (typeof v !== 'string' || v.length > MAX_ADDR_CHARS || !ADDR.test(v)) throw new FormatError(`${what} must be a multiaddr of at most ${MAX_ADDR_CHARS} printable ASCII characters`)
  if (!v.endsWith(`/p2p/${peerId}`)) throw new FormatError(`${what} must end with /p2p/${peerId}`)
  return v
}

function secretBytes (secretB64: string): Uint8Array {
  const b = decodeBase64Url(secretB64)
  if (b?.byteLength !== INVITE_SECRET_BYTES) throw new FormatError(`an invite secret is ${INVITE_SECRET_BYTES} bytes in unpadded base64url`)
  return b
}

/** Structure only (FormatError); signatures are checked by decodeInviteCode. */
export function parseInvite (v: unknown): Invite {
  const o = expectObject(v, 'invite', INVITE_KEYS, ['rosterSerial', 'rosterHash'])
  const inviterDevice = parseDeviceCert(o.inviterDevice, 'invite inviterDevice')
  const addrs = expectArray(o.addrs, 'invite addrs', MAX_INVITE_ADDRS).map((a, i) => expectAddr(a, `invite addr ${i}`, inviterDevice.peerId))
  if (addrs.length === 0) throw new FormatError('an invite lists at least one address')
  const secret = o.secret
  if (typeof secret !== 'string') throw new FormatError('invite secret must be a string')
  secretBytes(secret)
  if (o.version !== 1 && o.version !== 2) throw new FormatError(`invite has version ${shown(o.version)}; this program reads versions 1 and 2 (update p2pbak)`)
  const pinned = o.version === 2
  if (pinned !== (o.rosterSerial !== undefined) || pinned !== (o.rosterHash !== undefined)) throw new FormatError('an invite has rosterSerial and rosterHash exactly when its version is 2')
  if (o.rosterHash !== undefined && (typeof o.rosterHash !== 'string' || !/^[0-9a-f]{64}$/.test(o.rosterHash))) throw new FormatError('invite rosterHash must be 64 lowercase hex characters')
  return {
    version: o.version,
    groupId: expectGroupId(o.groupId, 'invite groupId'),
    groupName: expectName(o.groupName, 'invite groupName'),
    inviter: expectUserId(o.inviter, 'invite inviter'),
    inviterDevice,
    addrs,
    expiresAt: expectUint(o.expiresAt, 'invite expiresAt'),
    secret,
    ...(pinned ? { rosterSerial: expectUint(o.rosterSerial, 'invite rosterSerial', 1), rosterHash: o.rosterHash as string } : {}),
    signature: expectBase64(o.signature, 'invite signature', 64)
  }
}

/**
 * Issues an invite to `roster`'s group, signed by `identity` (a member), pointing at
 * `inviterDevice` (one of the identity's devices on the roster). Addresses lacking a /p2p/ part get
 * /p2p/<peerId> appended.
 */
export function createInvite (sodium: SodiumBackend, identity: Identity, roster: Roster, inviterDevice: DeviceCert, addrs: string[], ttlMs: number, now: number): { invite: Invite, code: string } {
  if (findMember(roster, identity.userId) === undefined) throw new NotMemberError(`user ${identity.userId} is not a member of group "${roster.name}" and cannot invite`)
  if (!verifyDeviceCert(sodium, inviterDevice) || inviterDevice.userId !== identity.userId) throw new InvalidArgumentError('the inviter device certificate does not verify under this identity')
  if (memberOfPeer(roster, inviterDevice.peerId)?.userId !== identity.userId) throw new InvalidArgumentError(`device ${inviterDevice.peerId} is not on the roster as this user's device`)
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_INVITE_TTL_MS) throw new InvalidArgumentError(`an invite lives 1 ms to ${MAX_INVITE_TTL_MS / 86_400_000} days, got ${ttlMs} ms`)
  const suffix = `/p2p/${inviterDevice.peerId}`
  const body: Omit<Invite, 'signature'> = {
    version: 2,
    groupId: roster.groupId,
    groupName: roster.name,
    inviter: identity.userId,
    inviterDevice: structuredClone(inviterDevice),
    addrs: addrs.map(a => a.includes('/p2p/') ? a : a + suffix),
    expiresAt: now + ttlMs,
    secret: encodeBase64Url(sodium.randomBytes(INVITE_SECRET_BYTES)),
    // the joiner accepts only a history that starts at this version (docs/format/group.md §6.1)
    rosterSerial: roster.serial,
    rosterHash: rosterHash(roster)
  }
  const invite: Invite = { ...body, signature: encodeBase64(sodium.sign(inviteSigningBytes(body), signingKey(identity))) }
  try { parseInvite(invite) } catch (err: unknown) {
    if (err instanceof FormatError) throw new InvalidArgumentError(err.message)
    throw err
  }
  return { invite, code: encodeInviteCode(invite) }
}

/** "p2pbak1-" + unpadded base64url of the invite's canonical JSON (UTF-8). */
export function encodeInviteCode (invite: Invite): string {
  return INVITE_CODE_PREFIX + encodeBase64Url(utf8Encode(canonicalJson(invite)))
}

/**
 * Parses and verifies a code as a user pasted it (whitespace anywhere is ignored). Malformed,
 * altered and expired codes throw InvalidInviteError with a message for the user.
 */
export function decodeInviteCode (sodium: SodiumBackend, code: string, now: number): Invite {
  const compact = code.replace(/\s+/g, '')
  let invite: Invite
  try {
    if (compact.length > MAX_INVITE_CODE_CHARS) throw new FormatError('too long')
    if (!compact.startsWith(INVITE_CODE_PREFIX)) throw new FormatError(`it does not start with ${INVITE_CODE_PREFIX}`)
    const bytes = decodeBase64Url(compact.slice(INVITE_CODE_PREFIX.length))
    if (bytes === undefined) throw new FormatError('it is not base64url')
    invite = parseInvite(parseCanonicalJson(utf8Decode(bytes), 'invite'))
  } catch (err: unknown) {
    if (err instanceof FormatError) throw new InvalidInviteError(`not a p2pbak invite code (${err.message}); copy the whole code, starting with ${INVITE_CODE_PREFIX}`, { cause: err })
    throw err
  }
  const sig = decodeBase64(invite.signature)
  const authentic = sig !== undefined &&
    verifyDeviceCert(sodium, invite.inviterDevice) &&
    invite.inviterDevice.userId === invite.inviter &&
    sodium.verify(sig, inviteSigningBytes(invite), fromHex(invite.inviter))
  if (!authentic) throw new InvalidInviteError('this invite code has been altered (its signature does not verify); ask for a new one')
  if (invite.version === 1) throw new InvalidInviteError('this invite code was made by an older p2pbak that does not pin the group\'s roster; ask the inviter to update p2pbak and make a new one')
  if (now >= invite.expiresAt) throw new InvalidInviteError(`this invite code expired on ${new Date(invite.expiresAt).toISOString()}; ask for a new one`)
  return invite
}

/** hex(BLAKE3-keyed(secret, "p2pbak invite id v1")): names an invite without revealing its secret. */
export function inviteId (secretB64: string): string {
  return toHex(keyedHash(secretBytes(secretB64), utf8Encode(INVITE_ID_LABEL)))
}

/** BLAKE3-keyed(secret, "p2pbak invite proof key v1"): the only key material the inviter keeps. */
export function inviteProofKey (secretB64: string): Uint8Array {
  return keyedHash(secretBytes(secretB64), utf8Encode(INVITE_PROOF_KEY_LABEL))
}

function proofMessage (joinerPeerId: string, joinerUserId: string): Uint8Array {
  return concatBytes([utf8Encode(INVITE_PROOF_DOMAIN), utf8Encode(joinerPeerId), new Uint8Array(1), utf8Encode(joinerUserId)])
}

/** base64(BLAKE3-keyed(proofKey, "p2pbak invite proof v1\0" || peerId || 0x00 || userId)). */
export function inviteProofFromKey (proofKey: Uint8Array, joinerPeerId: string, joinerUserId: string): string {
  return encodeBase64(keyedHash(proofKey, proofMessage(joinerPeerId, joinerUserId)))
}

/** What a joiner sends to show it holds the invite, bound to its own peer id and userId. */
export function inviteProof (secretB64: string, joinerPeerId: string, joinerUserId: string): string {
  return inviteProofFromKey(inviteProofKey(secretB64), joinerPeerId, joinerUserId)
}

/** Constant-time check of a proof against a proof key; false for anything malformed. */
export function checkProofWithKey (proofKey: Uint8Array, joinerPeerId: string, joinerUserId: string, proof: string): boolean {
  const got = decodeBase64(proof)
  if (got === undefined) return false
  const want = decodeBase64(inviteProofFromKey(proofKey, joinerPeerId, joinerUserId)) as Uint8Array
  return constantTimeEqual(got, want)
}

export function checkInviteProof (invite: Invite, joinerPeerId: string, joinerUserId: string, proof: string): boolean {
  let key: Uint8Array
  try { key = inviteProofKey(invite.secret) } catch (err: unknown) {
    if (err instanceof FormatError) return false
    throw err
  }
  return checkProofWithKey(key, joinerPeerId, joinerUserId, proof)
}

/** What a joiner sends to the inviter's node (over the Noise-authenticated join stream). */
export interface InviteClaim {
  /** {@link inviteId} of the invite's secret */
  inviteId: string
  joinerPeerId: string
  joinerUserId: string
  /** {@link inviteProof} */
  proof: string
}

export function inviteClaim (invite: Invite, joinerPeerId: string, joinerUserId: string): InviteClaim {
  return { inviteId: inviteId(invite.secret), joinerPeerId, joinerUserId, proof: inviteProof(invite.secret, joinerPeerId, joinerUserId) }
}
