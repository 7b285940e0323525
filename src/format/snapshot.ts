/**
 * Snapshot record (version 1) and its signed envelope.
 *
 *   record   = version u8 (=1) || flags uvarint || time svarint || endTime svarint || host str || user str
 *              || userId(32) || pathCount uvarint || path str{pathCount} || tagCount uvarint || tag str{tagCount}
 *              || tree(32) || filesNew || filesChanged || filesUnchanged || dirs || bytesRead || bytesAdded || errors
 *              || program str || [parent(32) if flag bit 0] || [extension block if flag bit 1]
 *   str      = len uvarint || UTF-8 bytes          (summary numbers are uvarints)
 *   envelope = magic "P2PBSNAP"(8) || version u8 (=1) || userId(32) || sealedLen uvarint || sealed || signature(64)
 *   signed   = "p2pbak snapshot v1" || 0x00 || userId(32) || sealed
 *   envelope v2 (a write-only machine's, signed by its certified device key, not the user key):
 *            = magic || version u8 (=2) || userId(32) || certLen uvarint || cert || devicePublicKey(32)
 *              || sealedLen uvarint || sealed || signature(64)
 *   signed v2 = "p2pbak snapshot v2" || 0x00 || userId(32) || certLen uvarint || cert || devicePublicKey(32) || sealedLen uvarint || sealed
 *
 * The record is sealed (encrypted) and signed elsewhere; this module only lays out bytes.
 * docs/format/trees-and-snapshots.md is the full spec. Pure: no I/O, no crypto.
 */
import { FormatError } from '../errors.js'
import { asSnapshotId, asTreeId, ID_BYTES } from '../ids.js'
import type { SnapshotId, TreeId } from '../ids.js'
import { ByteReader, ByteWriter, concatBytes, equalBytes, fromHex, toHex, utf8Encode } from '../util/bytes.js'

export interface SnapshotSummary {
  filesNew: number
  filesChanged: number
  filesUnchanged: number
  dirs: number
  bytesRead: number
  bytesAdded: number
  errors: number
}

export interface SnapshotRecord {
  version: 1
  /** ns since epoch, when the backup started */
  time: bigint
  endTime: bigint
  host: string
  /** OS user name that ran the backup */
  user: string
  /** p2pbak user id: lowercase hex of the 32-byte Ed25519 public key */
  userId: string
  /** absolute paths as given (UTF-8 here; raw names live in trees) */
  paths: string[]
  tags: string[]
  /** root tree: a synthetic directory whose children are the backed-up paths' top entries */
  tree: TreeId
  parent?: SnapshotId
  summary: SnapshotSummary
  /** e.g. 'p2pbak 0.1.0' */
  program: string
}

export interface SnapshotEnvelope {
  /** 32-byte Ed25519 public key of the owner */
  userId: Uint8Array
  /**
   * Envelope version 2 only: the write-only machine that signed it. `cert` is the UTF-8 canonical JSON
   * of its device certificate (docs/format/group.md §4), `publicKey` its 32-byte Ed25519 device key.
   */
  device?: { cert: Uint8Array, publicKey: Uint8Array }
  /** the encrypted record, opaque here */
  sealed: Uint8Array
  /** 64-byte Ed25519 signature over snapshotSigningBytes(userId, sealed) (version 1) or deviceSnapshotSigningBytes (version 2) */
  signature: Uint8Array
}

export const SNAPSHOT_RECORD_VERSION = 1
export const SNAPSHOT_ENVELOPE_VERSION = 1
export const SNAPSHOT_ENVELOPE_MAGIC = utf8Encode('P2PBSNAP')
export const SNAPSHOT_SIGNING_DOMAIN = utf8Encode('p2pbak snapshot v1')
/** Envelope version 2: a record signed by a write-only machine's device key. */
export const SNAPSHOT_DEVICE_ENVELOPE_VERSION = 2
export const SNAPSHOT_DEVICE_SIGNING_DOMAIN = utf8Encode('p2pbak snapshot v2')
/** Largest device certificate an envelope may carry (a certificate is about 300 bytes). */
export const MAX_ENVELOPE_CERT_BYTES = 4096
export const USER_ID_BYTES = 32
export const SIGNATURE_BYTES = 64
/** Largest sealed record an envelope may carry. */
export const MAX_SEALED_SNAPSHOT_BYTES = 16 * 1024 * 1024
/** Largest record plaintext: leaves 64 KiB of the sealed limit for the encryption's overhead. */
export const MAX_SNAPSHOT_RECORD_BYTES = MAX_SEALED_SNAPSHOT_BYTES - 65536
/** Longest string field (host, user, each path and tag, program), in UTF-8 bytes. */
export const MAX_SNAPSHOT_TEXT_BYTES = 65536
/** Most paths, and most tags, in one record. */
export const MAX_SNAPSHOT_LIST_ITEMS = 100000

