/**
 * The small group protocols (docs/protocols/group.md):
 *   /p2pbak/join/1.0.0    a newcomer redeems an invite: proves it holds the secret, gets the roster
 *   /p2pbak/roster/1.0.0  members push a newer signed roster, or fetch the current one or a run of versions
 *   /p2pbak/space/1.0.0   a member asks what a node offers: roles, quota, free and used bytes
 * Decisions (is this invite valid, is this roster a valid successor) are the caller's, injected as
 * callbacks; this module only moves messages and maps failures to statuses. Every request is retried
 * on a fresh stream when the transport breaks (protocols/retry.ts); all of them are idempotent — a
 * join the inviter already carried out is answered again with the roster (peers/invite-book.ts).
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { NotMemberError, ProtocolError } from '../errors.js'
import { exchange, serve, throwForStatus } from './framing.js'
import { withRetry, type RetryPolicy } from './retry.js'
import { shown } from '../util/text.js'

export const JOIN_PROTOCOL = '/p2pbak/join/1.0.0'
export const ROSTER_PROTOCOL = '/p2pbak/roster/1.0.0'
export const SPACE_PROTOCOL = '/p2pbak/space/1.0.0'
/** a roster with hundreds of members and devices stays far below this */
export const MAX_ROSTER_BYTES = 4 * 1024 * 1024
/** a run of roster versions (peers/roster-chain.ts MAX_ROSTER_CHAIN_BYTES) */
export const MAX_CHAIN_BYTES = 8 * 1024 * 1024
const TIMEOUT_MS = 20_000
/** these exchanges are small: two stalls (20 s each) or 45 s in all are enough to call the peer away */
const RETRY: Partial<RetryPolicy> = { budgetMs: 45_000 }

async function retried<T> (what: string, fn: (timeoutMs: number) => Promise<T>, signal?: AbortSignal): Promise<T> {
  return await withRetry(what, async (a) => await fn(Math.max(1, Math.min(TIMEOUT_MS, a.remainingMs))), { policy: RETRY, ...(signal !== undefined ? { signal } : {}) })
}

/** `rosterSerial`: the version the invite pins; the answer is the run of versions from it to the new one */
export interface JoinRequest { groupId: string, inviteId: string, userId: string, name: string, proof: string, deviceCert: unknown, rosterSerial?: number }
export interface SpaceInfo { persister: boolean, publisher: boolean, quotaBytes: number, usedBytes: number, freeBytes: number }
/**
 * a space answer: the offer in the header, the node's signed ledger statement (canonical JSON) as the
 * body, and the serial of the roster it holds (so the asker fetches the roster only when it is newer)
 */
export interface SpaceAnswer extends SpaceInfo { ledger?: Uint8Array, rosterSerial?: number, rosterHash?: string }
/** largest ledger statement carried by a space answer (docs/format/ledger.md) */
export const MAX_SPACE_BODY_BYTES = 256 * 1024

export interface GroupProtocolHandlers {
  /** Redeems the invite and returns the new roster (encoded); throws InvalidInviteError etc. */
  join: (req: JoinRequest, peer: PeerId) => Promise<Uint8Array>
  /** Accepts a pushed roster if it is a valid successor (throws otherwise). Only members may push. */
  pushRoster: (roster: Uint8Array, peer: PeerId) => Promise<void>
  /** The current roster, for members. */
  getRoster: (peer: PeerId) => Uint8Array
  /** The versions this node keeps from serial `from` on, oldest first (encodeRosterChain), for members. */
  getChain: (from: number, peer: PeerId) => Uint8Array
  /** What this node offers, for members, and its ledger statement. */
  space: (peer: PeerId) => SpaceAnswer
  /** Whether the peer is a device on the roster. */
  isMember: (peer: PeerId) => boolean
}

