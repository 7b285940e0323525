import assert from 'node:assert/strict'
import { loadBackend } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { InvalidArgumentError, NotMemberError, UnauthenticatedError } from '../../../src/errors.js'
import {
  MAX_MEMBER_REVOKED_DEVICES, MAX_ROSTER_CLOCK_AHEAD_MS, ROSTER_VERSION, addDevice, addMember, createRoster, issueDeviceCert, removeDevice, removeMember,
  setAdmin, verifyRosterUpdate
} from '../../../src/peers/index.js'
import type { DeviceCert, Roster } from '../../../src/peers/index.js'
import { fakePeerId, forge, forgeNext, identityFrom, leafPaths, tamperAt } from './fixtures.js'
import type { Json } from './fixtures.js'

const T0 = 1_700_000_000_000

function refused (fn: () => void, kind: typeof UnauthenticatedError | typeof NotMemberError, reason: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof kind && reason.test(err.message), `expected ${kind.name} matching ${String(reason)}`)
}

describe('peers: verifyRosterUpdate', () => {
  let sodium: SodiumBackend
  let alice: Identity, bob: Identity, carol: Identity, mallory: Identity
  let a1: DeviceCert, b1: DeviceCert, b2: DeviceCert, c1: DeviceCert
  /** create (alice) -> add bob -> bob adds a device -> alice adds carol -> alice removes carol */
  let chain: Roster[]
  const at = (i: number): Roster => chain[i] as Roster
  before(async () => {
    sodium = await loadBackend()
    ;[alice, bob, carol, mallory] = [1, 2, 3, 4].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity, Identity]
    a1 = issueDeviceCert(sodium, alice, fakePeerId(1), 'a1', T0)
    b1 = issueDeviceCert(sodium, bob, fakePeerId(2), 'b1', T0)
    b2 = issueDeviceCert(sodium, bob, fakePeerId(3), 'b2', T0)
    c1 = issueDeviceCert(sodium, carol, fakePeerId(4), 'c1', T0)
    const r1 = createRoster(sodium, alice, 'family', a1, T0)
    const r2 = addMember(sodium, r1, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    const r3 = addDevice(sodium, r2, bob, b2, T0 + 2)
    const r4 = addMember(sodium, r3, alice, { userId: carol.userId, name: 'Carol', device: c1 }, T0 + 3)
    const r5 = removeMember(sodium, r4, alice, carol.userId, T0 + 4)
    chain = [r1, r2, r3, r4, r5]
  })

  it('accepts the valid chain step by step, and no version straight from an older one (catching up takes every version)', () => {
    verifyRosterUpdate(sodium, undefined, at(0))
    for (let i = 1; i < chain.length; i++) verifyRosterUpdate(sodium, at(i - 1), at(i))
    refused(() => verifyRosterUpdate(sodium, at(0), at(4)), UnauthenticatedError, /serial 5 does not follow the current serial 1/)
    refused(() => verifyRosterUpdate(sodium, at(1), at(3)), UnauthenticatedError, /does not follow/)
  })

  it('refuses a huge serial, so no member can freeze the roster (issue 11, finding 2)', () => {
    // today's attack: a member pushes serial 2^53-1, and every later change (removing them) is "not newer"
    const frozen = forgeNext(sodium, at(3), bob, d => { d.updatedAt++ })
    const huge = forge(sodium, { ...frozen, serial: Number.MAX_SAFE_INTEGER }, bob)
    refused(() => verifyRosterUpdate(sodium, at(3), huge), UnauthenticatedError, /does not follow the current serial 4/)
    verifyRosterUpdate(sodium, at(3), at(4)) // the admin's removal of carol still follows
  })

  it('refuses a successor that names another predecessor (a fork, or a made-up history)', () => {
    const stray = forge(sodium, { ...forgeNext(sodium, at(3), alice, d => { d.updatedAt++ }), prev: '0'.repeat(64) }, alice)
    refused(() => verifyRosterUpdate(sodium, at(3), stray), UnauthenticatedError, /does not name the current version 4 as its predecessor/)
  })

  it('reads version 1 rosters, takes a successor in the current version of one, refuses a version 1 update', () => {
    const { prev: _p, ...body } = at(1)
    const v1 = forge(sodium, { ...body, version: 1 }, alice)
    const next = addDevice(sodium, v1, bob, b2, T0 + 2)
    assert.equal(next.version, ROSTER_VERSION)
    verifyRosterUpdate(sodium, v1, next)
    const { prev: _q, ...v1next } = forgeNext(sodium, v1, bob, d => { d.updatedAt++ })
    refused(() => verifyRosterUpdate(sodium, v1, forge(sodium, { ...v1next, version: 1 }, bob)), UnauthenticatedError, /format version 1; updates must be version 3/)
  })

  it('a first roster needs only to be consistent and signed by a member (an admin at serial 1)', () => {
    verifyRosterUpdate(sodium, undefined, at(3)) // signed by bob, a non-admin: what a joiner receives
    const { prev: _p, ...first } = at(1)
    refused(() => verifyRosterUpdate(sodium, undefined, forge(sodium, { ...first, serial: 1 }, bob)), UnauthenticatedError, /first roster version must be signed by an admin/)
    refused(() => verifyRosterUpdate(sodium, undefined, forge(sodium, at(1), mallory)), NotMemberError, /not on it/)
  })

  it('refuses an equal or lower serial', () => {
    refused(() => verifyRosterUpdate(sodium, at(2), at(2)), UnauthenticatedError, /serial 3 does not follow the current serial 3/)
    refused(() => verifyRosterUpdate(sodium, at(3), at(1)), UnauthenticatedError, /does not follow/)
  })

  it('refuses a roster of another group', () => {
    const other = addMember(sodium, createRoster(sodium, alice, 'family', a1, T0), alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    refused(() => verifyRosterUpdate(sodium, at(0), other), UnauthenticatedError, /belongs to group/)
  })

  it('refuses an update signed by a non-member, even a valid-looking one', () => {
    const next = forgeNext(sodium, at(1), mallory, d => { d.name = 'pwned' })
    refused(() => verifyRosterUpdate(sodium, at(1), next), NotMemberError, /not a member/)
    const selfAdd = forgeNext(sodium, at(1), mallory, d => {
      d.members.push({ userId: mallory.userId, name: 'M', joinedAt: T0, admin: false, devices: [issueDeviceCert(sodium, mallory, fakePeerId(9), 'm', T0)] })
    })
    refused(() => verifyRosterUpdate(sodium, at(1), selfAdd), NotMemberError, /not a member/)
    // carol was removed in r5: her updates are no longer accepted
    refused(() => verifyRosterUpdate(sodium, at(4), forgeNext(sodium, at(4), carol, d => { d.updatedAt++ })), NotMemberError, /not a member/)
  })

  it('refuses admin-only changes signed by a non-admin', () => {
    const cases: Array<[string, (d: Roster) => void]> = [
      ['remove members', d => { d.members = d.members.filter(m => m.userId !== carol.userId); d.removed.push(carol.userId) }],
      ['grant or revoke admin', d => { (d.members[1] as Roster['members'][number]).admin = true }],
      ['rename the group', d => { d.name = 'bob land' }],
      ['change the retention policy', d => { d.retention = { minShardAgeDays: 0 } }],
      ['remove members', d => { d.removed.push(mallory.userId) }],
      ['add an admin', d => { d.members.push({ userId: mallory.userId, name: 'M', joinedAt: d.updatedAt, admin: true, devices: [issueDeviceCert(sodium, mallory, fakePeerId(9), 'm', T0)] }) }],
      ['add a new person', d => { d.members.push({ userId: mallory.userId, name: 'M', joinedAt: d.updatedAt, admin: false, devices: [issueDeviceCert(sodium, mallory, fakePeerId(9), 'm', T0)] }) }],
      ['revoke another member\'s device', d => { d.removedDevices.push(fakePeerId(50)) }]
    ]
    for (const [what, edit] of cases) {
      const next = forgeNext(sodium, at(3), bob, edit)
      refused(() => verifyRosterUpdate(sodium, at(3), next), UnauthenticatedError, new RegExp(`only an admin may ${what.replace(/'/g, '.')}`))
      verifyRosterUpdate(sodium, at(3), forge(sodium, next, alice)) // the same change by an admin is fine
    }
  })

  it('refuses a non-admin revoking another member\'s device; the owner may', () => {
    const a2 = issueDeviceCert(sodium, alice, fakePeerId(8), 'a2', T0)
    const r = addDevice(sodium, at(3), alice, a2, T0 + 9)
    const drop = (d: Roster): void => { (d.members[0] as Roster['members'][number]).devices = [a1]; d.removedDevices.push(a2.peerId) }
    refused(() => verifyRosterUpdate(sodium, r, forgeNext(sodium, r, bob, drop)), UnauthenticatedError, /only an admin may remove another member.s device/)
    verifyRosterUpdate(sodium, r, forgeNext(sodium, r, alice, drop))
    verifyRosterUpdate(sodium, at(3), forgeNext(sodium, at(3), bob, d => { d.members[1]?.devices.pop(); d.removedDevices.push(b2.peerId) }))
  })

  it('refuses bringing a removed user back, with or without clearing the removed list', () => {
    const back = (d: Roster): void => { d.members.push({ userId: carol.userId, name: 'Carol', joinedAt: T0 + 9, admin: false, devices: [c1] }) }
    refused(() => verifyRosterUpdate(sodium, at(4), forgeNext(sodium, at(4), alice, back)), UnauthenticatedError, /removed user .* is on the roster/)
    refused(() => verifyRosterUpdate(sodium, at(4), forgeNext(sodium, at(4), alice, d => { back(d); d.removed = [] })), UnauthenticatedError, /taken off the removed list/)
  })

  it('refuses a member removed without being banned, and a device removed without being revoked', () => {
    refused(() => verifyRosterUpdate(sodium, at(3), forgeNext(sodium, at(3), alice, d => { d.members.pop() })), UnauthenticatedError, /without being put on the removed list/)
    refused(() => verifyRosterUpdate(sodium, at(3), forgeNext(sodium, at(3), bob, d => { d.members[1]?.devices.pop() })), UnauthenticatedError, /without being put on the revoked list/)
    const r = removeDevice(sodium, at(3), bob, b2.peerId, T0 + 9)
    refused(() => verifyRosterUpdate(sodium, r, forgeNext(sodium, r, alice, d => { d.removedDevices = []; d.members[1]?.devices.push(b2) })), UnauthenticatedError, /taken off the revoked list/)
  })

  it('refuses a device certificate signed by another user, or filed under another member', () => {
    const byMallory = issueDeviceCert(sodium, mallory, fakePeerId(7), 'evil', T0)
    const claimed = { ...byMallory, userId: bob.userId }
    refused(() => verifyRosterUpdate(sodium, at(2), forgeNext(sodium, at(2), bob, d => { d.members[1]?.devices.push(claimed) })), UnauthenticatedError, /certificate of device .* does not verify/)
    refused(() => verifyRosterUpdate(sodium, at(2), forgeNext(sodium, at(2), bob, d => { d.members[1]?.devices.push(byMallory) })), UnauthenticatedError, /certified by/)
  })

  it('refuses changes to a member\'s name or join time, and an older certificate replacing a newer one', () => {
    refused(() => verifyRosterUpdate(sodium, at(1), forgeNext(sodium, at(1), alice, d => { (d.members[1] as Roster['members'][number]).name = 'Robert' })), UnauthenticatedError, /name of member/)
    refused(() => verifyRosterUpdate(sodium, at(1), forgeNext(sodium, at(1), alice, d => { (d.members[1] as Roster['members'][number]).joinedAt = 0 })), UnauthenticatedError, /join time/)
    const older = issueDeviceCert(sodium, bob, b1.peerId, 'b1 old', T0 - 1)
    refused(() => verifyRosterUpdate(sodium, at(1), forgeNext(sodium, at(1), bob, d => { (d.members[1] as Roster['members'][number]).devices = [older] })), UnauthenticatedError, /not newer/)
  })

  it('refuses a roster whose signature is not by updatedBy', () => {
    const next = { ...forgeNext(sodium, at(1), bob, d => { d.updatedAt++ }), updatedBy: alice.userId }
    refused(() => verifyRosterUpdate(sodium, at(1), next), UnauthenticatedError, /signature of roster serial 3 does not verify/)
  })

  it('detects every single-field tampering of a signed roster (first roster or update)', () => {
    const r = setAdmin(sodium, at(4), alice, bob.userId, true, T0 + 5)
    const paths = leafPaths(r as unknown as Json)
    assert.ok(paths.length > 30)
    for (const path of paths) {
      const t = tamperAt(r, path)
      assert.notDeepEqual(t, r, path.join('.'))
      assert.throws(() => verifyRosterUpdate(sodium, undefined, t), (e: unknown) => e instanceof UnauthenticatedError || e instanceof NotMemberError, `first: ${path.join('.')}`)
      assert.throws(() => verifyRosterUpdate(sodium, at(4), t), (e: unknown) => e instanceof UnauthenticatedError || e instanceof NotMemberError, `update: ${path.join('.')}`)
    }
  })

  it('detects removed or added array entries that the signer did not sign', () => {
    const r = at(3)
    const edits: Array<(d: Roster) => void> = [
      d => { d.members.pop() }, d => { d.members[1]?.devices.pop() }, d => { d.members.reverse() },
      d => { d.removedDevices.push(fakePeerId(60)) }, d => { d.removed.push(mallory.userId) }
    ]
    for (const edit of edits) {
      const t = structuredClone(r)
      edit(t)
      assert.throws(() => verifyRosterUpdate(sodium, at(2), t), UnauthenticatedError)
    }
  })

  it('refuses a version dated more than a day after the receiving node\'s clock (every later person would be a newcomer for good)', () => {
    const now = T0 + 10
    const future = forgeNext(sodium, at(2), bob, d => { d.updatedAt = now + MAX_ROSTER_CLOCK_AHEAD_MS + 1 })
    refused(() => verifyRosterUpdate(sodium, at(2), future, { now }), UnauthenticatedError, /more than a day after this node's clock/)
    verifyRosterUpdate(sodium, at(2), forgeNext(sodium, at(2), bob, d => { d.updatedAt = now + MAX_ROSTER_CLOCK_AHEAD_MS }), { now })
  })

  it('a member who is not an admin cannot grow the revoked-devices list past MAX_MEMBER_REVOKED_DEVICES; an admin still can', () => {
    const full = forgeNext(sodium, at(2), alice, d => { for (let i = 0; i < MAX_MEMBER_REVOKED_DEVICES; i++) d.removedDevices.push(fakePeerId(10_000 + i)) })
    const bobRevokes = forgeNext(sodium, full, bob, d => { (d.members[1] as Roster['members'][number]).devices.pop(); d.removedDevices.push(b2.peerId) })
    refused(() => verifyRosterUpdate(sodium, full, bobRevokes), UnauthenticatedError, /only an admin may revoke a device/)
    verifyRosterUpdate(sodium, full, forge(sodium, bobRevokes, alice))
    // bob's own node does not sign it either, and says whom to ask
    assert.throws(() => removeDevice(sodium, full, bob, b2.peerId, T0 + 20), (err: unknown) => err instanceof InvalidArgumentError && /ask an admin/.test(err.message))
    removeDevice(sodium, full, alice, b2.peerId, T0 + 20)
  })

  it('a version that breaks a limit a receiver checks is never signed (it would be saved as ours and break this home)', () => {
    const atCap = forgeNext(sodium, at(2), alice, d => { for (let i = 0; i < 4096; i++) d.removedDevices.push(fakePeerId(20_000 + i)) })
    assert.throws(() => removeDevice(sodium, atCap, alice, b2.peerId, T0 + 20), (err: unknown) => err instanceof InvalidArgumentError && /removedDevices/.test(err.message))
  })

  it('the rules are checked before the device certificates: a version refused by them costs one signature check', () => {
    let verifies = 0
    const counting: SodiumBackend = new Proxy(sodium, {
      get (target, prop, receiver) {
        if (prop === 'verify') return (...args: Parameters<SodiumBackend['verify']>) => { verifies++; return target.verify(...args) }
        return Reflect.get(target, prop, receiver) as unknown
      }
    })
    // bob, not an admin, adds 20 made-up people, each with a valid self-signed certificate
    const crowd = forgeNext(sodium, at(2), bob, d => {
      for (let i = 0; i < 20; i++) {
        const id = identityFrom(sodium, 100 + i)
        d.members.push({ userId: id.userId, name: `p${i}`, joinedAt: d.updatedAt, devices: [issueDeviceCert(sodium, id, fakePeerId(500 + i), 'x', T0)], admin: false })
      }
    })
    refused(() => verifyRosterUpdate(counting, at(2), crowd), UnauthenticatedError, /only an admin may add a new person/)
    assert.equal(verifies, 1)
  })
})
