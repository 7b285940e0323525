/**
 * Canonical JSON (docs/format/group.md §3) and the field checks shared by device certificates,
 * rosters and invites. Canonical JSON has exactly one encoding per value, so signatures are over
 * bytes any implementation can rebuild, and decoders can demand the canonical form.
 */
import { FormatError } from '../errors.js'
import { utf8Encode } from '../util/bytes.js'
import { MAX_NAME_BYTES, MAX_PEER_ID_CHARS } from './constants.js'
import { shown } from '../util/text.js'

export function isPlainObject (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/**
 * Values: objects (keys sorted by code unit, which for our ASCII keys is byte order), arrays,
 * strings, non-negative safe integers and booleans. No whitespace. Strings escape only `"` and `\`
 * (the text checks below forbid every character JSON would otherwise escape).
 */
export function canonicalJson (value: unknown): string {
  if (typeof value === 'string') {
    if (!isCanonicalText(value)) throw new FormatError('text contains a control character or a lone surrogate')
    return JSON.stringify(value)
  }
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) throw new FormatError(`numbers must be non-negative safe integers, got ${value}`)
    return String(value)
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false'
  if (Array.isArray(value)) return '[' + value.map(canonicalJson).join(',') + ']'
  if (isPlainObject(value)) {
    const keys = Object.keys(value).filter(k => value[k] !== undefined).sort()
    return '{' + keys.map(k => JSON.stringify(k) + ':' + canonicalJson(value[k])).join(',') + '}'
  }
  throw new FormatError(`a ${value === null ? 'null' : typeof value} cannot be encoded`)
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** Well-formed Unicode without control characters (Unicode category Cc). */
export function isCanonicalText (s: string): boolean {
  return !CONTROL.test(s) && !LONE_SURROGATE.test(s)
}

/** Parses JSON text and demands it be the canonical encoding of what it parsed to. */
export function parseCanonicalJson (text: string, what: string): unknown {
  let value: unknown
  try { value = JSON.parse(text) } catch { throw new FormatError(`${what} is not JSON`) }
  let again: string
  try { again = canonicalJson(value) } catch (err: unknown) {
    throw new FormatError(`${what}: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (again !== text) throw new FormatError(`${what} is not in canonical form (sorted keys, no whitespace, integers only)`)
  return value
}

// ---- field checks: each returns the value typed, or throws FormatError naming the field ----

export function expectObject (v: unknown, what: string, keys: readonly string[], optional: readonly string[] = []): Record<string, unknown> {
  if (!isPlainObject(v)) throw new FormatError(`${what} must be an object`)
  for (const k of Object.keys(v)) {
    if (!keys.includes(k) && !optional.includes(k)) throw new FormatError(`${what} has an unknown field "${k}"`)
  }
  for (const k of keys) if (!(k in v)) throw new FormatError(`${what} lacks the field "${k}"`)
  return v
}

export function expectArray (v: unknown, what: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw new FormatError(`${what} must be an array`)
  if (v.length > max) throw new FormatError(`${what} has ${v.length} entries, more than ${max}`)
  return v
}

export function expectVersion1 (v: unknown, what: string): 1 {
  if (v !== 1) throw new FormatError(`${what} has version ${shown(v)}; this program reads version 1`)
  return 1
}

export function expectUint (v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new FormatError(`${what} must be an integer in [${min}, ${max}], got ${shown(v)}`)
  }
  return v
}

export function expectBool (v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new FormatError(`${what} must be true or false`)
  return v
}

export function expectName (v: unknown, what: string): string {
  if (typeof v !== 'string') throw new FormatError(`${what} must be a string`)
  const n = utf8Encode(v).byteLength
  if (n < 1 || n > MAX_NAME_BYTES) throw new FormatError(`${what} must be 1 to ${MAX_NAME_BYTES} bytes of UTF-8, got ${n}`)
  if (!isCanonicalText(v)) throw new FormatError(`${what} contains a control character or a lone surrogate`)
  return v
}

const USER_ID = /^[0-9a-f]{64}$/
export function expectUserId (v: unknown, what: string): string {
  if (typeof v !== 'string' || !USER_ID.test(v)) throw new FormatError(`${what} must be 64 lowercase hex characters (a user id)`)
  return v
}

const GROUP_ID = /^[0-9a-f]{32}$/
export function expectGroupId (v: unknown, what: string): string {
  if (typeof v !== 'string' || !GROUP_ID.test(v)) throw new FormatError(`${what} must be 32 lowercase hex characters (a group id)`)
  return v
}

const BASE58 = new RegExp(`^[1-9A-HJ-NP-Za-km-z]{1,${MAX_PEER_ID_CHARS}}$`)
export function isPeerIdString (v: unknown): v is string {
  return typeof v === 'string' && BASE58.test(v)
}
export function expectPeerId (v: unknown, what: string): string {
  if (!isPeerIdString(v)) throw new FormatError(`${what} must be a base58btc peer id of at most ${MAX_PEER_ID_CHARS} characters`)
  return v
}

/** Standard base64 with padding, canonical (decodes and re-encodes to itself), of exactly `bytes` bytes. */
export function expectBase64 (v: unknown, what: string, bytes: number): string {
  if (typeof v !== 'string' || decodeBase64(v)?.byteLength !== bytes) throw new FormatError(`${what} must be base64 of ${bytes} bytes`)
  return v
}

export function encodeBase64 (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64')
}
/** Strict: undefined unless `s` is the canonical standard base64 of some bytes. */
export function decodeBase64 (s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return undefined
  const b = Buffer.from(s, 'base64')
  return b.toString('base64') === s ? new Uint8Array(b) : undefined
}

export function encodeBase64Url (b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')
}
/** Strict: undefined unless `s` is the canonical unpadded base64url of some bytes. */
export function decodeBase64Url (s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s) || s.length % 4 === 1) return undefined
  const b = Buffer.from(s, 'base64url')
  return b.toString('base64url') === s ? new Uint8Array(b) : undefined
}

/** Compares in time that depends only on the lengths. */
export function constantTimeEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  let diff = 0
  for (let i = 0; i < a.byteLength; i++) diff |= (a[i] as number) ^ (b[i] as number)
  return diff === 0
}