export const RECORD_FLAG_PARENT = 1 << 0
export const RECORD_FLAG_EXTENSIONS = 1 << 1
const KNOWN_RECORD_FLAGS = (1 << 2) - 1
const I64_MIN = -(1n << 63n)
const I64_MAX = (1n << 63n) - 1n
/** Strict UTF-8 that keeps a leading U+FEFF (util/bytes utf8Decode strips it, which would break round trips). */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
function readText (r: ByteReader, max: number): string {
  const b = r.bytes(max)
  try { return strictUtf8.decode(b) } catch { throw new FormatError('snapshot record: invalid UTF-8 in a text field') }
}

const SUMMARY_FIELDS = ['filesNew', 'filesChanged', 'filesUnchanged', 'dirs', 'bytesRead', 'bytesAdded', 'errors'] as const

function fail (msg: string): never { throw new FormatError(`snapshot record: ${msg}`) }

function checkText (v: unknown, field: string): asserts v is string {
  if (typeof v !== 'string') fail(`${field} must be a string`)
  if (/\p{Cs}/u.test(v)) fail(`${field} holds a lone surrogate (not encodable as UTF-8)`)
  if (Buffer.byteLength(v, 'utf8') > MAX_SNAPSHOT_TEXT_BYTES) fail(`${field} is longer than ${MAX_SNAPSHOT_TEXT_BYTES} UTF-8 bytes`)
}

function checkList (v: unknown, field: string): asserts v is string[] {
  if (!Array.isArray(v) || v.length > MAX_SNAPSHOT_LIST_ITEMS) fail(`${field} must be an array of at most ${MAX_SNAPSHOT_LIST_ITEMS} strings`)
  v.forEach((s: unknown, i) => checkText(s, `${field}[${i}]`))
}

function checkTime (v: unknown, field: string): asserts v is bigint {
  if (typeof v !== 'bigint' || v < I64_MIN || v > I64_MAX) fail(`${field} must be a bigint in ${I64_MIN}..${I64_MAX}`)
}

function checkId (v: unknown, field: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength !== ID_BYTES) fail(`${field} must be ${ID_BYTES} bytes`)
}

/** Every rule a record must follow, for the encoder and the decoder alike. */
function validateRecord (r: SnapshotRecord): void {
  if (r === null || typeof r !== 'object') fail('must be an object')
  if (r.version !== SNAPSHOT_RECORD_VERSION) fail(`version must be ${SNAPSHOT_RECORD_VERSION}`)
  checkTime(r.time, 'time')
  checkTime(r.endTime, 'endTime')
  checkText(r.host, 'host')
  checkText(r.user, 'user')
  if (typeof r.userId !== 'string' || !/^[0-9a-f]{64}$/.test(r.userId)) fail('userId must be 64 lowercase hex characters')
  checkList(r.paths, 'paths')
  checkList(r.tags, 'tags')
  checkId(r.tree, 'tree')
  if (r.parent !== undefined) checkId(r.parent, 'parent')
  if (r.summary === null || typeof r.summary !== 'object') fail('summary must be an object')
  for (const k of SUMMARY_FIELDS) {
    const v = r.summary[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(`summary.${k} must be a non-negative safe integer`)
  }
  checkText(r.program, 'program')
}

/** Deterministic: equal records give equal bytes (paths and tags keep their order). */
export function encodeSnapshotRecord (r: SnapshotRecord): Uint8Array {
  validateRecord(r)
  const w = new ByteWriter(512)
  w.u8(SNAPSHOT_RECORD_VERSION).uvarint(r.parent !== undefined ? RECORD_FLAG_PARENT : 0)
  w.svarint(r.time).svarint(r.endTime).string(r.host).string(r.user).raw(fromHex(r.userId))
  w.uvarint(r.paths.length)
  for (const p of r.paths) w.string(p)
  w.uvarint(r.tags.length)
  for (const t of r.tags) w.string(t)
  w.raw(r.tree)
  for (const k of SUMMARY_FIELDS) w.uvarint(r.summary[k])
  w.string(r.program)
  if (r.parent !== undefined) w.raw(r.parent)
  if (w.length > MAX_SNAPSHOT_RECORD_BYTES) fail(`encodes to ${w.length} bytes, more than ${MAX_SNAPSHOT_RECORD_BYTES}`)
  return w.finish()
}

function readList (r: ByteReader): string[] {
  const count = r.uvarint(Math.min(MAX_SNAPSHOT_LIST_ITEMS, r.remaining))
  const out: string[] = []
  for (let i = 0; i < count; i++) out.push(readText(r, MAX_SNAPSHOT_TEXT_BYTES))
  return out
}

/** Extension block (flag bit 1): count >= 1 of (tag uvarint, value bytes), tags strictly ascending, odd = critical. */
function skipExtensions (r: ByteReader): void {
  const count = r.uvarint(Math.floor(r.remaining / 2))
  if (count === 0) fail('an extension block must not be empty')
  let prev = -1
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint()
    if (tag <= prev) fail(`extension tag ${tag} is duplicated or out of order`)
    if (tag % 2 === 1) fail(`extension ${tag} is critical and not supported by this version; upgrade p2pbak`)
    r.bytes()
    prev = tag
  }
}