export async function startGroupProtocols (node: Libp2p, h: GroupProtocolHandlers): Promise<void> {
  await serve<JoinRequest>(node, JOIN_PROTOCOL, async (req, peer) => {
    const r = req.header
    if (typeof r.groupId !== 'string' || typeof r.inviteId !== 'string' || typeof r.userId !== 'string' || typeof r.name !== 'string' || typeof r.proof !== 'string') throw new ProtocolError('join: malformed request')
    if (r.rosterSerial !== undefined && (typeof r.rosterSerial !== 'number' || !Number.isSafeInteger(r.rosterSerial) || r.rosterSerial < 1)) throw new ProtocolError('join: malformed rosterSerial')
    return { header: { status: 'OK' }, body: await h.join(r, peer) }
  }, { maxBodyBytes: 0, maxHeaderBytes: 64 * 1024, timeoutMs: TIMEOUT_MS })

  await serve<{ op: string, from?: unknown }>(node, ROSTER_PROTOCOL, async (req, peer) => {
    if (!h.isMember(peer)) throw new NotMemberError('not a member of this group')
    if (req.header.op === 'get') return { header: { status: 'OK' }, body: h.getRoster(peer) }
    if (req.header.op === 'chain') {
      const from = req.header.from
      if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 1) throw new ProtocolError('roster chain: from must be a serial')
      return { header: { status: 'OK' }, body: h.getChain(from, peer) }
    }
    if (req.header.op === 'push') { await h.pushRoster(req.body, peer); return { header: { status: 'OK' } } }
    throw new ProtocolError(`roster: unknown op ${shown(req.header.op)}`)
  }, { maxBodyBytes: MAX_ROSTER_BYTES, timeoutMs: TIMEOUT_MS, authorize: h.isMember })

  await serve<{ op: string }>(node, SPACE_PROTOCOL, async (_req, peer) => {
    if (!h.isMember(peer)) throw new NotMemberError('not a member of this group')
    const { ledger, ...info } = h.space(peer)
    return { header: { status: 'OK', ...info }, ...(ledger !== undefined ? { body: ledger } : {}) }
  }, { maxBodyBytes: 0, timeoutMs: TIMEOUT_MS, authorize: h.isMember })
}

export async function requestJoin (node: Libp2p, inviter: PeerId | Multiaddr, req: JoinRequest, signal?: AbortSignal): Promise<Uint8Array> {
  const res = await retried('join', async (timeoutMs) => await exchange(node, inviter, JOIN_PROTOCOL, req, undefined, { maxBodyBytes: MAX_CHAIN_BYTES, timeoutMs, ...(signal !== undefined ? { signal } : {}) }), signal)
  throwForStatus(res.header, 'join')
  return res.body
}

export async function pushRoster (node: Libp2p, peer: PeerId | Multiaddr, roster: Uint8Array): Promise<void> {
  const res = await retried('roster push', async (timeoutMs) => await exchange(node, peer, ROSTER_PROTOCOL, { op: 'push' }, roster, { maxBodyBytes: 0, timeoutMs }))
  throwForStatus(res.header, 'roster push')
}

export async function fetchRoster (node: Libp2p, peer: PeerId | Multiaddr): Promise<Uint8Array> {
  const res = await retried('roster get', async (timeoutMs) => await exchange(node, peer, ROSTER_PROTOCOL, { op: 'get' }, undefined, { maxBodyBytes: MAX_ROSTER_BYTES, timeoutMs }))
  throwForStatus(res.header, 'roster get')
  return res.body
}

/** The roster versions a member keeps from serial `from` on, oldest first (encoded; decodeRosterChain). */
export async function fetchRosterChain (node: Libp2p, peer: PeerId | Multiaddr, from: number): Promise<Uint8Array> {
  const res = await retried('roster chain', async (timeoutMs) => await exchange(node, peer, ROSTER_PROTOCOL, { op: 'chain', from }, undefined, { maxBodyBytes: MAX_CHAIN_BYTES, timeoutMs }))
  throwForStatus(res.header, 'roster chain')
  return res.body
}

export async function fetchSpace (node: Libp2p, peer: PeerId | Multiaddr): Promise<SpaceAnswer> {
  const res = await retried('space', async (timeoutMs) => await exchange(node, peer, SPACE_PROTOCOL, { op: 'get' }, undefined, { maxBodyBytes: MAX_SPACE_BODY_BYTES, timeoutMs }))
  throwForStatus(res.header, 'space')
  const h = res.header
  // byte counts are safe integers (an offer's are, format/offer.md); anything else (1e300, NaN) counts as 0,
  // and free space never exceeds the quota it is part of. Placement credits even a valid claim only up
  // to what the peer proved it stores (placement-and-repair.md §5 P8).
  const num = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0)
  const quotaBytes = num(h.quotaBytes)
  const info: SpaceAnswer = { persister: h.persister === true, publisher: h.publisher === true, quotaBytes, usedBytes: num(h.usedBytes), freeBytes: Math.min(num(h.freeBytes), quotaBytes) }
  if (res.body.byteLength > 0) info.ledger = res.body
  if (typeof h.rosterSerial === 'number' && Number.isSafeInteger(h.rosterSerial) && h.rosterSerial > 0) info.rosterSerial = h.rosterSerial
  if (typeof h.rosterHash === 'string' && /^[0-9a-f]{64}$/.test(h.rosterHash)) info.rosterHash = h.rosterHash
  return info
}
