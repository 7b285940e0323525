/**
 * The pack golden vector (test/vectors/pack.json, docs/format/packs.md §10): a reader written from the
 * doc alone (primitives only: sealed box, XChaCha20-Poly1305, zstd, BLAKE3) opens the real pack with the
 * vector identity and gets every blob back; the repository's own reader agrees; and the writer still
 * produces the same bytes.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import * as zstd from 'zstd-napi'
import { contentHash, deriveIdentity, keyedHash, loadBackend, type Identity, type SodiumBackend } from '../../../src/crypto/index.js'
import { decodeTree } from '../../../src/format/tree.js'
import { asPackId } from '../../../src/ids.js'
import { MemoryShareStore } from '../../../src/store/index.js'
import { PackReader, SingleStorePackStore } from '../../../src/repo/index.js'
import { fromHex, toHex, utf8Encode } from '../../../src/util/bytes.js'
import { buildVectorPack } from '../../vectors/generate-pack.js'

interface VBlob { type: number, id: string, compression: number, offset: number, length: number, rawLength: number, nonce: string, plaintext: string }
interface Vector {
  seed: string, userId: string, packKey: string, packId: string, packLength: number, prefix: string, keyInfo: string
  headerOffset: number, headerLength: number, headerNonce: string, headerNaturalLength: number, headerPlainLength: number
  headerPlain: string, blobs: VBlob[], shareHeader: string, pack: string
}

const v = JSON.parse(readFileSync(new URL('../../vectors/pack.json', import.meta.url), 'utf8')) as Vector
const pack = fromHex(v.pack)

// ---- an independent reader, written from docs/format/packs.md only ----

interface DocEntry { type: number, id: Uint8Array, compression: number, offset: number, length: number, rawLength: number }

function le32 (b: Uint8Array, at: number): number {
  return ((b[at] as number) | (b[at + 1] as number) << 8 | (b[at + 2] as number) << 16) + (b[at + 3] as number) * 2 ** 24
}

function uvarint (b: Uint8Array, pos: { at: number }): number {
  let value = 0
  let mul = 1
  for (;;) {
    const byte = b[pos.at++]
    if (byte === undefined) throw new Error('truncated varint')
    value += (byte & 0x7f) * mul
    if ((byte & 0x80) === 0) return value
    mul *= 128
  }
}

function docReadPack (sodium: SodiumBackend, id: Identity, bytes: Uint8Array): { key: Uint8Array, headerOffset: number, entries: DocEntry[], plaintexts: Uint8Array[] } {
  // §2 prefix: "P2PBPACK" || 0x01 || sealedKeyInfo(84)
  assert.equal(Buffer.from(bytes.subarray(0, 8)).toString('latin1'), 'P2PBPACK')
  assert.equal(bytes[8], 1)
  // §3 key info: packKey(32) || headerOffset u32le, sealed to boxPublicKey
  const info = sodium.sealOpen(bytes.subarray(9, 93), id.boxPublicKey, id.boxSecretKey as Uint8Array)
  assert.equal(info.byteLength, 36)
  const key = info.slice(0, 32)
  const headerOffset = le32(info, 32)
  assert.ok(headerOffset >= 93 && headerOffset <= bytes.byteLength - 40)
  // §5 encHeader = nonce(24) || AEAD(...) from headerOffset to the end of the pack
  const header = sodium.aeadDecrypt(bytes.subarray(headerOffset + 24), utf8Encode('p2pbak pack header v1'),
    bytes.subarray(headerOffset, headerOffset + 24), key)
  // §5 header: count uvarint || entries || zero padding
  const pos = { at: 0 }
  const count = uvarint(header, pos)
  const entries: DocEntry[] = []
  for (let i = 0; i < count; i++) {
    const type = header[pos.at++] as number
    const bid = header.slice(pos.at, pos.at + 32); pos.at += 32
    const compression = header[pos.at++] as number
    entries.push({ type, id: bid, compression, offset: uvarint(header, pos), length: uvarint(header, pos), rawLength: uvarint(header, pos) })
  }
  assert.ok(header.subarray(pos.at).every(b => b === 0), 'header padding is zeros')
  // §4 blob: nonce(24) || AEAD(key, nonce, AD = "p2pbak blob v1" || type || id, stored)
  const plaintexts = entries.map(e => {
    const enc = bytes.subarray(e.offset, e.offset + e.length)
    const ad = new Uint8Array([...utf8Encode('p2pbak blob v1'), e.type, ...e.id])
    const stored = sodium.aeadDecrypt(enc.subarray(24), ad, enc.subarray(0, 24), key)
    const plain = e.compression === 1 ? new Uint8Array(zstd.decompress(stored)) : stored
    assert.equal(plain.byteLength, e.rawLength)
    return plain
  })
  return { key, headerOffset, entries, plaintexts }
}

describe('format/pack golden vector (test/vectors/pack.json)', () => {
  let sodium: SodiumBackend
  let identity: Identity
  before(async () => {
    sodium = await loadBackend('sodium-native')
    identity = deriveIdentity(sodium, fromHex(v.seed))
    assert.equal(identity.userId, v.userId)
  })

  it('pack id is BLAKE3 of the pack bytes, and the size is a size class', () => {
    assert.equal(pack.byteLength, v.packLength)
    assert.equal(pack.byteLength % 65536, 0)
    assert.equal(toHex(contentHash(pack)), v.packId)
  })

  it('a reader written from the doc opens the key, header and every blob', () => {
    const { key, headerOffset, entries, plaintexts } = docReadPack(sodium, identity, pack)
    assert.equal(toHex(key), v.packKey)
    assert.equal(headerOffset, v.headerOffset)
    assert.equal(entries.length, v.blobs.length)
    entries.forEach((e, i) => {
      const want = v.blobs[i] as VBlob
      assert.deepEqual({ ...e, id: toHex(e.id) }, { type: want.type, id: want.id, compression: want.compression, offset: want.offset, length: want.length, rawLength: want.rawLength })
      const plain = plaintexts[i] as Uint8Array
      assert.equal(toHex(plain), want.plaintext)
      // blob id = BLAKE3 keyed with the dedup key, over the plaintext
      assert.equal(toHex(keyedHash(identity.dedupKey, plain)), want.id)
    })
    // the vector covers both compression values and both blob types
    assert.deepEqual(new Set(entries.map(e => e.compression)), new Set([0, 1]))
    assert.deepEqual(new Set(entries.map(e => e.type)), new Set([0, 1]))
    const tree = decodeTree(plaintexts[3] as Uint8Array)
    assert.deepEqual(tree.nodes.map(n => toHex(n.content?.[0] ?? new Uint8Array())), v.blobs.slice(0, 3).map(b => b.id))
  })

  it('layout fields: prefix, sealed key info, header position (the header runs to the end: no trailer)', () => {
    assert.equal(toHex(pack.subarray(0, 93)), v.prefix)
    const info = sodium.sealOpen(pack.subarray(9, 93), identity.boxPublicKey, identity.boxSecretKey as Uint8Array)
    assert.equal(toHex(info), v.keyInfo)
    const le = Buffer.alloc(4)
    le.writeUInt32LE(v.headerOffset)
    assert.equal(v.keyInfo, v.packKey + le.toString('hex'), 'key info = packKey || headerOffset u32le')
    assert.equal(v.headerOffset + v.headerLength, pack.byteLength)
    assert.equal(toHex(pack.subarray(v.headerOffset, v.headerOffset + 24)), v.headerNonce)
    const last = v.blobs.at(-1) as VBlob
    assert.equal(last.offset + last.length, v.headerOffset, 'blobs end where the header starts')
    assert.equal(v.headerPlainLength, v.headerLength - 40)
  })

  it('any flipped byte in a blob or the header is detected', () => {
    for (const at of [(v.blobs[1] as VBlob).offset + 30, v.headerOffset + 50, 20, pack.byteLength - 1]) {
      const bad = pack.slice()
      bad[at] = (bad[at] as number) ^ 1
      assert.throws(() => docReadPack(sodium, identity, bad))
      assert.notEqual(toHex(contentHash(bad)), v.packId)
    }
  })

  it("the repository's PackReader reads the same entries and plaintexts", () => {
    const reader = new PackReader(sodium, identity, new SingleStorePackStore(new MemoryShareStore()))
    const { key, entries } = reader.parsePack(pack)
    assert.equal(toHex(key), v.packKey)
    entries.forEach((e, i) => {
      const want = v.blobs[i] as VBlob
      assert.equal(toHex(e.id), want.id)
      const plain = reader.openBlob(key, e.type, e.id, e.compression, e.rawLength, pack.subarray(e.offset, e.offset + e.length))
      assert.equal(toHex(plain), want.plaintext)
    })
  })

  it('the embedded default stores it as share 0: 88-byte share header || pack', async () => {
    const store = new MemoryShareStore()
    const packs = new SingleStorePackStore(store)
    const id = asPackId(fromHex(v.packId))
    assert.deepEqual(await packs.putPack(id, pack), { k: 1, m: 0 })
    const share = await store.get({ pack: id, index: 0 })
    assert.equal(toHex(share.subarray(0, 88)), v.shareHeader)
    assert.equal(toHex(share.subarray(88)), v.pack)
    assert.equal(toHex(await packs.getPack(id)), v.pack)
    const b = v.blobs[2] as VBlob
    assert.deepEqual(await packs.getPackRange(id, b.offset, b.length), pack.subarray(b.offset, b.offset + b.length))
  })

  it('the writer still produces these bytes (all but the sealed key info, which libsodium randomizes)', () => {
    const built = buildVectorPack(sodium, identity)
    assert.equal(built.bytes.byteLength, pack.byteLength)
    assert.deepEqual(built.bytes.subarray(0, 9), pack.subarray(0, 9))
    const info = sodium.sealOpen(built.bytes.subarray(9, 93), identity.boxPublicKey, identity.boxSecretKey as Uint8Array)
    assert.equal(toHex(info), v.keyInfo, 'the sealed plaintext (pack key, header offset) is unchanged')
    assert.ok(Buffer.from(built.bytes.subarray(93)).equals(pack.subarray(93)), 'blob area and header are unchanged')
  })
})
