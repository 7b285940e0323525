/**
 * What each peer has proved it stores for us (docs/placement-and-repair.md §5 P8): the bytes of our
 * shares placed on it whose last storage-proof challenge passed. Placement credits a peer's claimed
 * free space only up to this plus FREE_CLAIM_ALLOWANCE_BYTES, so a claim of 1e300 free bytes wins
 * nothing. Summing walks every share audit, so the totals are kept for a minute.
 */
import type { IndexDb } from '../store/index.js'

/** how long the per-peer totals are reused before the audit records are walked again */
export const PROVEN_BYTES_TTL_MS = 60_000

export class ProvenBytes {
  private totals = new Map<string, number>()
  private at = -Infinity

  constructor (private readonly index: () => IndexDb, private readonly now: () => number) {}

  /** Bytes of our shares on `peerId` that passed their last audit (0: none, or never audited). */
  of (peerId: string): number {
    const now = this.now()
    if (now - this.at >= PROVEN_BYTES_TTL_MS || now < this.at) {
      this.totals = provenBytesByPeer(this.index())
      this.at = now
    }
    return this.totals.get(peerId) ?? 0
  }
}

/** Per peer: Σ length of the shares placed on it (index placement `peer:…`) in state 'ok' with a passed audit. */
export function provenBytesByPeer (index: IndexDb): Map<string, number> {
  const out = new Map<string, number>()
  // the audit records come in pack order: one placement lookup per pack, not per share
  let lastPack: Uint8Array | undefined
  let placement: ReturnType<IndexDb['getPlacement']>
  for (const s of index.audit.shares()) {
    if (s.audit.state !== 'ok' || s.audit.lastPassMs === 0) continue
    if (lastPack === undefined || !sameBytes(lastPack, s.pack)) {
      lastPack = s.pack
      placement = index.getPlacement(s.pack)
    }
    const holder = placement?.get(s.index)
    if (holder === undefined || !holder.startsWith('peer:')) continue
    const peer = holder.slice(5)
    out.set(peer, (out.get(peer) ?? 0) + s.audit.length)
  }
  return out
}

function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((x, i) => x === b[i])
}
