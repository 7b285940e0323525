/**
 * Health of snapshots in a group. For each snapshot, the packs it uses and, per pack:
 *   health    shares held by peers that answer now, minus those whose last challenge failed
 *   verified  shares whose last storage-proof challenge passed and whose holder answers now
 *   canLose   health - k: how many more holders may vanish before some data is unreadable
 * A snapshot's figures are the minimum over its packs; `lastFullAudit` is the oldest "last passed"
 * over all its shares (null while some share was never proven).
 */
import { keepsOwnCopy, stripeHealth } from '../placement/index.js'
import { asPackId, type TreeId } from '../ids.js'
import { toHex } from '../util/bytes.js'
import type { Repository } from '../repo/index.js'
import { listSnapshots } from '../repo/index.js'
import { errorMessage } from '../errors.js'
import { scopedLogger } from '../util/log.js'
import type { Home } from './home.js'
import type { NetworkNode } from './network.js'

const log = scopedLogger('health')

/** A snapshot's figures: the minimum over its packs of each pack's (PackHealth), and what they add up to. */
export interface SnapshotHealth extends Omit<PackHealth, 'lastPassMs'> {
  id: string
  time: string
  packs: number
  /** packs of the snapshot on this disk only (not yet placed on friends) */
  localPacks: number
  /** ISO time of the oldest last passed challenge over its shares; null if one was never proven */
  lastFullAudit: string | null
  /** packs of this snapshot that need repair now */
  repairing: number
  /** its packs placed on friends with a copy kept on this disk too (a stripe that survives one loss at most) */
  ownCopies: number
}

export interface SnapshotPacks {
  snapshots: Array<{ id: string, time: string, packs: Set<string>, readable: boolean }>
  /** false when some tree could not be read: the union of packs may miss some */
  complete: boolean
}

/** Every snapshot with the packs it uses (its trees' packs and its files' chunks' packs). */
export async function snapshotPacks (repo: Repository): Promise<SnapshotPacks> {
  const { snapshots } = await listSnapshots(repo.packs, repo.sodium, repo.identity)
  const treePacks = new Map<string, Set<string>>()
  const unreadable = new Set<string>()
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
    } catch (err: unknown) {
      // a listing that cannot be read now: its snapshot is not readable (its pack is known from the index)
      log('tree %s cannot be read now: %s', key.slice(0, 16), errorMessage(err))
      unreadable.add(key)
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
  const out: SnapshotPacks = { snapshots: [], complete: true }
  for (const s of snapshots) {
    const packs = await packsOf(s.record.tree)
    const readable = !treesOf(s.record.tree).some(t => unreadable.has(t))
    out.complete &&= readable
    out.snapshots.push({ id: toHex(s.id), time: new Date(Number(s.record.time / 1_000_000n)).toISOString(), packs, readable })
  }
  return out
}

/** One pack's figures (a snapshot's are the minimum over its packs). */
export interface PackHealth {
  /** shares held by peers that answer now, minus those whose last challenge failed */
  health: number
  /** shares whose last challenge passed and whose holder answers now */
  verified: number
  /** k + m as placed: health and verified reach it when the pack is fully redundant */
  target: number
  /** health - k: how many more holders may vanish before it is unreadable */
  canLose: number
  /** k shares answer now, or (a pack placed on friends) this disk keeps a copy */
  readable: boolean
  /** on this disk only, not placed on friends (for a snapshot: every pack is) */
  local: boolean
  /** oldest last passed challenge over its shares (ms); 0 when one was never proven */
  lastPassMs: number
}

/** How to tell who is online and which person a device is. */
export interface PeerView { online: (peer: string) => boolean, personOf: (peer: string) => string }

export function peerView (net: NetworkNode | undefined): PeerView {
  return {
    online: (peer) => net !== undefined && (peer === net.peerId || net.isOnline(peer)),
    personOf: (peer) => net?.roster?.members.find(m => m.devices.some(d => d.peerId === peer))?.userId ?? peer
  }
}

