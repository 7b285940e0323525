/**
 * `/p2pbak/relay/1.0.0` (docs/network.md §15.3): a member behind NAT tells the members it holds
 * a relay reservation on until when it has an open invite, so that the relay may carry a stranger's
 * connection to it — only to it, and only to redeem that invite (docs/network.md §15.3).
 *
 *   request  {"op":"invites","openUntilMs":<ms since the epoch, 0: none open>}   (no body)
 *   response {"status":"OK"} | NOT_MEMBER | INVALID
 *
 * Idempotent: the last notice of a member replaces its earlier ones.
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import { NotMemberError, ProtocolError } from '../errors.js'
import { exchange, serve, throwForStatus } from './framing.js'

export const RELAY_NOTICE_PROTOCOL = '/p2pbak/relay/1.0.0'
const TIMEOUT_MS = 10_000

export interface RelayNoticeHandlers {
  isMember: (peer: PeerId) => boolean
  /** a member says strangers may be relayed to it until `openUntilMs` (0: no longer) */
  invitesOpen: (peer: PeerId, openUntilMs: number) => void
}

export async function startRelayNotices (node: Libp2p, h: RelayNoticeHandlers): Promise<void> {
  await serve<{ op?: unknown, openUntilMs?: unknown }>(node, RELAY_NOTICE_PROTOCOL, async (req, peer) => {
    if (!h.isMember(peer)) throw new NotMemberError('not a member of this group')
    const until = req.header.openUntilMs
    if (req.header.op !== 'invites' || typeof until !== 'number' || !Number.isSafeInteger(until) || until < 0) throw new ProtocolError('relay: malformed invites notice')
    h.invitesOpen(peer, until)
    return { header: { status: 'OK' } }
  }, { maxBodyBytes: 0, maxHeaderBytes: 1024, timeoutMs: TIMEOUT_MS, maxInboundStreams: 8, authorize: h.isMember })
}

/** Tells a relay until when this node has an open invite (0: none). One attempt: the next refresh sends it again. */
export async function sendInvitesNotice (node: Libp2p, relay: PeerId, openUntilMs: number): Promise<void> {
  const res = await exchange(node, relay, RELAY_NOTICE_PROTOCOL, { op: 'invites', openUntilMs }, undefined, { maxBodyBytes: 0, timeoutMs: TIMEOUT_MS })
  throwForStatus(res.header, 'relay notice')
}
