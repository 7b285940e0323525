/**
 * The publisher's side of `/p2pbak/shard/1.0.0`: a {@link ShareStore} whose shares live on one
 * persister. Arguments are checked here first (FormatError, as every ShareStore does), each call is
 * one exchange, statuses become the error classes of framing.ts' throwForStatus, and anything else
 * that goes wrong on the wire becomes a ProtocolError or TimeoutError: a peer's failure is data for
 * placement, never an untyped exception.
 */
import { AbortedError, FormatError, ProtocolError, RefusedError, RetentionRefusedError, errorMessage, isP2pbakError } from '../../errors.js'
import { contentHash } from '../../crypto/hash.js'
import type { AbortOptions, ShareRef, ShareStore, StoreUsage } from '../../store/index.js'
import { toHex } from '../../util/bytes.js'
import { bodyLength, copyBody, exchange, throwForStatus } from '../framing.js'
import { StreamPool } from '../stream-pool.js'
import { isTransient, newRetryStats, withRetry } from '../retry.js'
import type { RetryStats } from '../retry.js'
import type { Message, PooledStream, ResponseHeader } from '../framing.js'
import {
  CLIENT_MAX_IDLE_STREAMS, CLIENT_STREAM_IDLE_MS, DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_SHARE_BYTES, DEFAULT_TIMEOUT_MS, FULL_REASON, LIST_RECORD_ENTRY_BYTES,
  LIST_SHARE_ENTRY_BYTES, MAX_HEADER_BYTES, MAX_LIST_LIMIT, MAX_PART_RESTARTS, MAX_TRANSFER_PART_BYTES, SHARD_PROTOCOL, SHARD_PROTOCOL_STREAMS, TRANSFER_PART_BYTES
} from './constants.js'
import { decodePage, deleteMessage, entryToShareRef, refFields, replaceMessage, shareCursor, userKeyOf } from './wire.js'
import type { DeleteAuth, ShardRequestHeader } from './wire.js'
import { shown } from '../../util/text.js'
import { SHARE_HEADER_BYTES } from '../../format/share.js'
import { refuseOtherStripe } from './stripe-guard.js'
import { Pieces } from './pieces.js'
import { Limiter, PartSize } from './limiter.js'
import { checkId, checkRef, noteReplace, owned, type RemoteShareStoreInit, type ReplaceSeen, type Signer } from './client-options.js'

export type { RemoteShareStoreInit } from './client-options.js'

export class RemoteShareStore implements ShareStore {
  readonly id: string
  /**
   * What this store's calls retried since it was made (protocols/retry.ts RetryStats): exchanges
   * started, retries among them, calls that succeeded after a retry, calls that gave up on a
   * transient failure. Counters only grow; read them before and after an operation for its share.
   */
  readonly stats: RetryStats = newRetryStats()
  private readonly init: RemoteShareStoreInit
  private readonly owner: Uint8Array
  private readonly persister: Uint8Array
  private readonly limiter: Limiter
  private readonly log: (format: string, ...args: unknown[]) => void
  private readonly partBytes: number
  /** the size of the next part after the first (grows on a clean link, shrinks on a lossy one) */
  private readonly parts: PartSize
  /** streams kept between requests (protocol 1.1.0): a share's next part goes on the last one's stream */
  private readonly streams: StreamPool<PooledStream>
  private addrsKnown: Promise<void> | undefined
  private closed = false

  constructor (init: RemoteShareStoreInit) {
    this.init = init
    this.id = `peer:${init.peer.toString()}`
    this.owner = userKeyOf(init.ownerUserId)
    this.persister = init.peer.toMultihash().bytes
    this.limiter = new Limiter(init.maxConcurrent ?? DEFAULT_MAX_CONCURRENT)
    this.streams = new StreamPool({ idleMs: CLIENT_STREAM_IDLE_MS, maxIdle: CLIENT_MAX_IDLE_STREAMS })
    this.log = init.node.logger.forComponent('p2pbak:shard:client')
    this.partBytes = Math.max(1, init.partBytes ?? TRANSFER_PART_BYTES)
    this.parts = new PartSize(this.partBytes, Math.max(this.partBytes, init.maxPartBytes ?? MAX_TRANSFER_PART_BYTES))
  }

