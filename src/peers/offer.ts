/**
 * Offer records (docs/format/offer.md): a device's signed announcement of its roles and disk offer
 * (persister, publisher, quota, used and free bytes), published in the group's DHT under
 * `/p2pbak/offer/<groupId>/<peerId>` so members learn it even while the device is away. Pure: no I/O,
 * the clock is a parameter. Signed by the device's person, like ledger statements (ledger.md §3).
 */
import type { Identity, SodiumBackend } from '../crypto/index.js'
import { FormatError, InvalidArgumentError, UnauthenticatedError } from '../errors.js'
import { concatBytes, utf8Decode, utf8Encode } from '../util/bytes.js'
import {
  canonicalJson, encodeBase64, expectBase64, expectBool, expectGroupId, expectObject, expectPeerId, expectUint,
  expectUserId, expectVersion1, isPeerIdString, parseCanonicalJson
} from './canonical.js'
import { signingKey } from './device-cert.js'
import { checkDeviceStatement, type VerifyStatementOptions } from './device-statement.js'
import type { Roster } from './roster.js'

/** Signing domain: the NUL ends the prefix so no canonical JSON body can extend it. */
export const OFFER_DOMAIN = 'p2pbak offer v1\0'
/** An encoded offer is a few hundred bytes; anything longer is refused unread. */
export const MAX_OFFER_BYTES = 2048
/** An offer dated further ahead of the receiver's clock is refused: it would shadow later ones. */
export const MAX_OFFER_CLOCK_SKEW_MS = 3600 * 1000
/** The DHT key namespace (the first path segment kad-dht dispatches validators and selectors on). */
export const OFFER_KEY_NAMESPACE = 'p2pbak'

/** What the device states; the signer's userId comes from the identity. */
export interface OfferFields {
  groupId: string
  /** the device the offer is about (one of the signer's devices on the roster) */
  peerId: string
  /** ms since the Unix epoch; the newest offer of each device replaces the older ones */
  time: number
  /** the device accepts shares (quotaBytes > 0) */
  persister: boolean
  /** the device has a publish schedule */
  publisher: boolean
  quotaBytes: number
  usedBytes: number
  freeBytes: number
}

export interface OfferRecord extends OfferFields {
  version: 1
  /** the person whose Ed25519 key signed: hex of the public key */
  userId: string
  /** base64 of the Ed25519 signature over {@link offerSigningBytes} */
  signature: string
}

const OFFER_KEYS = ['version', 'groupId', 'userId', 'peerId', 'time', 'persister', 'publisher', 'quotaBytes', 'usedBytes', 'freeBytes', 'signature'] as const

/** OFFER_DOMAIN || canonical JSON of the record without `signature`. */
export function offerSigningBytes (o: Omit<OfferRecord, 'signature'> & { signature?: string }): Uint8Array {
  const { signature: _omit, ...body } = o
  return concatBytes([utf8Encode(OFFER_DOMAIN), utf8Encode(canonicalJson(body))])
}

/** Checks an untrusted value's structure (FormatError naming the field); returns a fresh copy. No signature check. */
export function parseOffer (v: unknown, what = 'offer'): OfferRecord {
  const o = expectObject(v, what, OFFER_KEYS)
  const quotaBytes = expectUint(o.quotaBytes, `${what} quotaBytes`)
  const usedBytes = expectUint(o.usedBytes, `${what} usedBytes`)
  const freeBytes = expectUint(o.freeBytes, `${what} freeBytes`)
  const persister = expectBool(o.persister, `${what} persister`)
  if (persister !== quotaBytes > 0) throw new FormatError(`${what}: persister must be true exactly when quotaBytes > 0`)
  if (freeBytes > quotaBytes) throw new FormatError(`${what}: freeBytes exceeds quotaBytes`)
  return {
    version: expectVersion1(o.version, what),
    groupId: expectGroupId(o.groupId, `${what} groupId`),
    userId: expectUserId(o.userId, `${what} userId`),
    peerId: expectPeerId(o.peerId, `${what} peerId`),
    time: expectUint(o.time, `${what} time`),
    persister,
    publisher: expectBool(o.publisher, `${what} publisher`),
    quotaBytes,
    usedBytes,
    freeBytes,
    signature: expectBase64(o.signature, `${what} signature`, 64)
  }
}

