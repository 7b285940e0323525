/**
 * Snapshot records: the plaintext record is sealed to the user's public key (only the user can read
 * it) and the sealed bytes are signed with the user's signing key (anyone can check who wrote it).
 * A write-only machine, which has no user secret key, signs with its device key instead and puts
 * the owner's certificate of that device in the envelope (version 2, docs/format/keys.md §11).
 * The envelope is stored in the pack store's record namespace under id = BLAKE3(envelope).
 */
import { AmbiguousIdError, NotFoundError, UnauthenticatedError, WriteOnlyError } from '../errors.js'
import { contentHash, type Identity, type SodiumBackend } from '../crypto/index.js'
import {
  decodeSnapshotEnvelope, decodeSnapshotRecord, deviceSnapshotSigningBytes, encodeSnapshotEnvelope, encodeSnapshotRecord,
  snapshotSigningBytes, type SnapshotEnvelope, type SnapshotRecord
} from '../format/snapshot.js'
import { canonicalJson, isWriteOnlyCert, parseDeviceCert, peerIdOfEd25519, verifyDeviceCert, type DeviceCert } from '../peers/index.js'
import { asSnapshotId, type SnapshotId } from '../ids.js'
import { equalBytes, toHex, utf8Encode } from '../util/bytes.js'
import { GcState, isGcEnvelope } from '../format/gc-record.js'
import type { PackStore, RecordListing } from './pack-store.js'
import { openGcRecord, type GcRecordRef } from './gc-records.js'
import { ClaimDistrust } from './distrust.js'
import { scopedLogger } from '../util/log.js'

const log = scopedLogger('repo:snapshots')

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

export interface Snapshot { id: SnapshotId, record: SnapshotRecord }

/** A write-only machine's signer: its device certificate (write-only, by the owner) and device key pair. */
export interface RecordSigner {
  cert: DeviceCert
  /** Ed25519, libsodium layout */
  publicKey: Uint8Array
  secretKey: Uint8Array
}

/**
 * Seals the record to the owner and signs it: with the user key (envelope version 1), or, on a
 * write-only machine, with the device key of `signer` (envelope version 2).
 */
export function sealSnapshot (sodium: SodiumBackend, identity: Identity, record: SnapshotRecord, signer?: RecordSigner): { id: SnapshotId, envelope: Uint8Array } {
  const sk = identity.signSecretKey
  if (sk === null && signer === undefined) throw new WriteOnlyError('this identity cannot sign snapshots (a write-only machine signs with its certified device key, and none was given)')
  let sealed = sodium.seal(encodeSnapshotRecord(record), identity.boxPublicKey)
  let envelope: Uint8Array
  if (sk !== null) {
    const signature = sodium.sign(snapshotSigningBytes(identity.signPublicKey, sealed), sk)
    envelope = encodeSnapshotEnvelope({ userId: identity.signPublicKey, sealed, signature })
  } else {
    const s = signer as RecordSigner
    // a write-only device writes under its certified name only: readers refuse any other host (§4.4)
    sealed = sodium.seal(encodeSnapshotRecord({ ...record, host: s.cert.name }), identity.boxPublicKey)
    const device = { cert: utf8Encode(canonicalJson(s.cert)), publicKey: s.publicKey }
    const signature = sodium.sign(deviceSnapshotSigningBytes(identity.signPublicKey, device, sealed), s.secretKey)
    envelope = encodeSnapshotEnvelope({ userId: identity.signPublicKey, device, sealed, signature })
  }
  return { id: asSnapshotId(contentHash(envelope)), envelope }
}

/**
 * Who signed an envelope, checked (UnauthenticatedError otherwise): the owner's user key (version 1),
 * or a write-only device the owner certified (version 2: the certificate is valid, the owner's, marked
 * write-only, names the key that signed, and that key's signature verifies). Needs no secret key, so
 * a write-only machine and a persister can check it too.
 */
