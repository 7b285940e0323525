/**
 * Made-up people must not capture placement (issue 11, finding 4; docs/placement-and-repair.md §5
 * P8–P9, §8): a claim of free space counts only up to what the peer proved it stores for us plus a
 * bounded allowance; a peer nobody has audited yet ranks below peers with passed audits; and the
 * people who joined recently (the newest cohort, all of whom one admin may have added) get at most
 * m shares of a stripe while older members can take them, so their all vanishing, or all being one
 * disk behind many names, loses no data.
 */
import assert from 'node:assert/strict'
import {
  FREE_CLAIM_ALLOWANCE_BYTES, creditedFreeBytes, planPlacement, planReplacements, type Candidate
} from '../../../src/placement/index.js'
import { mayReceiveShares, observe, reliabilityOf, scoreAudit } from '../../../src/repair/index.js'
import { newPeerRecord, type PeerRecord } from '../../../src/store/index.js'

const ME = 'me'
const SHARE = 4 << 20
const GiB = 1024 ** 3

const c = (peerId: string, extra: Partial<Candidate> = {}): Candidate =>
  ({ peerId, personId: `person-${peerId}`, online: true, freeBytes: 100 * GiB, reliability: 1, ...extra })

describe('placement: made-up people do not capture placement (issue 11, finding 4)', () => {
  it('a peer claiming 1e300 free bytes ranks by its credited claim, not above a peer that proved it stores more', () => {
    const sybil = c('s', { freeBytes: 1e300 })
    const honest = c('h', { freeBytes: 200 * GiB, provenBytes: 100 * GiB })
    assert.deepEqual(planPlacement(1, SHARE, [sybil, honest], { ownPersonId: ME }), ['h'])
    assert.equal(creditedFreeBytes(sybil), FREE_CLAIM_ALLOWANCE_BYTES)
    assert.equal(creditedFreeBytes(honest), 100 * GiB + FREE_CLAIM_ALLOWANCE_BYTES)
    assert.equal(creditedFreeBytes(c('x', { freeBytes: 300 * GiB, provenBytes: 10 * GiB })), 10 * GiB + FREE_CLAIM_ALLOWANCE_BYTES)
    // a claim within the allowance counts as made, and a full peer is still full
    assert.equal(creditedFreeBytes(c('y', { freeBytes: 5 * GiB })), 5 * GiB)
    assert.throws(() => planPlacement(1, SHARE, [c('z', { freeBytes: 10 })], { ownPersonId: ME }), /only 0 eligible/)
  })

  it('ten sybils claiming 1e300 bytes each take no share while as many honest proven people are there', () => {
    const honest = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map(p => c(p, { freeBytes: 50 * GiB, provenBytes: 30 * GiB }))
    const sybils = Array.from({ length: 10 }, (_, i) => c(`s${i}`, { freeBytes: 1e300 }))
    const placed = planPlacement(6, SHARE, [...sybils, ...honest], { ownPersonId: ME })
    assert.deepEqual(placed.filter(p => p.startsWith('s')), [])
  })

  it('a peer nobody has audited starts below peers with passed audits (but may still receive shares)', () => {
    const now = 1_700_000_000_000
    // a fresh peer, seen online by a day of probes: before, its reliability was 1, like the best proven peer
    let fresh: PeerRecord = newPeerRecord(now)
    for (let h = 1; h <= 24; h++) fresh = observe(fresh, true, now + h * 3600_000)
    let proven = fresh
    for (let i = 0; i < 20; i++) proven = scoreAudit(proven, 'pass', now + 25 * 3600_000 + i)
    assert.ok(reliabilityOf(undefined) < reliabilityOf(proven), `unknown ${reliabilityOf(undefined)} vs proven ${reliabilityOf(proven)}`)
    assert.ok(reliabilityOf(fresh) < reliabilityOf(proven), `fresh ${reliabilityOf(fresh)} vs proven ${reliabilityOf(proven)}`)
    assert.equal(reliabilityOf(proven), 1)
    assert.ok(mayReceiveShares(undefined) && mayReceiveShares(fresh), 'a new group must still be able to place')
    // in placement: the fresh peer claims more space, the proven one still comes first
    const order = planPlacement(2, SHARE, [
      c('fresh', { reliability: reliabilityOf(fresh), freeBytes: 20 * GiB }),
      c('proven', { reliability: reliabilityOf(proven), freeBytes: 2 * GiB, provenBytes: GiB })
    ], { ownPersonId: ME })
    assert.deepEqual(order, ['proven', 'fresh'])
  })

  it('the newest cohort (several people one admin just added) gets at most m shares of a stripe while older people are available', () => {
    // k = 4, m = 2: five newcomers look better (more claimed space, same reliability) than three old friends
    const old = ['o1', 'o2', 'o3', 'o4'].map(p => c(p, { freeBytes: 10 * GiB }))
    const fresh = ['n1', 'n2', 'n3', 'n4', 'n5'].map(p => c(p, { freeBytes: 16 * GiB, newcomer: true }))
    const placed = planPlacement(6, SHARE, [...fresh, ...old], { ownPersonId: ME, maxNewcomerShares: 2 })
    assert.equal(placed.length, 6)
    assert.equal(placed.filter(p => p.startsWith('n')).length, 2, `placed ${placed.join(',')}`)
    assert.deepEqual(placed.filter(p => p.startsWith('o')).sort(), ['o1', 'o2', 'o3', 'o4'])
    // the best still go first: share 0 to the best newcomer, as the ranking says
    assert.equal(placed[0], 'n1')
    // without older people to take them, newcomers take the rest (an honest new group still places)
    const few = planPlacement(6, SHARE, [...fresh, old[0] as Candidate], { ownPersonId: ME, maxNewcomerShares: 2 })
    assert.equal(few.length, 6)
    assert.equal(few.filter(p => p.startsWith('n')).length, 5)
    // everyone new (a group made today): nothing changes
    const allNew = [...fresh, ...old.map(o => ({ ...o, newcomer: true }))]
    assert.deepEqual(planPlacement(6, SHARE, allNew, { ownPersonId: ME, maxNewcomerShares: 2 }), planPlacement(6, SHARE, allNew, { ownPersonId: ME }))
  })

  it('replacements count the newcomers already holding shares of the stripe', () => {
    const old = ['o1', 'o2', 'o3', 'o4'].map(p => c(p, { freeBytes: 10 * GiB }))
    const fresh = ['n1', 'n2', 'n3', 'n4', 'n5'].map(p => c(p, { freeBytes: 16 * GiB, newcomer: true }))
    const holders = new Map([[0, { peerId: 'n1', personId: 'person-n1' }], [1, { peerId: 'n2', personId: 'person-n2' }], [2, { peerId: 'o1', personId: 'person-o1' }]])
    const out = planReplacements([3, 4, 5], holders, SHARE, [...fresh, ...old], { ownPersonId: ME, maxNewcomerShares: 2 })
    assert.deepEqual([...out.values()].sort(), ['o2', 'o3', 'o4'])
  })
})

