/**
 * One loss halves a holder's audit score once, across a restart of the auditing daemon: the time of
 * the halving lives in the peer's record, not in the Auditor's memory. (Found by the crash test's
 * group flow: ann killed while a wiped persister's shares were being challenged halved it twice on
 * restart; in a group where every friend holds a share, nobody was left to take the shares back.)
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { asPackId } from '../../../src/ids.js'
import { ShareGoneError } from '../../../src/protocols/audit.js'
import { Auditor, mayReceiveShares, type AuditTransport } from '../../../src/repair/index.js'
import { IndexDb } from '../../../src/store/index.js'

describe('repair/auditor: one loss, one halving, across restarts', function () {
  let dir: string
  let index: IndexDb
  const pack = asPackId(new Uint8Array(32).fill(7))
  const PEER = 'wiped'
  const gone: AuditTransport = {
    online: () => true,
    prove: async () => { throw new ShareGoneError('the holder no longer has the share', false) },
    damaged: async () => []
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'p2pbak-auditor-loss-'))
    index = IndexDb.open(dir)
    await index.setPlacement(pack, new Map([[0, `peer:${PEER}`], [1, `peer:${PEER}`], [2, `peer:${PEER}`]]))
    // share 0 is due at 2 s; shares 1 and 2 passed at 0.5 s and are due at 5 s
    for (const i of [0, 1, 2]) {
      await index.audit.putShare(pack, i, { root: new Uint8Array(32), length: 1000, nextDueMs: i === 0 ? 2000 : 5000, lastCheckMs: i === 0 ? 0 : 500, lastPassMs: i === 0 ? 0 : 500, state: i === 0 ? 'unknown' : 'ok', strikes: 0, reason: '' })
    }
  })
  afterEach(async () => { await index.close(); await rm(dir, { recursive: true, force: true }) })

  it('the shares of a wiped disk challenged after the daemon restarted do not halve the score again', async () => {
    const first = new Auditor(index, gone, { now: () => 2000 })
    assert.equal((await first.round()).failed, 1)
    assert.equal(index.audit.getPeer(PEER)?.auditScore, 0.5)
    // the daemon restarts: a new Auditor, the same index; the other two shares of the same loss fail
    const second = new Auditor(index, gone, { now: () => 6000 })
    assert.equal((await second.round()).failed, 2)
    const rec = index.audit.getPeer(PEER)
    assert.equal(rec?.fails, 3)
    assert.equal(rec?.auditScore, 0.5, 'one loss, one halving')
    assert.equal(mayReceiveShares(rec), true, 'a holder that lost one disk may still take its shares back (P7)')
  })

  it('challenges that time out while the holder is down (killed, restarting) do not make the same loss look new', async () => {
    await new Auditor(index, gone, { now: () => 2000 }).round()
    assert.equal(index.audit.getPeer(PEER)?.auditScore, 0.5)
    // the wiped holder is killed: the challenges of shares 1 and 2 time out (strikes, no verdict)
    const down: AuditTransport = { ...gone, prove: async () => { throw new Error('the holder did not answer within 30 s') } }
    assert.equal((await new Auditor(index, down, { now: () => 6000 }).round()).strikes, 2)
    // back up, still without the shares it lost: the same loss, not a new one
    assert.equal((await new Auditor(index, gone, { now: () => 1e9 }).round()).failed, 2)
    assert.equal(index.audit.getPeer(PEER)?.auditScore, 0.5, 'one loss, one halving (crash suite seed 3305860465: a second halving left nobody to take the shares back)')
    assert.equal(mayReceiveShares(index.audit.getPeer(PEER)), true)
  })

  it('a share given back after the halving that fails again is a new loss', async () => {
    await new Auditor(index, gone, { now: () => 2000 }).round()
    // share 1 re-seeded at 3 s (a new share is due from its placement)
    await index.audit.putShare(pack, 1, { root: new Uint8Array(32), length: 1000, nextDueMs: 3000, lastCheckMs: 3000, lastPassMs: 0, state: 'unknown', strikes: 0, reason: '' })
    await index.audit.putShare(pack, 2, { root: new Uint8Array(32), length: 1000, nextDueMs: 1e12, lastCheckMs: 500, lastPassMs: 500, state: 'ok', strikes: 0, reason: '' })
    await new Auditor(index, gone, { now: () => 4000 }).round()
    assert.equal(index.audit.getPeer(PEER)?.auditScore, 0.25)
    assert.equal(mayReceiveShares(index.audit.getPeer(PEER)), false)
  })
})