export function verifySnapshotEnvelope (sodium: SodiumBackend, env: SnapshotEnvelope): { device?: DeviceCert } {
  if (env.device === undefined) {
    if (!sodium.verify(env.signature, snapshotSigningBytes(env.userId, env.sealed), env.userId)) {
      throw new UnauthenticatedError('snapshot record signature is invalid: it was altered')
    }
    return {}
  }
  let cert: DeviceCert
  let text: string
  try {
    text = strictUtf8.decode(env.device.cert)
    cert = parseDeviceCert(JSON.parse(text) as unknown)
  } catch (err: unknown) {
    throw new UnauthenticatedError('snapshot record carries a device certificate that does not parse', { cause: err })
  }
  if (canonicalJson(cert) !== text) throw new UnauthenticatedError('snapshot record carries a device certificate that is not canonical JSON')
  if (!verifyDeviceCert(sodium, cert) || cert.userId !== toHex(env.userId)) throw new UnauthenticatedError('snapshot record carries a device certificate its owner did not sign')
  if (!isWriteOnlyCert(cert)) throw new UnauthenticatedError('snapshot record is signed by a device key, but the device is not certified write-only (full devices sign with the user key)')
  if (peerIdOfEd25519(env.device.publicKey) !== cert.peerId) throw new UnauthenticatedError('snapshot record is signed by a key other than the certified device\'s')
  if (!sodium.verify(env.signature, deviceSnapshotSigningBytes(env.userId, env.device, env.sealed), env.device.publicKey)) {
    throw new UnauthenticatedError('snapshot record signature is invalid: it was altered')
  }
  return { device: cert }
}

/** A write-only device's record may be dated at most this far ahead of the reader's clock. */
export const MAX_DEVICE_RECORD_SKEW_MS = 24 * 3600_000

/**
 * Verifies the owner's (or their write-only device's) signature and opens the record. A record a
 * write-only device signed must name that device's certified name as its host and not be dated more
 * than a day ahead of `now`: a stolen write-only key could otherwise write records in another host's
 * name, or dated in the future, that a retention policy keeps in place of the real ones.
 */
export function openSnapshot (sodium: SodiumBackend, identity: Identity, envelope: Uint8Array, now = Date.now()): Snapshot {
  const env = decodeSnapshotEnvelope(envelope)
  if (!equalBytes(env.userId, identity.signPublicKey)) throw new UnauthenticatedError('snapshot record belongs to another user')
  const { device } = verifySnapshotEnvelope(sodium, env)
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
  if (device !== undefined) {
    if (record.host !== device.name) throw new UnauthenticatedError(`snapshot record signed by the write-only device "${device.name}" claims the host "${record.host}"`)
    if (record.time > BigInt(now + MAX_DEVICE_RECORD_SKEW_MS) * 1_000_000n) throw new UnauthenticatedError(`snapshot record signed by the write-only device "${device.name}" is dated in the future`)
  }
  return { id: asSnapshotId(contentHash(envelope)), record }
}

export async function saveSnapshot (packs: PackStore, sodium: SodiumBackend, identity: Identity, record: SnapshotRecord, signer?: RecordSigner): Promise<SnapshotId> {
  const { id, envelope } = sealSnapshot(sodium, identity, record, signer)
  await packs.putRecord(id, envelope)
  return id
}

export interface SnapshotListing { snapshots: Snapshot[], damaged: Array<{ id: string, error: unknown }> }
export interface HeadListing extends SnapshotListing {
  gc: GcRecordRef[]
  /** snapshot records still found that a gc record says `forget` removed (hidden from `snapshots`) */
  forgotten: Uint8Array[]
  /** write-only machines only (readGcHead): gc records it cannot open (version 1, or no gc view key) */
  unread?: Array<{ id: string, error: unknown }>
  /** who the records were listed from, when the store lists them from friends (group stores) */
  listing?: RecordListing
}

/** All readable snapshots, oldest first; damaged records are reported, not fatal; gc records are skipped. */
export async function listSnapshots (packs: PackStore, sodium: SodiumBackend, identity: Identity): Promise<SnapshotListing> {
  const { snapshots, damaged } = await readHead(packs, sodium, identity)
  return { snapshots, damaged }
}

/**
 * Every record the store lists, fetched and checked against its name (BLAKE3 of its bytes). Lone
 * claims of a peer whose last ones kept failing are not fetched (distrust.ts): they come back as errors.
 */
