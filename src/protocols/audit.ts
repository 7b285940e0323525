/**
 * `/p2pbak/audit/1.0.0` (docs/protocols/audit.md): storage-proof challenges and damage reports.
 *   prove:   { op: "prove", pack, index, nonce (64 hex), count } -> OK { size, nonce } and a body of,
 *            for each segment the nonce selects (crypto/merkle.ts challengeIndexes), the segment bytes
 *            then its Merkle path (32 bytes a hash); NOT_FOUND { damaged? } when the share is gone
 *   damaged: { op: "damaged" } -> OK, body = 33-byte entries (pack id || index) of the caller's shares
 *            this persister found damaged
 * The prover works on any ShareStore, so the simulation uses the very same code without a network.
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import { FormatError, NotFoundError, ProtocolError } from '../errors.js'
import { asPackId, ID_BYTES } from '../ids.js'
import {
  MERKLE_HASH_BYTES, SEGMENT_BYTES, challengeIndexes, contentHasher, merklePaths, pathLength, segmentCount, segmentLength, shareLeaves, verifyPath
} from '../crypto/index.js'
import { decodeShareHeader, SHARE_HEADER_BYTES, type ShareHeader } from '../format/share.js'
import { concatBytes, equalBytes, fromHex, toHex } from '../util/bytes.js'
import type { ProofCache, ShareRef, ShareStore } from '../store/index.js'
import { exchange, serve, throwForStatus } from './framing.js'
import { withRetry } from './retry.js'
import { printable } from '../util/text.js'
import { turnEventLoop } from '../util/event-loop.js'

export const AUDIT_PROTOCOL = '/p2pbak/audit/1.0.0'
/** most segments one challenge may ask for */
export const MAX_CHALLENGE_SEGMENTS = 64
export const DEFAULT_CHALLENGE_SEGMENTS = 16
const TIMEOUT_MS = 30_000
const MAX_DAMAGE_ENTRIES = 10_000
/** a full answer: every segment and a path of at most 24 hashes (2^24 segments = 64 GiB share) */
const MAX_BODY = MAX_CHALLENGE_SEGMENTS * (SEGMENT_BYTES + 24 * MERKLE_HASH_BYTES)

export interface ProofAnswer { size: number, body: Uint8Array }

/** Why a share cannot be proven: absent, or the holder's own check found it damaged. */
export class ShareGoneError extends NotFoundError {
  constructor (message: string, readonly damaged: boolean) { super(message) }
}

/**
 * The holder's answer to a challenge, from its store and leaf cache. A share read to build its leaves
 * is checked against its own header first: a damaged share is reported, never "proven".
 */
export async function proveShare (store: ShareStore, cache: ProofCache | undefined, owner: string, ref: ShareRef, nonce: Uint8Array, count: number, signal?: AbortSignal): Promise<ProofAnswer> {
  const opts = signal !== undefined ? { signal } : {}
  if (await cache?.damaged(owner).then(d => d.includes(`${toHex(ref.pack)}.${ref.index}`))) throw new ShareGoneError('the share is damaged on this persister', true)
  let size: number
  try {
    size = await store.size(ref, opts)
  } catch (err: unknown) {
    if (err instanceof NotFoundError) throw new ShareGoneError('the holder has no such share', false)
    throw err
  }
  let leaves = await cache?.leaves(owner, ref, size)
  if (leaves === undefined) {
    const read = await inspectShare(store, ref, size, signal)
    if (!read.intact) {
      await cache?.addDamaged(owner, ref)
      throw new ShareGoneError('the share fails its own checksum on this persister', true)
    }
    leaves = read.leaves
    await cache?.putLeaves(owner, ref, size, leaves)
  }
  const n = segmentCount(size)
  const indexes = challengeIndexes(nonce, n, count)
  const paths = merklePaths(leaves, indexes)
  const parts: Uint8Array[] = []
  for (const [j, i] of indexes.entries()) {
    parts.push(await store.getRange(ref, i * SEGMENT_BYTES, segmentLength(size, i), opts))
    parts.push(...(paths[j] as Uint8Array[]))
  }
  return { size, body: concatBytes(parts) }
}

/**
 * Bytes a share is read in to check it and build its leaves (a multiple of SEGMENT_BYTES): memory
 * holds one such range, never the whole share (16 MiB for a mirrored pack).
 */
export const INSPECT_READ_BYTES = 1024 * 1024

