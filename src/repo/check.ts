/**
 * `check`: structure (every snapshot's trees load and every referenced blob is indexed and its pack
 * present) and, with readData, the data itself (every pack re-read, hashed, and every blob
 * authenticated). Problems are collected, never thrown one by one, and damaged blobs are traced back
 * to the files (snapshot + path) that use them.
 */
import { contentHash } from '../crypto/index.js'
import type { TreeNode } from '../format/tree.js'
import { BlobType } from '../format/pack.js'
import type { TreeId, PackId } from '../ids.js'
import { equalBytes, toHex } from '../util/bytes.js'
import { errorMessage } from '../errors.js'
import type { AbortOptions } from '../store/index.js'
import type { Repository } from './repository.js'
import { listSnapshots, type Snapshot } from './snapshots.js'
import { rebuildIndex } from './rebuild-index.js'

export interface CheckOptions extends AbortOptions {
  readData?: boolean
  /** with readData: check only this percentage of packs (chosen at random) */
  readDataSubsetPercent?: number
  onProgress?: (p: { stage: string, done: number, total: number }) => void
}

export type CheckProblemKind = 'damaged-snapshot' | 'unreadable-tree' | 'missing-blob' | 'missing-pack' | 'damaged-pack' | 'damaged-blob'
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
}

export async function checkRepository (repo: Repository, options: CheckOptions = {}): Promise<CheckReport> {
  const problems: CheckProblem[] = []
  const report: CheckReport = { snapshots: 0, trees: 0, packs: 0, packsRead: 0, blobsRead: 0, unindexedPacksAdded: 0, problems, damagedFiles: [] }

  // 1. packs: the index and the store agree
  const rebuilt = await rebuildIndex(repo, options)
  report.unindexedPacksAdded = rebuilt.packsAdded
  for (const d of rebuilt.damaged) problems.push({ kind: 'damaged-pack', id: d.pack, message: `pack ${d.pack.slice(0, 16)} cannot be read: ${errorMessage(d.error)}` })
  const stored = new Set<string>()
  for await (const id of repo.packs.listPacks(options)) stored.add(toHex(id))
  const indexed = [...repo.index.listPacks()]
  report.packs = stored.size
  for (const p of indexed) {
    if (!stored.has(toHex(p.id))) problems.push({ kind: 'missing-pack', id: toHex(p.id), message: `pack ${toHex(p.id).slice(0, 16)} is in the index but not in the store` })
  }

  // 2. data: re-read packs, authenticate every blob
  const damagedBlobs = new Set<string>()
  for (const p of problems) if (p.kind === 'missing-pack' || p.kind === 'damaged-pack') markPackBlobs(repo, p.id, damagedBlobs)
  if (options.readData === true) {
    let packs = indexed.filter(p => stored.has(toHex(p.id)))
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
  const seenTrees = new Set<string>()
  const affected = new Set<string>()
  for (const snap of snapshots) {
    await walk(repo, snap, snap.record.tree, '', seenTrees, problems, damagedBlobs, report, affected, options)
  }
  return report
}

function markPackBlobs (repo: Repository, packHex: string, out: Set<string>): void {
  for (const id of blobsOfPack(repo, packHex)) out.add(id)
}

function blobsOfPack (repo: Repository, packHex: string): string[] {
  return repo.index.blobsInPack(Buffer.from(packHex, 'hex')).map(toHex)
}

async function readPack (repo: Repository, id: PackId, size: number, problems: CheckProblem[], damagedBlobs: Set<string>, report: CheckReport): Promise<void> {
  const hex = toHex(id)
  let bytes: Uint8Array
  try {
    bytes = await repo.packs.getPackRange(id, 0, size)
  } catch (err: unknown) {
    problems.push({ kind: 'damaged-pack', id: hex, message: `pack ${hex.slice(0, 16)} cannot be read: ${errorMessage(err)}` })
    markPackBlobs(repo, hex, damagedBlobs)
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
    markPackBlobs(repo, hex, damagedBlobs)
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

async function walk (
  repo: Repository, snap: Snapshot, treeId: TreeId, prefix: string, seen: Set<string>, problems: CheckProblem[],
  damagedBlobs: Set<string>, report: CheckReport, affected: Set<string>, options: AbortOptions
): Promise<void> {
  const hex = toHex(treeId)
  const snapHex = toHex(snap.id)
  // a tree shared by snapshots is checked once, but damaged files are reported for every snapshot
  const firstVisit = !seen.has(hex)
  seen.add(hex)
  if (firstVisit) report.trees++
  let nodes: TreeNode[]
  try {
    if (damagedBlobs.has(hex)) throw new Error('its blob is damaged')
    nodes = (await repo.loadTree(treeId)).nodes
  } catch (err: unknown) {
    if (firstVisit) problems.push({ kind: 'unreadable-tree', id: hex, message: `directory ${prefix || '/'} (tree ${hex.slice(0, 16)}) cannot be read: ${errorMessage(err)}` })
    report.damagedFiles.push({ snapshot: snapHex, path: (prefix || '/') + ' (whole directory)' })
    return
  }
  for (const node of nodes) {
    options.signal?.throwIfAborted()
    const path = `${prefix}/${Buffer.from(node.name).toString()}`
    if (node.type === 'dir' && node.subtree !== undefined) {
      await walk(repo, snap, node.subtree, path, seen, problems, damagedBlobs, report, affected, options)
    } else if (node.type === 'file') {
      let bad = false
      for (const c of node.content ?? []) {
        const ch = toHex(c)
        if (damagedBlobs.has(ch)) { bad = true; continue }
        if (!repo.hasBlob(c)) {
          bad = true
          if (!affected.has(ch)) problems.push({ kind: 'missing-blob', id: ch, message: `data blob ${ch.slice(0, 16)} of ${path} is missing` })
          affected.add(ch)
        }
      }
      if (bad) report.damagedFiles.push({ snapshot: snapHex, path })
    }
  }
}
