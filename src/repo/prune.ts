/**
 * Garbage collection after `forget`, in two phases a grace period apart and without a lock between
 * devices (docs/gc.md):
 *   condemn  a pack every blob of which no snapshot of any device references is named in a
 *            condemnation record (on this disk and every friend); from then on no device
 *            deduplicates against it, and a backup that relied on it copies its blobs out;
 *   sweep    a pack this device has seen condemned for at least the grace period (its own clock) is
 *            checked once more against every snapshot listed just now and deleted if still unused,
 *            or revived if a snapshot uses it again.
 * With a grace period of 0 (a store no other device writes: the embedded default, under the home's
 * writer lock) both phases run in one prune, and mostly dead packs are also repacked. New packs are
 * stored and indexed before anything is deleted; a crash at any point leaves every snapshot
 * readable and the next prune finishes the work.
 */
import { CorruptDataError } from '../errors.js'
import { BlobType } from '../format/pack.js'
import { GcState } from '../format/gc-record.js'
import { asPackId, type PackId } from '../ids.js'
import { concatBytes, fromHex, toHex } from '../util/bytes.js'
import { scopedLogger } from '../util/log.js'
import type { AbortOptions } from '../store/index.js'
import type { Repository } from './repository.js'
import { readHead, type HeadListing } from './snapshots.js'
import { rebuildIndex } from './rebuild-index.js'
import { addLiveBlobs, gcView, noteBlobs, syncCondemned, writeMergedRecord } from './gc.js'
import { GC_NOTE_REVIVED, type GcNote } from '../store/index.js'

const log = scopedLogger('repo:prune')

export interface PruneOptions extends AbortOptions {
  /** only report what would be done */
  dryRun?: boolean
  /** repack a pack when more than this fraction of its bytes is dead (grace 0 only). @default 0.2 */
  maxUnusedFraction?: number
  /** snapshots (hex ids) to treat as gone: what `forget --dry-run` would remove */
  ignoreSnapshots?: ReadonlySet<string>
  /** how long a pack stays condemned before it may be deleted (docs/gc.md §3). @default 0 */
  graceMs?: number
  /** this device's clock. @default Date.now */
  now?: () => number
  /** the device name written into condemnation records. @default '' */
  host?: string
  /** called between the phases (condemn, sweep) with the records written; a test's crash point */
  onPhase?: (phase: 'condemned' | 'swept') => Promise<void>
}

export interface PruneReport {
  packs: number
  /** packs deleted now (their deletes sent, or queued where a friend keeps them under its retention policy) */
  packsDeleted: number
  packsRepacked: number
  /** packs newly condemned by this prune */
  packsCondemned: number
  /** condemned packs whose grace period has not passed on this device yet */
  packsWaiting: number
  /** condemned packs a snapshot uses again: no longer condemned */
  packsRevived: number
  blobsLive: number
  blobsRemoved: number
  /** bytes of packs deleted from the store */
  bytesDeleted: number
  /** plaintext bytes of live blobs moved to new packs */
  bytesRepacked: number
  /** bytes of new packs written by repacking */
  bytesWritten: number
  /** the grace period applied, ms */
  graceMs: number
  dryRun: boolean
  /**
   * Why this prune condemned or deleted nothing (a friend's listing of the records failed, or no
   * friend answered while other devices of this person write): null when it ran in full. The next
   * prune does what this one left (docs/gc.md §4.4).
   */
  postponed: string | null
}

interface PackUse { live: Array<{ id: Uint8Array, type: number }>, liveBytes: number, deadBytes: number, dead: Uint8Array[] }

