import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import fc from 'fast-check'
import { loadBackend, writeOnlyIdentity } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { FormatError, InvalidArgumentError, NotMemberError, UnauthenticatedError } from '../../../src/errors.js'
import {
  MAX_OFFER_CLOCK_SKEW_MS, addDevice, addMember, createRoster, decodeOffer, encodeOffer, isNewerOffer, issueDeviceCert, offerKey,
  parseOfferKey, selectNewestOffer, signOffer, verifyOffer, verifyOfferRecord
} from '../../../src/peers/index.js'
import type { OfferFields, Roster } from '../../../src/peers/index.js'
import { utf8Encode } from '../../../src/util/bytes.js'
import { buildOfferVectors } from '../../vectors/generate-offer.js'
import { fakePeerId, identityFrom, leafPaths, tamperAt } from './fixtures.js'
import type { Json } from './fixtures.js'

const T0 = 1_700_000_000_000
const GiB = 1024 ** 3

describe('peers: offer records (roles and space in the DHT)', () => {
  let sodium: SodiumBackend
  let alice: Identity, bob: Identity, carol: Identity
  let roster: Roster
  const fields = (over: Partial<OfferFields> = {}): OfferFields => ({
    groupId: roster.groupId, peerId: fakePeerId(1), time: T0, persister: true, publisher: false, quotaBytes: 10 * GiB, usedBytes: 3 * GiB, freeBytes: 7 * GiB, ...over
  })
  before(async () => {
    sodium = await loadBackend()
    ;[alice, bob, carol] = [1, 2, 3].map(n => identityFrom(sodium, n)) as [Identity, Identity, Identity]
    const cert = (who: Identity, n: number): ReturnType<typeof issueDeviceCert> => issueDeviceCert(sodium, who, fakePeerId(n), `device ${n}`, T0)
    roster = createRoster(sodium, alice, 'family', cert(alice, 1), T0)
    roster = addMember(sodium, roster, alice, { userId: bob.userId, name: 'Bob', device: cert(bob, 2) }, T0)
    roster = addDevice(sodium, roster, bob, cert(bob, 3), T0)
  })

  it('a signed offer verifies against the roster, round-trips, and keeps what the device stated', () => {
    const o = signOffer(sodium, alice, fields())
    assert.deepEqual({ ...o, signature: '' }, { version: 1, userId: alice.userId, ...fields(), signature: '' })
    assert.deepEqual(verifyOffer(sodium, o, { roster, now: T0 }), o)
    assert.deepEqual(decodeOffer(encodeOffer(o)), o)
    const key = offerKey(roster.groupId, fakePeerId(1))
    assert.deepEqual(parseOfferKey(key), { groupId: roster.groupId, peerId: fakePeerId(1) })
    assert.deepEqual(verifyOfferRecord(sodium, roster, key, encodeOffer(o), T0), o)
  })

  it('every single-field change makes verification fail', () => {
    const o = signOffer(sodium, alice, fields())
    const paths = leafPaths(o as unknown as Json)
    assert.equal(paths.length, 11)
    for (const path of paths) {
      assert.throws(() => verifyOffer(sodium, tamperAt(o, path)), (err: unknown) => err instanceof UnauthenticatedError || err instanceof FormatError, path.join('.'))
    }
  })

  it('refuses offers for devices off the roster, of another person, of another group, or dated ahead', () => {
    assert.throws(() => verifyOffer(sodium, signOffer(sodium, carol, fields({ peerId: fakePeerId(9) })), { roster }), NotMemberError)
    // bob signs for alice's device
    assert.throws(() => verifyOffer(sodium, signOffer(sodium, bob, fields({ peerId: fakePeerId(1) })), { roster }), UnauthenticatedError)
    assert.throws(() => verifyOffer(sodium, signOffer(sodium, alice, fields({ groupId: 'ff'.repeat(16) })), { roster }), UnauthenticatedError)
    const ahead = signOffer(sodium, alice, fields({ time: T0 + MAX_OFFER_CLOCK_SKEW_MS + 1 }))
    assert.throws(() => verifyOffer(sodium, ahead, { now: T0 }), /ahead/)
    assert.doesNotThrow(() => verifyOffer(sodium, signOffer(sodium, alice, fields({ time: T0 + MAX_OFFER_CLOCK_SKEW_MS })), { now: T0 }))
  })

  it('a valid offer stored under another device\'s key is refused', () => {
    const o = signOffer(sodium, bob, fields({ peerId: fakePeerId(2) }))
    assert.throws(() => verifyOfferRecord(sodium, roster, offerKey(roster.groupId, fakePeerId(3)), encodeOffer(o), T0), UnauthenticatedError)
    assert.throws(() => verifyOfferRecord(sodium, roster, utf8Encode(`/pk/${fakePeerId(2)}`), encodeOffer(o), T0), FormatError)
  })

  it('refuses inconsistent figures and write-only identities when signing', () => {
    assert.throws(() => signOffer(sodium, alice, fields({ persister: false })), InvalidArgumentError)
    assert.throws(() => signOffer(sodium, alice, fields({ freeBytes: 11 * GiB })), InvalidArgumentError)
    assert.throws(() => signOffer(sodium, alice, fields({ usedBytes: -1 })), InvalidArgumentError)
    assert.throws(() => signOffer(sodium, writeOnlyIdentity(alice), fields()), InvalidArgumentError)
  })

  it('the selector picks the newest offer; ties go to the larger signature; garbage never wins', () => {
    const older = signOffer(sodium, alice, fields({ time: T0 }))
    const newer = signOffer(sodium, alice, fields({ time: T0 + 1, usedBytes: 4 * GiB, freeBytes: 6 * GiB }))
    assert.ok(isNewerOffer(newer, older))
    assert.equal(selectNewestOffer([encodeOffer(older), utf8Encode('junk'), encodeOffer(newer)]), 2)
    assert.equal(selectNewestOffer([utf8Encode('junk'), encodeOffer(older)]), 1)
    const twin = signOffer(sodium, alice, fields({ time: T0, publisher: true }))
    const expect = twin.signature > older.signature ? 1 : 0
    assert.equal(selectNewestOffer([encodeOffer(older), encodeOffer(twin)]), expect)
  })

  it('property: the decoder takes arbitrary bytes and only ever throws FormatError', () => {
    const valid = encodeOffer(signOffer(sodium, alice, fields()))
    fc.assert(fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 3000 }),
        fc.tuple(fc.nat(valid.byteLength - 1), fc.integer({ min: 1, max: 255 })).map(([i, x]) => { const b = Uint8Array.from(valid); b[i] = (b[i] as number) ^ x; return b }),
        fc.nat(valid.byteLength).map(n => valid.subarray(0, n))
      ),
      (bytes) => {
        try { decodeOffer(bytes) } catch (err: unknown) { return err instanceof FormatError }
        return true
      }), { seed: 4242, numRuns: 400 })
  })

  it('property: any well-formed offer signs, encodes canonically and decodes to itself', () => {
    fc.assert(fc.property(
      fc.record({ quota: fc.nat(), used: fc.nat(), time: fc.nat(), publisher: fc.boolean(), device: fc.constantFrom(2, 3) }),
      ({ quota, used, time, publisher, device }) => {
        const o = signOffer(sodium, bob, fields({ peerId: fakePeerId(device), time, publisher, persister: quota > 0, quotaBytes: quota, usedBytes: used, freeBytes: Math.max(0, quota - used) }))
        const bytes = encodeOffer(o)
        assert.deepEqual(decodeOffer(bytes), o)
        assert.deepEqual(verifyOfferRecord(sodium, roster, offerKey(roster.groupId, o.peerId), bytes, time), o)
      }), { seed: 99, numRuns: 60 })
  })

  describe('golden vectors (test/vectors/offer.json)', () => {
    const file = JSON.parse(readFileSync(new URL('../../vectors/offer.json', import.meta.url), 'utf8')) as Record<string, unknown>
    for (const name of ['sodium-native', 'libsodium-wrappers'] as const) {
      it(`${name} reproduces the file byte for byte`, async () => {
        assert.deepEqual(buildOfferVectors(await loadBackend(name)), file)
      })
    }
  })
})
