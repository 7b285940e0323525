/**
 * What a peer proved it stores for us (placement P8): only shares placed on it whose last audit
 * passed count; a share never challenged, or failed, does not. Over a real IndexDb.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { IndexDb, type ShareAudit } from '../../../src/store/index.js'
import { ProvenBytes, provenBytesByPeer } from '../../../src/node/proven-bytes.js'

describe('node: proven bytes per peer (placement P8)', () => {
  let dir: string
  let index: IndexDb
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'p2pbak-proven-'))
    index = IndexDb.open(dir)
  })
  after(async () => {
    await index.close()
    rmSync(dir, { recursive: true, force: true })
  })

  const audit = (length: number, extra: Partial<ShareAudit>): ShareAudit =>
    ({ root: new Uint8Array(32), length, nextDueMs: 0, lastCheckMs: 0, lastPassMs: 0, state: 'unknown', strikes: 0, reason: '', ...extra })

  it('sums the shares placed on each peer that passed their last audit', async () => {
    const pack = (b: number): Uint8Array => new Uint8Array(32).fill(b)
    await index.setPlacement(pack(1), new Map([[0, 'peer:P'], [1, 'peer:Q'], [2, 'local']]))
    await index.setPlacement(pack(2), new Map([[0, 'peer:P'], [1, 'peer:Q']]))
    await index.audit.putShare(pack(1), 0, audit(100, { state: 'ok', lastPassMs: 5 }))
    await index.audit.putShare(pack(1), 1, audit(100, { state: 'unknown' })) // never challenged: a claim
    await index.audit.putShare(pack(1), 2, audit(100, { state: 'ok', lastPassMs: 5 })) // not on a peer
    await index.audit.putShare(pack(2), 0, audit(70, { state: 'ok', lastPassMs: 9 }))
    await index.audit.putShare(pack(2), 1, audit(70, { state: 'failed', lastPassMs: 9 })) // lost since
    assert.deepEqual([...provenBytesByPeer(index)], [['P', 170]])
    let now = 1000
    const cached = new ProvenBytes(() => index, () => now)
    assert.equal(cached.of('P'), 170)
    assert.equal(cached.of('Q'), 0)
    await index.audit.putShare(pack(1), 1, audit(100, { state: 'ok', lastPassMs: 1200 }))
    assert.equal(cached.of('Q'), 0, 'kept for a minute')
    now += 60_000
    assert.equal(cached.of('Q'), 100)
  })
})
