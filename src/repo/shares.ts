/**
 * Building the k + m shares of a pack (docs/format/packs.md §shares) and recording, for each share
 * placed on a peer, the commitment its holder will be challenged against (docs/format/proofs.md).
 * The code is systematic and deterministic: the same pack always gives byte-identical shares, so a
 * repair re-creates exactly the share that was lost, and its commitment is unchanged.
 */
import { contentHash, shareRoot } from '../crypto/index.js'
import { encodeShareHeader } from '../format/share.js'
import { encodeShards } from '../erasure/index.js'
import type { PackId } from '../ids.js'
import type { IndexDb } from '../store/index.js'
import { concatBytes } from '../util/bytes.js'

/** The k + m shares (header || shard) of a pack, by index. */
export async function encodeShares (id: PackId, pack: Uint8Array, k: number, m: number): Promise<Uint8Array[]> {
  const shards = await encodeShards(pack, { k, m })
  return shards.map((shard, index) => concatBytes([
    encodeShareHeader({ k, m, index, packLength: pack.byteLength, packId: id, dataHash: contentHash(shard) }), shard
  ]))
}

/**
 * Records the commitment of each share in `indexes` as freshly placed: never challenged yet, due at
 * `now` (the first audit confirms the upload landed; the auditor's budget spreads the load).
 */
export async function recordCommitments (index: IndexDb, id: PackId, shares: readonly Uint8Array[], indexes: Iterable<number>, now = Date.now()): Promise<void> {
  for (const i of indexes) {
    const share = shares[i]
    if (share === undefined) continue
    await index.audit.putShare(id, i, { root: shareRoot(share), length: share.byteLength, nextDueMs: now, lastCheckMs: 0, lastPassMs: 0, state: 'unknown', strikes: 0, reason: '' })
  }
}