  private ready (options?: AbortOptions): void {
    if (this.closed) throw new Error(`share store ${this.id} is closed`)
    if (options?.signal?.aborted === true) throw new AbortedError('the store operation was cancelled', { cause: options.signal.reason })
  }

  /**
   * One request: an exchange, tried again on a fresh stream (libp2p redials a closed connection)
   * while it fails transiently and the retry policy allows; returns the response only if its
   * status is OK. Statuses are final: the peer answered.
   */
  private async call (what: string, header: ShardRequestHeader, body: Uint8Array | undefined, options?: AbortOptions,
    onStatus?: (h: ResponseHeader) => void): Promise<Message<ResponseHeader>> {
    this.ready(options)
    const signal = options?.signal
    // the rate limits wait outside the retry budget and the exchange's deadline (a retry's resend is not counted again)
    if (body !== undefined) await this.init.limits?.upload?.take(body.byteLength, signal)
    const res = await withRetry(`${what} on ${this.id}`, async (attempt) => await this.attempt(what, header, body, attempt.remainingMs, options), {
      ...(this.init.retry !== undefined ? { policy: this.init.retry } : {}),
      ...(this.init.clock !== undefined ? { clock: this.init.clock } : {}),
      ...(signal !== undefined ? { signal } : {}),
      stats: this.stats,
      onRetry: (err, n, delayMs) => {
        this.log('%s on %s: attempt %d failed (%s), retrying in %d ms', what, this.id, n, errorMessage(err), delayMs)
      }
    })
    await this.init.limits?.download?.take(bodyLength(res), signal)
    onStatus?.(res.header)
    const h = res.header
    if (h.status === 'REFUSED' && h.reason === 'RETENTION' && typeof h.notBefore === 'number' && Number.isSafeInteger(h.notBefore)) {
      // the share is kept under the group's retention policy until notBefore (shard.md §7.1)
      throw new RetentionRefusedError(`${what} on ${this.id}: ${typeof h.error === 'string' ? h.error : 'kept by the retention policy'}`, { notBefore: h.notBefore })
    }
    if (h.status === 'REFUSED' && h.reason === FULL_REASON) {
      // the persister has no room now (disk full, quota used up): the caller may keep the data elsewhere
      throw new RefusedError(`${what} on ${this.id}: refused: ${typeof h.error === 'string' ? h.error : 'no room'}`, { noRoom: true })
    }
    throwForStatus(h, `${what} on ${this.id}`)
    return res
  }

  /** One exchange within the concurrency limit; its deadline is cut to what is left of the retry budget. */
  private async attempt (what: string, header: ShardRequestHeader, body: Uint8Array | undefined, remainingMs: number, options?: AbortOptions): Promise<Message<ResponseHeader>> {
    const { node, peer, addrs } = this.init
    return await this.limiter.run(async () => {
      try {
        if (addrs !== undefined && addrs.length > 0) {
          this.addrsKnown ??= node.peerStore.merge(peer, { multiaddrs: [...addrs] }).then(() => {})
          await this.addrsKnown
        }
        this.ready(options)
        const signal = options?.signal
        const res = await exchange(node, peer, SHARD_PROTOCOL, header, body, {
          maxHeaderBytes: MAX_HEADER_BYTES,
          maxBodyBytes: this.init.maxShareBytes ?? DEFAULT_MAX_SHARE_BYTES,
          timeoutMs: Math.max(1, Math.min(this.init.timeoutMs ?? DEFAULT_TIMEOUT_MS, remainingMs)),
          reuse: { protocol: SHARD_PROTOCOL_STREAMS, pool: this.streams },
          ...(signal !== undefined ? { signal } : {})
        })
        this.limiter.succeeded()
        return res
      } catch (err: unknown) {
        if (isTransient(err)) this.limiter.failed()
        if (options?.signal?.aborted === true) throw new AbortedError(`${what} on ${this.id} was cancelled`, { cause: err })
        if (isP2pbakError(err)) throw err
        throw new ProtocolError(`${what} on ${this.id} failed: ${errorMessage(err)}`, { cause: err })
      }
    })
  }

  private signedDelete (kind: 'share' | 'record', id: Uint8Array, index?: number): { ts: number, sig: string } {
    const ts = (this.init.now ?? Date.now)()
    const message = deleteMessage({ kind, owner: this.owner, persister: this.persister, id, ...(index !== undefined ? { index } : {}) }, ts)
    return { ts, sig: this.init.signDelete(message) }
  }

