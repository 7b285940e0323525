/**
 * Why packs stay on this disk (no friend's node can take a share), in words for the user: the
 * reasons `status` and a backup's summary give (network.ts NetworkNode.whyLocal).
 */
import type { Roster } from '../peers/index.js'
import type { SpaceAnswer } from '../protocols/group.js'

/**
 * The reason, or null when some friend offers space and answers. `answerOf`: a device's last space
 * answer (undefined: it did not answer); `someCandidate`: whether a friend that may receive shares is
 * online now.
 */
export function whyLocalReason (roster: Roster | null, ownUserId: string, answerOf: (peerId: string) => SpaceAnswer | undefined, someCandidate: () => boolean): string | null {
  if (roster === null) return 'this node is in no group (p2pbak group create NAME, or join CODE)'
  const friends = roster.members.filter(m => m.userId !== ownUserId)
  if (friends.length === 0) return 'you are the only member of the group so far: invite friends (p2pbak group invite)'
  const devices = friends.flatMap(m => m.devices.map(d => d.peerId))
  const answered = devices.filter(d => answerOf(d) !== undefined)
  if (answered.length === 0) return `none of your ${friends.length} friend(s)' node(s) answered (offline, or not reachable from here)`
  const offering = answered.filter(d => answerOf(d)?.persister === true)
  if (offering.length === 0) return `${answered.length} friend device(s) answered but none offers disk space (they set contribute 0)`
  if (someCandidate()) return null
  return 'the friends who offer space failed their storage audits: they get no new shares until they pass again'
}
