/**
 * The reciprocity ledger (docs/format/ledger.md): a device's signed statement of the bytes it holds
 * for each person and the bytes it placed on each person's devices; the balance of every member
 * derived from all members' newest statements; and a persister's decision to refuse new shards from
 * a person who uses far more of the group's disk than they give. Pure: no I/O, the clock is a parameter.
 */
import type { Identity, SodiumBackend } from '../crypto/index.js'
import { FormatError, InvalidArgumentError } from '../errors.js'
import { concatBytes, utf8Decode, utf8Encode } from '../util/bytes.js'
import {
  canonicalJson, encodeBase64, expectBase64, expectGroupId, expectObject, expectPeerId, expectUint,
  expectUserId, expectVersion1, isPlainObject, parseCanonicalJson
} from './canonical.js'
import { signingKey } from './device-cert.js'
import { checkDeviceStatement, type VerifyStatementOptions } from './device-statement.js'
import { memberOfPeer } from './roster.js'
import type { Roster } from './roster.js'

/** Signing domain (§3): the NUL ends the prefix so no canonical JSON body can extend it. */
export const LEDGER_DOMAIN = 'p2pbak ledger v1\0'
/** Entries per map: a roster has at most 256 members, and stale owners (removed members) may linger. */
export const MAX_LEDGER_ENTRIES = 1024
/** Upper bound of an encoded statement (2 × 1024 entries of ~90 bytes fit well below it). */
export const MAX_LEDGER_BYTES = 256 * 1024
/** A statement dated further ahead of the receiver's clock is refused: it would shadow later ones. */
export const MAX_LEDGER_CLOCK_SKEW_MS = 3600 * 1000
/** @default 2: a person may use twice what they give, so a pair of friends with equal disks both fit. */
export const DEFAULT_RECIPROCITY_MULTIPLE = 2
/** @default 1 GiB: counted as given by everyone, so a newcomer can back up before anyone stores on them. */
export const DEFAULT_RECIPROCITY_GRACE_BYTES = 1024 ** 3

/** What the signer states; the signer's userId comes from the identity. */
export interface LedgerFields {
  groupId: string
  /** the device making the statement (one of the signer's devices on the roster) */
  peerId: string
  /** ms since the Unix epoch; the newest statement of each device replaces the older ones */
  time: number
  /** owner userId → bytes of that person's shares this device stores */
  holds: Readonly<Record<string, number>>
  /** holder userId → bytes of shares this device placed on that person's devices (its own index) */
  placed: Readonly<Record<string, number>>
  /**
   * userId → bytes this device carried as a circuit relay for that person's devices in the
   * {@link LEDGER_RELAYED_WINDOW_MS} before `time` (docs/format/ledger.md §2). Absent or all zero: a
   * version 1 statement, readable by every version.
   */
  relayed?: Readonly<Record<string, number>>
}

export interface LedgerStatement extends LedgerFields {
  /** 2 when it carries `relayed`, else 1 */
  version: 1 | 2
  /** the person whose Ed25519 key signed: hex of the public key */
  userId: string
  holds: Record<string, number>
  placed: Record<string, number>
  relayed?: Record<string, number>
  /** base64 of the Ed25519 signature over {@link ledgerSigningBytes} */
  signature: string
}

const LEDGER_KEYS = ['version', 'groupId', 'userId', 'peerId', 'time', 'holds', 'placed', 'signature'] as const
const LEDGER_V2_KEYS = [...LEDGER_KEYS, 'relayed'] as const
/** what a version 2 statement's `relayed` covers: the 30 days before its `time` */
export const LEDGER_RELAYED_WINDOW_MS = 30 * 86_400_000

/** LEDGER_DOMAIN || canonical JSON of the statement without `signature`. */
export function ledgerSigningBytes (s: Omit<LedgerStatement, 'signature'> & { signature?: string }): Uint8Array {
  const { signature: _omit, ...body } = s
  return concatBytes([utf8Encode(LEDGER_DOMAIN), utf8Encode(canonicalJson(body))])
}

