/**
 * Condemnation records (docs/gc.md, docs/format/gc-records.md): sealed to the owner, signed with the
 * user key, stored in the record namespace beside the snapshot envelopes (on this disk and on every
 * reachable persister, as the head is), named BLAKE3(envelope).
 */
import { UnauthenticatedError, WriteOnlyError } from '../errors.js'
import { contentHash, type Identity, type SodiumBackend } from '../crypto/index.js'
import { decodeGcEnvelope, decodeGcRecord, encodeGcEnvelope, encodeGcRecord, gcSigningBytes, type GcRecord } from '../format/gc-record.js'
import { equalBytes } from '../util/bytes.js'

export interface GcRecordRef { id: Uint8Array, record: GcRecord }

export function sealGcRecord (sodium: SodiumBackend, identity: Identity, record: GcRecord): { id: Uint8Array, envelope: Uint8Array } {
  const sk = identity.signSecretKey
  if (sk === null) throw new WriteOnlyError('this identity cannot sign gc records (a write-only machine does not prune)')
  const sealed = sodium.seal(encodeGcRecord(record), identity.boxPublicKey)
  const signature = sodium.sign(gcSigningBytes(identity.signPublicKey, sealed), sk)
  const envelope = encodeGcEnvelope({ userId: identity.signPublicKey, sealed, signature })
  return { id: contentHash(envelope), envelope }
}

/** Verifies the owner's signature and opens the record (as openSnapshot does for snapshots). */
export function openGcRecord (sodium: SodiumBackend, identity: Identity, envelope: Uint8Array): GcRecordRef {
  const env = decodeGcEnvelope(envelope)
  if (!equalBytes(env.userId, identity.signPublicKey)) throw new UnauthenticatedError('gc record belongs to another user')
  if (!sodium.verify(env.signature, gcSigningBytes(env.userId, env.sealed), env.userId)) throw new UnauthenticatedError('gc record signature is invalid: it was altered')
  const sk = identity.boxSecretKey
  if (sk === null) throw new WriteOnlyError('this machine holds a write-only key and cannot read gc records; use the recovery phrase')
  let plain: Uint8Array
  try {
    plain = sodium.sealOpen(env.sealed, identity.boxPublicKey, sk)
  } catch (err: unknown) {
    throw new UnauthenticatedError('gc record does not decrypt with this identity', { cause: err })
  }
  return { id: contentHash(envelope), record: decodeGcRecord(plain) }
}