  /**
   * A signer for replacing held bytes with `data` (shard.md §7.3), or a RefusedError saying why this
   * device cannot: it has no user key (a write-only machine).
   */
  /** `hash`: the BLAKE3 of the new bytes, which the replace signature covers. */
  private replaceSigner (kind: 'share' | 'record', id: Uint8Array, index: number | undefined, hash: Uint8Array, refusal: unknown): () => DeleteAuth {
    const sign = (): DeleteAuth => {
      const ts = (this.init.now ?? Date.now)()
      const message = replaceMessage({ kind, owner: this.owner, persister: this.persister, id, ...(index !== undefined ? { index } : {}) }, hash, ts)
      return { ts, sig: this.init.signDelete(message) }
    }
    try {
      sign()
    } catch (err: unknown) {
      this.log('%s on %s: the persister holds other bytes and this device cannot sign their replacement - %s', kind === 'share' ? 'put' : 'putRecord', this.id, errorMessage(err))
      throw new RefusedError(`${errorMessage(refusal)}; this device has no user key to sign the replacement (a write-only machine never replaces what a persister holds)`, { cause: err })
    }
    return sign
  }

  /**
   * Stores the share. Identical bytes over a held copy are a plain repeat; when the persister holds
   * other bytes (its copy was damaged, or this is a repair putting a share back) it refuses the
   * unsigned put (REPLACE), and the put is sent again signed by the owner's user key (§7.3).
   */
  async put (ref: ShareRef, data: Uint8Array, options?: AbortOptions): Promise<void> {
    await this.putParts(ref, [data], options)
  }

  /** put of a share given as pieces: its parts are cut from them, joined only where a part spans two. */
  async putParts (ref: ShareRef, pieces: readonly Uint8Array[], options?: AbortOptions): Promise<void> {
    checkRef(ref)
    const data = new Pieces(pieces)
    const seen: ReplaceSeen = { refused: false }
    try {
      await this.putOnce(ref, data, undefined, seen, options)
    } catch (err: unknown) {
      if (!seen.refused) throw err
      await refuseOtherStripe(ref, data.slice(0, Math.min(SHARE_HEADER_BYTES, data.byteLength)), (o) => this.getRange(ref, 0, SHARE_HEADER_BYTES, o), this.id, this.log, options)
      const sign = this.replaceSigner('share', ref.pack, ref.index, data.hash(), err)
      this.log('put on %s: it holds share %s with other bytes (a damaged or stale copy); replacing them, signed by the user key', this.id, shareCursor(ref))
      await this.putOnce(ref, data, sign, { refused: false }, options)
    }
  }

  private async putOnce (ref: ShareRef, data: Pieces, sign: Signer, seen: ReplaceSeen, options?: AbortOptions): Promise<void> {
    if (data.byteLength > this.partBytes && await this.putInParts(ref, data, sign, seen, options)) return
    await this.call('put', { op: 'put', ...refFields(ref), ...sign?.() }, data.slice(0, data.byteLength), options, (h) => { noteReplace(h, seen) })
  }