function parseByteMap (v: unknown, what: string): Record<string, number> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new FormatError(`${what} must be an object`)
  const src = v as Record<string, unknown>
  const keys = Object.keys(src)
  if (keys.length > MAX_LEDGER_ENTRIES) throw new FormatError(`${what} has ${keys.length} entries, more than ${MAX_LEDGER_ENTRIES}`)
  const out: Record<string, number> = {}
  for (const k of keys) out[expectUserId(k, `${what} key`)] = expectUint(src[k], `${what} ${k}`)
  return out
}

/** Checks an untrusted value's structure (FormatError naming the field); returns a fresh copy. No signature check. */
export function parseLedger (v: unknown, what = 'ledger statement'): LedgerStatement {
  if (isPlainObject(v) && v.version !== 1 && v.version !== 2) throw new FormatError(`${what} has version ${String(JSON.stringify(v.version)).slice(0, 20)}; this program reads versions 1 and 2`)
  const v2 = isPlainObject(v) && v.version === 2
  const o = expectObject(v, what, v2 ? LEDGER_V2_KEYS : LEDGER_KEYS)
  return {
    version: v2 ? 2 : expectVersion1(o.version, what),
    groupId: expectGroupId(o.groupId, `${what} groupId`),
    userId: expectUserId(o.userId, `${what} userId`),
    peerId: expectPeerId(o.peerId, `${what} peerId`),
    time: expectUint(o.time, `${what} time`),
    holds: parseByteMap(o.holds, `${what} holds`),
    placed: parseByteMap(o.placed, `${what} placed`),
    ...(v2 ? { relayed: parseByteMap(o.relayed, `${what} relayed`) } : {}),
    signature: expectBase64(o.signature, `${what} signature`, 64)
  }
}

/** Signs a statement as `identity` (InvalidArgumentError for malformed fields or a write-only identity). */
export function signLedger (sodium: SodiumBackend, identity: Identity, fields: LedgerFields): LedgerStatement {
  const key = signingKey(identity)
  let body: Omit<LedgerStatement, 'signature'>
  try {
    // version 2 only when something was relayed: the statements of devices that relay nothing stay
    // readable by version 1 readers
    const relayed = Object.fromEntries(Object.entries(fields.relayed ?? {}).filter(([, n]) => n !== 0))
    const v2 = Object.keys(relayed).length > 0
    const { signature: _s, ...rest } = parseLedger({
      version: v2 ? 2 : 1, groupId: fields.groupId, userId: identity.userId, peerId: fields.peerId, time: fields.time,
      holds: fields.holds, placed: fields.placed, ...(v2 ? { relayed } : {}), signature: encodeBase64(new Uint8Array(64))
    })
    body = rest
  } catch (err: unknown) {
    if (err instanceof FormatError) throw new InvalidArgumentError(err.message)
    throw err
  }
  return { ...body, signature: encodeBase64(sodium.sign(ledgerSigningBytes(body), key)) }
}

/** roster: the statement's group and its device under its signer; now: refuse dates more than MAX_LEDGER_CLOCK_SKEW_MS after it */
export type VerifyLedgerOptions = VerifyStatementOptions

/**
 * Structure (FormatError), signature under `userId` (UnauthenticatedError), and with the options:
 * not dated in the future, the roster's group, the device on the roster as one of the signer's
 * (UnauthenticatedError; NotMemberError when the device is not on the roster at all).
 */
export function verifyLedger (sodium: SodiumBackend, statement: unknown, options: VerifyLedgerOptions = {}): LedgerStatement {
  const s = parseLedger(statement)
  checkDeviceStatement(sodium, s, ledgerSigningBytes(s), 'ledger statement', MAX_LEDGER_CLOCK_SKEW_MS, options)
  return s
}

/** Canonical JSON, UTF-8 (the stored and wire form). */
export function encodeLedger (s: LedgerStatement): Uint8Array {
  return utf8Encode(canonicalJson(s))
}

/** Strict: canonical JSON of a well-formed statement, else FormatError. No signature check. */
export function decodeLedger (b: Uint8Array): LedgerStatement {
  if (b.byteLength > MAX_LEDGER_BYTES) throw new FormatError(`ledger statement is ${b.byteLength} bytes, more than ${MAX_LEDGER_BYTES}`)
  return parseLedger(parseCanonicalJson(utf8Decode(b), 'ledger statement'))
}

// ---- balances ----

