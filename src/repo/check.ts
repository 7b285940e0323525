/**
 * `check`: structure (every snapshot's trees load and every referenced blob is indexed and its pack
 * present) and, with readData, the data itself (every pack re-read, hashed, and every blob
 * authenticated). Problems are collected, never thrown one by one, and damaged blobs are traced back
 * to the files (snapshot + path) that use them. Each tree is read once, however many snapshots
 * share it.
 */
import { contentHash } from '../crypto/index.js'
import { BlobType } from '../format/pack.js'
import { GcState } from '../format/gc-record.js'
import type { TreeId, PackId } from '../ids.js'
import { equalBytes, toHex } from '../util/bytes.js'
import { errorMessage } from '../errors.js'
import { GC_NOTE_REVIVED, type AbortOptions } from '../store/index.js'
import type { Repository } from './repository.js'
import { listSnapshots } from './snapshots.js'
import { rebuildIndex } from './rebuild-index.js'
import { noteBlobs, syncCondemned } from './gc.js'

export interface CheckOptions extends AbortOptions {
  readData?: boolean
  /** with readData: check only this percentage of packs (chosen at random) */
  readDataSubsetPercent?: number
  onProgress?: (p: { stage: string, done: number, total: number }) => void
  /** this device's clock (condemnations first seen now are dated with it). @default Date.now */
  now?: () => number
}

export type CheckProblemKind = 'damaged-snapshot' | 'unreadable-tree' | 'missing-blob' | 'missing-pack' | 'damaged-pack' | 'damaged-blob' | 'condemned-pack'
export interface CheckProblem { kind: CheckProblemKind, id: string, message: string }
export interface DamagedFile { snapshot: string, path: string }

export interface CheckReport {
  snapshots: number
  trees: number
  packs: number
  packsRead: number
  blobsRead: number
  unindexedPacksAdded: number
  problems: CheckProblem[]
  damagedFiles: DamagedFile[]
  /** snapshots (hex ids) with a damaged or missing file or tree, or that use a pack a prune deleted (a condemned one is still read) */
  affectedSnapshots: string[]
}

export async function checkRepository (repo: Repository, options: CheckOptions = {}): Promise<CheckReport> {
  const problems: CheckProblem[] = []
  const report: CheckReport = { snapshots: 0, trees: 0, packs: 0, packsRead: 0, blobsRead: 0, unindexedPacksAdded: 0, problems, damagedFiles: [], affectedSnapshots: [] }

  // 1. packs: the index and the store agree (unknown packs indexed, vanished packs forgotten), and
  // the condemnation records are applied (a condemned pack's blobs are not in the index)
  const damagedBlobs = new Set<string>()
  await syncCondemned(repo, options.now ?? Date.now)
  const rebuilt = await rebuildIndex(repo, options)
  report.unindexedPacksAdded = rebuilt.packsAdded
  report.packs = rebuilt.packsScanned
  for (const d of rebuilt.damaged) problems.push({ kind: 'damaged-pack', id: d.pack, message: `pack ${d.pack.slice(0, 16)} cannot be read: ${errorMessage(d.error)}` })
  for (const id of rebuilt.packsForgotten) problems.push({ kind: 'missing-pack', id, message: `pack ${id.slice(0, 16)} was in the index but is gone from the store; the next backup stores its data again if the files still exist` })

  // 2. data: re-read packs, authenticate every blob
  if (options.readData === true) {
    let packs = [...repo.index.listPacks()]
    const pct = options.readDataSubsetPercent
    if (pct !== undefined && pct < 100) packs = packs.filter(() => Math.random() * 100 < pct)
    let done = 0
    for (const p of packs) {
      options.signal?.throwIfAborted()
      await readPack(repo, p.id, p.size, problems, damagedBlobs, report)
      options.onProgress?.({ stage: 'read-data', done: ++done, total: packs.length })
    }
  }

  // 3. structure: every snapshot's trees and the blobs they reference
  const { snapshots, damaged } = await listSnapshots(repo.packs, repo.sodium, repo.identity)
  for (const d of damaged) problems.push({ kind: 'damaged-snapshot', id: d.id, message: `snapshot record ${d.id.slice(0, 16)} is damaged: ${errorMessage(d.error)}` })
  report.snapshots = snapshots.length
  const walker = new TreeWalker(repo, problems, damagedBlobs, report, options)
  const affected = new Set<string>()
  for (const snap of snapshots) {
    const before = walker.condemnedHits
    for (const path of await walker.damagedPaths(snap.record.tree, '')) { report.damagedFiles.push({ snapshot: toHex(snap.id), path }); affected.add(toHex(snap.id)) }
    if (walker.condemnedHits > before) affected.add(toHex(snap.id))
  }
  report.affectedSnapshots = [...affected]
  return report
}

