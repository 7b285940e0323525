/**
 * The protocols a member's node answers (network.ts starts them once the libp2p node runs): the shard
 * server over the members' held stores, audits, the group protocols (join, roster, space), dialback
 * checks and relay notices. Each answers the devices on the roster only (`deviceOf`).
 */
import type { PeerId } from '@libp2p/interface'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import { fromHex } from '../util/bytes.js'
import type { ProofCache } from '../store/index.js'
import { decodeRoster, encodeRoster } from '../peers/index.js'
import { shardServer } from '../protocols/shard/index.js'
import { startGroupProtocols, type SpaceAnswer } from '../protocols/group.js'
import { startAuditServer } from '../protocols/audit.js'
import { startRelayNotices } from '../protocols/relay.js'
import { startDialbackServer } from '../protocols/dialback.js'
import type { P2pNode } from './libp2p-node.js'
import type { HeldSpace } from './held-space.js'
import type { Membership } from './membership.js'
import type { RelayLink } from './relay-link.js'
import { addrClass } from './reachability.js'
import type { Home } from './home.js'

const log = scopedLogger('node')
/** how long a relay waits, after a member withdraws its invite notice, before it shows strangers out */
const STRANGER_GRACE_MS = 5_000

export interface NodeProtocolParts {
  node: P2pNode
  home: Home
  held: HeldSpace
  membership: Membership
  relay: RelayLink
  proofs: ProofCache
  now: () => number
  /** the person a device belongs to, and whether it is write-only; undefined for a device not on the roster */
  deviceOf: (peerId: string) => { userId: string, writeOnly: boolean } | undefined
  /** this node's answer to `space` */
  space: () => SpaceAnswer
}

/** Starts every protocol; returns what stops the shard server (the others end with the node). */
export async function startNodeProtocols (p: NodeProtocolParts): Promise<() => Promise<void>> {
  const member = (peer: PeerId): boolean => p.deviceOf(peer.toString()) !== undefined
  // what is held is counted before the first put can arrive: until then the automatic quota is unknown
  await p.held.refresh()
  const server = shardServer({
    node: p.node,
    storeFor: async (userId: string) => await p.held.answering(userId),
    authorize: (peer: PeerId) => p.deviceOf(peer.toString()),
    verifyDeleteSignature: (owner: string, message: Uint8Array, sig: string) => {
      try { return p.home.sodium.verify(Buffer.from(sig, 'base64'), message, fromHex(owner)) } catch (err: unknown) { log('a delete signature of %s does not parse: %s', owner, errorMessage(err)); return false }
    },
    quota: (owner: string, addBytes: number, added?: 'share' | 'record', charge?: boolean) => p.held.admit(owner, addBytes, added, charge),
    // the roster's retention policy: no share younger than minShardAgeDays is deleted, whoever asks
    minShareAgeMs: () => p.membership.minShareAgeMs(p.now()),
    now: p.now,
    // a share written again (a repair over a damaged copy) is no longer damaged, its old leaves are stale
    stored: async (owner, ref) => { await p.proofs.clearDamaged(owner, ref); await p.proofs.drop(owner, ref) }
  })
  await server.start()
  await startAuditServer({
    node: p.node,
    authorize: (peer: PeerId) => p.deviceOf(peer.toString()),
    storeFor: async (userId: string) => await p.held.store(userId),
    cache: p.proofs
  })
  await startGroupProtocols(p.node, {
    isMember: member,
    getRoster: () => encodeRoster(p.membership.requireRoster()),
    getChain: (from) => p.membership.chainFrom(from),
    pushRoster: async (bytes, peer) => { await p.membership.acceptRoster(decodeRoster(bytes), peer) },
    space: p.space,
    join: async (req, peer) => {
      const roster = await p.membership.admit(req, peer)
      void p.relay.notice()
      return roster
    }
  })
  await startDialbackServer(p.node, {
    isMember: member,
    mayDial: (addr) => addrClass(addr) === 'public',
    now: p.now
  })
  await startRelayNotices(p.node, {
    isMember: member,
    invitesOpen: (peer, untilMs) => {
      p.relay.book.invitesOpen(peer.toString(), untilMs)
      // a withdrawn notice may close the relay's stranger window: the strangers it let in are shown
      // out, a moment later (the joiner the invite just admitted is a stranger here until the new
      // roster arrives, and its join answer may still be on its way through this relay)
      setTimeout(() => {
        p.membership.shutGateIfClosed().catch((err: unknown) => { log.error('closing strangers\' connections: %s', errorMessage(err)) })
      }, STRANGER_GRACE_MS).unref()
    }
  })
  return async () => { await server.stop() }
}