  /**
   * A large share in parts (putPart, shard.md §5.3), each part one exchange retried on its own, so a
   * reset costs one part, not the share. False when the persister does not know putPart (an older
   * version answers INVALID "unknown op" and stores nothing): the caller then puts it whole.
   */
  private async putInParts (ref: ShareRef, data: Pieces, sign: Signer, seen: ReplaceSeen, options?: AbortOptions): Promise<boolean> {
    const total = data.byteLength
    let offset = 0
    let restarts = 0
    for (;;) {
      const end = Math.min(total, offset + this.parts.size)
      const retriesBefore = this.stats.retries
      let expected: number | undefined
      let legacy = false
      let res: Message<ResponseHeader>
      try {
        res = await this.call('put', { op: 'putPart', ...refFields(ref), offset, total, ...sign?.() }, data.slice(offset, end), options, (h) => {
          noteReplace(h, seen)
          if (h.status !== 'INVALID') return
          if (h.reason === 'OFFSET' && typeof h.have === 'number' && Number.isSafeInteger(h.have) && h.have >= 0 && h.have < offset) expected = h.have
          else if (offset === 0 && typeof h.error === 'string' && h.error.startsWith('unknown op')) legacy = true
        })
      } catch (err: unknown) {
        if (legacy) return false
        if (expected === undefined) throw err
        // the persister lost the unfinished upload (restarted, or dropped it for memory): go back to what it has
        if (++restarts > MAX_PART_RESTARTS) throw new ProtocolError(`put on ${this.id}: the persister lost the unfinished share ${restarts} times`, { cause: err })
        this.log('put on %s: the persister has %d of %d bytes, continuing from there', this.id, expected, total)
        offset = expected
        continue
      }
      this.parts.after(this.stats.retries > retriesBefore)
      if (res.header.stored === true) return true
      const have = res.header.have
      if (typeof have !== 'number' || !Number.isSafeInteger(have) || have < end || have >= total) {
        throw new ProtocolError(`put on ${this.id}: a part answer says ${shown(have)} bytes held after sending up to ${end} of ${total}`)
      }
      offset = have
    }
  }

  async get (ref: ShareRef, options?: AbortOptions): Promise<Uint8Array> {
    checkRef(ref)
    // the first part says the share's size; a share of at most one part comes whole
    let smallSize: number | undefined
    let first: Message<ResponseHeader>
    try {
      first = await this.call('get', { op: 'get', ...refFields(ref), offset: 0, length: this.partBytes }, undefined, options, (h) => {
        if (h.status === 'INVALID' && h.reason === 'RANGE' && typeof h.size === 'number') smallSize = h.size
      })
    } catch (err: unknown) {
      if (smallSize === undefined) throw err
      return owned((await this.call('get', { op: 'get', ...refFields(ref) }, undefined, options)).body)
    }
    const total = first.header.size
    // a persister that does not say the size (an older version): read it whole
    if (typeof total !== 'number' || !Number.isSafeInteger(total) || total < this.partBytes) {
      return owned((await this.call('get', { op: 'get', ...refFields(ref) }, undefined, options)).body)
    }
    if (bodyLength(first) !== this.partBytes) throw new ProtocolError(`get on ${this.id}: asked for ${this.partBytes} bytes, got ${bodyLength(first)}`)
    // each part goes from the pieces it arrived in straight into the share's buffer
    const out = new Uint8Array(total)
    copyBody(first, out, 0)
    for (let offset = this.partBytes; offset < total;) {
      const length = Math.min(this.parts.size, total - offset)
      const retriesBefore = this.stats.retries
      const res = await this.call('get', { op: 'get', ...refFields(ref), offset, length }, undefined, options)
      if (bodyLength(res) !== length || res.header.size !== total) throw new ProtocolError(`get on ${this.id}: the share changed size or a part came short while reading it in parts`)
      this.parts.after(this.stats.retries > retriesBefore)
      copyBody(res, out, offset)
      offset += length
    }
    return out
  }

