import assert from 'node:assert/strict'
import { TEST_KDF, decodeKeyFileBase64, deriveIdentity, encodeKeyFileBase64, loadBackend, writeOnlyIdentity } from '../../../src/crypto/index.js'
import type { Identity, SodiumBackend } from '../../../src/crypto/index.js'
import { decodeSnapshotEnvelope, deviceSnapshotSigningBytes, encodeSnapshotEnvelope, encodeSnapshotRecord } from '../../../src/format/snapshot.js'
import type { SnapshotRecord } from '../../../src/format/snapshot.js'
import { asTreeId } from '../../../src/ids.js'
import {
  canonicalJson, createWriteOnlyKey, deviceSigningKey, isWriteOnlyCert, issueDeviceCert, openWriteOnlyKey, parseWriteOnlyKey, peerIdOfEd25519
} from '../../../src/peers/index.js'
import type { WriteOnlyKey } from '../../../src/peers/index.js'
import { openSnapshot, sealSnapshot, type RecordSigner } from '../../../src/repo/index.js'
import { utf8Encode } from '../../../src/util/bytes.js'

function record (userId: string): SnapshotRecord {
  return {
    version: 1, time: 1_700_000_000_000_000_000n, endTime: 1_700_000_001_000_000_000n, host: 'server', user: 'root', userId,
    paths: ['/srv'], tags: [], tree: asTreeId(new Uint8Array(32).fill(7)),
    summary: { filesNew: 1, filesChanged: 0, filesUnchanged: 0, dirs: 1, bytesRead: 5, bytesAdded: 5, errors: 0 }, program: 'p2pbak test'
  }
}