/**
 * Reads a held share of `size` bytes range by range: whether its header names it and its data
 * matches the header's BLAKE3 (a share that is too short or has no valid header is not intact), and
 * its Merkle leaves.
 */
export async function inspectShare (store: ShareStore, ref: ShareRef, size: number, signal?: AbortSignal): Promise<{ intact: boolean, leaves: Uint8Array[] }> {
  const opts = signal !== undefined ? { signal } : {}
  if (size === 0) return { intact: false, leaves: shareLeaves(new Uint8Array(0)) }
  const leaves: Uint8Array[] = []
  const data = contentHasher()
  let header: ShareHeader | undefined
  for (let off = 0; off < size; off += INSPECT_READ_BYTES) {
    // a local store reads synchronously: between ranges the event loop turns (and a deadline can fire)
    if (off > 0) await turnEventLoop()
    const range = await store.getRange(ref, off, Math.min(INSPECT_READ_BYTES, size - off), opts)
    if (off === 0) {
      header = headerOf(range)
      data.update(range.subarray(SHARE_HEADER_BYTES))
    } else data.update(range)
    // each range starts on a segment boundary: its leaves are the share's
    for (const leaf of shareLeaves(range)) leaves.push(leaf)
  }
  const intact = header !== undefined && size >= SHARE_HEADER_BYTES && header.index === ref.index &&
    equalBytes(header.packId, ref.pack) && equalBytes(data.digest(), header.dataHash)
  return { intact, leaves }
}

/** The share header at the start of `bytes`, or undefined when there is none (a damaged share). */
function headerOf (bytes: Uint8Array): ShareHeader | undefined {
  try {
    return decodeShareHeader(bytes)
  } catch (err: unknown) {
    if (err instanceof FormatError) return undefined
    throw err
  }
}

/** The verifier's check of an answer against its commitment; a reason when it fails. */
export function checkProof (commitment: { root: Uint8Array, length: number }, nonce: Uint8Array, count: number, answer: ProofAnswer): string | undefined {
  if (answer.size !== commitment.length) return `the holder's share has ${answer.size} bytes, ${commitment.length} were placed`
  const n = segmentCount(commitment.length)
  const indexes = challengeIndexes(nonce, n, count)
  let off = 0
  for (const i of indexes) {
    const len = segmentLength(commitment.length, i)
    const hashes = pathLength(n, i)
    if (off + len + hashes * MERKLE_HASH_BYTES > answer.body.byteLength) return 'the proof is truncated'
    const segment = answer.body.subarray(off, off + len)
    off += len
    const path: Uint8Array[] = []
    for (let h = 0; h < hashes; h++, off += MERKLE_HASH_BYTES) path.push(answer.body.subarray(off, off + MERKLE_HASH_BYTES))
    if (!verifyPath(commitment.root, n, i, segment, path)) return `segment ${i} does not match the commitment (lost or altered)`
  }
  if (off !== answer.body.byteLength) return 'the proof has trailing bytes'
  return undefined
}

export interface AuditServerInit {
  node: Libp2p
  /** the person a device belongs to, or undefined for a non-member */
  authorize: (peer: PeerId) => { userId: string } | undefined
  storeFor: (owner: string) => Promise<ShareStore>
  cache: ProofCache
}

export async function startAuditServer (init: AuditServerInit): Promise<void> {
  await serve<Record<string, unknown>>(init.node, AUDIT_PROTOCOL, async (req, peer) => {
    const who = init.authorize(peer)
    if (who === undefined) return { header: { status: 'NOT_MEMBER' } }
    const h = req.header
    if (h.op === 'damaged') {
      const names = (await init.cache.damaged(who.userId)).slice(0, MAX_DAMAGE_ENTRIES)
      return { header: { status: 'OK' }, body: concatBytes(names.map(n => { const [p, i] = n.split('.') as [string, string]; return concatBytes([fromHex(p), Uint8Array.of(Number(i))]) })) }
    }
    if (h.op !== 'prove') throw new ProtocolError(`audit: unknown op ${JSON.stringify(h.op)?.slice(0, 40) ?? 'undefined'}`)
    const { ref, nonce, count } = parseProve(h)
    try {
      const answer = await proveShare(await init.storeFor(who.userId), init.cache, who.userId, ref, nonce, count, AbortSignal.timeout(TIMEOUT_MS))
      return { header: { status: 'OK', size: answer.size, nonce: toHex(nonce) }, body: answer.body }
    } catch (err: unknown) {
      if (err instanceof ShareGoneError) return { header: { status: 'NOT_FOUND', damaged: err.damaged, error: err.message } }
      throw err
    }
  }, { maxHeaderBytes: 4096, maxBodyBytes: 0, timeoutMs: TIMEOUT_MS, maxInboundStreams: 16, authorize: (peer) => init.authorize(peer) !== undefined })
}

