/**
 * The inviter node's record of the invites it issued (docs/format/group.md §6.5). Each invite can be
 * redeemed by one joiner. The book never holds an invite's secret: it keeps the invite id and the
 * proof key, two one-way derivations of the secret, so its JSON cannot be turned back into a code.
 */
import { FormatError, InvalidInviteError } from '../errors.js'
import { decodeBase64, encodeBase64, expectBase64, expectGroupId, expectObject, expectPeerId, expectUint, expectUserId, isPeerIdString } from './canonical.js'
import { checkProofWithKey, inviteId, inviteProofKey } from './invite.js'
import type { Invite, InviteClaim } from './invite.js'

export interface IssuedInvite {
  /** {@link inviteId}: hex of a keyed hash of the secret */
  id: string
  groupId: string
  /** base64 of {@link inviteProofKey} */
  proofKey: string
  expiresAt: number
  /** set on first redemption */
  redeemed?: { at: number, userId: string, peerId: string }
}

function parseEntry (v: unknown, i: number): IssuedInvite {
  const what = `issued invite ${i}`
  const o = expectObject(v, what, ['id', 'groupId', 'proofKey', 'expiresAt'], ['redeemed'])
  if (typeof o.id !== 'string' || !/^[0-9a-f]{64}$/.test(o.id)) throw new FormatError(`${what} id must be 64 lowercase hex characters`)
  const e: IssuedInvite = {
    id: o.id,
    groupId: expectGroupId(o.groupId, `${what} groupId`),
    proofKey: expectBase64(o.proofKey, `${what} proofKey`, 32),
    expiresAt: expectUint(o.expiresAt, `${what} expiresAt`)
  }
  if (o.redeemed !== undefined) {
    const r = expectObject(o.redeemed, `${what} redeemed`, ['at', 'userId', 'peerId'])
    e.redeemed = { at: expectUint(r.at, `${what} redeemed at`), userId: expectUserId(r.userId, `${what} redeemed userId`), peerId: expectPeerId(r.peerId, `${what} redeemed peerId`) }
  }
  return e
}

export class InviteBook {
  private readonly entries = new Map<string, IssuedInvite>()

  /** Restores a book from {@link toJSON}; FormatError if an entry is malformed. */
  constructor (entries: readonly IssuedInvite[] = []) {
    entries.forEach((e, i) => {
      const parsed = parseEntry(e, i)
      if (this.entries.has(parsed.id)) throw new FormatError(`invite ${parsed.id} appears twice`)
      this.entries.set(parsed.id, parsed)
    })
  }

  /** Records an invite this node issued. Adding the same invite again changes nothing. */
  add (invite: Invite): void {
    const id = inviteId(invite.secret)
    if (this.entries.has(id)) return
    this.entries.set(id, { id, groupId: invite.groupId, proofKey: encodeBase64(inviteProofKey(invite.secret)), expiresAt: invite.expiresAt })
  }

  /**
   * Checks a joiner's claim and marks the invite used by that joiner. The same joiner (peer id and
   * userId) may redeem again until expiry, so a join interrupted by a dropped connection can be
   * retried; anyone else gets "already used". A wrong proof does not use the invite up.
   */
  redeem (claim: InviteClaim, now: number): IssuedInvite {
    const e = this.entry(claim, now)
    if (e.redeemed !== undefined) return structuredClone(e)
    e.redeemed = { at: now, userId: claim.joinerUserId, peerId: claim.joinerPeerId }
    return structuredClone(e)
  }

  /**
   * Checks a claim as {@link redeem} does (proof, expiry, used by someone else) without using the
   * invite up: the inviter checks first, then builds and signs the new roster, then redeems.
   */
  check (claim: InviteClaim, now: number): IssuedInvite {
    return structuredClone(this.entry(claim, now))
  }

  private entry (claim: InviteClaim, now: number): IssuedInvite {
    if (!isPeerIdString(claim.joinerPeerId) || !/^[0-9a-f]{64}$/.test(claim.joinerUserId)) {
      throw new InvalidInviteError('the invite claim names a malformed peer id or user id')
    }
    const e = this.entries.get(claim.inviteId)
    if (e === undefined) throw new InvalidInviteError('this invite is not known here (never issued by this node, revoked or pruned); ask for a new one')
    const key = decodeBase64(e.proofKey) as Uint8Array
    if (!checkProofWithKey(key, claim.joinerPeerId, claim.joinerUserId, claim.proof)) {
      throw new InvalidInviteError('the invite proof does not match: the joiner does not hold this invite code')
    }
    if (now >= e.expiresAt) throw new InvalidInviteError(`this invite expired on ${new Date(e.expiresAt).toISOString()}; ask for a new one`)
    if (e.redeemed !== undefined && (e.redeemed.userId !== claim.joinerUserId || e.redeemed.peerId !== claim.joinerPeerId)) {
      throw new InvalidInviteError('this invite has already been used; each invite admits one device, ask for a new one')
    }
    return e
  }

  /** Forgets an invite so it can no longer be redeemed; false if it was not known. */
  revoke (id: string): boolean {
    return this.entries.delete(id)
  }

  /** The soonest expiry among outstanding invites (undefined when none is outstanding). */
  nextExpiry (now: number): number | undefined {
    let t: number | undefined
    for (const e of this.entries.values()) if (e.redeemed === undefined && now < e.expiresAt && (t === undefined || e.expiresAt < t)) t = e.expiresAt
    return t
  }

  /** Forgets every invite not yet used; returns how many. */
  revokeAll (now: number): number {
    let n = 0
    for (const [id, e] of this.entries) if (e.redeemed === undefined && now < e.expiresAt) { this.entries.delete(id); n++ }
    return n
  }

  /** Invites neither used nor expired at `now`. */
  outstanding (now: number): number {
    let n = 0
    for (const e of this.entries.values()) if (e.redeemed === undefined && now < e.expiresAt) n++
    return n
  }

  /** Drops every expired entry (used or not: an expired invite is refused either way); returns how many. */
  prune (now: number): number {
    let n = 0
    for (const [id, e] of this.entries) if (now >= e.expiresAt) { this.entries.delete(id); n++ }
    return n
  }

  toJSON (): IssuedInvite[] {
    return [...this.entries.values()].map(e => structuredClone(e))
  }
}
