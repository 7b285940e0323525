/**
 * The checks shared by statements a device makes about itself and its person signs (ledger
 * statements, offer records): the signature under `userId` over the structure's signing bytes, a
 * date not ahead of the receiver's clock, and, against a roster, the group and the device listed
 * under its signer.
 */
import type { SodiumBackend } from '../crypto/index.js'
import { NotMemberError, UnauthenticatedError } from '../errors.js'
import { fromHex } from '../util/bytes.js'
import { decodeBase64 } from './canonical.js'
import { memberOfPeer, type Roster } from './roster.js'

export interface DeviceStatement { groupId: string, userId: string, peerId: string, time: number, signature: string }

export interface VerifyStatementOptions {
  /** when given: the statement's group, and its device listed under its signer */
  roster?: Roster
  /** when given: refuse statements dated more than the allowed skew after it */
  now?: number
}

/**
 * UnauthenticatedError for a bad signature, a date more than `maxSkewMs` ahead of `options.now`,
 * another group, or a device of another person; NotMemberError for a device not on the roster.
 * `what` names the structure in messages ("ledger statement", "offer").
 */
export function checkDeviceStatement (sodium: SodiumBackend, s: DeviceStatement, signingBytes: Uint8Array, what: string, maxSkewMs: number, options: VerifyStatementOptions): void {
  const sig = decodeBase64(s.signature)
  if (sig === undefined || !sodium.verify(sig, signingBytes, fromHex(s.userId))) {
    throw new UnauthenticatedError(`${what} of device ${s.peerId} does not verify under ${s.userId}`)
  }
  if (options.now !== undefined && s.time > options.now + maxSkewMs) {
    throw new UnauthenticatedError(`${what} of device ${s.peerId} is dated ${s.time - options.now} ms ahead of this device's clock`)
  }
  const roster = options.roster
  if (roster === undefined) return
  if (s.groupId !== roster.groupId) throw new UnauthenticatedError(`${what} belongs to group ${s.groupId}, not ${roster.groupId}`)
  const member = memberOfPeer(roster, s.peerId)
  if (member === undefined) throw new NotMemberError(`${what} from device ${s.peerId}, which is not on the roster`)
  if (member.userId !== s.userId) throw new UnauthenticatedError(`${what} signed by ${s.userId} for device ${s.peerId}, which belongs to ${member.userId}`)
}