export async function prune (repo: Repository, options: PruneOptions = {}): Promise<PruneReport> {
  const maxUnused = options.maxUnusedFraction ?? 0.2
  const grace = options.graceMs ?? 0
  const now = options.now ?? Date.now
  const signal = options.signal
  const { head, view } = await syncCondemned(repo, now)
  await rebuildIndex(repo, options)
  if (head.damaged.length > 0) throw new CorruptDataError(`${head.damaged.length} record(s) of the head cannot be read; prune would not know what they use. Run \`p2pbak check\` first`)
  const doubt = headDoubt(head)
  if (doubt !== undefined) {
    log.error('prune postponed: %s', doubt)
    const waiting = [...repo.index.gc.entries()].filter(({ note }) => note.state === GcState.Condemned).length
    return { packs: repo.index.countPacks(), packsDeleted: 0, packsRepacked: 0, packsCondemned: 0, packsWaiting: waiting, packsRevived: 0, blobsLive: 0, blobsRemoved: 0, bytesDeleted: 0, bytesRepacked: 0, bytesWritten: 0, graceMs: grace, dryRun: options.dryRun === true, postponed: doubt }
  }
  const ignored = (id: Uint8Array): boolean => options.ignoreSnapshots?.has(toHex(id)) === true
  const seen = new Set(head.snapshots.map(s => toHex(s.id)))
  const live = new Set<string>()
  await addLiveBlobs(repo, head.snapshots.filter(s => !ignored(s.id)), live, signal)

  // per indexed pack: its blobs, live and dead, with their stored sizes
  const use = new Map<string, PackUse>()
  for (const { id, location } of repo.index.allBlobs()) {
    const key = toHex(location.pack)
    let u = use.get(key)
    if (u === undefined) { u = { live: [], liveBytes: 0, deadBytes: 0, dead: [] }; use.set(key, u) }
    if (live.has(toHex(id))) { u.live.push({ id, type: location.type }); u.liveBytes += location.length } else { u.dead.push(id); u.deadBytes += location.length }
  }
  const report: PruneReport = { packs: repo.index.countPacks(), packsDeleted: 0, packsRepacked: 0, packsCondemned: 0, packsWaiting: 0, packsRevived: 0, blobsLive: 0, blobsRemoved: 0, bytesDeleted: 0, bytesRepacked: 0, bytesWritten: 0, graceMs: grace, dryRun: options.dryRun === true, postponed: null }
  const toCondemn: string[] = []
  const toRepack: string[] = []
  for (const info of repo.index.listPacks()) {
    const key = toHex(info.id)
    const u = use.get(key)
    if (u === undefined || repo.index.gc.get(info.id) !== undefined) continue // condemned already, or no blob indexed here
    report.blobsLive += u.live.length
    if (u.dead.length === 0) continue
    // a pack only some of whose blobs the index places here shares blobs with another pack: it is
    // condemned only when the index knows all of its blobs (docs/gc.md §4.1)
    const complete = u.live.length + u.dead.length === info.blobs
    if (u.live.length === 0 && complete) { toCondemn.push(key); report.blobsRemoved += u.dead.length } else if (grace === 0 && u.live.length > 0 && u.deadBytes / (u.deadBytes + u.liveBytes) > maxUnused) { toRepack.push(key); report.blobsRemoved += u.dead.length }
  }
  report.packsCondemned = toCondemn.length
  report.packsRepacked = toRepack.length
  const dueOf = (t: number): string[] => [...repo.index.gc.entries()].filter(({ note }) => note.state === GcState.Condemned && t - note.seenMs >= grace).map(({ pack }) => toHex(pack))
  if (options.dryRun === true) {
    const due = new Set([...dueOf(now()), ...(grace === 0 ? [...toCondemn, ...toRepack] : [])])
    report.packsDeleted = due.size
    for (const key of due) report.bytesDeleted += repo.index.getPack(fromHex(key))?.size ?? 0
    for (const key of toRepack) for (const b of use.get(key)?.live ?? []) report.bytesRepacked += repo.locate(b.id).rawLength
    const waitingNow = dueOf(now()).length
    report.packsWaiting = [...repo.index.gc.entries()].filter(({ note }) => note.state === GcState.Condemned).length - waitingNow + (grace > 0 ? toCondemn.length : 0)
    return report
  }

  // 1. repack (grace 0 only): live blobs of mostly dead packs move to new packs, stored and indexed
  // before anything is deleted; the old packs are then condemned like dead ones
  const before = repo.stats.packBytesAdded
  for (const key of toRepack) {
    for (const b of use.get(key)?.live ?? []) {
      signal?.throwIfAborted()
      const plain = await repo.loadBlob(b.id)
      report.bytesRepacked += plain.byteLength
      await repo.saveBlob(b.type === BlobType.Tree ? BlobType.Tree : BlobType.Data, b.id, plain, { force: true })
    }
  }
  await repo.flush()
  report.bytesWritten = repo.stats.packBytesAdded - before

  // 2. condemn: the note (this device's clock), no dedup against it, then the record friends hold
  const t = now()
  for (const key of [...toCondemn, ...toRepack]) {
    const u = use.get(key)
    await repo.index.gc.put(fromHex(key), { seenMs: t, state: GcState.Condemned, blobs: concatBytes([...(u?.dead ?? []), ...(u?.live.map(b => b.id) ?? [])]) })
  }
  for (const key of [...toCondemn, ...toRepack]) log('condemned pack %s: blobs %s', key.slice(0, 16), (use.get(key)?.dead ?? []).map(b => toHex(b).slice(0, 16)).join(' '))
  await repo.index.removeBlobsOf([...toCondemn, ...toRepack].map(fromHex))
  await repo.index.flush()
  const condemned = new Map([...toCondemn, ...toRepack].map(k => [k, GcState.Condemned as GcState]))
  const host = options.host ?? ''
  const first = await writeMergedRecord(repo, view, condemned, head.gc, { now, host })
  const standing = first === undefined ? [] : [first]
  await options.onPhase?.('condemned')

  // 3. sweep: what this device has seen condemned for the grace period, checked against every
  // snapshot listed now (a backup may have finished since), then deleted or revived
  const due = dueOf(now())
  const updates = new Map(condemned)
  const fresh = due.length > 0 ? await readHead(repo.packs, repo.sodium, repo.identity) : undefined
  if (fresh !== undefined) {
    if (fresh.damaged.length > 0) throw new CorruptDataError(`${fresh.damaged.length} record(s) of the head cannot be read; the sweep stops. Run \`p2pbak check\` first`)
    report.postponed = headDoubt(fresh) ?? null
    if (report.postponed !== null) log.error('sweep postponed: %s', report.postponed)
  }
  if (fresh !== undefined && report.postponed === null) {
    await addLiveBlobs(repo, fresh.snapshots.filter(s => !seen.has(toHex(s.id)) && !ignored(s.id)), live, signal)
    signal?.throwIfAborted()
    // a pack that a record of either head read by this prune condemns or deletes, or that this device
    // has a note of (condemned, revived or deleted): another device's sweep may be deleting it at this
    // moment, relying on the copy in the pack here, so a copy there does not count (docs/gc.md §4.3)
    const freshView = gcView(fresh.gc)
    const shaky = (pack: Uint8Array): boolean => (freshView.get(toHex(pack)) ?? 0) >= GcState.Condemned ||
      (view.get(toHex(pack)) ?? 0) >= GcState.Condemned || repo.index.gc.get(pack) !== undefined
    // not cancellable from here on: a deleted pack must leave the index in this run
    const gone: Uint8Array[] = []
    for (const key of due) {
      const id = asPackId(fromHex(key))
      const note = repo.index.gc.get(id)
      if (note === undefined) continue
      const blobs = await blobsOf(repo, id, note)
      if (blobs === undefined) continue
      // needed: a live blob no other sound pack holds (a condemned pack's own entries left the index
      // when it was condemned). Its header, not the note, says what it holds: a note taken from another
      // device's record lists only the blobs this device's index placed there
      const needed = blobs.filter(b => live.has(toHex(b))).find(b => {
        const other = repo.index.getBlob(b)?.pack
        return other === undefined || toHex(other) === key || shaky(other)
      })
      if (needed !== undefined) {
        const other = repo.index.getBlob(needed)?.pack
        log('pack %s was condemned but a snapshot uses its blob %s, %s', key.slice(0, 16), toHex(needed).slice(0, 16), other === undefined ? 'which no other pack holds' : `whose other copy is in pack ${toHex(other).slice(0, 16)}, which a record condemns`)
        await revive(repo, id, note)
        report.packsRevived++
        updates.delete(key)
        continue
      }
      // only a device whose index knows where the pack's shares are deletes it (another device's
      // prune does, or this one's once a listing found them)
      if (repo.index.getPack(id) === undefined && !repo.packs.listIsAuthoritative) continue
      report.bytesDeleted += repo.index.getPack(id)?.size ?? 0
      log('deleting pack %s (seen condemned at %d): blobs %s', key.slice(0, 16), note.seenMs, blobs.map(b => toHex(b).slice(0, 16)).join(' '))
      await repo.packs.deletePack(id)
      gone.push(id)
      await repo.index.gc.put(id, { ...note, state: GcState.Deleted })
      updates.set(key, GcState.Deleted)
      report.packsDeleted++
    }
    await repo.index.removePacks(gone)
    await repo.index.flush()
  }
  report.packsWaiting = [...repo.index.gc.entries()].filter(({ note }) => note.state === GcState.Condemned).length
  if (report.packsDeleted > 0 || report.packsRevived > 0) {
    await writeMergedRecord(repo, view, updates, standing, { now, host })
  }
  await options.onPhase?.('swept')
  return report
}

