/**
 * The last step of a backup under the lock-free garbage collection (docs/gc.md §6): before its
 * snapshot record is written, a backup looks at the condemnation records once more. A pack it relied
 * on (deduplicated against, or wrote itself) that a prune condemned meanwhile is rescued: its blobs
 * are copied into new packs, so the snapshot never depends on a condemned pack; a pack already
 * deleted fails the backup (no snapshot is written; the next backup reads the files again). A backup
 * suspended between that look and its record for a minute or more (at most half a grace period) looks again after
 * writing, and takes its record back if a pack it relied on was condemned meanwhile.
 */
import { PacksGoneError, errorMessage } from '../errors.js'
import type { Identity, SodiumBackend } from '../crypto/index.js'
import { GcState } from '../format/gc-record.js'
import type { SnapshotRecord } from '../format/snapshot.js'
import { asPackId, type SnapshotId, type TreeId } from '../ids.js'
import { fromHex, toHex } from '../util/bytes.js'
import { scopedLogger } from '../util/log.js'
import type { Repository } from './repository.js'
import { saveSnapshot } from './snapshots.js'
import { syncCondemned } from './gc.js'

const log = scopedLogger('repo:gc')

export interface CommitOptions {
  /** this device's clock. @default Date.now */
  now?: () => number
  /** the grace period of the group's prunes (docs/gc.md §3); 0: no other device prunes this store. @default 0 */
  graceMs?: number
  /** progress: a condemned pack's blobs copied into new packs */
  onRescue?: (pack: string, blobs: number) => void
  /** called before each look at the records and before the record is written (a test's step boundary) */
  onStep?: (step: 'look' | 'write') => Promise<void>
  /** an incremental run: the base snapshot's root tree and the subtrees taken from it unlisted */
  reused?: { base: TreeId, subtrees: readonly TreeId[] }
}

/** A look and the record it allows are milliseconds apart; longer means the process slept in between. */
const RECHECK_AFTER_MS = 60_000

/** Rounds of rescue before giving up (a prune condemning the rescued copies again at once). */
const MAX_RESCUE_ROUNDS = 3

type CommitRepo = Repository & { sodium: SodiumBackend, identity: Identity }

/**
 * The packs this backup relied on that some record condemns or deletes, by state. A pack this device
 * revived counts as condemned while a record still names it (`view`): another device may still delete
 * it, so it is rescued like one (docs/gc.md §6).
 */
function threatened (repo: Repository, view?: ReadonlyMap<string, GcState>): Map<string, number> {
  const out = new Map<string, number>()
  for (const key of repo.relied) {
    const note = repo.index.gc.get(fromHex(key))
    if (note === undefined) continue
    if (note.state === GcState.Condemned || note.state === GcState.Deleted) out.set(key, note.state)
    else if ((view?.get(key) ?? 0) >= GcState.Condemned) out.set(key, GcState.Condemned)
  }
  return out
}

async function rescue (repo: Repository, key: string, options: CommitOptions): Promise<void> {
  const id = asPackId(fromHex(key))
  let copied = 0
  try {
    for (const e of await repo.reader.readHeader(id)) {
      const plain = await repo.loadBlob(e.id, { pack: id, type: e.type, compression: e.compression, offset: e.offset, length: e.length, rawLength: e.rawLength })
      await repo.saveBlob(e.type, e.id, plain, { force: true })
      copied++
    }
  } catch (err: unknown) {
    throw new PacksGoneError(`pack ${key.slice(0, 16)}, which this backup relied on, was condemned by another device's prune and cannot be read now (${errorMessage(err)}); no snapshot was written: run the backup again`, { cause: err })
  }
  options.onRescue?.(key, copied)
  log('rescued condemned pack %s: %d blob(s) copied into new packs', key.slice(0, 16), copied)
}

/** Writes the snapshot record once no pack the backup relied on is condemned or gone. */
export async function commitSnapshot (repo: CommitRepo, record: SnapshotRecord, options: CommitOptions = {}): Promise<SnapshotId> {
  const now = options.now ?? Date.now
  const grace = options.graceMs ?? 0
  if (repo.identity.boxSecretKey === null) return await commitWriteOnly(repo, record, options)
  for (let round = 0; ; round++) {
    await options.onStep?.('look')
    const checked = now()
    const { head, view } = await syncCondemned(repo, now)
    // subtrees reused from a base snapshot that is still listed use packs no prune condemns; once it
    // was forgotten, every pack below them counts as relied on (docs/gc.md §6.2)
    const reused = options.reused
    if (reused !== undefined && reused.subtrees.length > 0 && !head.snapshots.some(s => toHex(s.record.tree) === toHex(reused.base))) await relyOnSubtrees(repo, reused.subtrees)
    const bad = threatened(repo, view)
    if (bad.size === 0) {
      await options.onStep?.('write')
      const id = await saveSnapshot(repo.packs, repo.sodium, repo.identity, record, repo.recordSigner)
      if (grace > 0 && now() - checked >= Math.min(grace / 2, RECHECK_AFTER_MS)) await recheckAfterWrite(repo, id, now)
      return id
    }
    const deleted = [...bad].filter(([, s]) => s === GcState.Deleted).map(([k]) => k)
    if (deleted.length > 0) {
      throw new PacksGoneError(`${deleted.length} pack(s) this backup relied on were deleted by another device's prune while it ran (first: ${(deleted[0] ?? '').slice(0, 16)}); no snapshot was written: run the backup again, it stores that data anew`)
    }
    if (round >= MAX_RESCUE_ROUNDS) throw new PacksGoneError(`packs this backup relied on were condemned again after ${MAX_RESCUE_ROUNDS} rescues; no snapshot was written: run the backup again`)
    for (const key of bad.keys()) await rescue(repo, key, options)
    await repo.flush()
    for (const key of bad.keys()) repo.relied.delete(key)
  }
}

