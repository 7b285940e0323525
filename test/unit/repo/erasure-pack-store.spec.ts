import assert from 'node:assert/strict'
import fc from 'fast-check'
import { mkdtempSync, rmSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { contentHash } from '../../../src/crypto/index.js'
import { MemoryShareStore, IndexDb } from '../../../src/store/index.js'
import { ErasurePackStore } from '../../../src/repo/index.js'
import type { Candidate } from '../../../src/placement/index.js'
import { asPackId } from '../../../src/ids.js'

describe('ErasurePackStore.replaceShares', () => {
  let dir: string
  let index: IndexDb
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-eps-'))
    index = IndexDb.open(join(dir, 'index'))
  })
  afterEach(async () => {
    await index.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('answers (the pack is not repaired) when the removed member was the only holder of a pack', async function () {
    this.timeout(5_000)
    const peers = new Map([['A', new MemoryShareStore('A')], ['B', new MemoryShareStore('B')]])
    const cand = (peerId: string): Candidate => ({ peerId, personId: `person-${peerId}`, online: true, freeBytes: 1 << 30, reliability: 1 })
    let candidates = [cand('A')]
    const store = new ErasurePackStore(new MemoryShareStore('local'), {
      ownPersonId: 'me',
      candidates: () => candidates,
      storeFor: (p: string) => peers.get(p) as MemoryShareStore
    }, index, { repairFetchTimeoutMs: 1000 })
    // placed while one friend was in the group: k = 1, m = 0, its only share on A
    const pack = randomBytes(5000)
    const id = asPackId(contentHash(pack))
    assert.deepEqual(await store.putPack(id, pack), { k: 1, m: 0 })
    await index.addPack({ id, size: pack.byteLength, blobs: 1, k: 1, m: 0, time: Date.now(), kind: 0 }, [])
    // A is removed: nobody else holds a share of the pack, so it cannot be repaired, but the call must return
    candidates = [cand('B')]
    const result = await store.replaceShares(p => p === 'A')
    assert.deepEqual(result, { packs: 0, shares: 0, failed: 1 })
  })
})

describe('ErasurePackStore.getPackRange', () => {
  let dir: string
  let index: IndexDb
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-eps-'))
    index = IndexDb.open(join(dir, 'index'))
  })
  afterEach(async () => {
    await index.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** Counts whole-share reads (what a decode needs) apart from range reads. */
  class CountingStore extends MemoryShareStore {
    wholeReads = 0
    override async get (ref: Parameters<MemoryShareStore['get']>[0]): Promise<Uint8Array> {
      this.wholeReads++
      return await super.get(ref)
    }
  }

  it('reads a range from the data shards that hold it, without decoding; falls back to decoding when a holder is gone', async function () {
    this.timeout(10_000)
    const names = ['A', 'B', 'C', 'D', 'E']
    const peers = new Map(names.map(n => [n, new CountingStore(n)]))
    const directory = {
      ownPersonId: 'me',
      candidates: (): Candidate[] => names.map(peerId => ({ peerId, personId: `person-${peerId}`, online: true, freeBytes: 1 << 30, reliability: 1 })),
      storeFor: (p: string) => peers.get(p) as CountingStore
    }
    const pack = randomBytes(300_000)
    const id = asPackId(contentHash(pack))
    const scheme = await new ErasurePackStore(new MemoryShareStore('local'), directory, index).putPack(id, pack)
    assert.ok(scheme.k >= 2, `k = ${scheme.k}: the test needs several data shards`)
    // a fresh store, as after a restart or a recovery: nothing cached
    const fresh = new ErasurePackStore(new MemoryShareStore('local'), directory, index)
    fc.assert(fc.asyncProperty(fc.nat(pack.byteLength - 1), fc.nat(40_000), async (offset, len) => {
      const length = Math.min(len, pack.byteLength - offset)
      const got = await fresh.getPackRange(id, offset, length)
      assert.ok(Buffer.from(got).equals(pack.subarray(offset, offset + length)))
    }), { seed: 7, numRuns: 40 })
    assert.equal([...peers.values()].reduce((n, p) => n + p.wholeReads, 0), 0, 'a range read fetched whole shares')
    // the pack's last bytes live on the last data shard: remove that share and read again
    const placement = index.getPlacement(id) as Map<number, string>
    const lastData = placement.get(scheme.k - 1) as string
    await (peers.get(lastData.replace(/^peer:/, '')) as CountingStore).delete({ pack: id, index: scheme.k - 1 })
    const other = new ErasurePackStore(new MemoryShareStore('local'), directory, index)
    const tail = await other.getPackRange(id, pack.byteLength - 100, 100)
    assert.ok(Buffer.from(tail).equals(pack.subarray(pack.byteLength - 100)))
    assert.ok([...peers.values()].reduce((n, p) => n + p.wholeReads, 0) >= scheme.k, 'the fallback decoded the pack')
  })
})
