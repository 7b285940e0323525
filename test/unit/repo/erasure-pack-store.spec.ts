import assert from 'node:assert/strict'
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
