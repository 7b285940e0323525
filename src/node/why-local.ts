/**
 * Why packs stay on this disk (no friend's node can take a share), in words for the user: the
 * reasons `status` and a backup's summary give (network.ts NetworkNode.whyLocal).
 */
import { creditedFreeBytes, type Candidate } from '../placement/index.js'
import type { Roster } from '../peers/index.js'
import type { SpaceAnswer } from '../protocols/group.js'

/** Room below which a friend counts as full here: a pack is up to 16 MiB, and its share can be the whole of it. */
const FULL_BELOW_BYTES = 16 * 1024 * 1024

/**
 * The reason, or null when friends who offer space answer and packs on this disk move to them at the
 * daemon's next round. `answerOf`: a device's last space answer (undefined: it did not answer);
 * `online`: the friends' devices that may receive shares and answer now (placement candidates).
 */
export function whyLocalReason (roster: Roster | null, ownUserId: string, answerOf: (peerId: string) => SpaceAnswer | undefined, online: () => Candidate[]): string | null {
  if (roster === null) return 'this node is in no group (p2pbak group create NAME, or join CODE)'
  const friends = roster.members.filter(m => m.userId !== ownUserId)
  if (friends.length === 0) return 'you are the only member of the group so far: invite friends (p2pbak group invite)'
  const devices = friends.flatMap(m => m.devices.map(d => d.peerId))
  const answered = devices.filter(d => answerOf(d) !== undefined)
  if (answered.length === 0) return `none of your ${friends.length} friend(s)' node(s) answered (offline, or not reachable from here)`
  const offering = answered.filter(d => answerOf(d)?.persister === true)
  if (offering.length === 0) return `${answered.length} friend device(s) answered but none offers disk space (they set contribute 0)`
  const now = online().filter(c => c.online && c.personId !== ownUserId)
  if (now.length === 0) return 'the friends who offer space failed their storage audits: they get no new shares until they pass again'
  const withRoom = new Set(now.filter(c => creditedFreeBytes(c) >= FULL_BELOW_BYTES).map(c => c.personId))
  if (withRoom.size === 0) return 'the friends who answer have less than 16 MiB of room each (disks full or quotas used up): packs move to them once they have room'
  // the daemon's placeLocalPacks waits for two people where the group has two or more (local-packs.ts)
  if (friends.length >= 2 && withRoom.size < 2) return `only one of your ${friends.length} friends answers with room now: packs move once two do`
  return null
}
