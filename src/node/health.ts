/**
 * Health of snapshots in a group: for each snapshot, the packs it uses and, per pack, how many of
 * its shares sit on peers that answer now. A snapshot's health is the minimum over its packs;
 * canLose = available - k: how many more holders may vanish before some data is lost.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { stripeHealth } from '../placement/index.js'
import type { TreeId } from '../ids.js'
import { toHex } from '../util/bytes.js'
import type { Home } from './home.js'
import type { NetworkNode } from './network.js'
import { listSnapshots } from '../repo/index.js'

export interface SnapshotHealth { id: string, time: string, packs: number, health: number, canLose: number, readable: boolean, local: boolean }

export async function snapshotHealth (home: Home, net: NetworkNode | undefined): Promise<SnapshotHealth[]> {
  const repo = home.repo
  const { snapshots } = await listSnapshots(repo.packs, repo.sodium, repo.identity)
  const treePacks = new Map<string, Set<string>>()
  const unreadableTrees = new Set<string>()
  /** tree -> its subtrees, to tell which snapshot an unreadable tree belongs to */
  const children = new Map<string, string[]>()
  const treesOf = (tree: TreeId): string[] => {
    const out: string[] = []
    const stack = [toHex(tree)]
    while (stack.length > 0) { const t = stack.pop() as string; out.push(t); stack.push(...(children.get(t) ?? [])) }
    return out
  }
  const packsOf = async (tree: TreeId): Promise<Set<string>> => {
    const key = toHex(tree)
    const known = treePacks.get(key)
    if (known !== undefined) return known
    const out = new Set<string>()
    const loc = repo.index.getBlob(tree)
    if (loc !== undefined) out.add(toHex(loc.pack))
    let nodes
    try {
      nodes = (await repo.loadTree(tree)).nodes
    } catch {
      // a listing that cannot be read now: this snapshot is not readable (the pack is known from the index)
      unreadableTrees.add(key)
      treePacks.set(key, out)
      return out
    }
    children.set(key, nodes.flatMap(n => (n.subtree !== undefined ? [toHex(n.subtree)] : [])))
    for (const n of nodes) {
      if (n.subtree !== undefined) for (const p of await packsOf(n.subtree)) out.add(p)
      for (const c of n.content ?? []) { const l = repo.index.getBlob(c); if (l !== undefined) out.add(toHex(l.pack)) }
    }
    treePacks.set(key, out)
    return out
  }
  const online = (peer: string): boolean => net !== undefined && (peer === net.peerId || net.node.getConnections(peerIdFromString(peer)).length > 0)
  const personOf = (peer: string): string => net?.roster?.members.find(m => m.devices.some(d => d.peerId === peer))?.userId ?? peer
  const result: SnapshotHealth[] = []
  for (const s of snapshots) {
    let health = Number.POSITIVE_INFINITY
    let canLose = Number.POSITIVE_INFINITY
    let readable = true
    let local = true
    const packs = await packsOf(s.record.tree)
    for (const p of packs) {
      const id = Buffer.from(p, 'hex')
      const placement = repo.index.getPlacement(id)
      const info = repo.index.getPack(id)
      if (placement === undefined || (placement.size === 1 && placement.get(0) === 'local')) {
        health = Math.min(health, 1)
        canLose = Math.min(canLose, 0)
        continue
      }
      local = false
      const holders = [...placement.values()].map(h => h.replace(/^peer:/, '')).map(peer => ({ personId: personOf(peer), online: online(peer) }))
      const k = info?.k ?? 1
      const h = stripeHealth(k, Math.max(0, holders.length - k), holders)
      health = Math.min(health, h.available)
      canLose = Math.min(canLose, h.canLose)
      readable &&= h.readable
    }
    if (treesOf(s.record.tree).some(t => unreadableTrees.has(t))) readable = false
    if (packs.size === 0) { health = 0; canLose = 0 }
    result.push({ id: toHex(s.id), time: new Date(Number(s.record.time / 1_000_000n)).toISOString(), packs: packs.size, health, canLose, readable, local })
  }
  return result
}
