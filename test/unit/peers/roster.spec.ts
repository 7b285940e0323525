import assert from 'node:assert/strict'
import fc from 'fast-check'
import { loadBackend, writeOnlyIdentity } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { FormatError, InvalidArgumentError, NotMemberError } from '../../../src/errors.js'
import {
  DEFAULT_MIN_SHARD_AGE_DAYS, addDevice, addMember, createRoster, decodeRoster, encodeRoster, isAdmin, isMember,
  issueDeviceCert, memberOfPeer, removeDevice, removeMember, renameGroup, rosterPeerIds, setAdmin, setRetention,
  verifyRosterUpdate
} from '../../../src/peers/index.js'
import type { DeviceCert, Roster } from '../../../src/peers/index.js'
import { toHex } from '../../../src/util/bytes.js'
import { BASE58, fakePeerId, identityFrom } from './fixtures.js'

const T0 = 1_700_000_000_000

describe('peers: roster building', () => {
  let sodium: SodiumBackend
  let alice: Identity, bob: Identity, carol: Identity
  let a1: DeviceCert, b1: DeviceCert, b2: DeviceCert, c1: DeviceCert
  let r1: Roster
  before(async () => {
    sodium = await loadBackend()
    ;[alice, bob, carol] = [1, 2, 3].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity]
    a1 = issueDeviceCert(sodium, alice, fakePeerId(1), 'alice laptop', T0)
    b1 = issueDeviceCert(sodium, bob, fakePeerId(2), 'bob desktop', T0)
    b2 = issueDeviceCert(sodium, bob, fakePeerId(3), 'bob nas', T0)
    c1 = issueDeviceCert(sodium, carol, fakePeerId(4), 'carol pc', T0)
    r1 = createRoster(sodium, alice, 'family', a1, T0, { memberName: 'Alice' })
  })

  it('createRoster makes the creator the only member, an admin, at serial 1, with a random group id', () => {
    assert.equal(r1.serial, 1)
    assert.match(r1.groupId, /^[0-9a-f]{32}$/)
    assert.notEqual(createRoster(sodium, alice, 'family', a1, T0).groupId, r1.groupId)
    assert.deepEqual(r1.members, [{ userId: alice.userId, name: 'Alice', joinedAt: T0, devices: [a1], admin: true }])
    assert.deepEqual(r1.retention, { minShardAgeDays: DEFAULT_MIN_SHARD_AGE_DAYS })
    assert.equal(r1.updatedBy, alice.userId)
    verifyRosterUpdate(sodium, undefined, r1)
  })

  it('createRoster refuses a certificate of someone else, a bad name and a write-only identity', () => {
    assert.throws(() => createRoster(sodium, alice, 'family', b1, T0), InvalidArgumentError)
    assert.throws(() => createRoster(sodium, alice, '', a1, T0), InvalidArgumentError)
    assert.throws(() => createRoster(sodium, writeOnlyIdentity(alice), 'family', a1, T0), InvalidArgumentError)
    assert.throws(() => createRoster(sodium, alice, 'f', a1, T0, { retention: { minShardAgeDays: -1 } }), InvalidArgumentError)
  })

  it('an admin adds people (as non-admins), a member only devices of people on the roster; each change increments the serial and verifies', () => {
    const r2 = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    assert.throws(() => addMember(sodium, r2, bob, { userId: carol.userId, name: 'Carol', device: c1 }, T0 + 2), /only a group admin can add a new person/)
    const r3 = addMember(sodium, r2, alice, { userId: carol.userId, name: 'Carol', device: c1 }, T0 + 2)
    assert.deepEqual([r2.serial, r3.serial], [2, 3])
    assert.equal(r3.updatedBy, alice.userId)
    assert.equal(findMemberJoinedAt(r3, carol.userId), r3.updatedAt)
    assert.equal(isMember(r3, carol.userId), true)
    assert.equal(isAdmin(r3, carol.userId), false)
    assert.equal(memberOfPeer(r3, c1.peerId)?.userId, carol.userId)
    assert.equal(memberOfPeer(r3, fakePeerId(99)), undefined)
    assert.deepEqual(rosterPeerIds(r3), [a1.peerId, b1.peerId, c1.peerId])
    verifyRosterUpdate(sodium, r1, r2)
    verifyRosterUpdate(sodium, r2, r3)
    assert.equal(r1.serial, 1, 'builders never modify their input')
    assert.equal(r1.members.length, 1)
  })

  it('addMember for an existing user adds the device instead, and is a no-op for a certificate already there', () => {
    const r2 = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    const r3 = addMember(sodium, r2, alice, { userId: bob.userId, name: 'ignored', device: b2 }, T0 + 2)
    assert.deepEqual(r3.members[1]?.devices, [b1, b2])
    assert.equal(r3.members[1]?.name, 'Bob')
    assert.equal(addMember(sodium, r3, alice, { userId: bob.userId, name: 'Bob', device: b2 }, T0 + 3), r3)
    verifyRosterUpdate(sodium, r2, r3)
  })

  it('a member adds a device of their own, not of someone else; a newer certificate replaces the old one', () => {
    const r2 = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    const r3 = addDevice(sodium, r2, bob, b2, T0 + 2)
    assert.equal(memberOfPeer(r3, b2.peerId)?.userId, bob.userId)
    assert.throws(() => addDevice(sodium, r2, alice, b2, T0 + 2), InvalidArgumentError)
    const renamed = issueDeviceCert(sodium, bob, b2.peerId, 'bob nas (basement)', T0 + 10)
    const r4 = addDevice(sodium, r3, bob, renamed, T0 + 11)
    assert.equal(r4.members[1]?.devices[1]?.name, 'bob nas (basement)')
    verifyRosterUpdate(sodium, r3, r4)
    assert.throws(() => addDevice(sodium, r4, bob, b2, T0 + 12), /issued at or after/)
    const stolen = issueDeviceCert(sodium, carol, b1.peerId, 'mine now', T0)
    assert.throws(() => addMember(sodium, r3, alice, { userId: carol.userId, name: 'C', device: stolen }, T0), /already belongs to/)
  })

  it('non-members cannot change the roster', () => {
    assert.throws(() => addMember(sodium, r1, bob, { userId: carol.userId, name: 'C', device: c1 }, T0), NotMemberError)
    assert.throws(() => addDevice(sodium, r1, bob, b1, T0), NotMemberError)
  })

  it('only admins remove members; removed users go to `removed` and cannot be added again', () => {
    const r2 = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    const r3 = addMember(sodium, r2, alice, { userId: carol.userId, name: 'Carol', device: c1 }, T0 + 2)
    assert.throws(() => removeMember(sodium, r3, bob, carol.userId, T0 + 3), /only a group admin/)
    const r4 = removeMember(sodium, r3, alice, carol.userId, T0 + 3)
    assert.equal(isMember(r4, carol.userId), false)
    assert.deepEqual(r4.removed, [carol.userId])
    assert.equal(memberOfPeer(r4, c1.peerId), undefined)
    verifyRosterUpdate(sodium, r3, r4)
    assert.throws(() => addMember(sodium, r4, alice, { userId: carol.userId, name: 'Carol', device: c1 }, T0 + 4), /cannot rejoin/)
    assert.throws(() => removeMember(sodium, r4, alice, carol.userId, T0 + 4), NotMemberError)
    assert.throws(() => removeMember(sodium, r4, alice, alice.userId, T0 + 4), /last admin/)
  })

  it('devices are revoked by their owner or an admin, never the last one, and never come back', () => {
    const r2 = addMember(sodium, addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0), alice, { userId: bob.userId, name: 'Bob', device: b2 }, T0)
    const r3 = addMember(sodium, r2, alice, { userId: carol.userId, name: 'Carol', device: c1 }, T0)
    assert.throws(() => removeDevice(sodium, r3, carol, b2.peerId, T0), /owner or a group admin/)
    const r4 = removeDevice(sodium, r3, bob, b2.peerId, T0 + 1)
    assert.deepEqual(r4.removedDevices, [b2.peerId])
    assert.equal(memberOfPeer(r4, b2.peerId), undefined)
    verifyRosterUpdate(sodium, r3, r4)
    assert.throws(() => removeDevice(sodium, r4, bob, b1.peerId, T0 + 2), /last device/)
    assert.throws(() => addDevice(sodium, r4, bob, b2, T0 + 2), /revoked/)
    verifyRosterUpdate(sodium, r3, removeDevice(sodium, r3, alice, b2.peerId, T0 + 1))
  })

  it('admin grants, retention and the group name are admin-only changes', () => {
    const r2 = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    assert.throws(() => setAdmin(sodium, r2, bob, bob.userId, true, T0), /only a group admin/)
    assert.throws(() => setRetention(sodium, r2, bob, { minShardAgeDays: 0 }, T0), /only a group admin/)
    assert.throws(() => renameGroup(sodium, r2, bob, 'mine', T0), /only a group admin/)
    const r3 = setAdmin(sodium, r2, alice, bob.userId, true, T0 + 2)
    assert.equal(isAdmin(r3, bob.userId), true)
    assert.equal(setAdmin(sodium, r3, alice, bob.userId, true, T0 + 3), r3)
    const r4 = setAdmin(sodium, r3, bob, alice.userId, false, T0 + 3)
    assert.throws(() => setAdmin(sodium, r4, bob, bob.userId, false, T0 + 4), /last admin/)
    const r5 = setRetention(sodium, r4, bob, { minShardAgeDays: 90 }, T0 + 4)
    const r6 = renameGroup(sodium, r5, bob, 'friends', T0 + 5)
    for (const [a, b] of [[r2, r3], [r3, r4], [r4, r5], [r5, r6]] as const) verifyRosterUpdate(sodium, a, b)
    assert.deepEqual([r6.name, r6.retention.minShardAgeDays, r6.serial], ['friends', 90, 6])
  })
})

