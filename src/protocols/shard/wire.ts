/**
 * The shard protocol's messages: request headers as sent, their validation into typed requests
 * (everything a server checks before it touches a store), the signed delete message, and the binary
 * list page encoding. Pure functions, no I/O. docs/protocols/shard.md is the spec.
 */
import { ProtocolError } from '../../errors.js'
import { asPackId, ID_BYTES } from '../../ids.js'
import type { PackId } from '../../ids.js'
import { compareBytes, concatBytes, equalBytes, fromHex, toHex, utf8Encode } from '../../util/bytes.js'
import type { ShareRef } from '../../store/index.js'
import {
  DELETE_DOMAIN, DeleteKind, LIST_RECORD_ENTRY_BYTES, LIST_SHARE_ENTRY_BYTES, MAX_LIST_LIMIT, REPLACE_DOMAIN
} from './constants.js'

export const SHARE_OPS = ['put', 'putPart', 'get', 'has', 'size', 'delete', 'list'] as const
export const RECORD_OPS = ['putRecord', 'getRecord', 'hasRecord', 'deleteRecord', 'listRecords'] as const
export type ShardOp = typeof SHARE_OPS[number] | typeof RECORD_OPS[number] | 'usage'
const OPS: ReadonlySet<string> = new Set<string>([...SHARE_OPS, ...RECORD_OPS, 'usage'])

/** A request header exactly as it travels (JSON). Absent optional fields are left out, never null. */
export interface ShardRequestHeader {
  op: ShardOp
  pack?: string
  index?: number
  offset?: number
  length?: number
  /** putPart: the size of the whole share */
  total?: number
  id?: string
  /** delete, deleteRecord; put, putPart, putRecord when they replace held bytes (shard.md §7.3) */
  ts?: number
  sig?: string
  cursor?: string
  limit?: number
}

/**
 * A signed delete, or a signed replace (a put over held bytes): milliseconds since the Unix epoch
 * and a base64 Ed25519 signature by the owner's user key.
 */
export interface DeleteAuth { ts: number, sig: string }

/**
 * A part's bytes as they came off the stream: the transport's buffers in order, not joined into one
 * (a persister writes them to the share's file with one gathered write). `byteLength` is their sum.
 */
export interface PartBytes { readonly chunks: readonly Uint8Array[], readonly byteLength: number }

export function partBytesOf (body: Uint8Array | readonly Uint8Array[]): PartBytes {
  const chunks = body instanceof Uint8Array ? [body] : body
  let byteLength = 0
  for (const c of chunks) byteLength += c.byteLength
  return { chunks, byteLength }
}

/**
 * A request's body: one buffer, or a message as framing.ts reads it off a stream, whose `body` joins
 * its `bodyChunks` when first asked.
 */
export type RequestBody = Uint8Array | { readonly body: Uint8Array, readonly bodyChunks?: readonly Uint8Array[] }

/** True when `bytes` holds exactly the bytes of `pieces`. */
export function equalsPartBytes (bytes: Uint8Array, pieces: PartBytes): boolean {
  if (bytes.byteLength !== pieces.byteLength) return false
  let off = 0
  for (const c of pieces.chunks) {
    if (!equalBytes(bytes.subarray(off, off + c.byteLength), c)) return false
    off += c.byteLength
  }
  return true
}

/** `pieces` without their first `skip` bytes (views, no copy). */
export function dropFront (pieces: PartBytes, skip: number): PartBytes {
  if (skip <= 0) return pieces
  const chunks: Uint8Array[] = []
  let left = skip
  for (const c of pieces.chunks) {
    if (left >= c.byteLength) { left -= c.byteLength; continue }
    chunks.push(left > 0 ? c.subarray(left) : c)
    left = 0
  }
  return { chunks, byteLength: Math.max(0, pieces.byteLength - skip) }
}

