/**
 * One small seeded friend-group scenario (simulations/friend-group.ts): the daemon's placement, audit
 * and repair code under churn and disk losses, on a virtual clock. If repair breaks, health does not
 * come back and this fails; the same seed must give the same report.
 */
import assert from 'node:assert/strict'
import { simulate, type SimParams, type SimReport } from '../../../simulations/friend-group.js'
import { chooseScheme } from '../../../src/placement/index.js'

const HOUR = 3600_000

/** 10 friends (3 back up), 5 days, 2+2; three disks lost and one friend gone for good in the first 2 days. */
const SCENARIO: Partial<SimParams> = {
  nodes: 10,
  publishers: 3,
  days: 5,
  seed: 7,
  scheme: { k: 2, m: 2 },
  initialPacks: 4,
  packsPerDay: 1,
  packBytes: { min: 4 * 1024, max: 12 * 1024 },
  // only the scripted events: the assertions must not depend on luck
  diskLossesPerNodeYear: 0,
  deathsPerNodeYear: 0,
  corruptionsPerNodeYear: 0,
  events: [
    { atHour: 6, node: 4, kind: 'disk-loss' },
    { atHour: 20, node: 8, kind: 'death' },
    { atHour: 30, node: 6, kind: 'disk-loss' },
    { atHour: 44, node: 5, kind: 'disk-loss' }
  ],
  audit: { enabled: true, intervalMs: 6 * HOUR },
  repair: { enabled: true, offlineGraceMs: 24 * HOUR }
}

describe('friend-group simulation (seeded)', function () {
  this.timeout(20_000)
  let repaired: SimReport

  before(async () => { repaired = await simulate(SCENARIO) })

  it('with churn and repair on, loses no pack and brings every pack back to k + m after disk losses', () => {
    assert.equal(repaired.events.diskLosses, 3)
    assert.equal(repaired.events.deaths, 1)
    assert.ok(repaired.packsPlaced >= 12, `only ${repaired.packsPlaced} packs placed`)
    assert.equal(repaired.packsLost, 0)
    assert.ok(repaired.healthMin < 4, 'the disk losses should have hurt some pack before repair')
    assert.ok(repaired.repairs > 0)
    assert.equal(repaired.finalHealthMin, 4)
    assert.ok(repaired.repairTrafficBytes > 0 && repaired.auditBytes > 0)
  })

  it('with repair off, the same disk losses leave packs lost or under-replicated', async () => {
    const off = await simulate({ ...SCENARIO, audit: { enabled: false }, repair: { enabled: false } })
    assert.equal(off.packsPlaced, repaired.packsPlaced)
    assert.equal(off.repairs, 0)
    assert.ok(off.finalHealthMin < 4, `final minimum health ${off.finalHealthMin}`)
    assert.ok(off.packsLost > 0 || off.finalHealthAvg < repaired.finalHealthAvg)
  })

  it('gives the same report for the same seed', async () => {
    assert.deepEqual(await simulate(SCENARIO), repaired)
  })
})

/**
 * Four friends, each backing up with the scheme the durability model picks for three other people
 * (1+2): every person holds a share of every stripe of every other person, so a rebuilt share can only
 * go back to the holder that lost it (P7). Laptops and desktops as by default; two disks lost, a day apart.
 */
const EVERYONE_HOLDS: Partial<SimParams> = {
  nodes: 4,
  publishers: 4,
  days: 10,
  seed: 7,
  scheme: pick(3),
  initialPacks: 4,
  packsPerDay: 1,
  packBytes: { min: 4 * 1024, max: 12 * 1024 },
  diskLossesPerNodeYear: 0,
  deathsPerNodeYear: 0,
  corruptionsPerNodeYear: 0,
  events: [
    { atHour: 10, node: 2, kind: 'disk-loss' },
    { atHour: 60, node: 3, kind: 'disk-loss' }
  ],
  audit: { enabled: true, intervalMs: 6 * HOUR },
  repair: { enabled: true, offlineGraceMs: 24 * HOUR }
}

/**
 * Three friends, each backing up with what the model picks for two other people: 1+1, and a copy on
 * the publisher's own disk (keepsOwnCopy). Ann goes away for ten days (nobody repairs her packs), and
 * both of her holders lose their disks meanwhile: the stripes alone would be gone; her copy rebuilds
 * them when she is back.
 */
const THREE_AND_AWAY: Partial<SimParams> = {
  ...EVERYONE_HOLDS,
  nodes: 3,
  publishers: 3,
  days: 14,
  scheme: pick(2),
  events: [
    { atHour: 24, node: 0, kind: 'away', hours: 10 * 24 },
    { atHour: 60, node: 1, kind: 'disk-loss' },
    { atHour: 150, node: 2, kind: 'disk-loss' }
  ]
}

function pick (people: number): { k: number, m: number } {
  const { k, m } = chooseScheme(people)
  return { k, m }
}

describe('friend-group simulation: groups in which every person holds a share (seeded)', function () {
  this.timeout(60_000)

  it('four friends all backing up (1+2): the shares of a wiped holder go back to it, and every pack returns to k + m', async () => {
    assert.deepEqual(EVERYONE_HOLDS.scheme, { k: 1, m: 2 })
    const r = await simulate(EVERYONE_HOLDS)
    assert.equal(r.events.diskLosses, 2)
    assert.ok(r.packsPlaced >= 40, `only ${r.packsPlaced} packs placed`)
    assert.equal(r.packsLost, 0)
    assert.equal(r.ownCopies, 0)
    assert.equal(r.packsRescuedByOwnCopy, 0)
    assert.ok(r.healthMin < 3, 'the disk losses should have hurt some pack before repair')
    assert.ok(r.repairs >= 24, `${r.repairs} shares rebuilt`)
    assert.equal(r.finalHealthMin, 3)
  })

  it('three friends all backing up (1+1 and a copy at home): both holders wiped while the publisher is away, nothing lost', async () => {
    assert.deepEqual(THREE_AND_AWAY.scheme, { k: 1, m: 1 })
    const r = await simulate(THREE_AND_AWAY)
    assert.equal(r.events.diskLosses, 2)
    assert.ok(r.packsPlaced >= 20, `only ${r.packsPlaced} packs placed`)
    assert.equal(r.ownCopies, r.packsPlaced)
    assert.equal(r.packsLost, 0)
    // ann's packs from before her trip had no intact share left on friends: only her copy kept them
    assert.ok(r.packsRescuedByOwnCopy >= 4, `${r.packsRescuedByOwnCopy} packs kept by their own copy`)
    assert.equal(r.healthMin, 0, 'both holders of the packs placed before the trip were wiped')
    assert.equal(r.finalHealthMin, 2)
  })
})