const hex = (n: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: n, maxLength: n }).map(toHex)
const peerArb = fc.array(fc.constantFrom(...BASE58), { minLength: 1, maxLength: 60 }).map(a => a.join(''))
const nameArb = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }).filter(s => !/[\u0000-\u001f\u007f-\u009f]/.test(s) && Buffer.byteLength(s) <= 128)
const sigArb = fc.uint8Array({ minLength: 64, maxLength: 64 }).map(b => Buffer.from(b).toString('base64'))
const timeArb = fc.maxSafeNat()

/** Well-formed rosters (consistent, not signed: decodeRoster does not check signatures). */
const rosterArb: fc.Arbitrary<Roster> = fc.record({
  groupId: hex(16),
  name: nameArb,
  serial: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  users: fc.uniqueArray(hex(32), { minLength: 1, maxLength: 8 }),
  peers: fc.uniqueArray(peerArb, { minLength: 8, maxLength: 30 }),
  members: fc.array(fc.record({ name: nameArb, joinedAt: timeArb, admin: fc.boolean(), devices: fc.array(fc.record({ name: nameArb, issuedAt: timeArb, signature: sigArb }), { minLength: 1, maxLength: 3 }) }), { minLength: 8, maxLength: 8 }),
  minShardAgeDays: fc.integer({ min: 0, max: 3650 }),
  updatedAt: timeArb,
  signature: sigArb
}).map(g => {
  const memberUsers = g.users.slice(0, Math.max(1, g.users.length - 2))
  const removed = g.users.slice(memberUsers.length)
  let p = 0
  const members = memberUsers.map((userId, i) => {
    const m = g.members[i] as (typeof g.members)[number]
    const devices = m.devices.slice(0, Math.max(1, Math.floor((g.peers.length - 2) / 8))).map(d => ({ version: 1 as const, userId, peerId: g.peers[p++] as string, ...d }))
    return { userId, name: m.name, joinedAt: m.joinedAt, devices, admin: m.admin || i === 0 }
  })
  return {
    version: 1 as const, groupId: g.groupId, name: g.name, serial: g.serial, members, removed,
    removedDevices: g.peers.slice(p, p + 2), retention: { minShardAgeDays: g.minShardAgeDays },
    updatedBy: memberUsers[0] as string, updatedAt: g.updatedAt, signature: g.signature
  }
})

