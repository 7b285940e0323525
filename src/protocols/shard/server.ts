/**
 * The persister's side of `/p2pbak/shard/1.0.0`. Every request goes through the same steps, in this
 * order: authorize the peer (NOT_MEMBER, and nothing else, for a stranger) → validate the header and
 * body (INVALID) → check limits, quota, delete and replace signatures (REFUSED) → act on the store of the
 * peer's own person, and of nobody else. Store failures become statuses here; the stream is aborted
 * only for framing violations (framing.ts).
 */
import type { Libp2p, PeerId } from '@libp2p/interface'
import { FormatError, NotFoundError, errorMessage, isP2pbakError } from '../../errors.js'
import { concatBytes, equalBytes } from '../../util/bytes.js'
import type { ShareRef, ShareStore } from '../../store/index.js'
import { serve, type Served } from '../framing.js'
import {
  DEFAULT_MAX_INBOUND_STREAMS, DEFAULT_MAX_RECORD_BYTES, DEFAULT_MAX_SHARE_BYTES, DEFAULT_TIMEOUT_MS,
  MAX_HEADER_BYTES, OVERSIZE_GRACE_BYTES, SERVER_STREAM_IDLE_MS, SHARD_PROTOCOL, SHARD_PROTOCOL_STREAMS, STAGED_SWEEP_MS
} from './constants.js'
import { Staging, type Staged } from './staging.js'
import { WRITE_ONLY_REFUSAL, refused, writeGuards, type Device, type Refusal, type Reply } from './write-guards.js'
import { listPage } from './listing.js'
import { equalsPartBytes, parseRequest, shareCursor, shareKey, shortError, userKeyOf } from './wire.js'
import type { DeleteAuth, RequestBody, ShardRequest } from './wire.js'

export interface ShardServerInit {
  node: Libp2p
  /** The namespace (share store) of one person. Called per request; cache it on your side. */
  storeFor: (ownerUserId: string) => Promise<ShareStore>
  /**
   * The person a device belongs to (its user id), or undefined for a peer that is not a member.
   * `writeOnly`: the device's certificate marks it write-only; its deletes and overwrites are refused
   * whatever they carry (shard.md §7.2).
   */
  authorize: (peer: PeerId) => Device | undefined | Promise<Device | undefined>
  /** True iff `signatureB64` is the owner's user-key Ed25519 signature of `message` (a delete or a replace message). */
  verifyDeleteSignature: (ownerUserId: string, message: Uint8Array, signatureB64: string) => boolean
  /** Largest share accepted. @default DEFAULT_MAX_SHARE_BYTES (32 MiB) */
  maxShareBytes?: number
  /** Largest record accepted. @default DEFAULT_MAX_RECORD_BYTES (1 MiB) */
  maxRecordBytes?: number
  /**
   * A refusal reason if `ownerUserId` may not add `addBytes` more bytes, else undefined. Asked for
   * every put, also with 0 added bytes (a repeat: only "this node contributes nothing" refuses it);
   * `added` says when the put creates a new share or record (for a cap on their number). `charge`
   * false: only check, count nothing (an upload's first part; the share is counted when stored).
   */
  quota?: (ownerUserId: string, addBytes: number, added?: 'share' | 'record', charge?: boolean) => Refusal | undefined
  /** Deadline per exchange. @default 60000 */
  timeoutMs?: number
  /** @default 32 */
  maxInboundStreams?: number
  /** The clock deletes are checked against (ms since the epoch). @default Date.now */
  now?: () => number
  /**
   * The group's retention policy: a share stored less than this many ms ago is not deleted, whoever
   * signs the request (so a stolen key cannot wipe recent history). @default none (0)
   */
  minShareAgeMs?: () => number
  /**
   * Bytes of unfinished putPart uploads staged (on disk where the store takes parts as they come,
   * else in memory). @default DEFAULT_MAX_STAGED_BYTES (512 MiB)
   */
  maxStagedBytes?: number
  /**
   * Called once a share of `owner` was written (new, or over other bytes): what the node knew of the
   * old bytes (a damage report of its scrub, cached proof leaves) no longer holds. Its failure is
   * logged; the put stands.
   */
  stored?: (owner: string, ref: ShareRef) => Promise<void>
}

export { WRITE_ONLY_REFUSAL, type Device } from './write-guards.js'

export interface ShardServer {
  start: () => Promise<void>
  stop: () => Promise<void>
}

/**
 * Why a put of `total` bytes is not a share, or undefined. An empty object would take a file and
 * an inode while adding nothing to the quota's count of bytes (issue 11, finding 6); what a share
 * holds is the owner's business (its audits check it), so its contents are not judged here.
 */