/** True when `a` replaces `b` as its device's statement: later time, ties broken by signature text. */
export function isNewerLedger (a: LedgerStatement, b: LedgerStatement): boolean {
  return a.time > b.time || (a.time === b.time && a.signature > b.signature)
}

/**
 * The newest statement of each device that is on `roster` under its signer, for the roster's group.
 * Statements are trusted as given: verify each one ({@link verifyLedger}) when it arrives.
 */
export function latestLedgers (statements: Iterable<LedgerStatement>, roster: Roster): LedgerStatement[] {
  const best = new Map<string, LedgerStatement>()
  for (const s of statements) {
    if (s.groupId !== roster.groupId || memberOfPeer(roster, s.peerId)?.userId !== s.userId) continue
    const cur = best.get(s.peerId)
    if (cur === undefined || isNewerLedger(s, cur)) best.set(s.peerId, s)
  }
  return [...best.values()]
}

/** The bytes `holder`'s devices store for `owner`, as each side states it. */
export interface LedgerEntry {
  holder: string
  owner: string
  /** Σ holds[owner] over the holder's devices */
  holderSays: number
  /** Σ placed[holder] over the owner's devices */
  ownerSays: number
}

/**
 * Every pair of distinct roster members that either side reports bytes for, sorted by holder then
 * owner, from the newest statement of each device. Entries naming non-members or oneself are ignored.
 */
export function ledgerEntries (statements: Iterable<LedgerStatement>, roster: Roster): LedgerEntry[] {
  const members = new Set(roster.members.map(m => m.userId))
  const pairs = new Map<string, LedgerEntry>()
  const add = (holder: string, owner: string, side: 'holderSays' | 'ownerSays', bytes: number): void => {
    if (holder === owner || !members.has(holder) || !members.has(owner) || bytes === 0) return
    const key = holder + owner
    let e = pairs.get(key)
    if (e === undefined) { e = { holder, owner, holderSays: 0, ownerSays: 0 }; pairs.set(key, e) }
    e[side] += bytes
  }
  for (const s of latestLedgers(statements, roster)) {
    for (const [owner, n] of Object.entries(s.holds)) add(s.userId, owner, 'holderSays', n)
    for (const [holder, n] of Object.entries(s.placed)) add(holder, s.userId, 'ownerSays', n)
  }
  return [...pairs.values()].sort((a, b) => a.holder < b.holder ? -1 : a.holder > b.holder ? 1 : a.owner < b.owner ? -1 : a.owner > b.owner ? 1 : 0)
}

/** What `relay`'s devices say they carried as circuit relays for `member`'s devices (ledger.md §5.5). */
export interface RelayedEntry { relay: string, member: string, bytes: number }

/**
 * Σ relayed[member] over the newest statements of each relay person's devices, for distinct roster
 * members, sorted by relay then member. Informational: the relay's own word, not part of any balance.
 */
export function ledgerRelayed (statements: Iterable<LedgerStatement>, roster: Roster): RelayedEntry[] {
  const members = new Set(roster.members.map(m => m.userId))
  const out = new Map<string, RelayedEntry>()
  for (const s of latestLedgers(statements, roster)) {
    for (const [member, n] of Object.entries(s.relayed ?? {})) {
      if (member === s.userId || !members.has(member) || n === 0) continue
      const e = out.get(s.userId + member) ?? { relay: s.userId, member, bytes: 0 }
      e.bytes += n
      out.set(s.userId + member, e)
    }
  }
  return [...out.values()].sort((a, b) => a.relay < b.relay ? -1 : a.relay > b.relay ? 1 : a.member < b.member ? -1 : a.member > b.member ? 1 : 0)
}

export interface ReciprocityBalance {
  /** bytes of this person's shares that others store (the larger of the two sides' figures per friend) */
  uses: number
  /** bytes this person stores for others (the smaller of the two sides' figures per friend) */
  gives: number
}

/**
 * The most that a holder's claim beyond what the owner acknowledges adds to the owner's use, per pair
 * (docs/format/ledger.md §5.3): a member that signs it holds 2^53 bytes of a friend's data cannot get
 * that friend refused by every persister; a member that under-reports what it placed gains at most
 * this much per holder.
 */
export const LEDGER_DISPUTE_CAP_BYTES = 1024 ** 3

