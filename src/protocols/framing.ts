/**
 * The wire shape shared by every p2pbak protocol: one request and one response per stream (or, on a
 * protocol served with `reuse`, one after another on a stream), each a message of two
 * length-prefixed frames (unsigned varint length, as libp2p's lpStream):
 *
 *   message = frame(header) || frame(body)
 *   header  = UTF-8 JSON object; a response header always has "status"
 *   body    = raw bytes (a share, a record), empty when the message has none
 *
 * Every read has a size limit and every exchange a deadline. A handler answers peer faults with a
 * status, never by crashing; the stream is aborted only on framing violations.
 * docs/protocols/framing.md is the spec.
 */
import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { InvalidInviteError, ProtocolError, RefusedError, NotFoundError, TimeoutError, NotMemberError, UntrustedPeerError, errorMessage, isP2pbakError } from '../errors.js'
import { utf8Decode } from '../util/bytes.js'
import { scopedLogger } from '../util/log.js'
import { shown } from '../util/text.js'
import { closeQuietly, type StreamPool } from './stream-pool.js'

const log = scopedLogger('framing')

export type Status = 'OK' | 'NOT_FOUND' | 'REFUSED' | 'NOT_MEMBER' | 'INVALID_INVITE' | 'UNTRUSTED' | 'INVALID' | 'INTERNAL'

export interface Message<H> {
  header: H
  /** the body in one buffer (joined from the pieces it arrived in when first read) */
  readonly body: Uint8Array
  /**
   * the body as it came off the stream: the transport's buffers in order, not copied (a persister
   * writes a share's part to disk from them); absent when the message was not read off a stream
   */
  readonly bodyChunks?: readonly Uint8Array[]
}
/** The byte length of a message's body, without joining its pieces. */
export function bodyLength (m: Message<unknown>): number {
  if (m.bodyChunks === undefined) return m.body.byteLength
  let n = 0
  for (const c of m.bodyChunks) n += c.byteLength
  return n
}

/** Copies a message's body into `out` at `offset` piece by piece (not joined into a buffer first). */
export function copyBody (m: Message<unknown>, out: Uint8Array, offset: number): void {
  if (m.bodyChunks === undefined) { out.set(m.body, offset); return }
  for (const c of m.bodyChunks) { out.set(c, offset); offset += c.byteLength }
}

export type ResponseHeader = { status: Status, error?: string } & Record<string, unknown>

export interface ExchangeLimits {
  /** largest header frame accepted. @default 64 KiB */
  maxHeaderBytes?: number
  /** largest body frame accepted. @default 32 MiB (a 16 MiB pack's share plus room) */
  maxBodyBytes?: number
  /** deadline for the whole exchange in ms. @default 60000 */
  timeoutMs?: number
}

const DEFAULT_HEADER = 64 * 1024
const DEFAULT_BODY = 32 * 1024 * 1024
const DEFAULT_TIMEOUT = 60_000
const EMPTY = new Uint8Array(0)
/** A body in more pieces than this, averaging under SMALL_PIECE_BYTES each, is joined on receipt. */
const MANY_PIECES = 64
const SMALL_PIECE_BYTES = 16 * 1024

function limits (l: ExchangeLimits): Required<ExchangeLimits> {
  return { maxHeaderBytes: l.maxHeaderBytes ?? DEFAULT_HEADER, maxBodyBytes: l.maxBodyBytes ?? DEFAULT_BODY, timeoutMs: l.timeoutMs ?? DEFAULT_TIMEOUT }
}

type Lp = ReturnType<typeof lpStream>

/**
 * One length-prefixed view per stream, used for both directions. Its buffer must hold a whole frame:
 * lpStream's default (4 MiB) silently capped bodies, and a second view on the same stream would
 * buffer unread input behind the first one's back.
 */
function lpFor (stream: Stream, l: Required<ExchangeLimits>): Lp {
  const max = Math.max(l.maxHeaderBytes, l.maxBodyBytes)
  return lpStream(stream, { maxDataLength: max, maxBufferSize: max + 16 })
}