describe('peers: roster encoding', () => {
  it('decodeRoster(encodeRoster(r)) gives r back, and the encoding is canonical', () => {
    fc.assert(fc.property(rosterArb, r => {
      const bytes = encodeRoster(r)
      assert.deepEqual(decodeRoster(bytes), r)
      assert.deepEqual(encodeRoster(decodeRoster(bytes)), bytes)
    }), { seed: 42, numRuns: 200 })
  })

  it('damaged bytes decode to a FormatError or to another well-formed roster, never to anything else', () => {
    fc.assert(fc.property(rosterArb, fc.nat(), fc.integer({ min: 1, max: 255 }), (r, at, x) => {
      const bytes = encodeRoster(r)
      const i = at % bytes.length
      bytes[i] = (bytes[i] as number) ^ x
      try { encodeRoster(decodeRoster(bytes)) } catch (err: unknown) {
        if (!(err instanceof FormatError)) throw err
      }
    }), { seed: 43, numRuns: 300 })
  })

  it('refuses non-canonical JSON, unknown and missing fields, and inconsistent rosters', () => {
    const r = fc.sample(rosterArb, { seed: 1, numRuns: 1 })[0] as Roster
    const text = new TextDecoder().decode(encodeRoster(r))
    const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
    assert.throws(() => decodeRoster(enc(text + ' ')), /canonical/)
    assert.throws(() => decodeRoster(enc(JSON.stringify(r, null, 1))), /canonical/)
    assert.throws(() => decodeRoster(encodeRoster({ ...r, x: 1 } as Roster)), /unknown field "x"/)
    const { retention: _drop, ...noRetention } = r
    assert.throws(() => decodeRoster(encodeRoster(noRetention as Roster)), /lacks the field "retention"/)
    assert.throws(() => decodeRoster(enc('not json')), FormatError)
    assert.throws(() => decodeRoster(new Uint8Array([0xff, 0xfe])), FormatError)
    const bad: Array<(x: Roster) => void> = [
      x => { x.members.push(structuredClone(x.members[0]) as Roster['members'][number]) },
      x => { x.members.forEach(m => { m.admin = false }) },
      x => { x.members[0]?.devices.push(structuredClone(x.members[0].devices[0]) as DeviceCert) },
      x => { x.removed.push(x.members[0]?.userId as string) },
      x => { x.removedDevices.push(x.members[0]?.devices[0]?.peerId as string) },
      x => { (x.members[0]?.devices[0] as DeviceCert).userId = 'ab'.repeat(32) },
      x => { (x.members[0] as Roster['members'][number]).devices = [] },
      x => { x.members = [] },
      x => { x.serial = 0 },
      x => { x.groupId = x.groupId.toUpperCase() + 'A' },
      x => { (x as { version: number }).version = 2 }
    ]
    for (const edit of bad) {
      const x = structuredClone(r)
      edit(x)
      assert.throws(() => decodeRoster(encodeRoster(x)), FormatError, edit.toString())
    }
  })
})

function findMemberJoinedAt (r: Roster, userId: string): number | undefined {
  return r.members.find(m => m.userId === userId)?.joinedAt
}
