/**
 * `/p2pbak/audit/1.0.0` over real libp2p nodes on 127.0.0.1: an honest holder proves its shares; a
 * holder that dropped one person's shares but still answers `has` with yes (a lying store) is caught
 * by the challenge, not by `has`; a holder that altered bytes fails; a stranger gets nothing; the
 * Auditor records the outcomes and fails the shares.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { contentHash, shareRoot } from '../../src/crypto/index.js'
import { asPackId, type PackId } from '../../src/ids.js'
import { createP2pNode, newDeviceKey, type P2pNode } from '../../src/node/libp2p-node.js'
import { AUDIT_PROTOCOL, ShareGoneError, checkProof, requestDamaged, requestProof, startAuditServer } from '../../src/protocols/audit.js'
import { exchange } from '../../src/protocols/framing.js'
import { Auditor } from '../../src/repair/index.js'
import { encodeShares } from '../../src/repo/index.js'
import { IndexDb, LocalShareStore, MemoryShareStore, ProofCache, type ShareRef, type ShareStore } from '../../src/store/index.js'

const OWNER = 'a'.repeat(64)

/** A store that lost everything but claims to have it. */
class LyingStore extends MemoryShareStore {
  override async has (_ref: ShareRef): Promise<boolean> { return true }
}

describe('integration: the audit protocol', function () {
  this.timeout(30_000)
  const nodes: P2pNode[] = []
  const dirs: string[] = []
  let holder: P2pNode
  let owner: P2pNode
  let stranger: P2pNode
  let stores: Map<string, ShareStore>
  let pack: PackId
  let shares: Uint8Array[]
  let cache: ProofCache

  const node = async (): Promise<P2pNode> => { const n = await createP2pNode({ privateKey: await newDeviceKey(), dht: false }); nodes.push(n); return n }
  const tmp = async (): Promise<string> => { const d = await mkdtemp(join(tmpdir(), 'p2pbak-audit-')); dirs.push(d); return d }

  before(async () => {
    holder = await node()
    owner = await node()
    stranger = await node()
    const bytes = new Uint8Array(randomBytes(1_000_000))
    pack = asPackId(contentHash(bytes))
    shares = await encodeShares(pack, bytes, 2, 1)
    const honest = await LocalShareStore.open(await tmp())
    for (const [i, s] of shares.entries()) await honest.put({ pack, index: i }, s)
    stores = new Map([[OWNER, honest]])
    cache = new ProofCache(await tmp())
    await startAuditServer({
      node: holder,
      authorize: (peer) => (peer.equals(owner.peerId) ? { userId: OWNER } : undefined),
      storeFor: async (userId) => stores.get(userId) as ShareStore,
      cache
    })
    await owner.dial(holder.getMultiaddrs())
    await stranger.dial(holder.getMultiaddrs())
  })
  after(async () => {
    for (const n of nodes) await n.stop()
    for (const d of dirs) await rm(d, { recursive: true, force: true })
  })

  const commitment = (i: number): { root: Uint8Array, length: number } => ({ root: shareRoot(shares[i] as Uint8Array), length: (shares[i] as Uint8Array).byteLength })

  it('an honest holder proves every share, with fresh segments each time, without the verifier reading the share', async () => {
    for (const i of [0, 1, 2]) {
      for (let round = 0; round < 3; round++) {
        const nonce = new Uint8Array(randomBytes(32))
        const answer = await requestProof(owner, holder.peerId, { pack, index: i }, nonce, 16)
        assert.equal(checkProof(commitment(i), nonce, 16, answer), undefined)
        assert.ok(answer.body.byteLength < (shares[i] as Uint8Array).byteLength / 2, 'a proof is much smaller than the share')
        // an answer is bound to its nonce: another challenge's segments do not verify
        assert.notEqual(checkProof(commitment(i), new Uint8Array(randomBytes(32)), 16, answer), undefined)
      }
    }
  })

  it('a holder that dropped the shares but answers has() with yes is caught by the challenge', async () => {
    const liar = new LyingStore()
    stores.set(OWNER, liar)
    try {
      assert.equal(await liar.has({ pack, index: 0 }), true)
      await assert.rejects(requestProof(owner, holder.peerId, { pack, index: 0 }, new Uint8Array(32), 16), (err: unknown) => err instanceof ShareGoneError)
      // the scheduler records it: the share is failed (repair follows), the peer's record shows it
      const index = IndexDb.open(await tmp())
      try {
        await index.audit.putShare(pack, 0, { ...commitment(0), nextDueMs: 0, lastCheckMs: 0, lastPassMs: 0, state: 'unknown', strikes: 0, reason: '' })
        await index.setPlacement(pack, new Map([[0, `peer:${holder.peerId.toString()}`]]))
        const auditor = new Auditor(index, {
          online: () => true,
          prove: async (_peer, ref, nonce, count, signal) => await requestProof(owner, holder.peerId, ref, nonce, count, signal),
          damaged: async (_peer, signal) => await requestDamaged(owner, holder.peerId, signal)
        })
        const round = await auditor.round()
        assert.equal(round.failed, 1)
        assert.equal(index.audit.getShare(pack, 0)?.state, 'failed')
        const rec = index.audit.getPeer(holder.peerId.toString())
        assert.equal(rec?.fails, 1)
        assert.ok((rec?.auditScore ?? 1) <= 0.5)
      } finally {
        await index.close()
      }
    } finally {
      stores.set(OWNER, (await LocalShareStore.open(dirs[0] as string)))
    }
  })

  it('a holder that altered bytes of a share cannot produce a proof that verifies', async () => {
    const altered = new MemoryShareStore()
    for (const [i, s] of shares.entries()) {
      const copy = Uint8Array.from(s)
      // every segment damaged: whichever the nonce draws fails
      for (let off = 200; off < copy.byteLength; off += 4096) copy[off] = (copy[off] as number) ^ 1
      await altered.put({ pack, index: i } satisfies ShareRef, copy)
    }
    const prev = stores.get(OWNER) as ShareStore
    stores.set(OWNER, altered)
    try {
      // leaves cached from before the damage: the altered segments do not match them
      const nonce = new Uint8Array(randomBytes(32))
      const answer = await requestProof(owner, holder.peerId, { pack, index: 1 }, nonce, 16)
      assert.match(checkProof(commitment(1), nonce, 16, answer) ?? '', /does not match the commitment/)
      // without cached leaves the holder reads the whole share once and finds it damaged itself
      await cache.drop(OWNER, { pack, index: 1 })
      await assert.rejects(requestProof(owner, holder.peerId, { pack, index: 1 }, new Uint8Array(randomBytes(32)), 16), (err: unknown) => err instanceof ShareGoneError && err.damaged)
      assert.deepEqual((await requestDamaged(owner, holder.peerId)).map(r => r.index), [1])
    } finally {
      stores.set(OWNER, prev)
    }
  })

  it('a stranger gets NOT_MEMBER and a malformed challenge gets INVALID', async () => {
    const r = await exchange(stranger, holder.peerId, AUDIT_PROTOCOL, { op: 'prove', pack: 'x', index: 0, nonce: '00', count: 1 })
    assert.equal(r.header.status, 'NOT_MEMBER')
    assert.equal(r.body.byteLength, 0)
    for (const bad of [{ op: 'prove' }, { op: 'prove', pack: 'ab'.repeat(32), index: 0, nonce: '00'.repeat(32), count: 65 }, { op: 'steal' }]) {
      const res = await exchange(owner, holder.peerId, AUDIT_PROTOCOL, bad)
      assert.equal(res.header.status, 'INVALID', JSON.stringify(bad))
    }
  })
})
