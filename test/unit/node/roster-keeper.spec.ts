/**
 * RosterKeeper takes one run at a time: the winning side of a fork, forwarded by two members at
 * once, must not make this node switch twice and sign its own change again twice (two versions of
 * one serial by one member: what every other node reports as an attempt to split the group).
 */
import assert from 'node:assert/strict'
import { loadBackend } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { addDevice, addMember, createRoster, findMember, issueDeviceCert, rosterHash, setRetention } from '../../../src/peers/index.js'
import type { DeviceCert, Roster } from '../../../src/peers/index.js'
import { RosterKeeper } from '../../../src/node/roster-keeper.js'
import type { Home } from '../../../src/node/home.js'
import type { GroupState } from '../../../src/node/group-state.js'
import { fakePeerId, identityFrom } from '../peers/fixtures.js'

const T0 = 1_700_000_000_000

/**
 * alice (admin) adds bob and carol; carol adds her phone (`mine`) while alice changes the retention
 * at the same moment (`theirs`), and alice's version wins the fork (the lower hash).
 */
async function forkWonByAlice (): Promise<{ sodium: SodiumBackend, carol: Identity, r1: Roster, r2: Roster, r3: Roster, mine: Roster, theirs: Roster }> {
  const sodium: SodiumBackend = await loadBackend()
  const [alice, bob, carol] = [1, 2, 3].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity]
  const [a1, b1, c1] = [alice, bob, carol].map((id, i) => issueDeviceCert(sodium, id, fakePeerId(i + 1), `d${i}`, T0)) as [DeviceCert, DeviceCert, DeviceCert]
  const r1 = createRoster(sodium, alice, 'family', a1, T0)
  const r2 = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
  const r3 = addMember(sodium, r2, alice, { userId: carol.userId, name: 'Carol', device: c1 }, T0 + 2)
  const mine = addDevice(sodium, r3, carol, issueDeviceCert(sodium, carol, fakePeerId(77), 'phone', T0 + 3), T0 + 3)
  let theirs: Roster | undefined
  for (let d = 0; d < 500 && theirs === undefined; d++) {
    const t = setRetention(sodium, r3, alice, { minShardAgeDays: 31 }, T0 + 4 + d)
    if (rosterHash(t) < rosterHash(mine)) theirs = t
  }
  assert.ok(theirs !== undefined)
  return { sodium, carol, r1, r2, r3, mine, theirs }
}

describe('node/roster-keeper: one run at a time', () => {
  it('the same winning version delivered twice at once: one switch, one version signed again', async () => {
    const { sodium, carol, r1, r2, r3, mine, theirs } = await forkWonByAlice()
    const heads: Roster[] = []
    const state = {
      file: { roster: mine, rosterHistory: [r1, r2, r3], rosterForks: [] },
      // a save takes a moment, as a write and an fsync do: the second delivery arrives meanwhile
      save: async () => { await new Promise(resolve => setTimeout(resolve, 5)); heads.push(state.file.roster) }
    }
    const keeper = new RosterKeeper({ sodium, identity: carol } as unknown as Home, state as unknown as GroupState)
    const [x, y] = await Promise.all([keeper.takeOne(theirs, T0 + 1000), keeper.takeOne(theirs, T0 + 1001)])
    assert.deepEqual([x.kind, y.kind].sort(), ['changed', 'current'])
    const head = state.file.roster
    assert.equal(head.serial, 5)
    assert.equal(head.updatedBy, carol.userId, 'carol signed her phone again on top of the winning version')
    const carolsAt5 = new Set(heads.filter(r => r.serial === 5 && r.updatedBy === carol.userId).map(r => rosterHash(r)))
    assert.equal(carolsAt5.size, 1, 'one version of serial 5 by carol, not two')
  })

  it('a version this node signs while a take waits on a save is built on what the take leaves, not overwritten by it', async () => {
    const { sodium, carol, r1, r2, r3, mine, theirs } = await forkWonByAlice()
    const state = {
      file: { roster: mine, rosterHistory: [r1, r2, r3], rosterForks: [] },
      save: async () => { await new Promise(resolve => setTimeout(resolve, 5)) }
    }
    const keeper = new RosterKeeper({ sodium, identity: carol } as unknown as Home, state as unknown as GroupState)
    const taking = keeper.takeOne(theirs, T0 + 1000)
    // meanwhile carol's node admits her tablet, as Membership.admit does: inside exclusive, on the roster as it is then
    const signing = keeper.exclusive(async () => {
      const tablet = addDevice(sodium, state.file.roster, carol, issueDeviceCert(sodium, carol, fakePeerId(78), 'tablet', T0 + 5), T0 + 5)
      keeper.append(tablet)
      await state.save()
    })
    await Promise.all([taking, signing])
    const head = state.file.roster
    const devices = findMember(head, carol.userId)?.devices.map(d => d.peerId) ?? []
    assert.ok(devices.includes(fakePeerId(78)), 'the tablet stays on the roster')
    assert.ok(devices.includes(fakePeerId(77)), 'the phone, signed again after the switch, too')
    assert.equal(head.retention.minShardAgeDays, 31, 'on top of the winning version')
  })
})
