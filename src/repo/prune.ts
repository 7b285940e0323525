/**
 * Garbage collection after `forget`: finds the blobs no remaining snapshot references, deletes packs
 * that hold only such blobs, and rewrites ("repacks") packs that are mostly dead so their live blobs
 * move to new packs. Order, for crash safety: new packs are stored and indexed first; only then are
 * old packs deleted and forgotten by the index. A crash at any point leaves every snapshot readable
 * (at worst some garbage remains for the next prune). The caller holds the home's writer lock.
 */
import { CorruptDataError, errorMessage } from '../errors.js'
import { BlobType } from '../format/pack.js'
import { asPackId, type TreeId } from '../ids.js'
import { toHex } from '../util/bytes.js'
import type { AbortOptions } from '../store/index.js'
import type { Repository } from './repository.js'
import { listSnapshots } from './snapshots.js'
import { rebuildIndex } from './rebuild-index.js'

export interface PruneOptions extends AbortOptions {
  /** only report what would be done */
  dryRun?: boolean
  /** repack a pack when more than this fraction of its bytes is dead. @default 0.2 */
  maxUnusedFraction?: number
  /** snapshots (hex ids) to treat as gone: what `forget --dry-run` would remove */
  ignoreSnapshots?: ReadonlySet<string>
}

export interface PruneReport {
  packs: number
  packsDeleted: number
  packsRepacked: number
  blobsLive: number
  blobsRemoved: number
  /** bytes of packs deleted from the store */
  bytesDeleted: number
  /** plaintext bytes of live blobs moved to new packs */
  bytesRepacked: number
  /** bytes of new packs written by repacking */
  bytesWritten: number
  dryRun: boolean
}

/** Every tree and chunk id that some snapshot references (hex). Refuses to guess if a tree is unreadable. */
async function liveBlobs (repo: Repository, options: PruneOptions): Promise<Set<string>> {
  const live = new Set<string>()
  const { snapshots, damaged } = await listSnapshots(repo.packs, repo.sodium, repo.identity)
  if (damaged.length > 0) throw new CorruptDataError(`${damaged.length} snapshot record(s) cannot be read; prune would not know what they use. Run \`p2pbak check\` first`)
  const walk = async (tree: TreeId): Promise<void> => {
    const hex = toHex(tree)
    if (live.has(hex)) return
    options.signal?.throwIfAborted()
    let nodes
    try {
      nodes = (await repo.loadTree(tree)).nodes
    } catch (err: unknown) {
      throw new CorruptDataError(`tree ${hex.slice(0, 16)} cannot be read (${errorMessage(err)}); prune stops so as not to delete data it cannot see is used. Run \`p2pbak check --read-data\``, { cause: err })
    }
    live.add(hex)
    for (const n of nodes) {
      if (n.subtree !== undefined) await walk(n.subtree)
      for (const c of n.content ?? []) live.add(toHex(c))
    }
  }
  for (const s of snapshots) if (options.ignoreSnapshots?.has(toHex(s.id)) !== true) await walk(s.record.tree)
  return live
}

export async function prune (repo: Repository, options: PruneOptions = {}): Promise<PruneReport> {
  const maxUnused = options.maxUnusedFraction ?? 0.2
  await rebuildIndex(repo, options)
  const live = await liveBlobs(repo, options)

  // per pack: its blobs, split into live and dead, with their stored sizes
  interface PackUse { live: Array<{ id: Uint8Array, type: number }>, liveBytes: number, deadBytes: number, dead: number }
  const use = new Map<string, PackUse>()
  for (const { id, location } of repo.index.allBlobs()) {
    const key = toHex(location.pack)
    let u = use.get(key)
    if (u === undefined) { u = { live: [], liveBytes: 0, deadBytes: 0, dead: 0 }; use.set(key, u) }
    if (live.has(toHex(id))) { u.live.push({ id, type: location.type }); u.liveBytes += location.length } else { u.dead++; u.deadBytes += location.length }
  }
  const report: PruneReport = { packs: repo.index.countPacks(), packsDeleted: 0, packsRepacked: 0, blobsLive: 0, blobsRemoved: 0, bytesDeleted: 0, bytesRepacked: 0, bytesWritten: 0, dryRun: options.dryRun === true }
  const toDelete: string[] = []
  const toRepack: string[] = []
  for (const info of repo.index.listPacks()) {
    const key = toHex(info.id)
    const u = use.get(key) ?? { live: [], liveBytes: 0, deadBytes: 0, dead: 0 }
    report.blobsLive += u.live.length
    if (u.dead === 0) continue
    report.blobsRemoved += u.dead
    if (u.live.length === 0) toDelete.push(key)
    else if (u.deadBytes / (u.deadBytes + u.liveBytes) > maxUnused) toRepack.push(key)
    else report.blobsRemoved -= u.dead // kept: its dead blobs stay until enough of the pack is dead
  }
  for (const key of [...toDelete, ...toRepack]) report.bytesDeleted += repo.index.getPack(Buffer.from(key, 'hex'))?.size ?? 0
  report.packsDeleted = toDelete.length
  report.packsRepacked = toRepack.length
  if (options.dryRun === true) {
    for (const key of toRepack) for (const b of use.get(key)?.live ?? []) report.bytesRepacked += repo.locate(b.id).rawLength
    return report
  }

  // 1. move live blobs out of mostly dead packs (stored and indexed before anything is deleted)
  const before = repo.stats.packBytesAdded
  for (const key of toRepack) {
    for (const b of use.get(key)?.live ?? []) {
      options.signal?.throwIfAborted()
      const plain = await repo.loadBlob(b.id)
      report.bytesRepacked += plain.byteLength
      await repo.saveBlob(b.type === BlobType.Tree ? BlobType.Tree : BlobType.Data, b.id, plain, { force: true })
    }
  }
  await repo.flush()
  report.bytesWritten = repo.stats.packBytesAdded - before

  // 2. delete the old packs, then forget them. Not cancellable half way: a pack deleted but still
  // indexed could be reused by the next backup (a friend that keeps a share under the retention
  // policy still lists it); the deletes themselves are quick (refused ones are queued, not awaited)
  const gone = [...toDelete, ...toRepack].map(k => asPackId(Buffer.from(k, 'hex')))
  options.signal?.throwIfAborted()
  for (const id of gone) await repo.packs.deletePack(id)
  await repo.index.removePacks(gone)
  await repo.index.flush()
  return report
}