/** Signs an offer as `identity` (InvalidArgumentError for malformed fields or a write-only identity). */
export function signOffer (sodium: SodiumBackend, identity: Identity, fields: OfferFields): OfferRecord {
  const key = signingKey(identity)
  let body: Omit<OfferRecord, 'signature'>
  try {
    const { signature: _s, ...rest } = parseOffer({
      version: 1,
      groupId: fields.groupId,
      userId: identity.userId,
      peerId: fields.peerId,
      time: fields.time,
      persister: fields.persister,
      publisher: fields.publisher,
      quotaBytes: fields.quotaBytes,
      usedBytes: fields.usedBytes,
      freeBytes: fields.freeBytes,
      signature: encodeBase64(new Uint8Array(64))
    })
    body = rest
  } catch (err: unknown) {
    if (err instanceof FormatError) throw new InvalidArgumentError(err.message)
    throw err
  }
  return { ...body, signature: encodeBase64(sodium.sign(offerSigningBytes(body), key)) }
}

/** roster: the offer's group and its device under its signer; now: refuse dates more than MAX_OFFER_CLOCK_SKEW_MS after it */
export type VerifyOfferOptions = VerifyStatementOptions

/**
 * Structure (FormatError), signature under `userId` (UnauthenticatedError), and with the options:
 * not dated in the future, the roster's group, the device on the roster as one of the signer's
 * (UnauthenticatedError; NotMemberError when the device is not on the roster at all).
 */
export function verifyOffer (sodium: SodiumBackend, offer: unknown, options: VerifyOfferOptions = {}): OfferRecord {
  const o = parseOffer(offer)
  checkDeviceStatement(sodium, o, offerSigningBytes(o), 'offer', MAX_OFFER_CLOCK_SKEW_MS, options)
  return o
}

/** Canonical JSON, UTF-8 (the stored and wire form). */
export function encodeOffer (o: OfferRecord): Uint8Array {
  return utf8Encode(canonicalJson(o))
}

/** Strict: canonical JSON of a well-formed record, else FormatError. No signature check. */
export function decodeOffer (b: Uint8Array): OfferRecord {
  if (b.byteLength > MAX_OFFER_BYTES) throw new FormatError(`offer is ${b.byteLength} bytes, more than ${MAX_OFFER_BYTES}`)
  return parseOffer(parseCanonicalJson(utf8Decode(b), 'offer'))
}

/** True when `a` replaces `b` as its device's offer: later time, ties broken by signature text. */
export function isNewerOffer (a: OfferRecord, b: OfferRecord): boolean {
  return a.time > b.time || (a.time === b.time && a.signature > b.signature)
}

/** The DHT key of a device's offer: UTF-8 of `/p2pbak/offer/<groupId>/<peerId>`. */
export function offerKey (groupId: string, peerId: string): Uint8Array {
  return utf8Encode(`/${OFFER_KEY_NAMESPACE}/offer/${expectGroupId(groupId, 'group id')}/${expectPeerId(peerId, 'peer id')}`)
}

/** The group and device a DHT key names, or FormatError when it is not an offer key. */
export function parseOfferKey (key: Uint8Array): { groupId: string, peerId: string } {
  let text: string
  try { text = utf8Decode(key) } catch { throw new FormatError('offer key is not UTF-8') }
  const parts = text.split('/')
  if (parts.length !== 5 || parts[0] !== '' || parts[1] !== OFFER_KEY_NAMESPACE || parts[2] !== 'offer' || !isPeerIdString(parts[4])) {
    throw new FormatError(`not an offer key: ${text.slice(0, 120)}`)
  }
  return { groupId: expectGroupId(parts[3], 'offer key group id'), peerId: parts[4] }
}

/**
 * The DHT record check: the value decodes, verifies against the roster, and is the offer of the
 * group and device its key names. Throws (FormatError, UnauthenticatedError, NotMemberError) otherwise.
 */
export function verifyOfferRecord (sodium: SodiumBackend, roster: Roster, key: Uint8Array, value: Uint8Array, now: number): OfferRecord {
  const k = parseOfferKey(key)
  const o = verifyOffer(sodium, decodeOffer(value), { roster, now })
  if (o.groupId !== k.groupId || o.peerId !== k.peerId) throw new UnauthenticatedError(`offer of ${o.peerId} stored under the key of ${k.peerId}`)
  return o
}

/** The index of the newest offer among DHT candidates; undecodable ones lose. */
export function selectNewestOffer (values: Uint8Array[]): number {
  let best = -1
  let bestOffer: OfferRecord | undefined
  values.forEach((v, i) => {
    let o: OfferRecord
    try { o = decodeOffer(v) } catch { return /* undecodable: it loses (the DHT validator refuses such records already) */ }
    if (bestOffer === undefined || isNewerOffer(o, bestOffer)) { best = i; bestOffer = o }
  })
  return Math.max(best, 0)
}