function parseProve (h: Record<string, unknown>): { ref: ShareRef, nonce: Uint8Array, count: number } {
  if (typeof h.pack !== 'string' || !/^[0-9a-f]{64}$/.test(h.pack)) throw new ProtocolError('"pack" must be 64 lowercase hex characters')
  if (typeof h.index !== 'number' || !Number.isInteger(h.index) || h.index < 0 || h.index > 255) throw new ProtocolError('"index" must be an integer 0..255')
  if (typeof h.nonce !== 'string' || !/^[0-9a-f]{64}$/.test(h.nonce)) throw new ProtocolError('"nonce" must be 64 lowercase hex characters')
  if (typeof h.count !== 'number' || !Number.isInteger(h.count) || h.count < 1 || h.count > MAX_CHALLENGE_SEGMENTS) throw new ProtocolError(`"count" must be an integer 1..${MAX_CHALLENGE_SEGMENTS}`)
  return { ref: { pack: asPackId(fromHex(h.pack)), index: h.index }, nonce: fromHex(h.nonce), count: h.count }
}

/**
 * A challenge whose connection broke (a reset, a stream cut on a lossy link) is asked again on a fresh
 * stream, a few times: the link's fault is not the holder's. A challenge that runs out of time is not
 * retried: answering in time is part of the proof, and the auditor counts it as a strike.
 */
async function onFreshStreams<T> (what: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  return await withRetry(what, fn, {
    policy: { attempts: 4, budgetMs: 2 * TIMEOUT_MS },
    retryable: (err) => err instanceof ProtocolError && err.transport === 'broken',
    ...(signal !== undefined ? { signal } : {})
  })
}

/** Challenges `peer` to prove it holds `ref`; ShareGoneError when it says the share is gone or damaged. */
export async function requestProof (node: Libp2p, peer: PeerId, ref: ShareRef, nonce: Uint8Array, count: number, signal?: AbortSignal): Promise<ProofAnswer> {
  const res = await onFreshStreams('audit prove', async () => await exchange(node, peer, AUDIT_PROTOCOL, { op: 'prove', pack: toHex(ref.pack), index: ref.index, nonce: toHex(nonce), count }, undefined, {
    maxHeaderBytes: 4096, maxBodyBytes: MAX_BODY, timeoutMs: TIMEOUT_MS, ...(signal !== undefined ? { signal } : {})
  }), signal)
  if (res.header.status === 'NOT_FOUND') throw new ShareGoneError(`the holder says: ${typeof res.header.error === 'string' ? printable(res.header.error) : 'no such share'}`, res.header.damaged === true)
  throwForStatus(res.header, 'audit prove')
  const size = res.header.size
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ProtocolError('audit: the answer has no valid "size"')
  if (res.header.nonce !== toHex(nonce)) throw new ProtocolError('audit: the answer is for another challenge')
  return { size, body: res.body }
}

/** The caller's shares that `peer` reports damaged. */
export async function requestDamaged (node: Libp2p, peer: PeerId, signal?: AbortSignal): Promise<ShareRef[]> {
  const res = await onFreshStreams('audit damaged', async () => await exchange(node, peer, AUDIT_PROTOCOL, { op: 'damaged' }, undefined, {
    maxHeaderBytes: 4096, maxBodyBytes: MAX_DAMAGE_ENTRIES * (ID_BYTES + 1), timeoutMs: TIMEOUT_MS, ...(signal !== undefined ? { signal } : {})
  }), signal)
  throwForStatus(res.header, 'audit damaged')
  if (res.body.byteLength % (ID_BYTES + 1) !== 0) throw new ProtocolError(`audit: a damage list of ${res.body.byteLength} bytes is not whole entries`)
  const out: ShareRef[] = []
  for (let off = 0; off < res.body.byteLength; off += ID_BYTES + 1) out.push({ pack: asPackId(res.body.slice(off, off + ID_BYTES)), index: res.body[off + ID_BYTES] as number })
  return out
}