/**
 * The same on a write-only machine (docs/gc.md §6.3): it opens the gc records with its gc view key,
 * but cannot read a pack's blobs, so a relied-on pack that a prune condemned is not rescued: the
 * backup fails with PacksGoneError and writes no record, and the next run (the backup job runs it
 * again at once) stores that data anew, since the look took the pack's blobs out of the index. It
 * cannot take a record back either (persisters refuse a write-only device's deletes), so the check
 * that full devices make after writing comes before: a look older than min(G/2, 60 s) when the record
 * is about to be written (the process slept) is made again. A write that itself lasted a grace period
 * or more is looked at after, and reported.
 */
async function commitWriteOnly (repo: CommitRepo, record: SnapshotRecord, options: CommitOptions): Promise<SnapshotId> {
  const now = options.now ?? Date.now
  const grace = options.graceMs ?? 0
  if (repo.identity.gcView === null) {
    log.error('this write-only machine\'s key file carries no gc view key (version 1): it cannot see what prunes condemned before it commits a snapshot; export a new key on a full machine (`p2pbak export-write-only-key`)')
    await options.onStep?.('write')
    return await saveSnapshot(repo.packs, repo.sodium, repo.identity, record, repo.recordSigner)
  }
  for (let round = 0; ; round++) {
    await options.onStep?.('look')
    const checked = now()
    const { head } = await syncCondemned(repo, now)
    for (const u of head.unread ?? []) log.error('gc record %s cannot be read here (%s): this backup does not know what it says', u.id.slice(0, 16), errorMessage(u.error))
    const bad = threatened(repo)
    if (bad.size > 0) {
      throw new PacksGoneError(`${bad.size} pack(s) this backup relied on were condemned or deleted by a prune on one of your full machines while it ran (first: ${([...bad.keys()][0] ?? '').slice(0, 16)}); a write-only machine cannot copy their data out, so no snapshot was written: run the backup again, it stores that data anew`)
    }
    await options.onStep?.('write')
    if (grace > 0 && now() - checked >= Math.min(grace / 2, RECHECK_AFTER_MS)) {
      if (round >= MAX_RESCUE_ROUNDS) throw new PacksGoneError(`this backup's look at the gc records went stale ${round + 1} times before its record could be written (the machine sleeps or stalls); no snapshot was written: run the backup again`)
      continue
    }
    const id = await saveSnapshot(repo.packs, repo.sodium, repo.identity, record, repo.recordSigner)
    // a prune deletes a pack only after a device read every snapshot a grace period after the pack
    // was condemned: a record written within G of the look was listed then, and its packs revived
    if (grace > 0 && now() - checked >= grace) {
      await syncCondemned(repo, now)
      const late = threatened(repo)
      if (late.size > 0) {
        throw new PacksGoneError(`this write-only machine stalled for a grace period or more while writing snapshot ${toHex(id).slice(0, 16)}, and meanwhile ${late.size} pack(s) it relies on were condemned; it cannot take the record back: run the backup again, then \`p2pbak check\` and \`forget\` that snapshot on a full machine`)
      }
    }
    return id
  }
}

/** Marks as relied on every pack holding a tree or chunk below these subtrees, condemned ones included. */
async function relyOnSubtrees (repo: Repository, subtrees: readonly TreeId[]): Promise<void> {
  const seen = new Set<string>()
  const rely = (id: Uint8Array): void => {
    if (repo.hasBlob(id)) return
    const pack = repo.condemnedPackOf(id)
    if (pack !== undefined) repo.relied.add(toHex(pack))
  }
  const walk = async (tree: TreeId): Promise<void> => {
    const key = toHex(tree)
    if (seen.has(key)) return
    seen.add(key)
    rely(tree)
    for (const n of (await repo.loadTree(tree)).nodes) {
      for (const c of n.content ?? []) rely(c)
      if (n.subtree !== undefined) await walk(n.subtree)
    }
  }
  for (const t of subtrees) await walk(t)
}

/** The backup slept between its look and its record: look again, and take the record back if it must. */
async function recheckAfterWrite (repo: CommitRepo, id: SnapshotId, now: () => number): Promise<void> {
  const { view } = await syncCondemned(repo, now)
  const bad = threatened(repo, view)
  if (bad.size === 0) return
  await repo.packs.deleteRecord(id)
  throw new PacksGoneError(`this backup was suspended just before writing its snapshot, and meanwhile ${bad.size} pack(s) it relied on were condemned (first: ${toHex(fromHex([...bad.keys()][0] ?? '')).slice(0, 16)}); its snapshot was taken back: run the backup again`)
}