/** A later request on a stream from a peer that may no longer send any (serve's `authorize`). */
class NotAdmitted extends Error {}

/**
 * `headerSignal`: the wait for the header, when it has its own limit (a request after the first on a
 * stream). `admit`: asked after the header frame and before the body is read; false throws NotAdmitted.
 */
async function readMessage<H> (lp: Lp, l: Required<ExchangeLimits>, signal: AbortSignal, headerSignal: AbortSignal = signal,
  admit?: () => Promise<boolean>): Promise<Message<H>> {
  const head = (await lp.read({ signal: headerSignal })).subarray()
  if (head.byteLength > l.maxHeaderBytes) throw new ProtocolError(`header of ${head.byteLength} bytes exceeds ${l.maxHeaderBytes}`)
  if (admit !== undefined && !(await admit())) throw new NotAdmitted('not admitted')
  let header: unknown
  try { header = JSON.parse(utf8Decode(head)) } catch { throw new ProtocolError('header is not UTF-8 JSON') }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new ProtocolError('header is not a JSON object')
  const list = await lp.read({ signal })
  if (list.byteLength > l.maxBodyBytes) throw new ProtocolError(`body of ${list.byteLength} bytes exceeds ${l.maxBodyBytes}`)
  const chunks = [...list]
  if (chunks.length <= 1) return { header: header as H, body: chunks[0] ?? EMPTY, bodyChunks: chunks }
  // a body cut into many small frames (a peer may send one byte per frame) is joined at once: each
  // piece kept would hold its transport buffer and an object, far more than its bytes
  if (chunks.length > MANY_PIECES && list.byteLength < chunks.length * SMALL_PIECE_BYTES) {
    const body = list.subarray()
    return { header: header as H, body, bodyChunks: [body] }
  }
  // joined only when someone asks for it whole: each join is a fresh buffer of the body's size
  let joined: Uint8Array | undefined
  return { header: header as H, get body () { return (joined ??= list.subarray()) }, bodyChunks: chunks }
}

async function writeMessage (lp: Lp, header: object, body: Uint8Array, signal: AbortSignal): Promise<void> {
  await lp.write(Buffer.from(JSON.stringify(header)), { signal })
  await lp.write(body, { signal })
}

/** Maps a response status to the error class a caller sees. */
export function throwForStatus (h: ResponseHeader, what: string): void {
  const why = h.error !== undefined ? `: ${h.error}` : ''
  switch (h.status) {
    case 'OK': return
    case 'NOT_FOUND': throw new NotFoundError(`${what}: not found${why}`)
    case 'REFUSED': throw new RefusedError(`${what}: refused${why}`)
    case 'NOT_MEMBER': throw new NotMemberError(`${what}: the peer says we are not a member of its group${why}`)
    case 'INVALID_INVITE': throw new InvalidInviteError(`${what}: the inviter refused the invite${why}`)
    case 'UNTRUSTED': throw new UntrustedPeerError(`${what}: the peer does not trust what this device presented${why}`)
    case 'INVALID': throw new ProtocolError(`${what}: the peer says our request was invalid${why}`)
    case 'INTERNAL': throw new ProtocolError(`${what}: the peer failed${why}`)
    default: throw new ProtocolError(`${what}: unknown status ${shown(h.status)}`)
  }
}

/**
 * A stream and the one length-prefixed view its exchanges share (a second view would lose buffered
 * input). `relayed`: its connection goes through a relay (not `direct`).
 */
export interface PooledStream { readonly stream: Stream, readonly lp: Lp, readonly relayed: boolean }

/**
 * Streams kept between exchanges (docs/protocols/framing.md §2.1): `protocol` is the id under which the
 * server answers one request after another on a stream. It is offered first when a stream is opened;
 * a stream on which it was agreed goes back to `pool` after a clean exchange.
 */
export interface StreamReuse {
  protocol: string
  pool: StreamPool<PooledStream>
}

export type ExchangeOptions = ExchangeLimits & { signal?: AbortSignal, connection?: Connection, reuse?: StreamReuse }

