/** Reading snapshots without restoring them: walk a tree (ls), search names (find), compare (diff). */
import uFuzzy from '@leeoniya/ufuzzy'
import type { TreeNode } from '../format/tree.js'
import type { TreeId } from '../ids.js'
import { NotFoundError } from '../errors.js'
import type { Repository, Snapshot } from '../repo/index.js'
import { equalBytes, toHex } from '../util/bytes.js'

export interface WalkEntry { path: string, node: TreeNode }

/** Depth-first, in name order. `start` limits the walk to one path inside the snapshot. */
export async function * walkTree (repo: Repository, tree: TreeId, start = '/', prefix = ''): AsyncGenerator<WalkEntry> {
  const parts = start.split('/').filter(p => p !== '')
  let current = tree
  let base = prefix
  for (let i = 0; i < parts.length; i++) {
    const node = (await repo.loadTree(current)).nodes.find(n => Buffer.from(n.name).toString() === parts[i])
    if (node === undefined) throw new NotFoundError(`${'/' + parts.slice(0, i + 1).join('/')} is not in this snapshot`)
    base += '/' + parts[i]
    if (i === parts.length - 1) {
      yield { path: base, node }
      if (node.type !== 'dir' || node.subtree === undefined) return
    }
    if (node.subtree === undefined) throw new NotFoundError(`${base} is not a directory`)
    current = node.subtree
  }
  yield * walkAll(repo, current, base)
}

async function * walkAll (repo: Repository, tree: TreeId, prefix: string): AsyncGenerator<WalkEntry> {
  for (const node of (await repo.loadTree(tree)).nodes) {
    const path = `${prefix}/${Buffer.from(node.name).toString()}`
    yield { path, node }
    if (node.type === 'dir' && node.subtree !== undefined) yield * walkAll(repo, node.subtree, path)
  }
}

export interface FindHit { snapshotId: string, path: string, score: number, snapshots: string[], type: string }

/**
 * Fuzzy search of paths across all snapshots (uFuzzy: typo-tolerant, best match first). One hit per
 * distinct path, naming the newest snapshot that has it and all snapshots that do.
 */
export async function findPaths (repo: Repository, snapshots: readonly Snapshot[], pattern: string, limit = 50): Promise<FindHit[]> {
  const where = new Map<string, { snaps: string[], type: string }>()
  const treeCache = new Map<string, Array<{ rel: string, type: string }>>()
  const listTree = async (tree: TreeId): Promise<Array<{ rel: string, type: string }>> => {
    const key = toHex(tree)
    const cached = treeCache.get(key)
    if (cached !== undefined) return cached
    const out: Array<{ rel: string, type: string }> = []
    for await (const e of walkAll(repo, tree, '')) out.push({ rel: e.path, type: e.node.type })
    treeCache.set(key, out)
    return out
  }
  for (const snap of [...snapshots].reverse()) {
    const id = toHex(snap.id)
    for (const { rel, type } of await listTree(snap.record.tree)) {
      const w = where.get(rel)
      if (w === undefined) where.set(rel, { snaps: [id], type })
      else w.snaps.push(id)
    }
  }
  const haystack = [...where.keys()]
  const uf = new uFuzzy({ intraMode: 1, intraIns: 2 })
  const [idxs, info, order] = uf.search(haystack, pattern, 0, 1e4)
  if (idxs === null || idxs.length === 0) return []
  const ranked: number[] = order !== null && info !== null ? order.map(o => info.idx[o] as number) : idxs
  const hits: FindHit[] = []
  for (let rank = 0; rank < ranked.length && hits.length < limit; rank++) {
    const path = haystack[ranked[rank] as number] as string
    const w = where.get(path)
    if (w === undefined) continue
    hits.push({ snapshotId: w.snaps[0] as string, path, score: Number((1 - rank / ranked.length).toFixed(4)), snapshots: w.snaps, type: w.type })
  }
  return hits
}

export type DiffKind = '+' | '-' | 'M' | 'T' | 'U'
export interface DiffEntry { kind: DiffKind, path: string }

/** Compares two trees, skipping identical subtrees by id. M = content changed, T = type changed, U = metadata only. */
export async function * diffTrees (repo: Repository, a: TreeId | undefined, b: TreeId | undefined, prefix = ''): AsyncGenerator<DiffEntry> {
  if (a !== undefined && b !== undefined && equalBytes(a, b)) return
  const na = a === undefined ? [] : (await repo.loadTree(a)).nodes
  const nb = b === undefined ? [] : (await repo.loadTree(b)).nodes
  let i = 0
  let j = 0
  while (i < na.length || j < nb.length) {
    const x = na[i]
    const y = nb[j]
    const c = x === undefined ? 1 : y === undefined ? -1 : Buffer.compare(x.name, y.name)
    if (c < 0 && x !== undefined) {
      yield * removedOrAdded(repo, '-', x, prefix)
      i++
    } else if (c > 0 && y !== undefined) {
      yield * removedOrAdded(repo, '+', y, prefix)
      j++
    } else if (x !== undefined && y !== undefined) {
      const path = `${prefix}/${Buffer.from(x.name).toString()}`
      if (x.type !== y.type) {
        yield { kind: 'T', path }
      } else if (x.type === 'dir') {
        if (!sameMeta(x, y)) yield { kind: 'U', path }
        yield * diffTrees(repo, x.subtree, y.subtree, path)
      } else if (!sameContent(x, y)) {
        yield { kind: 'M', path }
      } else if (!sameMeta(x, y)) {
        yield { kind: 'U', path }
      }
      i++
      j++
    }
  }
}

async function * removedOrAdded (repo: Repository, kind: '+' | '-', node: TreeNode, prefix: string): AsyncGenerator<DiffEntry> {
  const path = `${prefix}/${Buffer.from(node.name).toString()}`
  yield { kind, path }
  if (node.type === 'dir' && node.subtree !== undefined) {
    for await (const e of walkAll(repo, node.subtree, path)) yield { kind, path: e.path }
  }
}

function sameContent (x: TreeNode, y: TreeNode): boolean {
  if (x.size !== y.size) return false
  if (x.linkTarget !== undefined || y.linkTarget !== undefined) {
    return x.linkTarget !== undefined && y.linkTarget !== undefined && equalBytes(x.linkTarget, y.linkTarget)
  }
  const cx = x.content ?? []
  const cy = y.content ?? []
  return cx.length === cy.length && cx.every((id, k) => equalBytes(id, cy[k] as Uint8Array))
}

function sameMeta (x: TreeNode, y: TreeNode): boolean {
  return x.mode === y.mode && x.uid === y.uid && x.gid === y.gid && x.mtimeNs === y.mtimeNs
}
