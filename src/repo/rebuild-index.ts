/**
 * Reconciles the local index with the packs in the store, as sets: packs the index does not know are
 * read (their headers) and indexed; packs the index lists but the store no longer has are forgotten,
 * so that the next backup stores their blobs again instead of deduplicating against missing data.
 * Runs after `recover` on a new machine, when the index folder was lost, and before every command
 * that reads or writes the repository. Damaged packs are reported and skipped.
 */
import { ClaimDistrust } from './distrust.js'
import { toHex } from '../util/bytes.js'
import type { AbortOptions } from '../store/index.js'
import type { Repository } from './repository.js'

export interface RebuildSummary {
  packsScanned: number
  packsAdded: number
  blobsAdded: number
  /** packs the index listed that are gone from the store (hex ids) */
  packsForgotten: string[]
  blobsForgotten: number
  damaged: Array<{ pack: string, error: unknown }>
}

export async function rebuildIndex (repo: Repository, options: AbortOptions & { full?: boolean } = {}): Promise<RebuildSummary> {
  if (options.full === true) await repo.index.clearAll()
  const summary: RebuildSummary = { packsScanned: 0, packsAdded: 0, blobsAdded: 0, packsForgotten: [], blobsForgotten: 0, damaged: [] }
  const stored = new Set<string>()
  // a peer listing made-up packs costs a failed read each: believed for a few in a row only (distrust.ts)
  const distrust = new ClaimDistrust(repo.packs.soleClaimant?.bind(repo.packs), 'pack')
  for await (const id of repo.packs.listPacks(options)) {
    options.signal?.throwIfAborted()
    summary.packsScanned++
    stored.add(toHex(id))
    if (repo.index.getPack(id) !== undefined) continue
    // a condemned or deleted pack is not indexed again: nobody may deduplicate against it (docs/gc.md §5)
    const note = repo.index.gc.get(id)
    if (note !== undefined && note.state !== 3) continue
    // a write-only machine cannot open pack headers: it deduplicates against what it wrote itself
    if (repo.identity.boxSecretKey === null) continue
    const refused = distrust.refusal(id)
    if (refused !== undefined) { summary.damaged.push({ pack: toHex(id), error: refused }); continue }
    try {
      const entries = await repo.reader.readHeader(id)
      const size = await repo.packs.packSize(id)
      const scheme = repo.packs.packScheme?.(id) ?? { k: 1, m: 0 }
      await repo.index.addPack({ id, size, blobs: entries.length, k: scheme.k, m: scheme.m, time: Date.now(), kind: entries[0]?.type ?? 0 }, entries)
      summary.packsAdded++
      summary.blobsAdded += entries.length
      distrust.note(id, true)
    } catch (error: unknown) {
      summary.damaged.push({ pack: toHex(id), error })
      distrust.note(id, false)
    }
  }
  // a pack unlisted by a non-authoritative store (holders offline) is not gone: keep it indexed
  const missing = repo.packs.listIsAuthoritative ? [...repo.index.listPacks()].filter(p => !stored.has(toHex(p.id))).map(p => p.id) : []
  summary.packsForgotten = missing.map(toHex)
  summary.blobsForgotten = await repo.index.removePacks(missing)
  // snapshots made before may name the blobs of these packs: continuous mode must walk again
  if (missing.length > 0) await repo.index.noteDataLost(Date.now())
  await repo.index.flush()
  return summary
}