/**
 * Client side: send one request and read one response (its status is NOT checked here), on a stream
 * kept from an earlier exchange (`opts.reuse`) or on a new one (on `opts.connection` when given).
 */
export async function exchange<H extends object> (
  node: Libp2p, peer: PeerId | Multiaddr, protocol: string, header: H, body: Uint8Array = EMPTY, opts: ExchangeOptions = {}
): Promise<Message<ResponseHeader>> {
  // a cancelled request is not sent (a kept stream would carry it before noticing)
  opts.signal?.throwIfAborted()
  const l = limits(opts)
  const deadline = AbortSignal.timeout(l.timeoutMs)
  const signal = opts.signal !== undefined ? AbortSignal.any([opts.signal, deadline]) : deadline
  let kept = opts.reuse?.pool.take()
  if (kept?.relayed === true && directTo(node, peer)) {
    // a direct connection came up since this stream was opened through a relay: the relay's
    // bandwidth is for friends who have no other way; the next stream goes on the direct one
    closeQuietly(kept.stream, `a ${protocol} stream kept from a relayed connection`)
    kept = undefined
  }
  if (kept !== undefined) {
    try {
      return await onStream(kept, protocol, header, body, l, signal, opts.reuse)
    } catch (err: unknown) {
      // not sent again here: a stream that breaks often dies with its connection, and a new stream at
      // once would find the dying one; the caller's retry policy waits, then tries another stream
      kept.stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw failure(protocol, err, opts.signal, deadline, l, true)
    }
  }
  let stream: Stream | undefined
  try {
    // members behind NAT are reached through a member's relay: such a connection may be limited
    // `connection`: this one, not whichever libp2p would pick (dialback.ts asks over the connection it vetted)
    const protocols = opts.reuse !== undefined ? [opts.reuse.protocol, protocol] : [protocol]
    stream = opts.connection !== undefined
      ? await opts.connection.newStream(protocols, { signal, runOnLimitedConnection: true })
      : await node.dialProtocol(peer, protocols, { signal, runOnLimitedConnection: true })
    const lp = lpFor(stream, { ...l, maxBodyBytes: Math.max(l.maxBodyBytes, body.byteLength) })
    // whether the stream may be kept on a relay is asked only when streams are kept (not on every exchange)
    const conn = opts.reuse === undefined ? undefined : opts.connection ?? connectionOf(node, peer, stream)
    return await onStream({ stream, lp, relayed: conn !== undefined && !conn.direct }, protocol, header, body, l, signal, opts.reuse)
  } catch (err: unknown) {
    stream?.abort(err instanceof Error ? err : new Error(String(err)))
    throw failure(protocol, err, opts.signal, deadline, l, stream !== undefined)
  }
}

/** `peer` when it is a peer id (not a multiaddr), else undefined. */
function peerIdOf (peer: PeerId | Multiaddr): PeerId | undefined {
  return typeof (peer as Partial<PeerId>).toMultihash === 'function' ? peer as PeerId : undefined
}

/** The connection `stream` was opened on (a peer given as a multiaddr: not looked up). */
function connectionOf (node: Libp2p, peer: PeerId | Multiaddr, stream: Stream): Connection | undefined {
  const id = peerIdOf(peer)
  return id === undefined ? undefined : node.getConnections(id).find(c => c.streams.includes(stream))
}

/** True when `node` has an open direct (not relayed) connection to `peer`. */
function directTo (node: Libp2p, peer: PeerId | Multiaddr): boolean {
  const id = peerIdOf(peer)
  return id !== undefined && node.getConnections(id).some(c => c.direct && c.status === 'open')
}

/** One request and its response on `s`; then the stream goes back to the pool, or is closed. */
async function onStream (s: PooledStream, protocol: string, header: object, body: Uint8Array, l: Required<ExchangeLimits>,
  signal: AbortSignal, reuse: StreamReuse | undefined): Promise<Message<ResponseHeader>> {
  await writeMessage(s.lp, header, body, signal)
  const res = await readMessage<ResponseHeader>(s.lp, l, signal)
  if (typeof res.header.status !== 'string') throw new ProtocolError(`${protocol}: response without a status`)
  if (reuse !== undefined && s.stream.protocol === reuse.protocol) reuse.pool.give(s)
  else await s.stream.close({ signal }).catch((err: unknown) => { log('%s: closing the stream after its answer: %s', protocol, errorMessage(err)) })
  return res
}