/**
 * The figures of one pack (hex id) from its placement, scheme and audit entries in the index.
 * `ownCopy`: this disk keeps a copy of it; it makes the pack readable, and counts in no other figure
 * (they are about friends: the copy goes with this disk).
 */
export function packHealth (repo: Repository, pack: string, peers: PeerView, ownCopy = false): PackHealth {
  const id = Buffer.from(pack, 'hex')
  const placement = repo.index.getPlacement(id)
  const info = repo.index.getPack(id)
  if (placement === undefined || (placement.size === 1 && placement.get(0) === 'local')) {
    return { health: 1, verified: 1, target: 1, canLose: 0, readable: true, local: true, lastPassMs: 0 }
  }
  let lastPass = Number.POSITIVE_INFINITY
  const audits = repo.index.audit.sharesOf(id)
  const holders = [...placement].map(([i, h]) => {
    const peer = h.replace(/^peer:/, '')
    const a = audits.get(i)
    lastPass = Math.min(lastPass, a === undefined || a.lastPassMs === 0 ? 0 : a.lastPassMs)
    return { personId: peers.personOf(peer), online: peers.online(peer) && a?.state !== 'failed', verified: peers.online(peer) && a?.state === 'ok' }
  })
  const k = info?.k ?? 1
  const h = stripeHealth(k, Math.max(0, holders.length - k), holders)
  return {
    health: h.available,
    verified: holders.filter(x => x.verified).length,
    // k + m as placed: an index of the stripe that nobody holds is missing, not out of the target
    target: info !== undefined ? Math.max(placement.size, info.k + info.m) : placement.size,
    canLose: h.canLose,
    readable: h.readable || ownCopy,
    local: false,
    lastPassMs: Number.isFinite(lastPass) ? lastPass : 0
  }
}

export async function snapshotHealth (home: Home, net: NetworkNode | undefined, needsRepair?: ReadonlySet<string>): Promise<SnapshotHealth[]> {
  const repo = home.repo
  const peers = peerView(net)
  const result: SnapshotHealth[] = []
  // packs are shared between snapshots: each is looked up once
  const owned = new Map<string, boolean>()
  const hasOwnCopy = async (pack: string): Promise<boolean> => {
    let own = owned.get(pack)
    if (own === undefined) {
      const id = asPackId(Buffer.from(pack, 'hex'))
      const info = repo.index.getPack(id)
      own = info !== undefined && keepsOwnCopy(info.m) && await repo.packs.hasOwnCopy?.(id) === true
      owned.set(pack, own)
    }
    return own
  }
  for (const s of (await snapshotPacks(repo)).snapshots) {
    let health = Number.POSITIVE_INFINITY
    let verified = Number.POSITIVE_INFINITY
    let target = Number.POSITIVE_INFINITY
    let canLose = Number.POSITIVE_INFINITY
    let lastFull = Number.POSITIVE_INFINITY
    let readable = s.readable
    let local = true
    let repairing = 0
    let localPacks = 0
    let ownCopies = 0
    for (const p of s.packs) {
      const own = await hasOwnCopy(p)
      if (own) ownCopies++
      const f = packHealth(repo, p, peers, own)
      health = Math.min(health, f.health)
      verified = Math.min(verified, f.verified)
      target = Math.min(target, f.target)
      canLose = Math.min(canLose, f.canLose)
      if (f.local) { localPacks++; continue }
      local = false
      if (needsRepair?.has(p) === true) repairing++
      lastFull = Math.min(lastFull, f.lastPassMs)
      readable &&= f.readable
    }
    if (s.packs.size === 0) { health = 0; verified = 0; target = 0; canLose = 0 }
    result.push({
      id: s.id, time: s.time, packs: s.packs.size, health, verified, target, canLose, readable, local, localPacks,
      lastFullAudit: local ? null : lastFull === 0 || !Number.isFinite(lastFull) ? null : new Date(lastFull).toISOString(),
      repairing,
      ownCopies
    })
  }
  return result
}