/** Strict: FormatError on anything malformed (truncated, unknown version or flags, out-of-range field, trailing bytes). */
export function decodeSnapshotRecord (bytes: Uint8Array): SnapshotRecord {
  if (!(bytes instanceof Uint8Array)) fail('must be a byte array')
  if (bytes.byteLength > MAX_SNAPSHOT_RECORD_BYTES) fail(`${bytes.byteLength} bytes is more than ${MAX_SNAPSHOT_RECORD_BYTES}`)
  const r = new ByteReader(bytes, 'snapshot record')
  const version = r.u8()
  if (version !== SNAPSHOT_RECORD_VERSION) fail(`version ${version} is not supported (this p2pbak reads version ${SNAPSHOT_RECORD_VERSION}); upgrade p2pbak`)
  const flags = r.uvarintBig()
  if (flags > BigInt(KNOWN_RECORD_FLAGS)) fail(`reserved flag bits set (0x${flags.toString(16)})`)
  const time = r.svarint()
  const endTime = r.svarint()
  const host = readText(r, MAX_SNAPSHOT_TEXT_BYTES)
  const user = readText(r, MAX_SNAPSHOT_TEXT_BYTES)
  const userId = toHex(r.raw(USER_ID_BYTES))
  const paths = readList(r)
  const tags = readList(r)
  const tree = asTreeId(r.raw(ID_BYTES).slice())
  const summary: SnapshotSummary = {
    filesNew: r.uvarint(),
    filesChanged: r.uvarint(),
    filesUnchanged: r.uvarint(),
    dirs: r.uvarint(),
    bytesRead: r.uvarint(),
    bytesAdded: r.uvarint(),
    errors: r.uvarint()
  }
  const program = readText(r, MAX_SNAPSHOT_TEXT_BYTES)
  const record: SnapshotRecord = { version: SNAPSHOT_RECORD_VERSION, time, endTime, host, user, userId, paths, tags, tree, summary, program }
  if ((flags & BigInt(RECORD_FLAG_PARENT)) !== 0n) record.parent = asSnapshotId(r.raw(ID_BYTES).slice())
  if ((flags & BigInt(RECORD_FLAG_EXTENSIONS)) !== 0n) skipExtensions(r)
  r.end()
  validateRecord(record)
  return record
}

function checkEnvelopeParts (userId: unknown, sealed: unknown): void {
  if (!(userId instanceof Uint8Array) || userId.byteLength !== USER_ID_BYTES) throw new FormatError(`snapshot envelope: userId must be ${USER_ID_BYTES} bytes`)
  if (!(sealed instanceof Uint8Array) || sealed.byteLength < 1 || sealed.byteLength > MAX_SEALED_SNAPSHOT_BYTES) {
    throw new FormatError(`snapshot envelope: sealed record must be 1..${MAX_SEALED_SNAPSHOT_BYTES} bytes`)
  }
}

/** Deterministic, so SnapshotId = BLAKE3(envelope bytes) is well defined. */
export function encodeSnapshotEnvelope (e: SnapshotEnvelope): Uint8Array {
  if (e === null || typeof e !== 'object') throw new FormatError('snapshot envelope must be an object')
  checkEnvelopeParts(e.userId, e.sealed)
  if (!(e.signature instanceof Uint8Array) || e.signature.byteLength !== SIGNATURE_BYTES) throw new FormatError(`snapshot envelope: signature must be ${SIGNATURE_BYTES} bytes`)
  if (e.device !== undefined) {
    const body = deviceEnvelopeBody(e.userId, e.device, e.sealed)
    const w = new ByteWriter(SNAPSHOT_ENVELOPE_MAGIC.byteLength + 1 + body.byteLength + SIGNATURE_BYTES)
    w.raw(SNAPSHOT_ENVELOPE_MAGIC).u8(SNAPSHOT_DEVICE_ENVELOPE_VERSION).raw(body).raw(e.signature)
    return w.finish()
  }
  const w = new ByteWriter(SNAPSHOT_ENVELOPE_MAGIC.byteLength + 1 + USER_ID_BYTES + 4 + e.sealed.byteLength + SIGNATURE_BYTES)
  w.raw(SNAPSHOT_ENVELOPE_MAGIC).u8(SNAPSHOT_ENVELOPE_VERSION).raw(e.userId).bytes(e.sealed).raw(e.signature)
  return w.finish()
}

