import assert from 'node:assert/strict'
import { loadBackend } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { FormatError, UnauthenticatedError } from '../../../src/errors.js'
import {
  MAX_ROSTER_HISTORY, addDevice, addMember, createRoster, decodeRosterChain, encodeRosterChain, issueDeviceCert, rebaseOwnChanges, reconcileRosters,
  removeMember, rosterHash, setAdmin
} from '../../../src/peers/index.js'
import type { DeviceCert, Roster } from '../../../src/peers/index.js'
import { fakePeerId, forge, identityFrom } from './fixtures.js'

const T0 = 1_700_000_000_000

describe('peers: roster chains and forks', () => {
  let sodium: SodiumBackend
  let alice: Identity, bob: Identity, carol: Identity, dave: Identity, erin: Identity
  let a1: DeviceCert, b1: DeviceCert, c1: DeviceCert, d1: DeviceCert, e1: DeviceCert
  let r1: Roster, r2: Roster, r3: Roster
  before(async () => {
    sodium = await loadBackend()
    ;[alice, bob, carol, dave, erin] = [1, 2, 3, 4, 5].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity, Identity, Identity]
    ;[a1, b1, c1, d1, e1] = [alice, bob, carol, dave, erin].map((id, i) => issueDeviceCert(sodium, id, fakePeerId(i + 1), `d${i}`, T0)) as [DeviceCert, DeviceCert, DeviceCert, DeviceCert, DeviceCert]
    r1 = createRoster(sodium, alice, 'family', a1, T0)
    r2 = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    r3 = addMember(sodium, r2, alice, { userId: carol.userId, name: 'Carol', device: c1 }, T0 + 2)
  })

  it('a run of versions encodes as a canonical array and decodes only when consecutive and linked', () => {
    assert.deepEqual(decodeRosterChain(encodeRosterChain([r1, r2, r3])), [r1, r2, r3])
    assert.throws(() => decodeRosterChain(encodeRosterChain([r1, r3])), FormatError)
    assert.throws(() => decodeRosterChain(encodeRosterChain([r2, r1])), FormatError)
    assert.throws(() => decodeRosterChain(encodeRosterChain([])), FormatError)
  })

  it('catches up over several versions at once, each checked', () => {
    const r = reconcileRosters(sodium, [r1], [r1, r2, r3])
    assert.equal(r.kind, 'advance')
    assert.deepEqual(r.kind === 'advance' ? r.adopted : [], [r2, r3])
    assert.equal(reconcileRosters(sodium, [r1, r2, r3], [r1, r2]).kind, 'current')
    // a version in the run that a non-member signed: refused, whatever follows
    const forged = forge(sodium, r3, erin)
    assert.throws(() => reconcileRosters(sodium, [r1, r2], [r2, forged]), (e: unknown) => e instanceof Error && /not a member/.test(e.message))
    assert.equal(reconcileRosters(sodium, [r3], [r1]).kind, 'current')
    assert.equal(reconcileRosters(sodium, [r1], [r3]).kind, 'unlinked')
  })

  it('a fork pushed to two halves is settled the same way on both: the lower hash at the fork wins', () => {
    // bob (a plain member) signs two different serial-4 versions, each adding another device of his: one for each half of the group
    const forA = addDevice(sodium, r3, bob, issueDeviceCert(sodium, bob, fakePeerId(20), 'b2', T0), T0 + 3)
    const forB = addDevice(sodium, r3, bob, issueDeviceCert(sodium, bob, fakePeerId(21), 'b3', T0), T0 + 3)
    const [low, high] = rosterHash(forA) < rosterHash(forB) ? [forA, forB] : [forB, forA]
    const onLow = reconcileRosters(sodium, [r2, r3, low], [r3, high])
    assert.equal(onLow.kind, 'keep')
    assert.equal(onLow.kind === 'keep' && onLow.fork.equivocation, true, 'one signer signed both: equivocation')
    const onHigh = reconcileRosters(sodium, [r2, r3, high], [r3, low])
    assert.equal(onHigh.kind, 'switch')
    if (onHigh.kind !== 'switch') return
    assert.deepEqual(onHigh.adopted, [low])
    assert.deepEqual(onHigh.abandoned, [high])
    assert.equal(onHigh.anchor, r3)
    // the losing half also drops what it built on top of its branch
    const built = removeMember(sodium, high, alice, carol.userId, T0 + 4)
    const deeper = reconcileRosters(sodium, [r3, high, built], [r3, low])
    assert.equal(deeper.kind, 'switch')
    assert.deepEqual(deeper.kind === 'switch' ? deeper.abandoned : [], [high, built])
    // the winning branch's later versions are checked too
    const afterLow = forge(sodium, { ...built, prev: rosterHash(low) }, carol)
    assert.throws(() => reconcileRosters(sodium, [r3, high], [r3, low, afterLow]), UnauthenticatedError)
  })

  it('after a switch, a member signs again what it did on the dropped branch (two friends who joined at once both stay)', () => {
    // two admins: alice admits dave while bob admits erin, both at serial 5
    const base = setAdmin(sodium, r3, alice, bob.userId, true, T0 + 3)
    const byAlice = addMember(sodium, base, alice, { userId: dave.userId, name: 'Dave', device: d1 }, T0 + 4)
    const byBob = addMember(sodium, base, bob, { userId: erin.userId, name: 'Erin', device: e1 }, T0 + 4)
    const aliceLoses = rosterHash(byBob) < rosterHash(byAlice)
    const [winner, loser, loserId] = aliceLoses ? [byBob, byAlice, alice] : [byAlice, byBob, bob]
    const { versions, skipped } = rebaseOwnChanges(sodium, winner, base, [loser], loserId, T0 + 5)
    assert.deepEqual(skipped, [])
    assert.equal(versions.length, 1)
    const head = versions[0] as Roster
    assert.equal(head.serial, 6)
    assert.equal(head.prev, rosterHash(winner))
    assert.deepEqual(head.members.map(m => m.userId).sort(), [alice, bob, carol, dave, erin].map(i => i.userId).sort())
    // changes someone else signed are theirs to redo
    assert.deepEqual(rebaseOwnChanges(sodium, winner, base, [loser], carol, T0 + 5).versions, [])
    // a member who is no admin (any more) cannot sign a new person again: skipped, with the reason
    const demoted = setAdmin(sodium, winner, alice, loserId.userId, false, T0 + 6)
    const again = rebaseOwnChanges(sodium, demoted, base, [loser], loserId, T0 + 7)
    assert.deepEqual(again.versions, [])
    assert.match(again.skipped.join('\n'), /only a group admin can add a new person/)
  })

  it('keeps at most MAX_ROSTER_HISTORY older versions in a run', () => {
    assert.ok(MAX_ROSTER_HISTORY >= 16)
    const long: Roster[] = [r1]
    for (let i = 0; i < MAX_ROSTER_HISTORY + 1; i++) long.push(forge(sodium, { ...(long.at(-1) as Roster), serial: (long.at(-1) as Roster).serial + 1, prev: rosterHash(long.at(-1) as Roster), version: 2, updatedAt: T0 + i }, alice))
    assert.throws(() => decodeRosterChain(encodeRosterChain(long)), FormatError)
    assert.equal(decodeRosterChain(encodeRosterChain(long.slice(1))).length, MAX_ROSTER_HISTORY + 1)
  })
})
