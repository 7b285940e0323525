/**
 * Device certificates: a user's signing key vouches that a libp2p peer id is one of their devices
 * (docs/format/group.md §4). Version 1 certifies a full device; version 2 adds `writeOnly`, set for a
 * write-only machine (docs/format/keys.md §11): persisters refuse its deletes and overwrites, and
 * readers accept the snapshot records its device key signs.
 */
import type { Identity, SodiumBackend } from '../crypto/index.js'
import { FormatError, InvalidArgumentError } from '../errors.js'
import { concatBytes, fromHex, utf8Encode } from '../util/bytes.js'
import {
  canonicalJson, decodeBase64, encodeBase64, expectBase64, expectName, expectObject, expectPeerId, expectUint,
  expectBool, expectUserId
} from './canonical.js'
import { DEVICE_CERT_DOMAIN } from './constants.js'
import { shown } from '../util/text.js'

export interface DeviceCert {
  /** 1: a full device (six fields); 2: carries `writeOnly` */
  version: 1 | 2
  /** the owner: hex of their Ed25519 signing public key */
  userId: string
  /** the device's libp2p peer id, base58btc as peerId.toString() gives it */
  peerId: string
  /** a label for people ("laptop", a host name) */
  name: string
  /** ms since the Unix epoch */
  issuedAt: number
  /**
   * version 2 only: true for a write-only machine (it holds no user secret key; persisters refuse its
   * deletes and overwrites). This program writes version 2 only for write-only devices.
   */
  writeOnly?: boolean
  /** base64 of the Ed25519 signature over {@link deviceCertSigningBytes} */
  signature: string
}

const CERT_KEYS = ['version', 'userId', 'peerId', 'name', 'issuedAt', 'signature'] as const
const CERT_KEYS_V2 = [...CERT_KEYS, 'writeOnly'] as const

/** True for a certificate of a write-only machine (version 2 with `writeOnly: true`). */
export function isWriteOnlyCert (cert: DeviceCert): boolean {
  return cert.version === 2 && cert.writeOnly === true
}

/** DEVICE_CERT_DOMAIN || canonical JSON of the certificate without `signature`. */
export function deviceCertSigningBytes (cert: Omit<DeviceCert, 'signature'> & { signature?: string }): Uint8Array {
  const { signature: _omit, ...body } = cert
  return concatBytes([utf8Encode(DEVICE_CERT_DOMAIN), utf8Encode(canonicalJson(body))])
}

/** The signing secret key, or InvalidArgumentError for a write-only identity. */
export function signingKey (identity: Identity): Uint8Array {
  if (identity.signSecretKey === null) throw new InvalidArgumentError('this identity is write-only (public keys only) and cannot sign group changes')
  return identity.signSecretKey
}

/** A version 1 certificate, or with `writeOnly` a version 2 one marking a write-only machine. */
export function issueDeviceCert (sodium: SodiumBackend, identity: Identity, peerId: string, name: string, now: number, options: { writeOnly?: boolean } = {}): DeviceCert {
  const body: Omit<DeviceCert, 'signature'> = options.writeOnly === true
    ? { version: 2, userId: identity.userId, peerId, name, issuedAt: now, writeOnly: true }
    : { version: 1, userId: identity.userId, peerId, name, issuedAt: now }
  try {
    expectPeerId(peerId, 'peer id')
    expectName(name, 'device name')
    expectUint(now, 'issue time')
  } catch (err: unknown) {
    if (err instanceof FormatError) throw new InvalidArgumentError(err.message)
    throw err
  }
  const signature = encodeBase64(sodium.sign(deviceCertSigningBytes(body), signingKey(identity)))
  return { ...body, signature }
}

/** Checks the structure of an untrusted value (FormatError naming the bad field); no signature check. */
export function parseDeviceCert (v: unknown, what = 'device certificate'): DeviceCert {
  const version = expectObject(v, what, ['version'], CERT_KEYS_V2).version
  if (version !== 1 && version !== 2) throw new FormatError(`${what} has version ${shown(version)}; this program reads versions 1 and 2 (upgrade p2pbak)`)
  const o = expectObject(v, what, version === 1 ? CERT_KEYS : CERT_KEYS_V2)
  const common = {
    userId: expectUserId(o.userId, `${what} userId`),
    peerId: expectPeerId(o.peerId, `${what} peerId`),
    name: expectName(o.name, `${what} name`),
    issuedAt: expectUint(o.issuedAt, `${what} issuedAt`),
    signature: expectBase64(o.signature, `${what} signature`, 64)
  }
  if (version === 1) return { version, ...common }
  return { version, ...common, writeOnly: expectBool(o.writeOnly, `${what} writeOnly`) }
}

/** True only for a well-formed certificate whose signature verifies under its own userId. */
export function verifyDeviceCert (sodium: SodiumBackend, cert: DeviceCert): boolean {
  let parsed: DeviceCert
  try { parsed = parseDeviceCert(cert) } catch (err: unknown) {
    if (err instanceof FormatError) return false
    throw err
  }
  const sig = decodeBase64(parsed.signature)
  if (sig === undefined) return false
  return sodium.verify(sig, deviceCertSigningBytes(parsed), fromHex(parsed.userId))
}

export function sameDeviceCert (a: DeviceCert, b: DeviceCert): boolean {
  return canonicalJson(a) === canonicalJson(b)
}