function checkDevice (device: unknown): asserts device is { cert: Uint8Array, publicKey: Uint8Array } {
  const d = device as { cert?: unknown, publicKey?: unknown } | null
  if (d === null || typeof d !== 'object') throw new FormatError('snapshot envelope: device must be an object')
  if (!(d.cert instanceof Uint8Array) || d.cert.byteLength < 1 || d.cert.byteLength > MAX_ENVELOPE_CERT_BYTES) throw new FormatError(`snapshot envelope: the device certificate must be 1..${MAX_ENVELOPE_CERT_BYTES} bytes`)
  if (!(d.publicKey instanceof Uint8Array) || d.publicKey.byteLength !== USER_ID_BYTES) throw new FormatError(`snapshot envelope: the device key must be ${USER_ID_BYTES} bytes`)
}

/** userId(32) || certLen uvarint || cert || devicePublicKey(32) || sealedLen uvarint || sealed: what a v2 envelope holds between its version and its signature. */
function deviceEnvelopeBody (userId: Uint8Array, device: { cert: Uint8Array, publicKey: Uint8Array }, sealed: Uint8Array): Uint8Array {
  checkEnvelopeParts(userId, sealed)
  checkDevice(device)
  const w = new ByteWriter(USER_ID_BYTES + 8 + device.cert.byteLength + USER_ID_BYTES + sealed.byteLength)
  w.raw(userId).bytes(device.cert).raw(device.publicKey).bytes(sealed)
  return w.finish()
}

/** The bytes a write-only machine's device key signs (envelope version 2): "p2pbak snapshot v2" || 0x00 || the envelope's body. */
export function deviceSnapshotSigningBytes (userId: Uint8Array, device: { cert: Uint8Array, publicKey: Uint8Array }, sealed: Uint8Array): Uint8Array {
  return concatBytes([SNAPSHOT_DEVICE_SIGNING_DOMAIN, new Uint8Array(1), deviceEnvelopeBody(userId, device, sealed)])
}

/** Strict: FormatError on bad magic, unknown version, out-of-range lengths, truncation or trailing bytes. */
export function decodeSnapshotEnvelope (bytes: Uint8Array): SnapshotEnvelope {
  if (!(bytes instanceof Uint8Array)) throw new FormatError('snapshot envelope must be a byte array')
  const r = new ByteReader(bytes, 'snapshot envelope')
  if (!equalBytes(r.raw(SNAPSHOT_ENVELOPE_MAGIC.byteLength), SNAPSHOT_ENVELOPE_MAGIC)) throw new FormatError('not a p2pbak snapshot envelope (bad magic)')
  const version = r.u8()
  if (version !== SNAPSHOT_ENVELOPE_VERSION && version !== SNAPSHOT_DEVICE_ENVELOPE_VERSION) throw new FormatError(`snapshot envelope version ${version} is not supported (this p2pbak reads versions 1 and 2); upgrade p2pbak`)
  const userId = r.raw(USER_ID_BYTES).slice()
  let device: SnapshotEnvelope['device']
  if (version === SNAPSHOT_DEVICE_ENVELOPE_VERSION) {
    const cert = r.bytes(Math.min(MAX_ENVELOPE_CERT_BYTES, r.remaining)).slice()
    if (cert.byteLength === 0) throw new FormatError('snapshot envelope: the device certificate is empty')
    device = { cert, publicKey: r.raw(USER_ID_BYTES).slice() }
  }
  const sealed = r.bytes(Math.min(MAX_SEALED_SNAPSHOT_BYTES, r.remaining)).slice()
  if (sealed.byteLength === 0) throw new FormatError('snapshot envelope: the sealed record is empty')
  const signature = r.raw(SIGNATURE_BYTES).slice()
  r.end()
  return device !== undefined ? { userId, device, sealed, signature } : { userId, sealed, signature }
}

/** The exact bytes the owner's Ed25519 signature covers: "p2pbak snapshot v1" || 0x00 || userId(32) || sealed. */
export function snapshotSigningBytes (userId: Uint8Array, sealed: Uint8Array): Uint8Array {
  checkEnvelopeParts(userId, sealed)
  return concatBytes([SNAPSHOT_SIGNING_DOMAIN, new Uint8Array(1), userId, sealed])
}