export interface BalanceOptions {
  /**
   * The person computing the balances (a persister deciding a put): its own statements about what it
   * holds are what its disk holds, so its pairs count in full, uncapped.
   */
  self?: string
}

/** What a pair adds to its owner's use: the owner's figure, plus the holder's excess up to the cap. */
function pairUse (e: LedgerEntry, options: BalanceOptions): number {
  if (e.holder === options.self) return Math.max(e.holderSays, e.ownerSays)
  return e.ownerSays + Math.min(Math.max(0, e.holderSays - e.ownerSays), LEDGER_DISPUTE_CAP_BYTES)
}

/**
 * Every roster member's balance. Per pair the figure that favours the person being judged is never
 * taken on their word alone, and the figure that harms them is not taken on another's word beyond a
 * bound: uses(X) = Σ (ownerSays + min(holderSays − ownerSays, cap) when the holder claims more) over
 * entries owned by X, and gives(X) = Σ min(holderSays, ownerSays) over entries held by X
 * (docs/format/ledger.md §5).
 */
export function ledgerBalances (statements: Iterable<LedgerStatement>, roster: Roster, options: BalanceOptions = {}): Map<string, ReciprocityBalance> {
  const out = new Map<string, ReciprocityBalance>(roster.members.map(m => [m.userId, { uses: 0, gives: 0 }]))
  for (const e of ledgerEntries(statements, roster)) {
    (out.get(e.owner) as ReciprocityBalance).uses += pairUse(e, options);
    (out.get(e.holder) as ReciprocityBalance).gives += Math.min(e.holderSays, e.ownerSays)
  }
  return out
}

// ---- the persister's decision ----

export interface ReciprocityPolicy {
  /** @default DEFAULT_RECIPROCITY_MULTIPLE */
  multiple?: number
  /** @default DEFAULT_RECIPROCITY_GRACE_BYTES */
  graceBytes?: number
}

/** The most a person who gives `gives` bytes may use: multiple × max(gives, graceBytes). */
export function reciprocityLimit (gives: number, policy: ReciprocityPolicy = {}): number {
  const multiple = policy.multiple ?? DEFAULT_RECIPROCITY_MULTIPLE
  const grace = policy.graceBytes ?? DEFAULT_RECIPROCITY_GRACE_BYTES
  if (!Number.isFinite(multiple) || multiple <= 0) throw new InvalidArgumentError(`the reciprocity multiple must be a positive number, got ${multiple}`)
  if (!Number.isSafeInteger(grace) || grace < 0) throw new InvalidArgumentError(`the reciprocity grace must be a non-negative integer of bytes, got ${grace}`)
  return multiple * Math.max(gives, grace)
}

/** Binary units, as the CLI prints sizes ("1.20 GiB"). */
export function formatLedgerBytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1)} ${units[i] as string}`
}

/**
 * Undefined when `ownerUserId` may store `addBytes` more; otherwise the reason, written for the
 * owner (the publisher shows it to its user): refused when uses + addBytes > multiple × max(gives, graceBytes).
 * A person missing from `balances` counts as using and giving nothing.
 */
export function reciprocityRefusal (ownerUserId: string, addBytes: number, balances: ReadonlyMap<string, ReciprocityBalance>, policy: ReciprocityPolicy = {}): string | undefined {
  if (!Number.isSafeInteger(addBytes) || addBytes < 0) throw new InvalidArgumentError(`the bytes to add must be a non-negative integer, got ${addBytes}`)
  const { uses, gives } = balances.get(ownerUserId) ?? { uses: 0, gives: 0 }
  const limit = reciprocityLimit(gives, policy)
  if (uses + addBytes <= limit) return undefined
  const multiple = policy.multiple ?? DEFAULT_RECIPROCITY_MULTIPLE
  const grace = policy.graceBytes ?? DEFAULT_RECIPROCITY_GRACE_BYTES
  const f = formatLedgerBytes
  return `reciprocity limit reached: your friends store ${f(uses)} for you (${f(uses + addBytes)} with these ${f(addBytes)}) ` +
    `but you store only ${f(gives)} for them; this device accepts up to ${multiple}× what you store for others ` +
    `(counted as at least ${f(grace)}), i.e. ${f(limit)}. Contribute more space (p2pbak contribute SIZE) ` +
    'and keep that device online, or ask the owner of this device to raise its reciprocity limit'
}
