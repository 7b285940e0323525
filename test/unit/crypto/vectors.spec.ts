/**
 * Golden vectors (test/vectors/crypto.json) through both backends, plus published known-answer
 * tests, plus independent re-derivations that prove docs/format/keys.md describes the bytes.
 */
import assert from 'node:assert/strict'
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Blake2BHasher, Blake2BParam } from '@napi-rs/blake-hash'
import {
  contentHash, deriveGearTable, deriveIdentity, keyedHash, loadBackend, openKeyFile, parseKeyFile
} from '../../../src/crypto/index.js'
import { phraseToSeed, seedToPhrase } from '../../../src/crypto/phrase.js'
import type { SodiumBackend } from '../../../src/crypto/index.js'
import { fromHex, toHex, utf8Encode } from '../../../src/util/bytes.js'

interface Vectors {
  seed: string
  phrase: string
  kdf: { context: string, subkeys: Record<string, string> }
  identity: Record<'userId' | 'signPublicKey' | 'signSecretKey' | 'boxPublicKey' | 'boxSecretKey' | 'dedupKey' | 'chunkerKey' | 'gcViewPublicKey' | 'gcViewSecretKey', string>
  gear: { first: number[], last: number, tableHash: string }
  aead: Record<'key' | 'nonce' | 'ad' | 'plaintext' | 'ciphertext', string>
  sign: { message: string, signature: string }
  hashInput: { length: number }
  keyedHash: { hash: string }
  contentHash: { hash: string }
  pwhash: { passphrase: string, salt: string, opslimit: number, memlimit: number, length: number, output: string }
  keyFiles: { passphrase: string, encrypted: unknown, clear: unknown }
}

const v = JSON.parse(readFileSync(new URL('../../vectors/crypto.json', import.meta.url), 'utf8')) as Vectors
const seed = fromHex(v.seed)
const pattern = (n: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => i % 251)