async function * fetchRecords (packs: PackStore, listing?: RecordListing): AsyncGenerator<{ id: Uint8Array, envelope: Uint8Array } | { id: Uint8Array, error: unknown }> {
  const distrust = new ClaimDistrust(packs.recordClaimant?.bind(packs), 'record')
  /** listed, then found nowhere: deleted meanwhile (another device's forget), or a real loss */
  const vanished: Array<{ id: Uint8Array, error: unknown }> = []
  for await (const id of packs.listRecords(listing !== undefined ? { listing } : {})) {
    const refused = distrust.refusal(id)
    if (refused !== undefined) { yield { id, error: refused }; continue }
    let envelope: Uint8Array
    try {
      envelope = await packs.getRecord(id)
      if (!equalBytes(contentHash(envelope), id)) throw new UnauthenticatedError('record is stored under the wrong id')
    } catch (error: unknown) {
      distrust.note(id, false)
      if (error instanceof NotFoundError) vanished.push({ id, error })
      else yield { id, error }
      continue
    }
    distrust.note(id, true)
    yield { id, envelope }
  }
  if (vanished.length === 0) return
  // Another device of the person forgets a snapshot by writing a gc record that names it forgotten,
  // then deleting its record everywhere (docs/gc.md §9): a record listed just before that delete
  // is found nowhere just after. One that is still listed now is not readable: damaged.
  const still = new Set<string>()
  for await (const id of packs.listRecords()) still.add(toHex(id))
  for (const v of vanished) {
    if (still.has(toHex(v.id))) yield v
    else log('snapshot record %s was deleted while the head was read (forgotten on another device)', toHex(v.id).slice(0, 16))
  }
}

/** The snapshot ids some gc record names forgotten (docs/gc.md §9). */
function forgottenIds (gc: readonly GcRecordRef[]): Set<string> {
  const gone = new Set<string>()
  for (const r of gc) for (const e of r.record.entries) if (e.state === GcState.Forgotten) gone.add(toHex(e.pack))
  return gone
}

/**
 * Every record of the head: snapshots (oldest first) and condemnation records (docs/gc.md), told
 * apart by their magic. A record that fails its checks (signature, owner, unsealing, name) is damaged.
 */
export async function readHead (packs: PackStore, sodium: SodiumBackend, identity: Identity): Promise<HeadListing> {
  const snapshots: Snapshot[] = []
  const gc: GcRecordRef[] = []
  const damaged: SnapshotListing['damaged'] = []
  const listing: RecordListing = { asked: 0, answered: 0, incomplete: [], otherDevices: false }
  for await (const r of fetchRecords(packs, listing)) {
    if ('error' in r) { damaged.push({ id: toHex(r.id), error: r.error }); continue }
    try {
      if (isGcEnvelope(r.envelope)) gc.push(openGcRecord(sodium, identity, r.envelope))
      else snapshots.push(openSnapshot(sodium, identity, r.envelope))
    } catch (error: unknown) {
      if (error instanceof WriteOnlyError) throw error
      damaged.push({ id: toHex(r.id), error })
    }
  }
  // a snapshot some device forgot stays forgotten, even if a copy of its record comes back from a
  // device that did not hear of it yet (docs/gc.md §9)
  const gone = forgottenIds(gc)
  const forgotten = snapshots.filter(s => gone.has(toHex(s.id))).map(s => s.id as Uint8Array)
  const kept = snapshots.filter(s => !gone.has(toHex(s.id)))
  kept.sort((a, b) => (a.record.time < b.record.time ? -1 : a.record.time > b.record.time ? 1 : 0))
  return { snapshots: kept, damaged, gc, forgotten, listing }
}

/**
 * The head as a write-only machine sees it (docs/gc.md §6.3): the condemnation records it can open
 * with its gc view key, and the ids of the snapshot records (sealed to the owner: never opened, never
 * listed), of which those some gc record names forgotten. A gc record it cannot open is `unread`.
 */
export async function readGcHead (packs: PackStore, sodium: SodiumBackend, identity: Identity): Promise<HeadListing> {
  const gc: GcRecordRef[] = []
  const damaged: SnapshotListing['damaged'] = []
  const unread: NonNullable<HeadListing['unread']> = []
  const sealed: Uint8Array[] = []
  for await (const r of fetchRecords(packs)) {
    if ('error' in r) { damaged.push({ id: toHex(r.id), error: r.error }); continue }
    if (!isGcEnvelope(r.envelope)) { sealed.push(r.id); continue }
    try {
      gc.push(openGcRecord(sodium, identity, r.envelope))
    } catch (error: unknown) {
      if (error instanceof WriteOnlyError) unread.push({ id: toHex(r.id), error })
      else damaged.push({ id: toHex(r.id), error })
    }
  }
  const gone = forgottenIds(gc)
  return { snapshots: [], damaged, gc, forgotten: sealed.filter(id => gone.has(toHex(id))), unread }
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
