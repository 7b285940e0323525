/**
 * The inviter's side of a join (format/group.md §5.3): the invite proof is checked before anything is
 * built or signed for a stranger, then the newcomer's device certificate, then the roster that adds
 * them; the invite is used up only once the answer (the run of versions from the one the invite pins
 * to the new one) is made.
 */
import type { PeerId } from '@libp2p/interface'
import { FormatError, InvalidArgumentError, InvalidInviteError, NotMemberError, UntrustedPeerError } from '../errors.js'
import { addMember, encodeRosterChain, findMember, isAdmin, MAX_ROSTER_CHAIN, verifyDeviceCert, type DeviceCert, type InviteBook, type Roster } from '../peers/index.js'
import type { JoinRequest } from '../protocols/group.js'
import type { Home } from './home.js'
import type { GroupState } from './group-state.js'
import type { RosterKeeper } from './roster-keeper.js'

function requireRoster (state: GroupState): Roster {
  const r = state.file.roster
  if (r === null) throw new NotMemberError('this node is in no group yet')
  return r
}

export interface AdmissionParts {
  home: Home
  state: GroupState
  rosters: RosterKeeper
  invites: InviteBook
}

/**
 * Admits the device that asks with `req` over the connection from `peer`, one roster change at a time
 * with the versions members send (RosterKeeper.exclusive); returns the roster before the change and
 * the encoded run of versions to answer with. Throws InvalidInviteError or UntrustedPeerError, with
 * what the joiner should do.
 */
export async function admitNewcomer (p: AdmissionParts, req: JoinRequest, peer: PeerId): Promise<{ roster: Roster, answer: Uint8Array }> {
  // one roster change at a time with the versions members send (RosterKeeper.exclusive)
return await p.rosters.exclusive(async () => {
    const roster = requireRoster(p.state)
    if (req.groupId !== roster.groupId) throw new InvalidInviteError('the invite is for another group')
    const now = Date.now()
    const claim = { inviteId: req.inviteId, joinerPeerId: peer.toString(), joinerUserId: req.userId, proof: req.proof }
    p.invites.check(claim, now)
    const cert = req.deviceCert as DeviceCert
    if (!verifyDeviceCert(p.home.sodium, cert) || cert.peerId !== peer.toString() || cert.userId !== req.userId) {
      throw new UntrustedPeerError('the device certificate does not match the connecting device')
    }
    const pinned = req.rosterSerial ?? roster.serial
    if (pinned > roster.serial) throw new InvalidInviteError(`the invite pins roster version ${pinned}, newer than this node's ${roster.serial}`)
    if ((p.rosters.chain()[0]?.serial ?? roster.serial) > pinned) {
      throw new InvalidInviteError(`the invite pins roster version ${pinned}, which this node no longer keeps (more than ${p.rosters.chain().length} changes since); ask for a new invite`)
    }
    // a new person needs an admin (format/group.md §5.3): a member's invite adds devices of people on the roster
    if (findMember(roster, req.userId) === undefined && !isAdmin(roster, p.home.identity.userId)) {
      throw new InvalidInviteError(`this invite was made by a member who is not an admin of group "${roster.name}": it can add a device of someone already in the group, not a new person; ask an admin of the group for an invite`)
    }
    // build the new roster (it may refuse, e.g. a banned user): only then use the invite up
    let next: Roster
    try {
      next = addMember(p.home.sodium, roster, p.home.identity, { userId: req.userId, name: req.name, device: cert }, now)
    } catch (err: unknown) {
      // a checkpoint this member may not sign (every 64th version is an admin's): the joiner's to hear, the invite stays
      if (err instanceof InvalidArgumentError && /checkpoint/.test(err.message)) throw new InvalidInviteError(`${err.message.replace(/ask an admin.*$/, '')}the member who invited you must ask an admin of the group to make a change first; then join again with the same invite`)
      throw err
    }
    // the answer is made before the invite is used up: one too large to send leaves the invite as it was
    let answer: Uint8Array
    try {
      const run = [...p.rosters.from(pinned), ...(next !== roster ? [next] : [])]
      if (run.length > MAX_ROSTER_CHAIN) throw new FormatError(`${run.length} versions, more than ${MAX_ROSTER_CHAIN}`)
      answer = encodeRosterChain(run)
    } catch (err: unknown) {
      if (!(err instanceof FormatError)) throw err
      throw new InvalidInviteError(`the roster's history since the version this invite pins (serial ${pinned}) is too large to send (${err.message}); ask for a new invite`)
    }
    p.invites.redeem(claim, now)
    if (next !== roster) p.rosters.append(next)
    p.state.file.invites = p.invites.toJSON()
    await p.state.save()
    return { roster, answer }
  })
}