for (const name of ['sodium-native', 'libsodium-wrappers'] as const) {
  describe(`crypto golden vectors (${name})`, () => {
    let backend: SodiumBackend
    before(async () => { backend = await loadBackend(name) })

    it('reports its name', () => assert.equal(backend.name, name))

    it('derives the KDF subkeys 1..5 under "p2pbak01"', () => {
      assert.deepEqual(Object.keys(v.kdf.subkeys), ['1', '2', '3', '4', '5'])
      for (const [id, hex] of Object.entries(v.kdf.subkeys)) {
        assert.equal(toHex(backend.kdfDerive(seed, Number(id), v.kdf.context, 32)), hex, `subkey ${id}`)
      }
    })

    it('derives the identity: userId, the three key pairs, dedup and chunker keys', () => {
      const id = deriveIdentity(backend, seed)
      assert.equal(id.userId, v.identity.userId)
      assert.equal(toHex(id.signPublicKey), v.identity.signPublicKey)
      assert.equal(toHex(id.signSecretKey ?? new Uint8Array(0)), v.identity.signSecretKey)
      assert.equal(toHex(id.boxPublicKey), v.identity.boxPublicKey)
      assert.equal(toHex(id.boxSecretKey ?? new Uint8Array(0)), v.identity.boxSecretKey)
      assert.equal(toHex(id.dedupKey), v.identity.dedupKey)
      assert.equal(toHex(id.chunkerKey), v.identity.chunkerKey)
      assert.equal(toHex(id.gcView?.publicKey ?? new Uint8Array(0)), v.identity.gcViewPublicKey)
      assert.equal(toHex(id.gcView?.secretKey ?? new Uint8Array(0)), v.identity.gcViewSecretKey)
    })

    it('derives the gear table', () => {
      const gear = deriveGearTable(deriveIdentity(backend, seed).chunkerKey)
      assert.deepEqual(Array.from(gear.subarray(0, 8)), v.gear.first)
      assert.equal(gear[255], v.gear.last)
      assert.equal(toHex(contentHash(new Uint8Array(gear.buffer, gear.byteOffset, gear.byteLength))), v.gear.tableHash)
    })

    it('encrypts the AEAD vector and decrypts it back', () => {
      const [key, nonce, ad, plaintext] = [v.aead.key, v.aead.nonce, v.aead.ad, v.aead.plaintext].map(fromHex) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array]
      assert.equal(toHex(backend.aeadEncrypt(plaintext, ad, nonce, key)), v.aead.ciphertext)
      assert.equal(toHex(backend.aeadDecrypt(fromHex(v.aead.ciphertext), ad, nonce, key)), v.aead.plaintext)
    })

    it('produces the deterministic Ed25519 signature and verifies it', () => {
      const id = deriveIdentity(backend, seed)
      const msg = fromHex(v.sign.message)
      assert.equal(toHex(backend.sign(msg, id.signSecretKey ?? new Uint8Array(0))), v.sign.signature)
      assert.equal(backend.verify(fromHex(v.sign.signature), msg, id.signPublicKey), true)
    })

    it('computes the Argon2id vector', () => {
      const p = v.pwhash
      assert.equal(toHex(backend.pwhash(p.length, utf8Encode(p.passphrase), fromHex(p.salt), p.opslimit, p.memlimit)), p.output)
    })

    it('opens the golden key files (encrypted and clear) to the seed', () => {
      const enc = parseKeyFile(JSON.stringify(v.keyFiles.encrypted))
      assert.equal(toHex(openKeyFile(backend, enc, v.keyFiles.passphrase)), v.seed)
      const clear = parseKeyFile(JSON.stringify(v.keyFiles.clear))
      assert.equal(toHex(openKeyFile(backend, clear, null)), v.seed)
    })

    it('passes RFC 8032 Ed25519 test 1 (empty message)', () => {
      const kp = backend.signKeypairFromSeed(fromHex('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60'))
      assert.equal(toHex(kp.publicKey), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
      assert.equal(toHex(backend.sign(new Uint8Array(0), kp.secretKey)),
        'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b')
    })

    it('passes the XChaCha20-Poly1305 test vector of draft-irtf-cfrg-xchacha (A.3.1)', () => {
      const key = Uint8Array.from({ length: 32 }, (_, i) => 0x80 + i)
      const nonce = Uint8Array.from({ length: 24 }, (_, i) => 0x40 + i)
      const ad = fromHex('50515253c0c1c2c3c4c5c6c7')
      const m = utf8Encode("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
      const c = toHex(backend.aeadEncrypt(m, ad, nonce, key))
      assert.ok(c.startsWith('bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb'))
      assert.ok(c.endsWith('c0875924c1c7987947deafd8780acf49'), 'tag')
    })
  })
}

describe('crypto golden vectors (backend-independent)', () => {
  it('keyed and unkeyed BLAKE3 of the vector input', () => {
    const data = pattern(v.hashInput.length)
    assert.equal(toHex(keyedHash(fromHex(v.identity.dedupKey), data)), v.keyedHash.hash)
    assert.equal(toHex(contentHash(data)), v.contentHash.hash)
  })

  it('the recovery phrase of the seed, both ways', () => {
    assert.equal(seedToPhrase(seed), v.phrase)
    assert.equal(toHex(phraseToSeed(v.phrase)), v.seed)
  })

  it('matches the official BLAKE3 test vectors (hash and keyed_hash, first 32 bytes)', () => {
    const key = utf8Encode('whats the Elvish word for friend')
    const cases: Array<[number, string, string]> = [
      [0, 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262', '92b2b75604ed3c761f9d6f62392c8a9227ad0ea3f09573e783f1498a4ed60d26'],
      [1, '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213', '6d7878dfff2f485635d39013278ae14f1454b8c0a3a2d34bc1ab38228a80c95b'],
      [1024, '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7', '75c46f6f3d9eb4f55ecaaee480db732e6c2105546f1e675003687c31719c7ba4'],
      [1025, 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444', '357dc55de0c7e382c900fd6e320acc04146be01db6a8ce7210b7189bd664ea69'],
      [7169, 'a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817', 'ed9b1a922c046fdb3d423ae34e143b05ca1bf28b710432857bf738bcedbfa511']
    ]
    for (const [n, hash, keyed] of cases) {
      assert.equal(toHex(contentHash(pattern(n))), hash, `hash ${n}`)
      assert.equal(toHex(keyedHash(key, pattern(n))), keyed, `keyed_hash ${n}`)
    }
  })

  it('the spec of crypto_kdf holds: BLAKE2b(key=seed, salt=LE64(id)||0^8, personal=context||0^8)', () => {
    for (const [id, hex] of Object.entries(v.kdf.subkeys)) {
      const params = new Blake2BParam()
      params.key(Buffer.from(seed))
      const salt = Buffer.alloc(16)
      salt.writeBigUInt64LE(BigInt(id))
      params.salt(salt)
      params.personal(Buffer.concat([Buffer.from(v.kdf.context, 'ascii'), Buffer.alloc(8)]))
      params.hashLength(32)
      assert.equal(Blake2BHasher.withParams(params).digestBuffer().toString('hex'), hex)
    }
  })

  it('the spec of the key pairs holds (checked with node:crypto, not libsodium)', () => {
    const b64url = (b: Uint8Array): string => Buffer.from(b).toString('base64url')
    const edSeed = fromHex(v.kdf.subkeys['1'] ?? '')
    const ed = createPublicKey(createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: b64url(edSeed), x: '' }, format: 'jwk' }))
    assert.equal(Buffer.from(ed.export({ format: 'jwk' }).x ?? '', 'base64url').toString('hex'), v.identity.signPublicKey)
    // crypto_box_seed_keypair: secret key = first 32 bytes of SHA-512(seed)
    const xSecret = createHash('sha512').update(fromHex(v.kdf.subkeys['2'] ?? '')).digest().subarray(0, 32)
    assert.equal(xSecret.toString('hex'), v.identity.boxSecretKey)
    const x = createPublicKey(createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64url(xSecret), x: '' }, format: 'jwk' }))
    assert.equal(Buffer.from(x.export({ format: 'jwk' }).x ?? '', 'base64url').toString('hex'), v.identity.boxPublicKey)
  })

  it('the spec of the gear table holds: LE uint32s of BLAKE3-keyed("p2pbak-gear-v1" || j)', () => {
    const chunkerKey = fromHex(v.identity.chunkerKey)
    const gear = deriveGearTable(chunkerKey)
    for (const j of [0, 31]) {
      const block = Buffer.from(keyedHash(chunkerKey, Uint8Array.from([...utf8Encode('p2pbak-gear-v1'), j])))
      for (let i = 0; i < 8; i++) assert.equal(gear[8 * j + i], block.readUInt32LE(4 * i))
    }
  })
})
