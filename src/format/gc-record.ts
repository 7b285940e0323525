/**
 * The condemnation record (version 1) of the lock-free garbage collection (docs/gc.md) and its signed
 * envelope. It travels in the same record namespace as snapshot envelopes and is told apart by its
 * magic.
 *
 *   record   = version u8 (=1) || flags uvarint (=0) || time svarint (ms) || host str
 *              || count uvarint || (id(32) || state u8){count}     ids strictly ascending; a pack's, or a forgotten snapshot's
 *   envelope = magic "P2PBGCRD"(8) || version u8 (1 or 2) || userId(32) || sealedLen uvarint || sealed || signature(64)
 *   signed   = "p2pbak gc v<version>" || 0x00 || userId(32) || sealed
 *
 * Envelope version 1 seals the record to the owner's box key; version 2 (written since) to the gc
 * view key, which a write-only machine carries too (docs/format/keys.md §5, §11.2).
 *
 * docs/format/gc-records.md is the full spec. Pure: no I/O, no crypto.
 */
import { FormatError } from '../errors.js'
import { ID_BYTES } from '../ids.js'
import { ByteReader, ByteWriter, concatBytes, equalBytes, utf8Encode } from '../util/bytes.js'
import { shown } from '../util/text.js'

/** What a record says of a pack. */
export const GcState = {
  /** unreferenced when a prune looked; it may be deleted a grace period after a device first saw this */
  Condemned: 1,
  /** deleted (or its deletes are queued): nobody may index it or deduplicate against it again */
  Deleted: 2,
  /** the id is a snapshot's that `forget` removed: no device lists it or sends it to friends again */
  Forgotten: 3
} as const
export type GcState = typeof GcState[keyof typeof GcState]

/** `pack` is a pack id (states 1, 2) or a snapshot id (state 3, Forgotten). */
export interface GcEntry { pack: Uint8Array, state: GcState }

export interface GcRecord {
  version: 1
  /** ms since the epoch on the writer's clock; informational only (no reader trusts it) */
  time: bigint
  /** the device (host name) whose prune wrote it */
  host: string
  /** ascending by pack id, each pack once */
  entries: GcEntry[]
}

/** `version` 1: sealed to the owner's box key; 2: sealed to the gc view key. */
export interface GcEnvelope { version: GcEnvelopeVersion, userId: Uint8Array, sealed: Uint8Array, signature: Uint8Array }
export type GcEnvelopeVersion = 1 | 2

export const GC_RECORD_VERSION = 1
/** The envelope version this program writes. */
export const GC_ENVELOPE_VERSION: GcEnvelopeVersion = 2
export const GC_ENVELOPE_MAGIC = utf8Encode('P2PBGCRD')
const GC_SIGNING_DOMAINS: Readonly<Record<GcEnvelopeVersion, Uint8Array>> = { 1: utf8Encode('p2pbak gc v1'), 2: utf8Encode('p2pbak gc v2') }
/** Most entries in one record: 33 bytes each, so a record stays below 16 MiB. */
export const MAX_GC_ENTRIES = 500_000
export const MAX_SEALED_GC_BYTES = 16 * 1024 * 1024
const MAX_HOST_BYTES = 65536
const USER_ID_BYTES = 32
const SIGNATURE_BYTES = 64

function fail (msg: string): never { throw new FormatError(`gc record: ${msg}`) }
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function compareIds (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < ID_BYTES; i++) { const d = (a[i] as number) - (b[i] as number); if (d !== 0) return d }
  return 0
}

/** Sorts entries by pack id (the encoding requires it); a pack named twice keeps its highest state. */
export function normalizeGcEntries (entries: Iterable<GcEntry>): GcEntry[] {
  const byPack = new Map<string, GcEntry>()
  for (const e of entries) {
    const key = Buffer.from(e.pack).toString('hex')
    const had = byPack.get(key)
    if (had === undefined || e.state > had.state) byPack.set(key, { pack: e.pack, state: e.state })
  }
  return [...byPack.values()].sort((a, b) => compareIds(a.pack, b.pack))
}

function validate (r: GcRecord): void {
  if (r === null || typeof r !== 'object' || r.version !== GC_RECORD_VERSION) fail(`version must be ${GC_RECORD_VERSION}`)
  if (typeof r.time !== 'bigint' || r.time < -(1n << 63n) || r.time >= (1n << 63n)) fail('time must be a 64-bit bigint')
  if (typeof r.host !== 'string' || Buffer.byteLength(r.host, 'utf8') > MAX_HOST_BYTES || /\p{Cs}/u.test(r.host)) fail('host must be a string of at most 65536 UTF-8 bytes')
  if (!Array.isArray(r.entries) || r.entries.length > MAX_GC_ENTRIES) fail(`at most ${MAX_GC_ENTRIES} entries`)
  let prev: Uint8Array | undefined
  for (const e of r.entries) {
    if (!(e.pack instanceof Uint8Array) || e.pack.byteLength !== ID_BYTES) fail('a pack id must be 32 bytes')
    if (e.state !== GcState.Condemned && e.state !== GcState.Deleted && e.state !== GcState.Forgotten) fail(`unknown state ${shown(e.state)}`)
    if (prev !== undefined && compareIds(prev, e.pack) >= 0) fail('pack ids must be strictly ascending')
    prev = e.pack
  }
}