  async getRange (ref: ShareRef, offset: number, length: number, options?: AbortOptions): Promise<Uint8Array> {
    checkRef(ref)
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new FormatError(`a share range needs non-negative integers, got offset ${offset} length ${length}`)
    }
    const res = await this.call('get', { op: 'get', ...refFields(ref), offset, length }, undefined, options, (h) => {
      if (h.status === 'INVALID' && h.reason === 'RANGE') {
        throw new FormatError(`range [${offset}, ${offset + length}) lies beyond the share's ${shown(h.size)} bytes on ${this.id}`)
      }
    })
    if (res.body.byteLength !== length) throw new ProtocolError(`get on ${this.id}: asked for ${length} bytes, got ${res.body.byteLength}`)
    return owned(res.body)
  }

  async has (ref: ShareRef, options?: AbortOptions): Promise<boolean> {
    checkRef(ref)
    return this.bool((await this.call('has', { op: 'has', ...refFields(ref) }, undefined, options)).header, 'has')
  }

  async size (ref: ShareRef, options?: AbortOptions): Promise<number> {
    checkRef(ref)
    const { header } = await this.call('size', { op: 'size', ...refFields(ref) }, undefined, options)
    return this.count(header.size, 'size')
  }

  async delete (ref: ShareRef, options?: AbortOptions): Promise<void> {
    checkRef(ref)
    this.ready(options)
    await this.call('delete', { op: 'delete', ...refFields(ref), ...this.signedDelete('share', ref.pack, ref.index) }, undefined, options)
  }

  async * list (options?: AbortOptions): AsyncGenerator<ShareRef> {
    for await (const entry of this.pages('list', LIST_SHARE_ENTRY_BYTES, (e) => shareCursor(entryToShareRef(e)), options)) {
      yield entryToShareRef(entry)
    }
  }

  /** Stores the record; over other held bytes (a damaged copy) it is sent again signed, as `put`. */
  async putRecord (id: Uint8Array, data: Uint8Array, options?: AbortOptions): Promise<void> {
    checkId(id)
    const seen: ReplaceSeen = { refused: false }
    try {
      await this.call('putRecord', { op: 'putRecord', id: toHex(id) }, data, options, (h) => { noteReplace(h, seen) })
    } catch (err: unknown) {
      if (!seen.refused) throw err
      const sign = this.replaceSigner('record', id, undefined, contentHash(data), err)
      this.log('putRecord on %s: it holds record %s with other bytes; replacing them, signed by the user key', this.id, toHex(id).slice(0, 16))
      await this.call('putRecord', { op: 'putRecord', id: toHex(id), ...sign() }, data, options)
    }
  }

  async getRecord (id: Uint8Array, options?: AbortOptions): Promise<Uint8Array> {
    checkId(id)
    return owned((await this.call('getRecord', { op: 'getRecord', id: toHex(id) }, undefined, options)).body)
  }

  async hasRecord (id: Uint8Array, options?: AbortOptions): Promise<boolean> {
    checkId(id)
    return this.bool((await this.call('hasRecord', { op: 'hasRecord', id: toHex(id) }, undefined, options)).header, 'hasRecord')
  }

  async deleteRecord (id: Uint8Array, options?: AbortOptions): Promise<void> {
    checkId(id)
    this.ready(options)
    await this.call('deleteRecord', { op: 'deleteRecord', id: toHex(id), ...this.signedDelete('record', id) }, undefined, options)
  }

  async * listRecords (options?: AbortOptions): AsyncGenerator<Uint8Array> {
    yield * this.pages('listRecords', LIST_RECORD_ENTRY_BYTES, toHex, options)
  }

  async usage (options?: AbortOptions): Promise<StoreUsage> {
    const { header } = await this.call('usage', { op: 'usage' }, undefined, options)
    return { shares: this.count(header.shares, 'usage.shares'), bytes: this.count(header.bytes, 'usage.bytes') }
  }

  async close (): Promise<void> {
    this.closed = true
    this.streams.close()
  }

  /** Walks a paged listing: each page's entries are strictly after the previous page's last one. */
  private async * pages (op: 'list' | 'listRecords', entryBytes: number, cursorOf: (entry: Uint8Array) => string, options?: AbortOptions): AsyncGenerator<Uint8Array> {
    this.ready(options)
    const limit = Math.min(Math.max(1, this.init.listPageSize ?? MAX_LIST_LIMIT), MAX_LIST_LIMIT)
    let after: Uint8Array | undefined
    for (;;) {
      const header: ShardRequestHeader = { op, limit, ...(after !== undefined ? { cursor: cursorOf(after) } : {}) }
      const res = await this.call(op, header, undefined, options)
      const more = res.header.more
      if (typeof more !== 'boolean') throw new ProtocolError(`${op} on ${this.id}: the page has no "more" flag`)
      const entries = decodePage(res.body, entryBytes, after)
      if (entries.length > limit) throw new ProtocolError(`${op} on ${this.id}: ${entries.length} entries in a page of at most ${limit}`)
      yield * entries
      if (!more) return
      if (entries.length === 0) throw new ProtocolError(`${op} on ${this.id}: an empty page that claims more entries`)
      after = entries[entries.length - 1]
    }
  }

  private bool (h: ResponseHeader, what: string): boolean {
    if (typeof h.has !== 'boolean') throw new ProtocolError(`${what} on ${this.id}: the answer has no boolean "has"`)
    return h.has
  }

  private count (v: unknown, what: string): number {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new ProtocolError(`${what} on ${this.id}: not a non-negative integer`)
    return v
  }
}