/** A request after validation. */
export type ShardRequest =
  | { op: 'put', ref: ShareRef, data: Uint8Array, auth?: DeleteAuth }
  | { op: 'putPart', ref: ShareRef, offset: number, total: number, data: PartBytes, auth?: DeleteAuth }
  | { op: 'get', ref: ShareRef, range?: { offset: number, length: number } }
  | { op: 'has' | 'size', ref: ShareRef }
  | { op: 'delete', ref: ShareRef, auth: DeleteAuth }
  | { op: 'list' | 'listRecords', after?: Uint8Array, limit: number }
  | { op: 'putRecord', id: Uint8Array, data: Uint8Array, auth?: DeleteAuth }
  | { op: 'getRecord' | 'hasRecord', id: Uint8Array }
  | { op: 'deleteRecord', id: Uint8Array, auth: DeleteAuth }
  | { op: 'usage' }

const HEX_ID_RE = /^[0-9a-f]{64}$/
const SHARE_CURSOR_RE = /^([0-9a-f]{64})\.(0|[1-9][0-9]{0,2})$/
/** 64 bytes in standard base64 with padding. */
const SIG_RE = /^[A-Za-z0-9+/]{86}==$/

function invalid (message: string): ProtocolError {
  return new ProtocolError(message)
}

function field (h: Record<string, unknown>, name: string): unknown {
  return Object.prototype.hasOwnProperty.call(h, name) ? h[name] : undefined
}

function hexId (h: Record<string, unknown>, name: string): Uint8Array {
  const v = field(h, name)
  if (typeof v !== 'string' || !HEX_ID_RE.test(v)) throw invalid(`"${name}" must be 64 lowercase hex characters`)
  return fromHex(v)
}

function nonNegative (h: Record<string, unknown>, name: string): number {
  const v = field(h, name)
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw invalid(`"${name}" must be a non-negative integer`)
  return v
}

function shareRef (h: Record<string, unknown>): ShareRef {
  const pack = asPackId(hexId(h, 'pack'))
  const index = field(h, 'index')
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 255) throw invalid('"index" must be an integer 0..255')
  return { pack, index }
}

function deleteAuth (h: Record<string, unknown>): DeleteAuth {
  const ts = nonNegative(h, 'ts')
  const sig = field(h, 'sig')
  if (typeof sig !== 'string' || !SIG_RE.test(sig)) throw invalid('"sig" must be a 64-byte signature in padded base64')
  return { ts, sig }
}

/** A put's optional replace signature: absent when neither `ts` nor `sig` is there, else both must be valid. */
function replaceAuth (h: Record<string, unknown>): { auth: DeleteAuth } | Record<string, never> {
  if (field(h, 'ts') === undefined && field(h, 'sig') === undefined) return {}
  return { auth: deleteAuth(h) }
}

function pageLimit (h: Record<string, unknown>): number {
  if (field(h, 'limit') === undefined) return MAX_LIST_LIMIT
  const limit = nonNegative(h, 'limit')
  if (limit < 1) throw invalid('"limit" must be at least 1')
  return Math.min(limit, MAX_LIST_LIMIT)
}

function cursor (h: Record<string, unknown>, shares: boolean): Uint8Array | undefined {
  const v = field(h, 'cursor')
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw invalid('"cursor" must be a string')
  if (!shares) {
    if (!HEX_ID_RE.test(v)) throw invalid('a listRecords "cursor" must be a record id in 64 lowercase hex')
    return fromHex(v)
  }
  const m = SHARE_CURSOR_RE.exec(v)
  if (m === null || Number(m[2]) > 255) throw invalid('a list "cursor" must be a share name <64 hex>.<0..255>')
  return shareKey({ pack: asPackId(fromHex(m[1] as string)), index: Number(m[2]) })
}

function noBody (op: string, body: Uint8Array): void {
  if (body.byteLength !== 0) throw invalid(`${op} carries no body, got ${body.byteLength} bytes`)
}

