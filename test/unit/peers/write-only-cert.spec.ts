import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadBackend } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import {
  addMember, createRoster, decodeRoster, encodeRoster, isWriteOnlyCert, issueDeviceCert, memberOfPeer, parseDeviceCert,
  peerIdOfEd25519, verifyDeviceCert, verifyRosterUpdate
} from '../../../src/peers/index.js'
import type { DeviceCert } from '../../../src/peers/index.js'
import { fakePeerId, identityFrom } from './fixtures.js'

describe('peers: write-only device certificates (version 2)', () => {
  let sodium: SodiumBackend
  let alice: Identity
  let bob: Identity
  let full: DeviceCert
  let wo: DeviceCert
  before(async () => {
    sodium = await loadBackend()
    alice = identityFrom(sodium, 1)
    bob = identityFrom(sodium, 2)
    full = issueDeviceCert(sodium, alice, fakePeerId(1), 'laptop', 1_700_000_000_000)
    wo = issueDeviceCert(sodium, alice, fakePeerId(2), 'server', 1_700_000_000_001, { writeOnly: true })
  })

  it('a full device keeps the version 1 certificate; a write-only one is version 2 with writeOnly: true', () => {
    assert.equal(full.version, 1)
    assert.equal('writeOnly' in full, false)
    assert.equal(isWriteOnlyCert(full), false)
    assert.deepEqual({ ...wo, signature: '' }, {
      version: 2, userId: alice.userId, peerId: fakePeerId(2), name: 'server', issuedAt: 1_700_000_000_001, writeOnly: true, signature: ''
    })
    assert.equal(verifyDeviceCert(sodium, wo), true)
    assert.equal(isWriteOnlyCert(wo), true)
  })

  it('the flag is signed: dropping it, flipping it or calling the certificate version 1 breaks it', () => {
    const { writeOnly: _drop, ...withoutFlag } = wo
    assert.equal(verifyDeviceCert(sodium, { ...withoutFlag, version: 1 } as DeviceCert), false)
    assert.equal(verifyDeviceCert(sodium, { ...wo, writeOnly: false }), false)
    assert.equal(verifyDeviceCert(sodium, { ...full, version: 2, writeOnly: true }), false)
    assert.throws(() => parseDeviceCert({ ...full, writeOnly: true }), /unknown field "writeOnly"/)
    assert.throws(() => parseDeviceCert(withoutFlag), /lacks the field "writeOnly"/)
    assert.throws(() => parseDeviceCert({ ...wo, version: 3 }), /reads versions 1 and 2/)
  })

  it('a roster holds both kinds side by side, and the write-only device joins its owner as any second device', () => {
    const r1 = createRoster(sodium, bob, 'family', issueDeviceCert(sodium, bob, fakePeerId(3), 'bob', 1), 1)
    const r2 = addMember(sodium, r1, bob, { userId: alice.userId, name: 'alice', device: full }, 2)
    // a friend (bob) admits alice's write-only machine through an invite: the certificate proves alice's consent
    const r3 = addMember(sodium, r2, bob, { userId: alice.userId, name: 'alice', device: wo }, 3)
    verifyRosterUpdate(sodium, r2, r3)
    const back = decodeRoster(encodeRoster(r3))
    assert.deepEqual(back, r3)
    const member = memberOfPeer(back, wo.peerId)
    assert.equal(member?.userId, alice.userId)
    assert.equal(isWriteOnlyCert(member?.devices.find(d => d.peerId === wo.peerId) as DeviceCert), true)
  })

  it('peerIdOfEd25519 gives the peer id libp2p prints for the same key', async () => {
    for (let i = 0; i < 5; i++) {
      const key = await generateKeyPair('Ed25519')
      assert.equal(peerIdOfEd25519(key.publicKey.raw), peerIdFromPrivateKey(key).toString())
    }
    assert.throws(() => peerIdOfEd25519(new Uint8Array(31)), /32 bytes/)
  })
})
