import assert from 'node:assert/strict'
import { loadBackend } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { FormatError, InvalidInviteError } from '../../../src/errors.js'
import { InviteBook, createInvite, createRoster, inviteClaim, issueDeviceCert } from '../../../src/peers/index.js'
import type { Invite, IssuedInvite } from '../../../src/peers/index.js'
import { fakePeerId, identityFrom } from './fixtures.js'

const T0 = 1_700_000_000_000
const HOUR = 3_600_000
const invalid = (re: RegExp) => (e: unknown): boolean => e instanceof InvalidInviteError && re.test(e.message)

describe('peers: InviteBook', () => {
  let sodium: SodiumBackend
  let alice: Identity, bob: Identity, carol: Identity
  let mk: (ttl?: number) => Invite
  before(async () => {
    sodium = await loadBackend()
    ;[alice, bob, carol] = [1, 2, 3].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity]
    const a1 = issueDeviceCert(sodium, alice, fakePeerId(1), 'a1', T0)
    const roster = createRoster(sodium, alice, 'family', a1, T0)
    mk = (ttl = HOUR) => createInvite(sodium, alice, roster, a1, ['/ip4/127.0.0.1/tcp/4001'], ttl, T0).invite
  })

  it('an invite is redeemed once; a second joiner is refused', () => {
    const book = new InviteBook()
    const inv = mk()
    book.add(inv)
    assert.equal(book.outstanding(T0), 1)
    const got = book.redeem(inviteClaim(inv, fakePeerId(2), bob.userId), T0 + 1)
    assert.equal(got.groupId, inv.groupId)
    assert.deepEqual(got.redeemed, { at: T0 + 1, userId: bob.userId, peerId: fakePeerId(2) })
    assert.equal(book.outstanding(T0 + 1), 0)
    assert.throws(() => book.redeem(inviteClaim(inv, fakePeerId(3), carol.userId), T0 + 2), invalid(/already been used/))
    assert.throws(() => book.redeem(inviteClaim(inv, fakePeerId(3), bob.userId), T0 + 2), invalid(/already been used/), 'same user, other device')
  })

  it('the same joiner may retry an interrupted join until the invite expires', () => {
    const book = new InviteBook()
    const inv = mk()
    book.add(inv)
    const claim = inviteClaim(inv, fakePeerId(2), bob.userId)
    book.redeem(claim, T0 + 1)
    assert.equal(book.redeem(claim, T0 + 2).redeemed?.at, T0 + 1)
    assert.throws(() => book.redeem(claim, T0 + HOUR), invalid(/expired/))
  })

  it('refuses expired, unknown, revoked and wrongly proven claims; a wrong proof does not use the invite up', () => {
    const book = new InviteBook()
    const inv = mk()
    book.add(inv)
    const claim = inviteClaim(inv, fakePeerId(2), bob.userId)
    assert.throws(() => book.redeem({ ...claim, joinerPeerId: fakePeerId(9) }, T0), invalid(/proof does not match/))
    assert.throws(() => book.redeem({ ...claim, proof: 'AAAA' }, T0), invalid(/proof does not match/))
    assert.throws(() => book.redeem({ ...claim, joinerPeerId: 'not/a/peer' }, T0), invalid(/malformed/))
    assert.throws(() => book.redeem({ ...claim, joinerUserId: 'ABC' }, T0), invalid(/malformed/))
    assert.throws(() => book.redeem(claim, T0 + HOUR), invalid(/expired on/))
    assert.throws(() => book.redeem(inviteClaim(mk(), fakePeerId(2), bob.userId), T0), invalid(/not known here/))
    assert.equal(book.redeem(claim, T0).redeemed?.userId, bob.userId)
    const other = mk()
    book.add(other)
    const id = inviteClaim(other, fakePeerId(2), bob.userId).inviteId
    assert.equal(book.revoke(id), true)
    assert.equal(book.revoke(id), false)
    assert.throws(() => book.redeem(inviteClaim(other, fakePeerId(2), bob.userId), T0), invalid(/not known here/))
  })

  it('persists through toJSON without any secret, and refuses malformed entries', () => {
    const book = new InviteBook()
    const invs = [mk(), mk(2 * HOUR), mk(3 * HOUR)]
    for (const i of invs) { book.add(i); book.add(i) }
    book.redeem(inviteClaim(invs[0] as Invite, fakePeerId(2), bob.userId), T0)
    const json = JSON.parse(JSON.stringify(book)) as IssuedInvite[]
    assert.equal(json.length, 3)
    const text = JSON.stringify(json)
    for (const i of invs) assert.ok(!text.includes(i.secret) && !text.includes(Buffer.from(i.secret, 'base64url').toString('base64')), 'secret stored in clear')
    const again = new InviteBook(json)
    assert.deepEqual(again.toJSON(), book.toJSON())
    assert.equal(again.outstanding(T0), 2)
    assert.throws(() => again.redeem(inviteClaim(invs[0] as Invite, fakePeerId(3), carol.userId), T0), invalid(/already been used/))
    again.redeem(inviteClaim(invs[1] as Invite, fakePeerId(3), carol.userId), T0)
    assert.equal(again.prune(T0 + 2 * HOUR), 2)
    assert.equal(again.toJSON().length, 1)
    assert.throws(() => new InviteBook([{ ...json[0] as IssuedInvite, proofKey: 'x' }]), FormatError)
    assert.throws(() => new InviteBook([json[0] as IssuedInvite, json[0] as IssuedInvite]), /twice/)
    assert.throws(() => new InviteBook([{ ...json[1] as IssuedInvite, secret: 'x' } as IssuedInvite]), /unknown field/)
  })
})
