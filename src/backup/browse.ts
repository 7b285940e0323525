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
 *
 * Each directory tree is read once per path it appears at, however many snapshots hold it: a
 * snapshot that reaches a (tree, path) already walked only links to it. The snapshots that hold a
 * path are worked out for the hits alone, from those links.
 */
export async function findPaths (repo: Repository, snapshots: readonly Snapshot[], pattern: string, limit = 50): Promise<FindHit[]> {
  const newestFirst = [...snapshots].reverse()
  const paths = new PathSet()
  for (let s = 0; s < newestFirst.length; s++) await paths.visit(repo, (newestFirst[s] as Snapshot).record.tree, '', -1, s)
  const haystack = paths.paths
  const uf = new uFuzzy({ intraMode: 1, intraIns: 2 })
  const [idxs, info, order] = uf.search(haystack, pattern, 0, 1e4)
  if (idxs === null || idxs.length === 0) return []
  const ranked: number[] = order !== null && info !== null ? order.map(o => info.idx[o] as number) : idxs
  const hits: FindHit[] = []
  const ids = newestFirst.map(s => toHex(s.id))
  for (let rank = 0; rank < ranked.length && hits.length < limit; rank++) {
    const i = ranked[rank] as number
    const snaps = paths.snapshotsOf(i).map(s => ids[s] as string)
    hits.push({ snapshotId: snaps[0] as string, path: haystack[i] as string, score: Number((1 - rank / ranked.length).toFixed(4)), snapshots: snaps, type: paths.types[i] as string })
  }
  return hits
}

/**
 * The distinct paths of several snapshots, and enough to tell which snapshots hold each: a unit is
 * one tree walked at one path; a unit records the units (or the snapshots, for a root) that lead to
 * it, and a path the units whose tree lists it.
 */
class PathSet {
  /** distinct paths in the order met: newest snapshot first, depth first in name order */
  readonly paths: string[] = []
  /** each path's type in the newest snapshot that holds it */
  readonly types: string[] = []
  /** per directory path: its entries' names and their path numbers (a name is looked up, not its whole path) */
  private readonly dirs = new Map<string, Map<string, number>>()
  /** the first unit listing each path; further ones (another version of its directory) in `more` */
  private readonly firstUnit: number[] = []
  private readonly more = new Map<number, number[]>()
  private readonly units = new Map<string, number>()
  /** per unit: the units whose tree leads to it */
  private readonly parents: number[][] = []
  /** per unit: the snapshots whose root it is */
  private readonly roots: number[][] = []

  async visit (repo: Repository, tree: TreeId, prefix: string, parent: number, snapshot: number): Promise<void> {
    const key = `${toHex(tree)}\0${prefix}`
    let u = this.units.get(key)
    const seen = u !== undefined
    if (u === undefined) {
      u = this.parents.length
      this.units.set(key, u)
      this.parents.push([])
      this.roots.push([])
    }
    if (parent < 0) (this.roots[u] as number[]).push(snapshot)
    else (this.parents[u] as number[]).push(parent)
    if (seen) return
    let names = this.dirs.get(prefix)
    if (names === undefined) {
      names = new Map()
      this.dirs.set(prefix, names)
    }
    for (const node of (await repo.loadTree(tree)).nodes) {
      const name = Buffer.from(node.name.buffer, node.name.byteOffset, node.name.byteLength).toString()
      let i = names.get(name)
      if (i === undefined) {
        i = this.paths.length
        names.set(name, i)
        this.paths.push(`${prefix}/${name}`)
        this.types.push(node.type)
        this.firstUnit.push(u)
      } else {
        const m = this.more.get(i)
        if (m === undefined) this.more.set(i, [u])
        else m.push(u)
      }
      if (node.type === 'dir' && node.subtree !== undefined) await this.visit(repo, node.subtree, this.paths[i] as string, u, snapshot)
    }
  }

  /** The snapshots (indices, newest first) that hold path number i. */
  snapshotsOf (i: number): number[] {
    const out = new Set<number>()
    const done = new Set<number>()
    const stack = [this.firstUnit[i] as number, ...(this.more.get(i) ?? [])]
    while (stack.length > 0) {
      const u = stack.pop() as number
      if (done.has(u)) continue
      done.add(u)
      for (const s of this.roots[u] as number[]) out.add(s)
      for (const p of this.parents[u] as number[]) stack.push(p)
    }
    return [...out].sort((a, b) => a - b)
  }
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