/** The error an exchange throws for `err`: the caller's abort as it came, else typed (TimeoutError, ProtocolError). */
function failure (protocol: string, err: unknown, callerSignal: AbortSignal | undefined, deadline: AbortSignal, l: Required<ExchangeLimits>, opened: boolean): unknown {
  if (callerSignal?.aborted === true) return err
  if (deadline.aborted) return new TimeoutError(`${protocol}: no answer within ${l.timeoutMs} ms`, { cause: err })
  if (isP2pbakError(err)) return err
  // nobody listens at the peer's addresses: it may be offline (retried, but fewer times)
  if (!opened && isUnreachable(err)) return new ProtocolError(`${protocol}: ${errorMessage(err)}`, { cause: err, transport: 'unreachable' })
  // a reset stream, a closed connection, an early EOF: the way to the peer broke before it
  // answered (transient: protocols/retry.ts tries again on a fresh stream)
  return new ProtocolError(`${protocol}: ${errorMessage(err)}`, { cause: err, transport: 'broken' })
}

const UNREACHABLE = /\b(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL|NoValidAddressesError)\b|no valid addresses/i

/**
 * True when a dial failed because nothing answers at the peer's addresses (refused, no route), as
 * opposed to a connection that broke while it was being set up. libp2p wraps the system error in
 * its own errors (cause, AggregateError), so the whole chain is looked at.
 */
function isUnreachable (err: unknown, depth = 0): boolean {
  if (depth > 4 || !(err instanceof Error)) return false
  if (UNREACHABLE.test(`${err.name} ${err.message} ${String((err as { code?: unknown }).code ?? '')}`)) return true
  if (err instanceof AggregateError && err.errors.some(e => isUnreachable(e, depth + 1))) return true
  return isUnreachable(err.cause, depth + 1)
}

/**
 * The typed error for a failed dial outside an exchange (joining dials the inviter first):
 * TimeoutError when `timedOut`, else a ProtocolError whose `transport` is 'unreachable' when nothing
 * answers, 'broken' otherwise.
 */
export function dialFailure (what: string, err: unknown, timedOut: boolean): TimeoutError | ProtocolError {
  if (timedOut) return new TimeoutError(`${what}: no connection within the deadline`, { cause: err })
  return new ProtocolError(`${what}: ${errorMessage(err)}`, { cause: err, transport: isUnreachable(err) ? 'unreachable' : 'broken' })
}

export type Handler<H> = (req: Message<H>, peer: PeerId, connection?: Connection) => Promise<{ header: ResponseHeader, body?: Uint8Array }>

export interface ServeOptions extends ExchangeLimits {
  /** @default 32 */
  maxInboundStreams?: number
  /**
   * Who may send a request. Checked before a byte of it is read: anyone else is answered
   * `NOT_MEMBER` at once and the stream closed, so a stranger cannot make the node buffer a request
   * (up to the body limit) just to be refused. Absent: everyone (the `join` protocol).
   */
  authorize?: (peer: PeerId) => boolean | Promise<boolean>
  /**
   * A second protocol id under which the same handler answers one request after another on a stream
   * (framing.md §2.1), until the client closes it or sends nothing for `idleMs`.
   */
  reuse?: { protocol: string, idleMs: number }
}

/** What `serve` returns: `close` ends the streams that carry many exchanges (call it with unhandle). */
export interface Served {
  close: () => void
}