/**
 * Validates a request header and body. Throws ProtocolError (answered as INVALID) for an unknown
 * op, a missing or mistyped field, or a body where none belongs. Unknown fields are ignored. A
 * putPart keeps the body in the pieces it arrived in (PartBytes); the other ops take it whole.
 */
export function parseRequest (header: unknown, received: RequestBody): ShardRequest {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw invalid('the header must be a JSON object')
  const h = header as Record<string, unknown>
  const raw = field(h, 'op')
  if (typeof raw !== 'string' || !OPS.has(raw)) throw invalid(`unknown op ${JSON.stringify(raw)?.slice(0, 40) ?? 'undefined'}`)
  const op = raw as ShardOp
  if (op === 'putPart') {
    const pieces = partBytesOf(received instanceof Uint8Array ? received : received.bodyChunks ?? received.body)
    const ref = shareRef(h)
    const offset = nonNegative(h, 'offset')
    const total = nonNegative(h, 'total')
    if (pieces.byteLength === 0 || offset + pieces.byteLength > total) throw invalid('a putPart body must be non-empty and end within "total"')
    return { op, ref, offset, total, data: pieces, ...replaceAuth(h) }
  }
  const body = received instanceof Uint8Array ? received : received.body
  switch (op) {
    case 'put': return { op: 'put', ref: shareRef(h), data: body, ...replaceAuth(h) }
    case 'get': {
      const ref = shareRef(h)
      noBody(op, body)
      const hasOffset = field(h, 'offset') !== undefined
      if (hasOffset !== (field(h, 'length') !== undefined)) throw invalid('"offset" and "length" come together or not at all')
      if (!hasOffset) return { op: 'get', ref }
      return { op: 'get', ref, range: { offset: nonNegative(h, 'offset'), length: nonNegative(h, 'length') } }
    }
    case 'has': case 'size': { const ref = shareRef(h); noBody(op, body); return { op, ref } }
    case 'delete': { const ref = shareRef(h); const auth = deleteAuth(h); noBody(op, body); return { op, ref, auth } }
    case 'list': case 'listRecords': {
      const after = cursor(h, op === 'list')
      const limit = pageLimit(h)
      noBody(op, body)
      return after === undefined ? { op, limit } : { op, after, limit }
    }
    case 'putRecord': return { op, id: hexId(h, 'id'), data: body, ...replaceAuth(h) }
    case 'getRecord': case 'hasRecord': { const id = hexId(h, 'id'); noBody(op, body); return { op, id } }
    case 'deleteRecord': { const id = hexId(h, 'id'); const auth = deleteAuth(h); noBody(op, body); return { op, id, auth } }
    case 'usage': noBody(op, body); return { op }
  }
}

/** The header fields that name a share. */
export function refFields (ref: ShareRef): { pack: string, index: number } {
  return { pack: toHex(ref.pack), index: ref.index }
}

/** The list sort key and page entry of a share: pack id (32) || index (1). Byte order = (pack, index) order. */
export function shareKey (ref: ShareRef): Uint8Array {
  const key = new Uint8Array(LIST_SHARE_ENTRY_BYTES)
  key.set(ref.pack, 0)
  key[ID_BYTES] = ref.index
  return key
}

/** The cursor naming a share: `<64 hex pack id>.<decimal index>`. */
export function shareCursor (ref: ShareRef): string {
  return `${toHex(ref.pack)}.${ref.index}`
}

/**
 * Splits a list page body into entries of `entryBytes`, checking that they are strictly increasing
 * and all after `after`, so a client always makes progress and never sees an entry twice.
 */
export function decodePage (body: Uint8Array, entryBytes: number, after: Uint8Array | undefined): Uint8Array[] {
  if (body.byteLength % entryBytes !== 0) throw new ProtocolError(`a list page of ${body.byteLength} bytes is not a whole number of ${entryBytes}-byte entries`)
  const out: Uint8Array[] = []
  let prev = after
  for (let off = 0; off < body.byteLength; off += entryBytes) {
    const entry = body.slice(off, off + entryBytes)
    if (prev !== undefined && compareBytes(entry, prev) <= 0) throw new ProtocolError('list page entries are not strictly increasing after the cursor')
    out.push(entry)
    prev = entry
  }
  return out
}