async function readPack (repo: Repository, id: PackId, size: number, problems: CheckProblem[], damagedBlobs: Set<string>, report: CheckReport): Promise<void> {
  const hex = toHex(id)
  const markAll = (): void => { for (const b of repo.index.blobsInPack(id)) damagedBlobs.add(toHex(b)) }
  let bytes: Uint8Array
  try {
    bytes = await repo.packs.getPackRange(id, 0, size)
  } catch (err: unknown) {
    problems.push({ kind: 'damaged-pack', id: hex, message: `pack ${hex.slice(0, 16)} cannot be read: ${errorMessage(err)}` })
    markAll()
    return
  }
  report.packsRead++
  if (!equalBytes(contentHash(bytes), id)) {
    problems.push({ kind: 'damaged-pack', id: hex, message: `pack ${hex.slice(0, 16)} is damaged: its content does not match its id` })
  }
  let parsed
  try {
    parsed = repo.reader.parsePack(bytes)
  } catch (err: unknown) {
    problems.push({ kind: 'damaged-pack', id: hex, message: `pack ${hex.slice(0, 16)} header is unreadable: ${errorMessage(err)}` })
    markAll()
    return
  }
  for (const e of parsed.entries) {
    report.blobsRead++
    try {
      const plain = repo.reader.openBlob(parsed.key, e.type, e.id, e.compression, e.rawLength, bytes.subarray(e.offset, e.offset + e.length))
      if (!equalBytes(repo.blobId(plain), e.id)) throw new Error('content does not match its id')
    } catch (err: unknown) {
      damagedBlobs.add(toHex(e.id))
      problems.push({ kind: 'damaged-blob', id: toHex(e.id), message: `${e.type === BlobType.Tree ? 'tree' : 'data'} blob ${toHex(e.id).slice(0, 16)} in pack ${hex.slice(0, 16)} is damaged: ${errorMessage(err)}` })
    }
  }
}

function condemnedIndex (repo: Repository): Map<string, { pack: string, state: number }> {
  const out = new Map<string, { pack: string, state: number }>()
  for (const { pack, note } of repo.index.gc.entries()) {
    if (note.state === GC_NOTE_REVIVED) continue
    for (const b of noteBlobs(note)) out.set(toHex(b), { pack: toHex(pack), state: note.state })
  }
  return out
}

/** Damaged files below each tree, relative to it; memoized per tree id, so shared trees are read once. */
class TreeWalker {
  private readonly memo = new Map<string, string[]>()
  private readonly missingReported = new Set<string>()
  /** blob (hex) → the condemned or deleted pack that held it, from this device's gc notes; built when first needed */
  private condemnedBlobs: Map<string, { pack: string, state: number }> | undefined
  /** how many missing blobs were found in condemned or deleted packs so far */
  condemnedHits = 0

  constructor (
    private readonly repo: Repository,
    private readonly problems: CheckProblem[],
    private readonly damagedBlobs: Set<string>,
    private readonly report: CheckReport,
    private readonly options: AbortOptions
  ) {}

  async damagedPaths (treeId: TreeId, where: string): Promise<string[]> {
    const hex = toHex(treeId)
    const known = this.memo.get(hex)
    if (known !== undefined) return known
    this.options.signal?.throwIfAborted()
    this.report.trees++
    const out: string[] = []
    let nodes
    try {
      if (this.damagedBlobs.has(hex)) throw new Error('its blob is damaged')
      nodes = (await this.repo.loadTree(treeId)).nodes
    } catch (err: unknown) {
      this.problems.push({ kind: 'unreadable-tree', id: hex, message: `directory ${where === '' ? '/' : where} (tree ${hex.slice(0, 16)}) cannot be read: ${errorMessage(err)}` })
      out.push('/ (whole directory)')
      this.memo.set(hex, out)
      return out
    }
    for (const node of nodes) {
      const rel = `/${Buffer.from(node.name).toString()}`
      if (node.type === 'dir' && node.subtree !== undefined) {
        for (const p of await this.damagedPaths(node.subtree, where + rel)) out.push(p.startsWith('/ (') ? `${rel} (whole directory)` : rel + p)
      } else if (node.type === 'file' && this.fileIsDamaged(node.content ?? [], where + rel)) {
        out.push(rel)
      }
    }
    this.memo.set(hex, out)
    return out
  }

  private condemnedOf (blob: string): { pack: string, state: number } | undefined {
    this.condemnedBlobs ??= condemnedIndex(this.repo)
    return this.condemnedBlobs.get(blob)
  }

  private fileIsDamaged (content: readonly Uint8Array[], path: string): boolean {
    let bad = false
    for (const c of content) {
      const ch = toHex(c)
      if (this.damagedBlobs.has(ch)) { bad = true; continue }
      if (!this.repo.hasBlob(c)) {
        const gone = this.condemnedOf(ch)
        // a pack condemned, not deleted, is still there: restore reads it (Repository.locateCondemned),
        // `--read-data` reads it with the other packs, and the next prune revives it (docs/gc.md §7)
        if (gone?.state === GcState.Condemned) continue
        bad = true
        if (gone !== undefined) this.condemnedHits++
        if (!this.missingReported.has(ch)) {
          this.problems.push(gone === undefined
            ? { kind: 'missing-blob', id: ch, message: `data blob ${ch.slice(0, 16)} of ${path} is missing` }
            : { kind: 'condemned-pack', id: gone.pack, message: `data blob ${ch.slice(0, 16)} of ${path} is only in pack ${gone.pack.slice(0, 16)}, which a prune deleted (docs/gc.md §7)` })
        }
        this.missingReported.add(ch)
      }
    }
    return bad
  }
}