describe('write-only machines: the key file and device-signed snapshot records', () => {
  let sodium: SodiumBackend
  let owner: Identity
  let other: Identity
  before(async () => {
    sodium = await loadBackend()
    owner = deriveIdentity(sodium, new Uint8Array(32).fill(1))
    other = deriveIdentity(sodium, new Uint8Array(32).fill(2))
  })

  function signerOf (key: WriteOnlyKey): RecordSigner {
    return { cert: key.deviceCert, ...deviceSigningKey(sodium, key) }
  }

  describe('the write-only key file', () => {
    it('holds what writing needs and no secret key of the user, in clear or under a passphrase', () => {
      for (const passphrase of [null, 'correct horse']) {
        const { file } = createWriteOnlyKey(sodium, owner, 'server', 1_700_000_000_000, passphrase, TEST_KDF)
        const text = JSON.stringify(file)
        for (const secret of [owner.signSecretKey, owner.boxSecretKey, owner.signSecretKey?.subarray(0, 32)]) {
          assert.equal(text.includes(encodeKeyFileBase64(secret as Uint8Array)), false)
        }
        const opened = openWriteOnlyKey(sodium, parseWriteOnlyKey(text), passphrase)
        assert.deepEqual({ ...opened.identity }, { ...writeOnlyIdentity(owner) })
        assert.equal(isWriteOnlyCert(opened.deviceCert), true)
        assert.equal(opened.deviceCert.userId, owner.userId)
        assert.equal(peerIdOfEd25519(deviceSigningKey(sodium, opened).publicKey), opened.deviceCert.peerId)
      }
    })

    it('a wrong passphrase, an altered certificate or a foreign device key are refused', () => {
      const { file } = createWriteOnlyKey(sodium, owner, 'server', 1, 'pass', TEST_KDF)
      assert.throws(() => openWriteOnlyKey(sodium, file, 'wrong'), { code: 'ERR_WRONG_PASSPHRASE' })
      assert.throws(() => openWriteOnlyKey(sodium, file, null), { code: 'ERR_WRONG_PASSPHRASE' })
      const clear = createWriteOnlyKey(sodium, owner, 'server', 1, null).file
      assert.throws(() => openWriteOnlyKey(sodium, { ...clear, deviceCert: { ...clear.deviceCert, name: 'x' } }, null), { code: 'ERR_FORMAT' })
      const another = createWriteOnlyKey(sodium, owner, 'server', 1, null).file
      assert.throws(() => openWriteOnlyKey(sodium, { ...clear, deviceCert: another.deviceCert }, null), { code: 'ERR_FORMAT' })
      // a full device's certificate is not a write-only key's
      const fullCert = issueDeviceCert(sodium, owner, clear.deviceCert.peerId, 'server', 1)
      assert.throws(() => parseWriteOnlyKey(JSON.stringify({ ...clear, deviceCert: fullCert })), { code: 'ERR_FORMAT' })
      assert.throws(() => parseWriteOnlyKey(JSON.stringify({ ...clear, version: 3 })), { code: 'ERR_STORE_VERSION' })
      assert.throws(() => createWriteOnlyKey(sodium, writeOnlyIdentity(owner), 'x', 1, null), { code: 'ERR_INVALID_ARGUMENT' })
    })
    it('version 2 carries the gc view key; a version 1 file (without it) still opens, and its machine cannot read gc records', () => {
      const { file } = createWriteOnlyKey(sodium, owner, 'server', 1, null)
      assert.equal(file.version, 2)
      const v2 = openWriteOnlyKey(sodium, parseWriteOnlyKey(JSON.stringify(file)), null)
      assert.deepEqual(v2.identity.gcView, owner.gcView)
      const v1 = { ...file, version: 1, secrets: encodeKeyFileBase64(decodeKeyFileBase64(file.secrets ?? '', 128, 'secrets').subarray(0, 96)) }
      const opened = openWriteOnlyKey(sodium, parseWriteOnlyKey(JSON.stringify(v1)), null)
      assert.equal(opened.identity.gcView, null)
      assert.equal(opened.deviceCert.peerId, file.deviceCert.peerId)
      // the secret part's length is that of the file's version
      assert.throws(() => parseWriteOnlyKey(JSON.stringify({ ...file, version: 1 })), { code: 'ERR_FORMAT' })
      const sealed = createWriteOnlyKey(sodium, owner, 'server', 1, 'pass', TEST_KDF).file
      assert.throws(() => openWriteOnlyKey(sodium, { ...sealed, version: 1 }, 'pass'), { code: 'ERR_FORMAT' })
    })
  })

  describe('snapshot records signed by a certified write-only device (envelope version 2)', () => {
    it('the owner opens them; the write-only machine itself cannot', () => {
      const { key } = createWriteOnlyKey(sodium, owner, 'server', 1, null)
      const { id, envelope } = sealSnapshot(sodium, key.identity, record(owner.userId), signerOf(key))
      assert.equal(envelope[8], 2, 'envelope version 2')
      const opened = openSnapshot(sodium, owner, envelope)
      assert.deepEqual(opened.id, id)
      assert.equal(opened.record.host, 'server')
      assert.throws(() => openSnapshot(sodium, key.identity, envelope), { code: 'ERR_WRITE_ONLY' })
      assert.throws(() => sealSnapshot(sodium, key.identity, record(owner.userId)), { code: 'ERR_WRITE_ONLY' })
    })

    it('a stolen write-only key cannot write in another host\'s name, nor date a record ahead (review of the merge)', () => {
      const key = openWriteOnlyKey(sodium, createWriteOnlyKey(sodium, owner, 'server', 1, null).file, null)
      const signer = signerOf(key)
      // the machine's own records always carry its certified name, whatever host it was given
      const sealed = sealSnapshot(sodium, key.identity, { ...record(owner.userId), host: 'laptop' }, signer)
      assert.equal(openSnapshot(sodium, owner, sealed.envelope).record.host, 'server')
      // a record signed by hand with the device key, in the laptop's name: refused
      const forge = (rec: SnapshotRecord): Uint8Array => {
        const sealedRecord = sodium.seal(encodeSnapshotRecord(rec), owner.boxPublicKey)
        const device = { cert: utf8Encode(canonicalJson(key.deviceCert)), publicKey: signer.publicKey }
        const signature = sodium.sign(deviceSnapshotSigningBytes(owner.signPublicKey, device, sealedRecord), signer.secretKey)
        return encodeSnapshotEnvelope({ userId: owner.signPublicKey, device, sealed: sealedRecord, signature })
      }
      assert.equal(openSnapshot(sodium, owner, forge(record(owner.userId))).record.host, 'server', 'the forge itself is sound')
      assert.throws(() => openSnapshot(sodium, owner, forge({ ...record(owner.userId), host: 'laptop' })), { code: 'ERR_UNAUTHENTICATED', message: /claims the host "laptop"/ })
      // dated two days ahead of the reader's clock: refused (a retention policy would keep it in place of real ones)
      const now = Date.now()
      const ahead = BigInt(now + 2 * 86_400_000) * 1_000_000n
      assert.throws(() => openSnapshot(sodium, owner, forge({ ...record(owner.userId), time: ahead, endTime: ahead }), now), { code: 'ERR_UNAUTHENTICATED', message: /dated in the future/ })
    })

    it('refuses a record whose signature, certificate or key does not hold', () => {
      const { key } = createWriteOnlyKey(sodium, owner, 'server', 1, null)
      const { envelope } = sealSnapshot(sodium, key.identity, record(owner.userId), signerOf(key))
      const env = decodeSnapshotEnvelope(envelope)
      const bad = (e: typeof env): void => { assert.throws(() => openSnapshot(sodium, owner, encodeSnapshotEnvelope(e)), { code: 'ERR_UNAUTHENTICATED' }) }
      const flipped = env.signature.slice(); flipped[0] = (flipped[0] as number) ^ 1
      bad({ ...env, signature: flipped })
      // another device of the same owner cannot pass its key off as this one's
      const { key: key2 } = createWriteOnlyKey(sodium, owner, 'server2', 1, null)
      const s2 = sealSnapshot(sodium, key2.identity, record(owner.userId), signerOf(key2))
      const env2 = decodeSnapshotEnvelope(s2.envelope)
      bad({ ...env2, device: { cert: (env.device as { cert: Uint8Array }).cert, publicKey: (env2.device as { publicKey: Uint8Array }).publicKey } })
      // a full device's certificate (version 1) does not let its device key sign records
      const fullCert = issueDeviceCert(sodium, owner, key.deviceCert.peerId, 'server', 1)
      const s3 = sealSnapshot(sodium, key.identity, record(owner.userId), { ...signerOf(key), cert: fullCert })
      assert.throws(() => openSnapshot(sodium, owner, s3.envelope), /not certified write-only/)
      // a certificate by someone else, for a record in the owner's name
      const { key: foreign } = createWriteOnlyKey(sodium, other, 'x', 1, null)
      const s4 = sealSnapshot(sodium, key.identity, record(owner.userId), signerOf(foreign))
      assert.throws(() => openSnapshot(sodium, owner, s4.envelope), /did not sign/)
    })
  })
})
