/**
 * Condemnation records (docs/gc.md, docs/format/gc-records.md): signed with the user key, sealed to
 * the gc view key (envelope version 2; version 1, sealed to the owner's box key, is still read),
 * stored in the record namespace beside the snapshot envelopes (on this disk and on every reachable
 * persister, as the head is), named BLAKE3(envelope). A write-only machine, which carries the gc view
 * key, opens them; it never writes them.
 */
import { UnauthenticatedError, WriteOnlyError } from '../errors.js'
import { contentHash, type Identity, type SodiumBackend } from '../crypto/index.js'
import { GC_ENVELOPE_VERSION, decodeGcEnvelope, decodeGcRecord, encodeGcEnvelope, encodeGcRecord, gcSigningBytes, type GcEnvelopeVersion, type GcRecord } from '../format/gc-record.js'
import { equalBytes } from '../util/bytes.js'

export interface GcRecordRef {
  id: Uint8Array
  record: GcRecord
  /** the envelope's version: a prune rewrites version 1 records as version 2 (docs/format/gc-records.md §5) */
  envelopeVersion?: GcEnvelopeVersion
}

export function sealGcRecord (sodium: SodiumBackend, identity: Identity, record: GcRecord): { id: Uint8Array, envelope: Uint8Array } {
  const sk = identity.signSecretKey
  if (sk === null || identity.gcView === null) throw new WriteOnlyError('this identity cannot sign gc records (a write-only machine does not prune)')
  const version = GC_ENVELOPE_VERSION
  const sealed = sodium.seal(encodeGcRecord(record), identity.gcView.publicKey)
  const signature = sodium.sign(gcSigningBytes(version, identity.signPublicKey, sealed), sk)
  const envelope = encodeGcEnvelope({ version, userId: identity.signPublicKey, sealed, signature })
  return { id: contentHash(envelope), envelope }
}

/**
 * Verifies the owner's signature and opens the record (as openSnapshot does for snapshots). A
 * write-only machine opens version 2 with its gc view key; a version 1 record, or any record on a
 * machine whose key file carries no gc view key, is a WriteOnlyError (it cannot tell what it says).
 */
export function openGcRecord (sodium: SodiumBackend, identity: Identity, envelope: Uint8Array): GcRecordRef {
  const env = decodeGcEnvelope(envelope)
  if (!equalBytes(env.userId, identity.signPublicKey)) throw new UnauthenticatedError('gc record belongs to another user')
  if (!sodium.verify(env.signature, gcSigningBytes(env.version, env.userId, env.sealed), env.userId)) throw new UnauthenticatedError('gc record signature is invalid: it was altered')
  const keys = env.version === 1
    ? (identity.boxSecretKey === null ? null : { publicKey: identity.boxPublicKey, secretKey: identity.boxSecretKey })
    : identity.gcView
  if (keys === null) {
    throw new WriteOnlyError(env.version === 1
      ? 'this write-only machine cannot read a gc record of version 1 (sealed to the owner\'s key): a prune on a full machine of the owner rewrites it'
      : 'this write-only machine\'s key file carries no gc view key (version 1): export a new one on a full machine (`p2pbak export-write-only-key`)')
  }
  let plain: Uint8Array
  try {
    plain = sodium.sealOpen(env.sealed, keys.publicKey, keys.secretKey)
  } catch (err: unknown) {
    throw new UnauthenticatedError('gc record does not decrypt with this identity', { cause: err })
  }
  return { id: contentHash(envelope), record: decodeGcRecord(plain), envelopeVersion: env.version }
}