export function entryToShareRef (entry: Uint8Array): ShareRef {
  return { pack: asPackId(entry.slice(0, ID_BYTES)) as PackId, index: entry[ID_BYTES] as number }
}

export { LIST_RECORD_ENTRY_BYTES, LIST_SHARE_ENTRY_BYTES }

/** What a delete names: a share or a record, the owner's user key, the persister's peer id. */
export interface DeleteTarget {
  kind: 'share' | 'record'
  /** the owner's Ed25519 user public key (32 bytes) */
  owner: Uint8Array
  /** the persister's peer id as multihash bytes (`peerId.toMultihash().bytes`) */
  persister: Uint8Array
  /** pack id or record id (32 bytes) */
  id: Uint8Array
  /** share index, for kind 'share' only */
  index?: number
}

/**
 * The exact bytes an owner signs to delete:
 * "p2pbak delete v1\0" || kind(1) || owner(32) || len(1) || persister(len) || id(32) || [index(1)] || ts(u64 LE, ms).
 */
export function deleteMessage (t: DeleteTarget, ts: number): Uint8Array {
  return signedMessage(DELETE_DOMAIN, t, new Uint8Array(0), ts)
}

/**
 * The exact bytes an owner signs to replace a held share or record with other bytes (shard.md §7.3):
 * "p2pbak replace v1\0" || kind(1) || owner(32) || len(1) || persister(len) || id(32) || [index(1)] ||
 * hash(32) || ts(u64 LE, ms), where hash is BLAKE3 of the whole new share or record.
 */
export function replaceMessage (t: DeleteTarget, dataHash: Uint8Array, ts: number): Uint8Array {
  if (dataHash.byteLength !== 32) throw new RangeError('a replace names the 32-byte BLAKE3 hash of the new bytes')
  return signedMessage(REPLACE_DOMAIN, t, dataHash, ts)
}

function signedMessage (domain: string, t: DeleteTarget, dataHash: Uint8Array, ts: number): Uint8Array {
  if (t.owner.byteLength !== 32 || t.id.byteLength !== ID_BYTES) throw new RangeError('a delete names a 32-byte owner key and a 32-byte id')
  if (t.persister.byteLength < 1 || t.persister.byteLength > 255) throw new RangeError('a persister peer id is 1..255 bytes')
  if (!Number.isSafeInteger(ts) || ts < 0) throw new RangeError('a delete timestamp is a non-negative integer')
  const isShare = t.kind === 'share'
  if (isShare && (t.index === undefined || !Number.isInteger(t.index) || t.index < 0 || t.index > 255)) throw new RangeError('a share delete needs an index 0..255')
  const time = new Uint8Array(8)
  new DataView(time.buffer).setBigUint64(0, BigInt(ts), true)
  return concatBytes([
    utf8Encode(domain),
    Uint8Array.of(isShare ? DeleteKind.share : DeleteKind.record),
    t.owner,
    Uint8Array.of(t.persister.byteLength),
    t.persister,
    t.id,
    isShare ? Uint8Array.of(t.index as number) : new Uint8Array(0),
    dataHash,
    time
  ])
}

/** The 32-byte user key named by a user id (64 lowercase hex); RangeError otherwise. */
export function userKeyOf (userId: string): Uint8Array {
  if (!HEX_ID_RE.test(userId)) throw new RangeError('a user id is 64 lowercase hex characters (the user\'s Ed25519 public key)')
  return fromHex(userId)
}

/** A response header's `error` text, bounded so it never threatens the header limit. */
export function shortError (text: string): string {
  return text.length > 600 ? `${text.slice(0, 597)}...` : text
}
