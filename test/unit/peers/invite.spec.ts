import assert from 'node:assert/strict'
import fc from 'fast-check'
import { loadBackend } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { InvalidArgumentError, InvalidInviteError, NotMemberError, UnauthenticatedError } from '../../../src/errors.js'
import {
  INVITE_CODE_PREFIX, MAX_INVITE_TTL_MS, addMember, checkInviteProof, createInvite, createRoster, decodeInviteCode,
  encodeInviteCode, inviteClaim, inviteId, inviteProof, inviteSigningBytes, issueDeviceCert, rosterHash, verifyJoinChain
} from '../../../src/peers/index.js'
import type { DeviceCert, Invite, Roster } from '../../../src/peers/index.js'
import { BASE58, fakePeerId, forge, forgeNext, identityFrom, leafPaths, tamperAt } from './fixtures.js'
import type { Json } from './fixtures.js'

const T0 = 1_700_000_000_000
const HOUR = 3_600_000
const isInvalidInvite = (re: RegExp) => (e: unknown): boolean => e instanceof InvalidInviteError && e.code === 'ERR_INVALID_INVITE' && re.test(e.message)

describe('peers: invites', () => {
  let sodium: SodiumBackend
  let alice: Identity, bob: Identity, carol: Identity
  let a1: DeviceCert
  let roster: Roster
  let invite: Invite
  let code: string
  const addr = (): string[] => ['/ip4/127.0.0.1/tcp/4001', `/ip4/192.168.1.5/tcp/4001/p2p/${a1.peerId}`]
  before(async () => {
    sodium = await loadBackend()
    ;[alice, bob, carol] = [1, 2, 3].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity]
    a1 = issueDeviceCert(sodium, alice, fakePeerId(1), 'alice laptop', T0)
    roster = createRoster(sodium, alice, 'family "photos"', a1, T0)
    ;({ invite, code } = createInvite(sodium, alice, roster, a1, addr(), 24 * HOUR, T0))
  })

  it('an invite names the group, the inviter and their addresses, expires after the ttl and carries a fresh secret', () => {
    assert.equal(invite.groupId, roster.groupId)
    assert.equal(invite.groupName, 'family "photos"')
    assert.equal(invite.inviter, alice.userId)
    assert.deepEqual(invite.inviterDevice, a1)
    assert.deepEqual(invite.addrs, [`/ip4/127.0.0.1/tcp/4001/p2p/${a1.peerId}`, `/ip4/192.168.1.5/tcp/4001/p2p/${a1.peerId}`])
    assert.equal(invite.expiresAt, T0 + 24 * HOUR)
    assert.match(invite.secret, /^[A-Za-z0-9_-]{43}$/)
    assert.notEqual(createInvite(sodium, alice, roster, a1, addr(), HOUR, T0).invite.secret, invite.secret)
    assert.ok(sodium.verify(Buffer.from(invite.signature, 'base64'), inviteSigningBytes(invite), alice.signPublicKey))
  })

  it('the code is one copy-pasteable token that decodes back to the invite, even when wrapped over lines', () => {
    assert.ok(code.startsWith(INVITE_CODE_PREFIX))
    assert.match(code, /^p2pbak1-[A-Za-z0-9_-]+$/)
    assert.equal(code, encodeInviteCode(invite))
    assert.deepEqual(decodeInviteCode(sodium, code, T0 + 1), invite)
    const wrapped = '  ' + (code.match(/.{1,60}/g) as string[]).join('\n') + '\n'
    assert.deepEqual(decodeInviteCode(sodium, wrapped, T0 + 1), invite)
  })

  it('round-trips arbitrary valid invites through the code', () => {
    const nameArb = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).filter(s => !/[\u0000-\u001f\u007f-\u009f]/.test(s) && Buffer.byteLength(s) <= 128)
    const addrArb = fc.array(fc.constantFrom(...BASE58, '/', '.', ':'), { maxLength: 40 }).map(a => '/ip4/' + a.join(''))
    fc.assert(fc.property(nameArb, fc.array(addrArb, { minLength: 1, maxLength: 16 }), fc.integer({ min: 1, max: MAX_INVITE_TTL_MS }), (name, addrs, ttl) => {
      const r = { ...roster, name }
      const made = createInvite(sodium, alice, r, a1, addrs, ttl, T0)
      assert.deepEqual(decodeInviteCode(sodium, made.code, T0 + ttl - 1), made.invite)
    }), { seed: 11, numRuns: 60 })
  })

  it('an expired code is refused with its date', () => {
    assert.throws(() => decodeInviteCode(sodium, code, T0 + 24 * HOUR), isInvalidInvite(/expired on 2023-11-15T22:13:20.000Z; ask for a new one/))
  })

  it('every single-field tampering is detected', () => {
    const paths = leafPaths(invite as unknown as Json)
    assert.equal(paths.length, 17)
    for (const path of paths) {
      const t = tamperAt(invite, path)
      assert.notDeepEqual(t, invite, path.join('.'))
      assert.throws(() => decodeInviteCode(sodium, encodeInviteCode(t), T0), InvalidInviteError, path.join('.'))
    }
  })

  it('a plausible change (later expiry, other group, other address) is reported as altered, not as expired', () => {
    for (const edit of [{ expiresAt: T0 + 1000 * HOUR }, { groupName: 'other' }, { addrs: [`/ip4/6.6.6.6/tcp/1/p2p/${a1.peerId}`] }]) {
      assert.throws(() => decodeInviteCode(sodium, encodeInviteCode({ ...invite, ...edit }), T0 + 999 * HOUR), isInvalidInvite(/has been altered/))
    }
    const byBob = { ...invite, inviter: bob.userId }
    byBob.signature = Buffer.from(sodium.sign(inviteSigningBytes(byBob), bob.signSecretKey as Uint8Array)).toString('base64')
    assert.throws(() => decodeInviteCode(sodium, encodeInviteCode(byBob), T0), isInvalidInvite(/has been altered/), 'device cert of another user')
  })

  it('anything that is not a code is refused as "not a p2pbak invite code"', () => {
    const body = code.slice(INVITE_CODE_PREFIX.length)
    for (const bad of ['', 'hello', body, 'p2pbak2-' + body, INVITE_CODE_PREFIX + body.slice(0, -3), INVITE_CODE_PREFIX + body + 'A', INVITE_CODE_PREFIX + '!!', INVITE_CODE_PREFIX + Buffer.from('{}').toString('base64url'), INVITE_CODE_PREFIX + 'x'.repeat(20000)]) {
      assert.throws(() => decodeInviteCode(sodium, bad, T0), isInvalidInvite(/^not a p2pbak invite code/), bad.slice(0, 30))
    }
    fc.assert(fc.property(fc.nat(), fc.constantFrom(...BASE58, '-', '_'), (at, ch) => {
      const i = INVITE_CODE_PREFIX.length + (at % body.length)
      fc.pre(code[i] !== ch)
      const mutated = code.slice(0, i) + ch + code.slice(i + 1)
      assert.throws(() => decodeInviteCode(sodium, mutated, T0), InvalidInviteError)
    }), { seed: 12, numRuns: 300 })
  })

  it('createInvite refuses non-members, foreign devices, addresses of another peer and bad ttls', () => {
    const b1 = issueDeviceCert(sodium, bob, fakePeerId(2), 'bob', T0)
    assert.throws(() => createInvite(sodium, bob, roster, b1, addr(), HOUR, T0), NotMemberError)
    const withBob = addMember(sodium, roster, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0)
    assert.throws(() => createInvite(sodium, alice, withBob, b1, addr(), HOUR, T0), InvalidArgumentError)
    const offRoster = issueDeviceCert(sodium, alice, fakePeerId(5), 'other', T0)
    assert.throws(() => createInvite(sodium, alice, roster, offRoster, addr(), HOUR, T0), /not on the roster/)
    assert.throws(() => createInvite(sodium, alice, roster, a1, [`/ip4/1.2.3.4/tcp/1/p2p/${fakePeerId(5)}`], HOUR, T0), InvalidArgumentError)
    assert.throws(() => createInvite(sodium, alice, roster, a1, [], HOUR, T0), /at least one address/)
    for (const ttl of [0, -1, 1.5, MAX_INVITE_TTL_MS + 1]) assert.throws(() => createInvite(sodium, alice, roster, a1, addr(), ttl, T0), InvalidArgumentError)
  })

  it('the proof is bound to the secret, the joiner peer id and the joiner user id', () => {
    const peer = fakePeerId(2)
    const proof = inviteProof(invite.secret, peer, bob.userId)
    assert.match(proof, /^[A-Za-z0-9+/]{43}=$/)
    assert.equal(checkInviteProof(invite, peer, bob.userId, proof), true)
    assert.equal(checkInviteProof(invite, fakePeerId(3), bob.userId, proof), false, 'replayed by another device')
    assert.equal(checkInviteProof(invite, peer, carol.userId, proof), false, 'replayed for another user')
    const other = createInvite(sodium, alice, roster, a1, addr(), HOUR, T0).invite
    assert.equal(checkInviteProof(other, peer, bob.userId, proof), false, 'proof of another invite')
    for (const bad of ['', 'AAAA', proof.slice(1), proof.replace(/^./, c => c === 'A' ? 'B' : 'A')]) assert.equal(checkInviteProof(invite, peer, bob.userId, bad), false)
    assert.equal(checkInviteProof({ ...invite, secret: 'short' }, peer, bob.userId, proof), false)
    // the id names the invite without revealing the secret, and differs from the proof key material
    assert.match(inviteId(invite.secret), /^[0-9a-f]{64}$/)
    assert.deepEqual(inviteClaim(invite, peer, bob.userId), { inviteId: inviteId(invite.secret), joinerPeerId: peer, joinerUserId: bob.userId, proof })
  })

  it('an invite pins the inviter\'s roster (serial and hash); a code without the pin is refused', () => {
    assert.equal(invite.version, 2)
    assert.equal(invite.rosterSerial, roster.serial)
    assert.equal(invite.rosterHash, rosterHash(roster))
    const { rosterSerial: _s, rosterHash: _h, ...body } = invite
    const v1 = { ...body, version: 1 as const }
    v1.signature = Buffer.from(sodium.sign(inviteSigningBytes(v1), alice.signSecretKey as Uint8Array)).toString('base64')
    assert.throws(() => decodeInviteCode(sodium, encodeInviteCode(v1), T0), isInvalidInvite(/older p2pbak that does not pin/))
  })

  it('verifyJoinChain takes the history from the pinned roster to the one adding the joiner, and nothing made up', () => {
    const b1 = issueDeviceCert(sodium, bob, fakePeerId(2), 'bob', T0)
    const joined = addMember(sodium, roster, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 1)
    assert.equal(verifyJoinChain(sodium, invite, [roster, joined], bob.userId, b1.peerId), joined)
    assert.throws(() => verifyJoinChain(sodium, invite, [roster], bob.userId, b1.peerId), NotMemberError)
    assert.throws(() => verifyJoinChain(sodium, invite, [roster, joined], carol.userId, b1.peerId), NotMemberError)
    // the roster alone, without the pinned version it follows: refused
    assert.throws(() => verifyJoinChain(sodium, invite, [joined], bob.userId, b1.peerId), /does not start at the version the invite pins/)
    // a malicious inviter makes up a roster of the same group (itself the only admin, the joiner added)
    const madeUp = forge(sodium, { ...createRoster(sodium, alice, 'family "photos"', a1, T0 + 5), groupId: roster.groupId }, alice)
    const fake = addMember(sodium, madeUp, alice, { userId: bob.userId, name: 'Bob', device: b1 }, T0 + 6)
    assert.throws(() => verifyJoinChain(sodium, invite, [madeUp, fake], bob.userId, b1.peerId), /does not start at the version the invite pins/)
    // or a version after the pinned one that does not follow it
    const stray = forge(sodium, { ...forgeNext(sodium, roster, alice, d => { d.members.push({ ...(joined.members[1] as Roster['members'][number]) }) }), prev: '0'.repeat(64) }, alice)
    assert.throws(() => verifyJoinChain(sodium, invite, [roster, stray], bob.userId, b1.peerId), UnauthenticatedError)
    assert.throws(() => verifyJoinChain(sodium, invite, [roster, { ...joined, name: 'renamed' }], bob.userId, b1.peerId), UnauthenticatedError)
  })
})