/** Server side: registers a handler; errors thrown by it become statuses, framing errors abort the stream. */
export async function serve<H> (node: Libp2p, protocol: string, handler: Handler<H>, opts: ServeOptions = {}): Promise<Served> {
  const l = limits(opts)
  const reuse = opts.reuse
  const protocols = reuse !== undefined ? [reuse.protocol, protocol] : [protocol]
  /** streams carrying many exchanges, open now: a stopped server ends them */
  const open = new Set<Stream>()
  let closed = false
  const admitted = async (peer: PeerId): Promise<boolean> => opts.authorize === undefined || await opts.authorize(peer)
  await node.handle(protocols, async (stream: Stream, connection) => {
    const many = reuse !== undefined && stream.protocol === reuse.protocol
    if (many) open.add(stream)
    try {
      if (!(await admitted(connection.remotePeer))) {
        await refuseUnread(stream, AbortSignal.timeout(l.timeoutMs))
        return
      }
      const lp = lpFor(stream, l)
      for (let first = true; !closed; first = false) {
        // a request after the first may start up to idleMs after the last answer; its sender is
        // admitted again (it may have left the group since the stream opened) before its body is read
        const idle = first || reuse === undefined ? undefined : AbortSignal.timeout(reuse.idleMs)
        const signal = AbortSignal.timeout(l.timeoutMs + (idle !== undefined ? (reuse?.idleMs ?? 0) : 0))
        let req: Message<H>
        try {
          req = await readMessage<H>(lp, l, signal, idle, first ? undefined : async () => await admitted(connection.remotePeer))
        } catch (err: unknown) {
          if (err instanceof NotAdmitted) {
            await refuseUnread(stream, signal)
            return
          }
          // the client closed the stream between requests, or sent none within the idle limit: done
          if (idle !== undefined && (stream.remoteWriteStatus !== 'writable' || idle.aborted)) break
          throw err
        }
        let res: { header: ResponseHeader, body?: Uint8Array }
        try {
          res = await handler(req, connection.remotePeer, connection)
        } catch (err: unknown) {
          res = { header: statusFor(err) }
        }
        await writeMessage(lp, res.header, res.body ?? EMPTY, signal)
        if (!many) break
      }
      await stream.close({ signal: AbortSignal.timeout(l.timeoutMs) }).catch((err: unknown) => { log('%s: closing a served stream: %s', protocol, errorMessage(err)) })
    } catch (err: unknown) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      open.delete(stream)
    }
  }, { maxInboundStreams: opts.maxInboundStreams ?? 32, runOnLimitedConnection: true })
  return {
    close: () => {
      closed = true
      for (const stream of open) stream.abort(new Error(`${protocol}: the server stopped`))
      open.clear()
    }
  }
}

/** Answers NOT_MEMBER without reading the request, then closes; whatever the peer still sends is dropped. */
async function refuseUnread (stream: Stream, signal: AbortSignal): Promise<void> {
  const lp = lpFor(stream, { maxHeaderBytes: DEFAULT_HEADER, maxBodyBytes: 0, timeoutMs: DEFAULT_TIMEOUT })
  await writeMessage(lp, { status: 'NOT_MEMBER', error: 'not a member of this group' }, EMPTY, signal)
  await stream.close({ signal }).catch((err: unknown) => { log('closing a refused stream: %s', errorMessage(err)) })
}

/** The status a handler's error maps to (the inverse of throwForStatus). */
export function statusFor (err: unknown): ResponseHeader {
  // a failure that is not one of ours may carry local details (paths): the peer learns only that we failed
  if (!isP2pbakError(err)) return { status: 'INTERNAL', error: 'internal error' }
  const error = errorMessage(err)
  switch (err.code) {
    case 'ERR_NOT_FOUND': return { status: 'NOT_FOUND', error }
    case 'ERR_REFUSED': case 'ERR_NO_SPACE': return { status: 'REFUSED', error }
    case 'ERR_NOT_MEMBER': return { status: 'NOT_MEMBER', error }
    case 'ERR_INVALID_INVITE': return { status: 'INVALID_INVITE', error }
    case 'ERR_UNTRUSTED_PEER': return { status: 'UNTRUSTED', error }
    case 'ERR_PROTOCOL': case 'ERR_FORMAT': case 'ERR_INVALID_ARGUMENT': case 'ERR_UNAUTHENTICATED': return { status: 'INVALID', error }
    default: return { status: 'INTERNAL', error }
  }
}
