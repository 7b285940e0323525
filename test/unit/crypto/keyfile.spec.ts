import assert from 'node:assert/strict'
import fc from 'fast-check'
import {
  DEFAULT_KDF, TEST_KDF, createKeyFile, deriveIdentity, keyFileNeedsPassphrase, loadBackend, openKeyFile, openKeyFileAsync, parseKeyFile
} from '../../../src/crypto/index.js'
import type { KeyFile, SodiumBackend } from '../../../src/crypto/index.js'
import { FormatError, InvalidArgumentError, StoreVersionError, WrongPassphraseError } from '../../../src/errors.js'

const seedOf = (v: number): Uint8Array => new Uint8Array(32).fill(v)
const wrongPassphrase = (err: unknown): boolean => err instanceof WrongPassphraseError && err.code === 'ERR_WRONG_PASSPHRASE'
const formatError = (err: unknown): boolean => err instanceof FormatError && err.code === 'ERR_FORMAT'
/** Text -> the same object with some fields replaced, re-serialized. */
const edit = (file: KeyFile, patch: Record<string, unknown>): string => JSON.stringify({ ...file, ...patch })

describe('key file', () => {
  let b: SodiumBackend
  let wasm: SodiumBackend
  before(async () => { [b, wasm] = await Promise.all([loadBackend('sodium-native'), loadBackend('libsodium-wrappers')]) })

  it('round-trips through JSON text with a passphrase, and says it needs one', () => {
    const seed = seedOf(1)
    const file = createKeyFile(b, seed, 'hunter2 is not a passphrase', TEST_KDF)
    assert.equal(keyFileNeedsPassphrase(file), true)
    assert.equal(file.version, 1)
    assert.equal(file.userId, deriveIdentity(b, seed).userId)
    assert.ok(!JSON.stringify(file).includes(Buffer.from(seed).toString('base64')), 'the seed is not in clear')
    const reread = parseKeyFile(JSON.stringify(file, null, 2))
    assert.deepEqual(openKeyFile(b, reread, 'hunter2 is not a passphrase'), seed)
    assert.deepEqual(openKeyFile(wasm, reread, 'hunter2 is not a passphrase'), seed, 'the portable backend opens it too')
  })

  it('round-trips without a passphrase (seed in clear), ignoring a passphrase given anyway', () => {
    const seed = seedOf(2)
    const file = createKeyFile(b, seed, null)
    assert.equal(keyFileNeedsPassphrase(file), false)
    assert.equal(file.kdf, null)
    const reread = parseKeyFile(JSON.stringify(file))
    assert.deepEqual(openKeyFile(b, reread, null), seed)
    assert.deepEqual(openKeyFile(b, reread, 'anything'), seed)
  })

  it('uses a fresh salt and nonce each time', () => {
    const a = createKeyFile(b, seedOf(3), 'pw', TEST_KDF)
    const c = createKeyFile(b, seedOf(3), 'pw', TEST_KDF)
    assert.ok(a.kdf !== null && c.kdf !== null && 'nonce' in a && 'nonce' in c)
    assert.notEqual(a.kdf.salt, c.kdf.salt)
    assert.notEqual(a.nonce, c.nonce)
  })

  it('refuses a wrong, missing or empty passphrase with WrongPassphraseError', () => {
    const file = createKeyFile(b, seedOf(4), 'right', TEST_KDF)
    for (const p of ['wrong', 'Right', 'right ', null, '']) assert.throws(() => openKeyFile(b, file, p), wrongPassphrase, String(p))
  })

  it('openKeyFileAsync gives the seed openKeyFile gives, with both backends, and the same typed errors', async () => {
    const enc = createKeyFile(b, seedOf(14), 'right', TEST_KDF)
    const clear = createKeyFile(b, seedOf(15), null)
    for (const backend of [b, wasm]) {
      assert.deepEqual(await openKeyFileAsync(backend, enc, 'right'), openKeyFile(backend, enc, 'right'))
      assert.deepEqual(await openKeyFileAsync(backend, enc, 'right'), seedOf(14))
      assert.deepEqual(await openKeyFileAsync(backend, clear, null), seedOf(15))
      for (const p of ['wrong', 'Right', null, '']) await assert.rejects(openKeyFileAsync(backend, enc, p), wrongPassphrase, String(p))
      const other = deriveIdentity(b, seedOf(16))
      await assert.rejects(openKeyFileAsync(backend, parseKeyFile(edit(clear, { userId: other.userId })), null), formatError)
      await assert.rejects(openKeyFileAsync(backend, parseKeyFile(edit(enc, { userId: other.userId })), 'right'), wrongPassphrase)
    }
  })

  it('openKeyFileAsync opens a DEFAULT_KDF file as openKeyFile does', async function () {
    this.timeout(20000)
    const file = createKeyFile(b, seedOf(17), 'default cost', DEFAULT_KDF)
    assert.deepEqual(await openKeyFileAsync(b, file, 'default cost'), openKeyFile(b, file, 'default cost'))
  })

  it('treats the passphrase as Unicode text: NFC and NFD spellings open the same file', () => {
    const file = createKeyFile(b, seedOf(5), 'caf\u00e9', TEST_KDF)
    assert.deepEqual(openKeyFile(b, file, 'cafe\u0301'), seedOf(5))
  })

  it('refuses to create a file with an empty passphrase or out-of-range kdf params', () => {
    assert.throws(() => createKeyFile(b, seedOf(6), '', TEST_KDF), InvalidArgumentError)
    assert.throws(() => createKeyFile(b, seedOf(6), 'pw', { opslimit: 0, memlimit: 8192 }), RangeError)
    assert.throws(() => createKeyFile(b, seedOf(6), 'pw', { opslimit: 1, memlimit: 8193 }), RangeError)
    assert.throws(() => createKeyFile(b, new Uint8Array(31), null), RangeError)
  })

  it('DEFAULT_KDF works end to end with both backends', function () {
    this.timeout(20000)
    assert.ok(DEFAULT_KDF.opslimit >= 3 && DEFAULT_KDF.memlimit >= 64 * 1024 * 1024, 'not a toy cost')
    const file = createKeyFile(b, seedOf(7), 'default cost', DEFAULT_KDF)
    assert.ok(file.kdf !== null)
    assert.deepEqual([file.kdf.opslimit, file.kdf.memlimit], [DEFAULT_KDF.opslimit, DEFAULT_KDF.memlimit])
    assert.deepEqual(openKeyFile(wasm, file, 'default cost'), seedOf(7))
  })

  it('reports a newer version as StoreVersionError', () => {
    const file = createKeyFile(b, seedOf(8), null)
    assert.throws(() => parseKeyFile(edit(file, { version: 2 })), StoreVersionError)
  })

  it('reports malformed files as FormatError, naming the problem', () => {
    const enc = createKeyFile(b, seedOf(9), 'pw', TEST_KDF)
    const clear = createKeyFile(b, seedOf(9), null)
    assert.ok(enc.kdf !== null)
    const cases: Array<[string, RegExp]> = [
      ['', /not valid JSON/],
      ['{"format":"p2pbak-key"', /not valid JSON/],
      ['[]', /not a JSON object/],
      ['null', /not a JSON object/],
      [edit(clear, { format: 'restic' }), /format/],
      [edit(clear, { version: 0 }), /version/],
      [edit(clear, { version: '1' }), /version/],
      [edit(clear, { userId: clear.userId.toUpperCase() }), /userId/],
      [edit(clear, { userId: undefined }), /missing field "userId"/],
      [edit(clear, { seed: 'AAAA' }), /seed must be 32 bytes/],
      [edit(clear, { seed: '!!!' }), /not base64/],
      [edit(enc, { kdf: { ...enc.kdf, algorithm: 'scrypt' } }), /algorithm/],
      [edit(enc, { kdf: { ...enc.kdf, opslimit: 1e9 } }), /opslimit/],
      [edit(enc, { kdf: { ...enc.kdf, memlimit: 8192.5 } }), /memlimit/],
      [edit(enc, { kdf: { ...enc.kdf, memlimit: 2 ** 40 } }), /memlimit/],
      [edit(enc, { kdf: { ...enc.kdf, salt: 'AAAA' } }), /salt/],
      [edit(enc, { kdf: 'argon2id' }), /kdf/],
      [edit(enc, { nonce: undefined }), /nonce/],
      [edit(enc, { ciphertext: enc.ciphertext.slice(4) }), /ciphertext/],
      [' '.repeat(70000), /larger than/]
    ]
    for (const [text, pattern] of cases) {
      assert.throws(() => parseKeyFile(text), (err: unknown) => formatError(err) && pattern.test((err as Error).message), text.slice(0, 80))
    }
  })

  it('detects a userId that does not match the seed', () => {
    const clear = createKeyFile(b, seedOf(10), null)
    const other = createKeyFile(b, seedOf(11), null)
    assert.throws(() => openKeyFile(b, parseKeyFile(edit(clear, { userId: other.userId })), null), formatError)
    const enc = createKeyFile(b, seedOf(10), 'pw', TEST_KDF)
    assert.throws(() => openKeyFile(b, parseKeyFile(edit(enc, { userId: other.userId })), 'pw'), wrongPassphrase, 'userId is authenticated data')
  })

  it('validates objects handed straight to openKeyFile, not only parsed text', () => {
    const file = createKeyFile(b, seedOf(12), null)
    assert.throws(() => openKeyFile(b, { ...file, seed: 'short' } as unknown as KeyFile, null), formatError)
    assert.throws(() => openKeyFile(b, { ...file, version: 9 } as unknown as KeyFile, null), StoreVersionError)
  })

  it('any garbling of the text is FormatError, StoreVersionError or WrongPassphraseError, or still opens to the same seed (property)', () => {
    const seed = seedOf(13)
    const texts = [JSON.stringify(createKeyFile(b, seed, 'pw', TEST_KDF)), JSON.stringify(createKeyFile(b, seed, null))]
    const mutation = fc.tuple(fc.nat(), fc.nat(), fc.constantFrom<'flip' | 'delete' | 'insert' | 'truncate'>('flip', 'delete', 'insert', 'truncate'), fc.string({ minLength: 1, maxLength: 3 }))
    fc.assert(fc.property(fc.constantFrom(0, 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, muts) => {
      let t = texts[which] ?? ''
      for (const [pos, bit, op, s] of muts) {
        const i = t.length === 0 ? 0 : pos % t.length
        if (op === 'flip') t = t.slice(0, i) + String.fromCharCode(t.charCodeAt(i) ^ (1 << (bit % 7))) + t.slice(i + 1)
        else if (op === 'delete') t = t.slice(0, i) + t.slice(i + 1)
        else if (op === 'insert') t = t.slice(0, i) + s + t.slice(i)
        else t = t.slice(0, i)
      }
      try {
        assert.deepEqual(openKeyFile(b, parseKeyFile(t), 'pw'), seed)
      } catch (err: unknown) {
        if (err instanceof assert.AssertionError) throw err
        assert.ok(err instanceof FormatError || err instanceof StoreVersionError || err instanceof WrongPassphraseError, `unexpected ${String(err)}`)
      }
    }), { seed: 5, numRuns: 400 })
  })

  it('changing any character of any field value (JSON still valid) never opens to another seed (property)', () => {
    const seed = seedOf(14)
    const files = [createKeyFile(b, seed, 'pw', TEST_KDF), createKeyFile(b, seed, null)]
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/='
    fc.assert(fc.property(fc.constantFrom(0, 1), fc.nat(), fc.nat(), fc.constantFrom(...chars), (which, fieldPick, pos, ch) => {
      const obj = JSON.parse(JSON.stringify(files[which])) as Record<string, unknown>
      const kdf = obj.kdf as Record<string, unknown> | null
      const slots: Array<[Record<string, unknown>, string]> = Object.keys(obj).filter((k) => k !== 'kdf').map((k) => [obj, k])
      if (kdf !== null) for (const k of Object.keys(kdf)) slots.push([kdf, k])
      const [target, key] = slots[fieldPick % slots.length] ?? [obj, 'userId']
      const text = String(target[key])
      const i = pos % Math.max(1, text.length)
      const changed = text.slice(0, i) + ch + text.slice(i + 1)
      target[key] = typeof target[key] === 'number' ? Number(changed.replace(/[^0-9]/g, '') || '0') : changed
      try {
        assert.deepEqual(openKeyFile(b, parseKeyFile(JSON.stringify(obj)), 'pw'), seed)
      } catch (err: unknown) {
        if (err instanceof assert.AssertionError) throw err
        assert.ok(err instanceof FormatError || err instanceof StoreVersionError || err instanceof WrongPassphraseError, `unexpected ${String(err)}`)
      }
    }), { seed: 7, numRuns: 300 })
  })
})