/** A snapshot uses a condemned pack again: its blobs go back into the index and records drop it. */
async function revive (repo: Repository, id: PackId, note: { seenMs: number, blobs: Uint8Array }): Promise<void> {
  const info = repo.index.getPack(id)
  try {
    const entries = await repo.reader.readHeader(id)
    if (info !== undefined) await repo.index.addPack(info, entries)
  } catch (err: unknown) {
    log.error('revived pack %s cannot be indexed again now (the next rebuild does): %s', toHex(id).slice(0, 16), String(err))
  }
  await repo.index.gc.put(id, { seenMs: note.seenMs, state: GC_NOTE_REVIVED, blobs: note.blobs })
  log('pack %s was condemned but a snapshot uses it: revived', toHex(id).slice(0, 16))
}

/**
 * The blob ids a condemned pack holds: from its header, or, when the header cannot be read now,
 * from its note (undefined when that is empty too: the pack waits).
 */
async function blobsOf (repo: Repository, id: PackId, note: GcNote): Promise<Uint8Array[] | undefined> {
  try {
    return (await repo.reader.readHeader(id)).map(e => e.id)
  } catch (err: unknown) {
    // a note made by sync holds only the blobs this device's index placed there: it stands for the
    // header only when it holds as many blobs as the pack
    const blobs = noteBlobs(note)
    const complete = blobs.length > 0 && blobs.length === repo.index.getPack(id)?.blobs
    log('condemned pack %s: its header cannot be read (%s); %s', toHex(id).slice(0, 16), String(err), complete ? `its note's ${blobs.length} blob(s) stand for it` : 'it waits')
    return complete ? blobs : undefined
  }
}

/**
 * Why a head may not show every snapshot, so that a prune must not act on it (docs/gc.md §4.4), or
 * undefined. A friend's listing that failed or was cut off may hide another device's newest snapshot
 * (its records are on friends only); so may a head no friend listed, when this person has other
 * devices. This device's own records are on its own disk, so alone it needs no friend.
 */
export function headDoubt (head: HeadListing): string | undefined {
  const l = head.listing
  if (l === undefined) return undefined
  if (l.incomplete.length > 0) return `the snapshot records on ${l.incomplete.length} of ${l.asked} friend(s) could not be listed in full (${l.incomplete.join('; ')}), so a snapshot of another device may be missing; the next prune tries again`
  if (l.otherDevices && l.answered === 0) return 'no friend holding the snapshot records answered, so the snapshots of your other devices are not known; the next prune tries again when friends are online'
  return undefined
}
