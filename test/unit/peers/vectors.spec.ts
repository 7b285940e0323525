import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { contentHash, loadBackend } from '../../../src/crypto/index.js'
import {
  checkInviteProof, decodeInviteCode, decodeRoster, deviceCertSigningBytes, encodeRoster, inviteId, rosterHash, rosterSigningBytes,
  verifyDeviceCert, verifyRosterUpdate
} from '../../../src/peers/index.js'
import type { DeviceCert, Invite, Roster } from '../../../src/peers/index.js'
import { fromHex, toHex, utf8Encode } from '../../../src/util/bytes.js'
import { T0, buildGroupVectors } from '../../vectors/generate-group.js'

interface GroupVectors {
  deviceCert: { cert: DeviceCert, signingBytes: string }
  rosterChain: string[]
  rosterSigningBytes: string
  rosterHashes: string[]
  invite: { invite: Invite, signingBytes: string, code: string, inviteId: string, proofKey: string, joiner: { peerId: string, userId: string }, proof: string }
}

const file = JSON.parse(readFileSync(new URL('../../vectors/group.json', import.meta.url), 'utf8')) as GroupVectors & Record<string, unknown>

describe('peers: golden vectors (test/vectors/group.json)', () => {
  for (const name of ['sodium-native', 'libsodium-wrappers'] as const) {
    it(`${name} regenerates the file byte for byte`, async () => {
      assert.deepEqual(buildGroupVectors(await loadBackend(name)), file)
    })
  }

  it('the signing encodings are the domain string followed by canonical JSON without the signature', () => {
    const c = file.deviceCert
    assert.equal(c.signingBytes, toHex(deviceCertSigningBytes(c.cert)))
    const { signature: _s, ...body } = c.cert
    const expected = 'p2pbak device v1\0{"issuedAt":' + String(body.issuedAt) + ',"name":"alice laptop","peerId":"' + body.peerId + '","userId":"' + body.userId + '","version":1}'
    assert.equal(c.signingBytes, toHex(utf8Encode(expected)))
    const r1 = file.rosterChain[0] as string
    assert.equal(file.rosterSigningBytes, toHex(utf8Encode('p2pbak roster v1\0' + r1.replace(/("serial":1),"signature":"[^"]+"/, '$1'))))
    assert.equal(file.rosterSigningBytes, toHex(rosterSigningBytes(decodeRoster(utf8Encode(r1)))))
    assert.ok(file.invite.signingBytes.startsWith(toHex(utf8Encode('p2pbak invite v1\0{"addrs":['))))
  })

  it('the stored certificate and roster chain decode, re-encode identically and verify', async () => {
    const sodium = await loadBackend()
    assert.equal(verifyDeviceCert(sodium, file.deviceCert.cert), true)
    const chain = file.rosterChain.map(s => decodeRoster(utf8Encode(s)))
    chain.forEach((r, i) => { assert.equal(new TextDecoder().decode(encodeRoster(r)), file.rosterChain[i]) })
    let current: Roster | undefined
    for (const r of chain) { verifyRosterUpdate(sodium, current, r); current = r }
    assert.deepEqual(chain.map(r => r.serial), [1, 2, 3, 4, 5])
    // the chain: each version names the BLAKE3 of the previous one's canonical JSON (signature included)
    assert.deepEqual(chain.map(rosterHash), file.rosterHashes)
    assert.deepEqual(file.rosterHashes, file.rosterChain.map(s => toHex(contentHash(utf8Encode(s)))))
    assert.deepEqual(chain.map(r => r.prev), [undefined, ...file.rosterHashes.slice(0, -1)])
    assert.equal(file.invite.invite.rosterHash, file.rosterHashes[4])
  })

  it('the stored invite code decodes to the stored invite; id and proof match', async () => {
    const sodium = await loadBackend()
    const v = file.invite
    assert.deepEqual(decodeInviteCode(sodium, v.code, T0 + 601), v.invite)
    assert.equal(v.inviteId, inviteId(v.invite.secret))
    assert.equal(v.invite.secret, Buffer.from(fromHex('b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf')).toString('base64url'))
    assert.equal(checkInviteProof(v.invite, v.joiner.peerId, v.joiner.userId, v.proof), true)
  })
})
