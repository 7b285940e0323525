import assert from 'node:assert/strict'
import fc from 'fast-check'
import { loadBackend, writeOnlyIdentity } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { InvalidArgumentError } from '../../../src/errors.js'
import { issueDeviceCert, parseDeviceCert, verifyDeviceCert } from '../../../src/peers/index.js'
import type { DeviceCert } from '../../../src/peers/index.js'
import { fakePeerId, identityFrom, leafPaths, tamperAt } from './fixtures.js'
import type { Json } from './fixtures.js'

describe('peers: device certificates', () => {
  let sodium: SodiumBackend
  let alice: Identity
  let bob: Identity
  let cert: DeviceCert
  before(async () => {
    sodium = await loadBackend()
    alice = identityFrom(sodium, 1)
    bob = identityFrom(sodium, 2)
    cert = issueDeviceCert(sodium, alice, fakePeerId(1), 'laptop "work" \\ é', 1_700_000_000_000)
  })

  it('a certificate issued by a user verifies and names that user, the device and the time', () => {
    assert.equal(verifyDeviceCert(sodium, cert), true)
    assert.deepEqual({ ...cert, signature: '' }, {
      version: 1, userId: alice.userId, peerId: fakePeerId(1), name: 'laptop "work" \\ é', issuedAt: 1_700_000_000_000, signature: ''
    })
    assert.match(cert.signature, /^[A-Za-z0-9+/]{86}==$/)
  })

  it('every single-field change makes verification fail', () => {
    const paths = leafPaths(cert as unknown as Json)
    assert.equal(paths.length, 6)
    for (const path of paths) {
      const t = tamperAt(cert, path)
      assert.notDeepEqual(t, cert)
      assert.equal(verifyDeviceCert(sodium, t), false, `tampering ${path.join('.')} went unnoticed`)
    }
  })

  it('arbitrary field values substituted into a real certificate never verify', () => {
    const field = fc.constantFrom('userId', 'peerId', 'name', 'issuedAt', 'version', 'signature', 'extra')
    const value = fc.oneof(fc.string(), fc.nat(), fc.boolean(), fc.constant(null), fc.string({ minLength: 64, maxLength: 64 }))
    fc.assert(fc.property(field, value, (f, v) => {
      const t = { ...cert, [f]: v } as unknown as DeviceCert
      fc.pre(JSON.stringify(t) !== JSON.stringify(cert))
      return !verifyDeviceCert(sodium, t)
    }), { seed: 7, numRuns: 300 })
  })

  it('a certificate claiming one user but signed by another fails', () => {
    const byBob = issueDeviceCert(sodium, bob, fakePeerId(1), 'laptop', 5)
    assert.equal(verifyDeviceCert(sodium, { ...byBob, userId: alice.userId }), false)
  })

  it('a write-only identity cannot issue certificates', () => {
    assert.throws(() => issueDeviceCert(sodium, writeOnlyIdentity(alice), fakePeerId(1), 'x', 1), InvalidArgumentError)
  })

  it('bad peer ids, names and times are refused when issuing', () => {
    for (const [peer, name, now] of [['0OIl', 'x', 1], [fakePeerId(1), '', 1], [fakePeerId(1), 'a\nb', 1], [fakePeerId(1), 'x'.repeat(129), 1], [fakePeerId(1), 'x', -1], [fakePeerId(1), 'x', 1.5]] as const) {
      assert.throws(() => issueDeviceCert(sodium, alice, peer, name, now), InvalidArgumentError, `${peer} ${name} ${now}`)
    }
  })

  it('parseDeviceCert accepts the JSON round trip and rejects extra fields', () => {
    assert.deepEqual(parseDeviceCert(JSON.parse(JSON.stringify(cert))), cert)
    assert.throws(() => parseDeviceCert({ ...cert, admin: true }), /unknown field "admin"/)
  })

  it('both crypto backends issue byte-identical certificates', async () => {
    const wasm = await loadBackend('libsodium-wrappers')
    const c2 = issueDeviceCert(wasm, identityFrom(wasm, 1), fakePeerId(1), 'laptop "work" \\ é', 1_700_000_000_000)
    assert.deepEqual(c2, cert)
    assert.equal(verifyDeviceCert(wasm, cert), true)
  })
})
