/**
 * The state of the lock-free garbage collection (docs/gc.md): the condemnation records every device
 * can read (the view), this device's notes of them (store/gc-db.ts), and what the view does to the
 * index: a condemned pack's blobs leave the index, so no backup deduplicates against it; a deleted
 * pack leaves it whole; a pack no record condemns any more is indexed again from its header.
 */
import { CorruptDataError, errorMessage } from '../errors.js'
import { GC_ENVELOPE_VERSION, GcState, normalizeGcEntries, type GcEntry } from '../format/gc-record.js'
import type { TreeId } from '../ids.js'
import { concatBytes, fromHex, toHex } from '../util/bytes.js'
import { scopedLogger } from '../util/log.js'
import { GC_NOTE_REVIVED, type GcNote } from '../store/index.js'
import type { GcRecordRef } from './gc-records.js'
import { sealGcRecord } from './gc-records.js'
import type { Repository } from './repository.js'
import { readGcHead, readHead, type HeadListing, type Snapshot } from './snapshots.js'

const log = scopedLogger('repo:gc')

/** The grace period in a group: longer than the window between a backup's last check and its snapshot (docs/gc.md §3). */
export const DEFAULT_GRACE_MS = 24 * 3600_000

/** Each pack some visible record names, with the highest state any record gives it. */
export function gcView (records: readonly GcRecordRef[]): Map<string, GcState> {
  const view = new Map<string, GcState>()
  for (const r of records) {
    for (const e of r.record.entries) {
      const key = toHex(e.pack)
      if ((view.get(key) ?? 0) < e.state) view.set(key, e.state)
    }
  }
  return view
}

export interface GcSync { head: HeadListing, view: Map<string, GcState> }

/**
 * Brings this device's notes and index in line with the visible records (docs/gc.md §5): packs newly
 * condemned get a note dated now (this device's clock) holding their blob ids, and lose their blob
 * entries; deleted packs leave the index; a condemned pack no record names any more (a rescue) is
 * dropped from the index so the next rebuild indexes it again, whole, from its header.
 */
export async function syncCondemned (repo: Repository, now: () => number, given?: HeadListing): Promise<GcSync> {
  // a write-only machine cannot open snapshot records: it sees the gc records only (§6.3)
  const head = given ?? await (repo.identity.boxSecretKey === null ? readGcHead : readHead)(repo.packs, repo.sodium, repo.identity)
  const view = gcView(head.gc)
  const notes = repo.index.gc
  const fresh = new Map<string, GcState>()
  for (const id of head.forgotten) {
    await repo.packs.deleteRecord(id).catch((err: unknown) => { log.error('forgotten snapshot %s not deleted here (the next sync tries again): %s', toHex(id).slice(0, 16), errorMessage(err)) })
  }
  for (const [key, state] of view) {
    if (state === GcState.Forgotten) continue
    const id = fromHex(key)
    const note = notes.get(id)
    if (note === undefined) { fresh.set(key, state); continue }
    if (note.state === GcState.Condemned && state === GcState.Deleted) {
      await repo.index.removePacks([id])
      await notes.put(id, { ...note, state: GcState.Deleted })
    }
  }
  if (fresh.size > 0) {
    const blobs = new Map<string, Uint8Array[]>()
    for (const { id, location } of repo.index.allBlobs()) {
      const key = toHex(location.pack)
      if (!fresh.has(key)) continue
      let list = blobs.get(key)
      if (list === undefined) { list = []; blobs.set(key, list) }
      list.push(id)
    }
    const t = now()
    for (const [key, state] of fresh) await notes.put(fromHex(key), { seenMs: t, state, blobs: concatBytes(blobs.get(key) ?? []) })
    await repo.index.removeBlobsOf([...fresh].filter(([, s]) => s === GcState.Condemned).map(([k]) => fromHex(k)))
    await repo.index.removePacks([...fresh].filter(([, s]) => s === GcState.Deleted).map(([k]) => fromHex(k)))
    log('%d pack(s) newly condemned or deleted by a record: %s', fresh.size, [...fresh].map(([k, st]) => `${k.slice(0, 16)}=${st} (${(blobs.get(k) ?? []).length} blobs indexed here)`).join(', '))
  }
  for (const { pack, note } of [...notes.entries()]) {
    if (view.has(toHex(pack)) || note.state === GcState.Deleted) continue
    // condemned or revived, and no visible record names it now: it is an ordinary pack again
    await notes.delete(pack)
    await repo.index.removePacks([pack])
    log('pack %s is no longer condemned: it is indexed again', toHex(pack).slice(0, 16))
  }
  await repo.index.flush()
  return { head, view }
}

/**
 * `forget` on any device: the snapshots' records are deleted here and on every friend that answers,
 * and a gc record names them forgotten, so a device that still holds a copy deletes it instead of
 * sending it to friends again (docs/gc.md §9).
 */
export async function recordForgotten (repo: Repository, ids: readonly Uint8Array[], opts: { now: () => number, host: string }): Promise<void> {
  if (ids.length === 0) return
  for (const id of ids) await repo.packs.deleteRecord(id)
  const head = await readHead(repo.packs, repo.sodium, repo.identity)
  await writeMergedRecord(repo, gcView(head.gc), new Map(ids.map(id => [toHex(id), GcState.Forgotten])), head.gc, opts)
}

