/**
 * Snapshot records: the plaintext record is sealed to the user's public key (only the user can read
 * it) and the sealed bytes are signed with the user's signing key (anyone can check who wrote it).
 * The envelope is stored in the pack store's record namespace under id = BLAKE3(envelope).
 */
import { AmbiguousIdError, NotFoundError, UnauthenticatedError, WriteOnlyError } from '../errors.js'
import { contentHash, type Identity, type SodiumBackend } from '../crypto/index.js'
import {
  decodeSnapshotEnvelope, decodeSnapshotRecord, encodeSnapshotEnvelope, encodeSnapshotRecord,
  snapshotSigningBytes, type SnapshotRecord
} from '../format/snapshot.js'
import { asSnapshotId, type SnapshotId } from '../ids.js'
import { equalBytes, toHex } from '../util/bytes.js'
import { GcState, isGcEnvelope } from '../format/gc-record.js'
import type { PackStore } from './pack-store.js'
import { openGcRecord, type GcRecordRef } from './gc-records.js'

export interface Snapshot { id: SnapshotId, record: SnapshotRecord }

export function sealSnapshot (sodium: SodiumBackend, identity: Identity, record: SnapshotRecord): { id: SnapshotId, envelope: Uint8Array } {
  const sk = identity.signSecretKey
  if (sk === null) throw new WriteOnlyError('this identity cannot sign snapshots')
  const sealed = sodium.seal(encodeSnapshotRecord(record), identity.boxPublicKey)
  const signature = sodium.sign(snapshotSigningBytes(identity.signPublicKey, sealed), sk)
  const envelope = encodeSnapshotEnvelope({ userId: identity.signPublicKey, sealed, signature })
  return { id: asSnapshotId(contentHash(envelope)), envelope }
}

/** Verifies the owner's signature and opens the record. */
export function openSnapshot (sodium: SodiumBackend, identity: Identity, envelope: Uint8Array): Snapshot {
  const env = decodeSnapshotEnvelope(envelope)
  if (!equalBytes(env.userId, identity.signPublicKey)) throw new UnauthenticatedError('snapshot record belongs to another user')
  if (!sodium.verify(env.signature, snapshotSigningBytes(env.userId, env.sealed), env.userId)) {
    throw new UnauthenticatedError('snapshot record signature is invalid: it was altered')
  }
  const sk = identity.boxSecretKey
  if (sk === null) throw new WriteOnlyError('this machine holds a write-only key and cannot read snapshots; use the recovery phrase')
  let plain: Uint8Array
  try {
    plain = sodium.sealOpen(env.sealed, identity.boxPublicKey, sk)
  } catch (err: unknown) {
    throw new UnauthenticatedError('snapshot record does not decrypt with this identity', { cause: err })
  }
  const record = decodeSnapshotRecord(plain)
  if (record.userId !== identity.userId) throw new UnauthenticatedError('snapshot record names another user than its envelope')
  return { id: asSnapshotId(contentHash(envelope)), record }
}

export async function saveSnapshot (packs: PackStore, sodium: SodiumBackend, identity: Identity, record: SnapshotRecord): Promise<SnapshotId> {
  const { id, envelope } = sealSnapshot(sodium, identity, record)
  await packs.putRecord(id, envelope)
  return id
}

export interface SnapshotListing { snapshots: Snapshot[], damaged: Array<{ id: string, error: unknown }> }
export interface HeadListing extends SnapshotListing {
  gc: GcRecordRef[]
  /** snapshot records still found that a gc record says `forget` removed (hidden from `snapshots`) */
  forgotten: Uint8Array[]
}

/** All readable snapshots, oldest first; damaged records are reported, not fatal; gc records are skipped. */
export async function listSnapshots (packs: PackStore, sodium: SodiumBackend, identity: Identity): Promise<SnapshotListing> {
  const { snapshots, damaged } = await readHead(packs, sodium, identity)
  return { snapshots, damaged }
}

/**
 * Every record of the head: snapshots (oldest first) and condemnation records (docs/gc.md), told
 * apart by their magic. A record that fails its checks (signature, owner, unsealing, name) is damaged.
 */
export async function readHead (packs: PackStore, sodium: SodiumBackend, identity: Identity): Promise<HeadListing> {
  const snapshots: Snapshot[] = []
  const gc: GcRecordRef[] = []
  const damaged: SnapshotListing['damaged'] = []
  for await (const id of packs.listRecords()) {
    try {
      const envelope = await packs.getRecord(id)
      const opened = isGcEnvelope(envelope) ? openGcRecord(sodium, identity, envelope) : openSnapshot(sodium, identity, envelope)
      if (!equalBytes(opened.id, id)) throw new UnauthenticatedError('record is stored under the wrong id')
      if ('tree' in opened.record) snapshots.push(opened as Snapshot)
      else gc.push(opened as GcRecordRef)
    } catch (error: unknown) {
      if (error instanceof WriteOnlyError) throw error
      damaged.push({ id: toHex(id), error })
    }
  }
  // a snapshot some device forgot stays forgotten, even if a copy of its record comes back from a
  // device that did not hear of it yet (docs/gc.md §9)
  const gone = new Set<string>()
  for (const r of gc) for (const e of r.record.entries) if (e.state === GcState.Forgotten) gone.add(toHex(e.pack))
  const forgotten = snapshots.filter(s => gone.has(toHex(s.id))).map(s => s.id as Uint8Array)
  const kept = snapshots.filter(s => !gone.has(toHex(s.id)))
  kept.sort((a, b) => (a.record.time < b.record.time ? -1 : a.record.time > b.record.time ? 1 : 0))
  return { snapshots: kept, damaged, gc, forgotten }
}

/** Resolves "latest", a full id or a unique hex prefix (at least 4 characters). */
export function resolveSnapshot (snapshots: readonly Snapshot[], ref: string): Snapshot {
  if (ref === 'latest') {
    const last = snapshots.at(-1)
    if (last === undefined) throw new NotFoundError('there are no snapshots yet; run `p2pbak backup PATH` first')
    return last
  }
  const want = ref.toLowerCase()
  if (!/^[0-9a-f]{4,64}$/.test(want)) throw new NotFoundError(`"${ref}" is not a snapshot id (use "latest" or a hex id from \`p2pbak snapshots\`)`)
  const matches = snapshots.filter(s => toHex(s.id).startsWith(want))
  if (matches.length === 0) throw new NotFoundError(`no snapshot matches "${ref}"`)
  if (matches.length > 1) throw new AmbiguousIdError(`"${ref}" matches ${matches.length} snapshots; give more characters`)
  return matches[0] as Snapshot
}