/** Deterministic: equal records give equal bytes. */
export function encodeGcRecord (r: GcRecord): Uint8Array {
  validate(r)
  const w = new ByteWriter(64 + 33 * r.entries.length)
  w.u8(GC_RECORD_VERSION).uvarint(0).svarint(r.time).string(r.host).uvarint(r.entries.length)
  for (const e of r.entries) w.raw(e.pack).u8(e.state)
  return w.finish()
}

/** Strict: FormatError on anything malformed. */
export function decodeGcRecord (bytes: Uint8Array): GcRecord {
  const r = new ByteReader(bytes, 'gc record')
  const version = r.u8()
  if (version !== GC_RECORD_VERSION) fail(`version ${version} is not supported (this p2pbak reads version ${GC_RECORD_VERSION}); upgrade p2pbak`)
  if (r.uvarintBig() !== 0n) fail('reserved flag bits set')
  const time = r.svarint()
  let host: string
  try { host = strictUtf8.decode(r.bytes(MAX_HOST_BYTES)) } catch (err: unknown) { if (err instanceof FormatError) throw err; fail('invalid UTF-8 in host') }
  const count = r.uvarint(Math.min(MAX_GC_ENTRIES, Math.floor(r.remaining / 33)))
  const entries: GcEntry[] = []
  for (let i = 0; i < count; i++) entries.push({ pack: r.raw(ID_BYTES).slice(), state: r.u8() as GcState })
  r.end()
  const record: GcRecord = { version: GC_RECORD_VERSION, time, host, entries }
  validate(record)
  return record
}

/** Whether these record bytes are a gc envelope (by magic); snapshot listings skip them. */
export function isGcEnvelope (bytes: Uint8Array): boolean {
  return bytes.byteLength >= GC_ENVELOPE_MAGIC.byteLength && equalBytes(bytes.subarray(0, GC_ENVELOPE_MAGIC.byteLength), GC_ENVELOPE_MAGIC)
}

export function encodeGcEnvelope (e: GcEnvelope): Uint8Array {
  checkParts(e.userId, e.sealed)
  if (!(e.signature instanceof Uint8Array) || e.signature.byteLength !== SIGNATURE_BYTES) throw new FormatError(`gc envelope: signature must be ${SIGNATURE_BYTES} bytes`)
  if (e.version !== 1 && e.version !== 2) throw new FormatError(`gc envelope: version must be 1 or 2, not ${shown(e.version)}`)
  const w = new ByteWriter(GC_ENVELOPE_MAGIC.byteLength + 1 + USER_ID_BYTES + 4 + e.sealed.byteLength + SIGNATURE_BYTES)
  w.raw(GC_ENVELOPE_MAGIC).u8(e.version).raw(e.userId).bytes(e.sealed).raw(e.signature)
  return w.finish()
}

export function decodeGcEnvelope (bytes: Uint8Array): GcEnvelope {
  const r = new ByteReader(bytes, 'gc envelope')
  if (!equalBytes(r.raw(GC_ENVELOPE_MAGIC.byteLength), GC_ENVELOPE_MAGIC)) throw new FormatError('not a p2pbak gc envelope (bad magic)')
  const version = r.u8()
  if (version !== 1 && version !== 2) throw new FormatError(`gc envelope version ${version} is not supported; upgrade p2pbak`)
  const userId = r.raw(USER_ID_BYTES).slice()
  const sealed = r.bytes(Math.min(MAX_SEALED_GC_BYTES, r.remaining)).slice()
  if (sealed.byteLength === 0) throw new FormatError('gc envelope: the sealed record is empty')
  const signature = r.raw(SIGNATURE_BYTES).slice()
  r.end()
  return { version, userId, sealed, signature }
}

function checkParts (userId: unknown, sealed: unknown): void {
  if (!(userId instanceof Uint8Array) || userId.byteLength !== USER_ID_BYTES) throw new FormatError(`gc envelope: userId must be ${USER_ID_BYTES} bytes`)
  if (!(sealed instanceof Uint8Array) || sealed.byteLength < 1 || sealed.byteLength > MAX_SEALED_GC_BYTES) throw new FormatError(`gc envelope: sealed record must be 1..${MAX_SEALED_GC_BYTES} bytes`)
}

/** "p2pbak gc v1" (or v2) || 0x00 || userId(32) || sealed: what the owner's Ed25519 signature covers. */
export function gcSigningBytes (version: GcEnvelopeVersion, userId: Uint8Array, sealed: Uint8Array): Uint8Array {
  checkParts(userId, sealed)
  const domain = GC_SIGNING_DOMAINS[version]
  if (domain === undefined) throw new FormatError(`gc envelope: version must be 1 or 2, not ${shown(version)}`)
  return concatBytes([domain, new Uint8Array(1), userId, sealed])
}