function notAShare (total: number): string | undefined {
  return total === 0 ? 'a share cannot be empty' : undefined
}

const OK: Reply = { header: { status: 'OK' } }

export function shardServer (init: ShardServerInit): ShardServer {
  const maxShareBytes = init.maxShareBytes ?? DEFAULT_MAX_SHARE_BYTES
  const maxRecordBytes = init.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES
  const now = init.now ?? Date.now
  const log = init.node.logger.forComponent('p2pbak:shard:server')
  const persister = init.node.peerId.toMultihash().bytes
  const staging = new Staging(now, init.maxStagedBytes, undefined, (message) => { log(message) })
  let started = false
  let served: Served | undefined
  /** drops idle uploads (and their temporary files) when no part arrives to do it */
  let sweeper: ReturnType<typeof setInterval> | undefined

  const { checkDelete, unsignedReplace, replaceRefusal, heldOther, tooYoung, currentSize } = writeGuards({ ...init, now, persister, log })

  /**
   * Stores a share that arrived in parts by the same steps as a put. A share not held yet (the
   * common case) is committed from the store's writer (its parts already on disk), or put from its
   * parts joined; one held already (a repeat, a replace) is read back or joined and goes through put,
   * which compares it with the held bytes and hashes it for the replace signature.
   */
  async function putAssembled (device: Device, store: ShareStore, ref: ShareRef, total: number, staged: Staged, auth: DeleteAuth | undefined, signal: AbortSignal): Promise<Reply> {
    if (!('writer' in staged)) return await act(device, store, { op: 'put', ref, data: concatBytes(staged.parts), ...(auth !== undefined ? { auth } : {}) }, signal)
    const writer = staged.writer
    try {
      if (await currentSize(store, ref) > 0) {
        const data = await writer.read()
        await writer.abort()
        return await act(device, store, { op: 'put', ref, data, ...(auth !== undefined ? { auth } : {}) }, signal)
      }
      const why = init.quota?.(device.userId, total, 'share')
      if (why !== undefined) return refused(why)
      await writer.commit({ signal })
    } finally {
      // a no-op after the commit; otherwise the temporary file goes
      await writer.abort()
    }
    await afterStore(device.userId, ref)
    return OK
  }

  async function afterStore (owner: string, ref: ShareRef): Promise<void> {
    await init.stored?.(owner, ref).catch((err: unknown) => { log('after storing %s.%d of %s: %s', ref.pack, ref.index, owner, errorMessage(err)) })
  }

  async function act (device: Device, store: ShareStore, req: ShardRequest, signal: AbortSignal): Promise<Reply> {
    const options = { signal }
    const userId = device.userId
    const writeOnly = device.writeOnly === true
    switch (req.op) {
      case 'put': {
        if (req.data.byteLength > maxShareBytes) return refused(`a share of ${req.data.byteLength} bytes exceeds this persister's limit of ${maxShareBytes}`)
        const malformed = notAShare(req.data.byteLength)
        if (malformed !== undefined) return { header: { status: 'INVALID', error: malformed } }
        const held = await currentSize(store, req.ref)
        // other bytes over a held share: a delete and a put in one, so it needs what a delete needs
        // (honest owners put identical bytes again, shares are deterministic; they replace only a
        // holder's damaged copy, and sign that)
        if (await heldOther(store, req.ref, held, req.data, signal)) {
          const no = await replaceRefusal(device, store, req.ref, req.data, req.auth)
          if (no !== undefined) return no
        } else if (held > 0) {
          // the same bytes again (a retry, a repair of an intact copy): nothing is written, so the
          // share's stored time (the retention clock) stands and a full disk does not refuse it
          const why = init.quota?.(userId, 0)
          if (why !== undefined) return refused(why)
          // the owner just sent these bytes and they match: a damage mark from an earlier failed read is wrong
          await afterStore(userId, req.ref)
          return OK
        }
        const add = Math.max(0, req.data.byteLength - held)
        const why = init.quota?.(userId, add, held === 0 ? 'share' : undefined)
        if (why !== undefined) return refused(why)
        await store.put(req.ref, req.data, options)
        await afterStore(userId, req.ref)
        return OK
      }
      case 'putPart': {
        // a share in parts (shard.md §5.3): assembled here, stored whole by the same steps as a put
        if (req.total > maxShareBytes) return refused(`a share of ${req.total} bytes exceeds this persister's limit of ${maxShareBytes}`)
        const key = `${userId}/${shareCursor(req.ref)}`
        // the share is already held whole (an upload that finished first, a retry of a stored share):
        // each part is checked against it and nothing is staged, so uploads of one share in parallel
        // all end as a plain repeat put does
        const whole = await currentSize(store, req.ref)
        if (whole > 0) {
          const same = whole === req.total && req.offset + req.data.byteLength <= whole &&
            equalsPartBytes(await store.getRange(req.ref, req.offset, req.data.byteLength, options), req.data)
          // a signed upload (a replace) always goes through staging, so its parts that happen to
          // equal the held ones are not skipped
          if (same && req.auth === undefined) {
            const have = req.offset + req.data.byteLength
            return { header: { status: 'OK', have, ...(have === req.total ? { stored: true } : {}) } }
          }
          // a part that differs from the held share: refused now what the last part would be refused
          if (!same) {
            const no = await replaceRefusal(device, store, req.ref, undefined, req.auth)
            if (no !== undefined) { staging.drop(key); return no }
          }
        }
        if (req.offset === 0) {
          // refuse early what the quota will not take, before the parts use memory
          const malformed = notAShare(req.total)
          if (malformed !== undefined) return { header: { status: 'INVALID', error: malformed } }
          const add = Math.max(0, req.total - whole)
          // checked, not counted: the assembled share is counted once, when it is stored
          const why = add > 0 ? init.quota?.(userId, add, undefined, false) : undefined
          if (why !== undefined) return refused(why)
        }
        const begin = store.beginShare === undefined || whole > 0 ? undefined : async () => await (store.beginShare as NonNullable<ShareStore['beginShare']>)(req.ref, options)
        const part = await staging.accept(key, req.total, req.offset, req.data, begin)
        switch (part.kind) {
          case 'partial': return { header: { status: 'OK', have: part.have } }
          case 'mismatch': return { header: { status: 'INVALID', reason: 'OFFSET', have: part.have, error: `this persister has ${part.have} bytes of the share, not ${req.offset}` } }
          case 'complete': {
            const reply = await putAssembled(device, store, req.ref, req.total, part.staged, req.auth, signal)
            if (reply.header.status !== 'OK') return reply
            return { header: { status: 'OK', have: req.total, stored: true } }
          }
        }
        break
      }
      case 'get':
        if (req.range === undefined) return { header: { status: 'OK' }, body: await store.get(req.ref, options) }
        try {
          // the whole share's size comes with a range, so a client reading in parts knows where to stop
          const body = await store.getRange(req.ref, req.range.offset, req.range.length, options)
          return { header: { status: 'OK', size: await store.size(req.ref, options) }, body }
        } catch (err: unknown) {
          if (!(err instanceof FormatError)) throw err
          return { header: { status: 'INVALID', reason: 'RANGE', size: await store.size(req.ref, options), error: 'the range lies beyond the share' } }
        }
      case 'has': return { header: { status: 'OK', has: await store.has(req.ref, options) } }
      case 'size': return { header: { status: 'OK', size: await store.size(req.ref, options) } }
      case 'delete': {
        if (writeOnly) return refused(WRITE_ONLY_REFUSAL)
        const why = checkDelete(userId, { kind: 'share', id: req.ref.pack, index: req.ref.index }, req.auth)
        if (why !== undefined) return refused(why)
        const young = await tooYoung(store, req.ref)
        if (young !== undefined) return young
        staging.forget(`${userId}/${shareCursor(req.ref)}`)
        await store.delete(req.ref, options)
        return OK
      }
      case 'list': {
        // a store listing by the pack id's first byte starts at the cursor's and stops after the page's
        const ordered = store.listsByFirstByte === true
        const from = ordered && req.after !== undefined ? { fromFirstByte: req.after[0] as number } : {}
        return await listPage(store.list({ ...options, ...from }), shareKey, req.after, req.limit, signal, ordered)
      }
      case 'putRecord': {
        if (req.data.byteLength > maxRecordBytes) return refused(`a record of ${req.data.byteLength} bytes exceeds this persister's limit of ${maxRecordBytes}`)
        if (req.data.byteLength === 0) return { header: { status: 'INVALID', error: 'a record cannot be empty' } }
        const exists = await store.hasRecord(req.id, options)
        if (exists && !equalBytes(await store.getRecord(req.id, options), req.data)) {
          if (writeOnly) return refused(WRITE_ONLY_REFUSAL)
          // records are content-addressed: under a retention policy one is never replaced by other bytes
          if ((init.minShareAgeMs?.() ?? 0) > 0) return refused('this record exists with other contents; under the group\'s retention policy records are never replaced')
          const no = unsignedReplace(userId, { kind: 'record', id: req.id }, req.data, req.auth)
          if (no !== undefined) return no
        }
        const why = init.quota?.(userId, exists ? 0 : req.data.byteLength, exists ? undefined : 'record')
        if (why !== undefined) return refused(why)
        await store.putRecord(req.id, req.data, options)
        return OK
      }
      case 'getRecord': return { header: { status: 'OK' }, body: await store.getRecord(req.id, options) }
      case 'hasRecord': return { header: { status: 'OK', has: await store.hasRecord(req.id, options) } }
      case 'deleteRecord': {
        if (writeOnly) return refused(WRITE_ONLY_REFUSAL)
        const why = checkDelete(userId, { kind: 'record', id: req.id }, req.auth)
        if (why !== undefined) return refused(why)
        await store.deleteRecord(req.id, options)
        return OK
      }
      case 'listRecords': return await listPage(store.listRecords(options), (id) => id, req.after, req.limit, signal)
      case 'usage': {
        const u = await store.usage(options)
        return { header: { status: 'OK', shares: u.shares, bytes: u.bytes } }
      }
    }
  }

  /** One request, start to end; never throws (every outcome is a status). */
  async function handle (header: unknown, body: RequestBody, peer: PeerId, signal: AbortSignal): Promise<Reply> {
    let device: Device
    try {
      const who = await init.authorize(peer)
      if (who === undefined) return { header: { status: 'NOT_MEMBER' } }
      device = who
      userKeyOf(device.userId)
    } catch (err: unknown) {
      log.error('authorizing %p failed - %e', peer, err)
      return { header: { status: 'INTERNAL', error: 'authorization failed on the persister' } }
    }
    let req: ShardRequest
    try {
      req = parseRequest(header, body)
    } catch (err: unknown) {
      return { header: { status: 'INVALID', error: shortError(errorMessage(err)) } }
    }
    try {
      const reply = await act(device, await init.storeFor(device.userId), req, signal)
      if (reply.header.status !== 'OK') log('%s from %p: %s %s', req.op, peer, reply.header.status, reply.header.error ?? '')
      return reply
    } catch (err: unknown) {
      // Store messages may name local paths: only the class crosses the wire.
      if (err instanceof NotFoundError) return { header: { status: 'NOT_FOUND', error: `${req.op}: no such ${req.op.endsWith('Record') ? 'record' : 'share'}` } }
      if (isP2pbakError(err) && err.code === 'ERR_NO_SPACE') return refused({ error: 'the persister\'s disk is full', full: true })
      log.error('%s from %p failed - %e', req.op, peer, err)
      return { header: { status: 'INTERNAL', error: `the persister failed to ${req.op}` } }
    }
  }

  async function isMember (peer: PeerId): Promise<boolean> {
    try {
      return (await init.authorize(peer)) !== undefined
    } catch (err: unknown) {
      log.error('authorizing %p failed - %e', peer, err)
      return false
    }
  }

  return {
    async start (): Promise<void> {
      if (started) return
      served = await serve<unknown>(init.node, SHARD_PROTOCOL, async (req, peer) => {
        // the message itself: a part goes to disk from the transport's buffers, not joined first
        return await handle(req.header, req, peer, AbortSignal.timeout(init.timeoutMs ?? DEFAULT_TIMEOUT_MS))
      }, {
        maxHeaderBytes: MAX_HEADER_BYTES,
        maxBodyBytes: Math.max(maxShareBytes, maxRecordBytes) + OVERSIZE_GRACE_BYTES,
        timeoutMs: init.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        maxInboundStreams: init.maxInboundStreams ?? DEFAULT_MAX_INBOUND_STREAMS,
        reuse: { protocol: SHARD_PROTOCOL_STREAMS, idleMs: SERVER_STREAM_IDLE_MS },
        // a stranger is answered NOT_MEMBER before its request (up to 33 MiB) is read
        authorize: async (peer) => await isMember(peer)
      })
      started = true
      sweeper = setInterval(() => { staging.sweep() }, STAGED_SWEEP_MS)
      sweeper.unref()
    },
    async stop (): Promise<void> {
      if (!started) return
      started = false
      clearInterval(sweeper)
      await init.node.unhandle([SHARD_PROTOCOL_STREAMS, SHARD_PROTOCOL])
      // streams that carry many requests end with the server, not at their next idle limit
      served?.close()
      served = undefined
      staging.clear()
    }
  }
}
