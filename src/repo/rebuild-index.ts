/**
 * Rebuilds the local index from the packs' own headers: after `recover` on a new machine, after
 * the index folder was deleted, or for packs another process wrote. Damaged packs are reported and
 * skipped; everything readable is indexed.
 */
import { toHex } from '../util/bytes.js'
import type { AbortOptions } from '../store/index.js'
import type { Repository } from './repository.js'

export interface RebuildSummary { packsScanned: number, packsAdded: number, blobsAdded: number, damaged: Array<{ pack: string, error: unknown }> }

export async function rebuildIndex (repo: Repository, options: AbortOptions & { full?: boolean } = {}): Promise<RebuildSummary> {
  if (options.full === true) await repo.index.clearAll()
  const summary: RebuildSummary = { packsScanned: 0, packsAdded: 0, blobsAdded: 0, damaged: [] }
  for await (const id of repo.packs.listPacks(options)) {
    options.signal?.throwIfAborted()
    summary.packsScanned++
    if (repo.index.getPack(id) !== undefined) continue
    try {
      const entries = await repo.reader.readHeader(id)
      const size = await repo.packs.packSize(id)
      await repo.index.addPack({ id, size, blobs: entries.length, k: 1, m: 0, time: Date.now(), kind: entries[0]?.type ?? 0 }, entries)
      summary.packsAdded++
      summary.blobsAdded += entries.length
    } catch (error: unknown) {
      summary.damaged.push({ pack: toHex(id), error })
    }
  }
  await repo.index.flush()
  return summary
}