/** The blob ids a note holds. */
export function noteBlobs (note: GcNote): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let i = 0; i + 32 <= note.blobs.byteLength; i += 32) out.push(note.blobs.subarray(i, i + 32))
  return out
}

/**
 * Every tree and chunk id the given snapshots reference (hex), added to `live`. Refuses to guess
 * if a tree is unreadable: a prune that cannot see what a snapshot uses deletes nothing.
 */
export async function addLiveBlobs (repo: Repository, snapshots: readonly Snapshot[], live: Set<string>, signal?: AbortSignal): Promise<void> {
  const walk = async (tree: TreeId): Promise<void> => {
    const hex = toHex(tree)
    if (live.has(hex)) return
    signal?.throwIfAborted()
    let nodes
    try {
      nodes = (await repo.loadTree(tree)).nodes // a tree only a condemned pack holds included
    } catch (err: unknown) {
      throw new CorruptDataError(`tree ${hex.slice(0, 16)} cannot be read (${errorMessage(err)}); prune stops so as not to delete data it cannot see is used. Run \`p2pbak check --read-data\`, and make sure the devices' snapshots are on friends that answer`, { cause: err })
    }
    live.add(hex)
    for (const n of nodes) {
      if (n.subtree !== undefined) await walk(n.subtree)
      for (const c of n.content ?? []) live.add(toHex(c))
    }
  }
  for (const s of snapshots) await walk(s.record.tree)
}

/**
 * Writes one record holding every entry of `view` but the packs this device revived, with the
 * states of `updates` on top, then deletes the records it replaces (`replaced`). Skipped when it
 * would say what a single existing record already says.
 */
export async function writeMergedRecord (repo: Repository, view: ReadonlyMap<string, GcState>, updates: ReadonlyMap<string, GcState>, replaced: readonly GcRecordRef[], opts: { now: () => number, host: string }): Promise<GcRecordRef | undefined> {
  const merged = new Map(view)
  for (const [k, s] of updates) merged.set(k, Math.max(s, merged.get(k) ?? 0) as GcState)
  for (const { pack, note } of repo.index.gc.entries()) if (note.state === GC_NOTE_REVIVED) merged.delete(toHex(pack))
  const entries: GcEntry[] = normalizeGcEntries([...merged].map(([k, state]) => ({ pack: fromHex(k), state })))
  const only = replaced.length === 1 ? replaced[0] : undefined
  if (entries.length === 0 && replaced.length === 0) return undefined
  // (a version 1 record is written again as version 2, which write-only machines can read)
  if (only !== undefined && only.envelopeVersion !== 1 && sameEntries(only.record.entries, entries)) return only
  let written: GcRecordRef | undefined
  if (entries.length > 0) {
    const record = { version: 1 as const, time: BigInt(opts.now()), host: opts.host, entries }
    const sealed = sealGcRecord(repo.sodium, repo.identity, record)
    await repo.packs.putRecord(sealed.id, sealed.envelope)
    written = { id: sealed.id, record, envelopeVersion: GC_ENVELOPE_VERSION }
  }
  const id = written?.id
  // the new record is durable (on this disk and every friend that answers) before the old ones go
  for (const r of replaced) {
    if (id !== undefined && toHex(r.id) === toHex(id)) continue
    await repo.packs.deleteRecord(r.id).catch((err: unknown) => { log.error('old gc record %s not deleted (the next prune tries again): %s', toHex(r.id).slice(0, 16), errorMessage(err)) })
  }
  return written
}

function sameEntries (a: readonly GcEntry[], b: readonly GcEntry[]): boolean {
  return a.length === b.length && a.every((e, i) => e.state === b[i]?.state && toHex(e.pack) === toHex(b[i]?.pack ?? new Uint8Array()))
}

/**
 * The check a queued delete of a pruned pack passes just before it is sent (docs/gc.md §8): every
 * snapshot of every device is listed and walked once per call; a pack holding a live blob no other
 * pack holds is still needed, and is revived (records drop it, devices index it again). When the
 * snapshots cannot all be read, the answer is undefined for every pack: unknown, the deletes wait.
 */
export function stillNeededCheck (repo: Repository): () => Promise<(pack: Uint8Array) => Promise<boolean | undefined>> {
  return async () => {
    const live = new Set<string>()
    try {
      const head = await readHead(repo.packs, repo.sodium, repo.identity)
      if (head.damaged.length > 0) return async () => undefined
      await addLiveBlobs(repo, head.snapshots, live)
    } catch (err: unknown) {
      log.error('queued deletes wait: the snapshots cannot all be read now (%s)', errorMessage(err))
      return async () => undefined
    }
    return async (pack) => {
      const note = repo.index.gc.get(pack)
      if (note === undefined) return false
      const needed = noteBlobs(note).some(b => live.has(toHex(b)) && repo.index.getBlob(b) === undefined)
      if (needed && note.state !== GC_NOTE_REVIVED) await repo.index.gc.put(pack, { ...note, state: GC_NOTE_REVIVED })
      return needed
    }
  }
}
