/**
 * Who may bring new people into a group (issue 11, finding 4; docs/format/group.md §5.3 rule 5):
 * a new userId needs a version signed by an admin; a device of someone already on the roster may be
 * added by any member (its certificate is that person's signature). A new person's join time is the
 * version's own time, and versions' times never go backwards, so an admin cannot present made-up
 * people as old members either (placement bounds what newcomers get, placement/assign.ts).
 */
import assert from 'node:assert/strict'
import { loadBackend } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { InvalidArgumentError, UnauthenticatedError } from '../../../src/errors.js'
import {
  ROSTER_VERSION, addDevice, addMember, createRoster, issueDeviceCert, verifyRosterUpdate
} from '../../../src/peers/index.js'
import type { DeviceCert, Roster } from '../../../src/peers/index.js'
import { fakePeerId, forgeNext, identityFrom } from './fixtures.js'

const T0 = 1_700_000_000_000

function refused (fn: () => void, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof UnauthenticatedError && reason.test(err.message), `expected UnauthenticatedError matching ${String(reason)}`)
}

describe('peers: only an admin adds new people (issue 11, finding 4)', () => {
  let sodium: SodiumBackend
  let alice: Identity, bob: Identity, carol: Identity
  let sybils: Identity[]
  /** alice (admin) created the group and added bob (a member, not an admin) */
  let base: Roster
  let b2: DeviceCert
  before(async () => {
    sodium = await loadBackend()
    ;[alice, bob, carol] = [1, 2, 3].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity]
    sybils = [0x51, 0x52, 0x53, 0x54].map(n => identityFrom(sodium, n))
    const r1 = createRoster(sodium, alice, 'family', issueDeviceCert(sodium, alice, fakePeerId(1), 'a1', T0), T0)
    base = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: issueDeviceCert(sodium, bob, fakePeerId(2), 'b1', T0) }, T0 + 1)
    b2 = issueDeviceCert(sodium, bob, fakePeerId(3), 'b2', T0)
  })

  const person = (id: Identity, n: number): { userId: string, name: string, device: DeviceCert } =>
    ({ userId: id.userId, name: `p${n}`, device: issueDeviceCert(sodium, id, fakePeerId(100 + n), 'x', T0) })

  it('a member who is not an admin cannot build a version that adds a new person: a clear error', () => {
    assert.throws(() => addMember(sodium, base, bob, person(carol, 1), T0 + 2),
      (err: unknown) => err instanceof InvalidArgumentError && /only a group admin can add a new person/.test(err.message) && /ask an admin/.test(err.message))
  })

  it('every other member refuses a version where a non-admin added made-up people', () => {
    // the attack: bob signs a roster with N people nobody approved, and pushes it to everyone
    const withSybils = forgeNext(sodium, base, bob, d => {
      d.updatedAt = T0 + 2
      for (const [i, s] of sybils.entries()) d.members.push({ userId: s.userId, name: `s${i}`, joinedAt: T0 + 2, devices: [person(s, i).device], admin: false })
    })
    refused(() => verifyRosterUpdate(sodium, base, withSybils), /only an admin may add a new person; .* is not an admin/)
    // one made-up person is refused the same way
    const one = forgeNext(sodium, base, bob, d => {
      d.updatedAt = T0 + 2
      d.members.push({ userId: carol.userId, name: 'c', joinedAt: T0 + 2, devices: [person(carol, 9).device], admin: false })
    })
    refused(() => verifyRosterUpdate(sodium, base, one), /only an admin may add a new person/)
  })

  it('an admin adds people; any member adds a device of someone already on the roster', () => {
    const withCarol = addMember(sodium, base, alice, person(carol, 1), T0 + 2)
    verifyRosterUpdate(sodium, base, withCarol)
    assert.equal(withCarol.version, ROSTER_VERSION)
    // bob adds his own second machine, and admits a new device of carol (her certificate is her signature)
    const own = addDevice(sodium, withCarol, bob, b2, T0 + 3)
    verifyRosterUpdate(sodium, withCarol, own)
    const c2 = issueDeviceCert(sodium, carol, fakePeerId(50), 'c2', T0)
    const carolsDevice = addMember(sodium, own, bob, { userId: carol.userId, name: 'whatever', device: c2 }, T0 + 4)
    verifyRosterUpdate(sodium, own, carolsDevice)
  })

  it('a new person\'s join time is the version\'s time, and a version\'s time never goes back', () => {
    const backdated = forgeNext(sodium, base, alice, d => {
      d.updatedAt = T0 + 2
      d.members.push({ userId: carol.userId, name: 'c', joinedAt: T0 - 365 * 86_400_000, devices: [person(carol, 1).device], admin: false })
    })
    refused(() => verifyRosterUpdate(sodium, base, backdated), /joined at .* not at the time of the version that adds them/)
    const earlier = forgeNext(sodium, base, alice, d => {
      d.updatedAt = base.updatedAt - 1000
      d.members.push({ userId: carol.userId, name: 'c', joinedAt: base.updatedAt - 1000, devices: [person(carol, 1).device], admin: false })
    })
    refused(() => verifyRosterUpdate(sodium, base, earlier), /is dated before the version it follows/)
    // the builders never go back either, even with a clock behind the last version
    const slowClock = addMember(sodium, base, alice, person(carol, 1), base.updatedAt - 5000)
    assert.equal(slowClock.updatedAt, base.updatedAt)
    verifyRosterUpdate(sodium, base, slowClock)
  })

  it('refuses a version 2 update (made by a p2pbak without this rule): every member updates first', () => {
    const v2 = forgeNext(sodium, base, bob, d => { d.version = 2; d.updatedAt = T0 + 2; d.members.push({ userId: carol.userId, name: 'c', joinedAt: T0 + 2, devices: [person(carol, 1).device], admin: false }) })
    refused(() => verifyRosterUpdate(sodium, base, v2), /format version 2/)
  })
})
