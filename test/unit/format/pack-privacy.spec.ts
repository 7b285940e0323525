/**
 * What a pack reveals to someone without the user's box secret key (a persister): its size class and
 * nothing about where its blobs end (docs/format/packs.md §6). The header's offset lives only inside
 * the sealed key info; the pack ends with the header's AEAD tag (no cleartext trailer). Also: the
 * reader's failures stay typed, and a header read costs the prefix read plus one range read.
 */
import assert from 'node:assert/strict'
import { contentHash, deriveIdentity, keyedHash, loadBackend, writeOnlyIdentity, type Identity, type SodiumBackend } from '../../../src/crypto/index.js'
import {
  BlobType, Compression, decodePackPrefix, encodeKeyInfo, encodePackPrefix, PACK_MAGIC, PACK_PREFIX_BYTES, PACK_VERSION,
  SEALED_KEY_INFO_BYTES
} from '../../../src/format/pack.js'
import { asPackId, type PackId } from '../../../src/ids.js'
import { MemoryShareStore } from '../../../src/store/index.js'
import { PackReader, SingleStorePackStore } from '../../../src/repo/index.js'
import { Packer } from '../../../src/repo/packer.js'
import type { PackStore } from '../../../src/repo/pack-store.js'

const unauthenticated = { code: 'ERR_UNAUTHENTICATED' }
const formatError = { code: 'ERR_FORMAT' }

/** xorshift32 bytes, so sizes are not changed by compression (blobs are stored uncompressed anyway). */
function noise (n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  let x = seed >>> 0 || 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0
    x ^= x >>> 17
    x ^= x << 5; x >>>= 0
    out[i] = x & 0xff
  }
  return out
}

interface Built { bytes: Uint8Array, blobEnd: number }

function buildPack (sodium: SodiumBackend, identity: Identity, sizes: number[]): Built {
  const packer = new Packer(sodium, identity.boxPublicKey, 64 * 1024)
  sizes.forEach((n, i) => {
    const data = noise(n, 1000 + n + i)
    packer.add(BlobType.Data, keyedHash(identity.dedupKey, data), n, { compression: Compression.None, data })
  })
  const blobEnd = packer.size
  return { bytes: packer.seal().bytes.slice(), blobEnd }
}

/** A PackStore that counts range reads. */
function countingStore (inner: PackStore): { store: PackStore, ranges: Array<[number, number]> } {
  const ranges: Array<[number, number]> = []
  const store: PackStore = Object.create(inner) as PackStore
  store.getPackRange = async (id, offset, length, options) => {
    ranges.push([offset, length])
    return await inner.getPackRange(id, offset, length, options)
  }
  return { store, ranges }
}

describe('format/pack: size privacy and the sealed header location', () => {
  let sodium: SodiumBackend
  let alice: Identity
  let bob: Identity
  let small: Built
  let large: Built
  before(async () => {
    sodium = await loadBackend('sodium-native')
    alice = deriveIdentity(sodium, new Uint8Array(32).fill(1))
    bob = deriveIdentity(sodium, new Uint8Array(32).fill(2))
    // blob areas differ by ~5 KiB (and by blob count), both well inside the 64 KiB size class
    small = buildPack(sodium, alice, [10_000])
    large = buildPack(sodium, alice, [6_000, 5_000, 4_000])
  })

  it('two packs with different blob areas in one size class have the same length', () => {
    assert.ok(large.blobEnd - small.blobEnd > 4096, `${large.blobEnd} - ${small.blobEnd}`)
    assert.equal(small.bytes.byteLength, 65536)
    assert.equal(large.bytes.byteLength, 65536)
  })

  it('the only cleartext fields are magic and version; the header location is inside the sealed key info', () => {
    for (const p of [small, large]) {
      assert.deepEqual(p.bytes.subarray(0, 8), PACK_MAGIC)
      assert.equal(p.bytes[8], PACK_VERSION)
      // the prefix parses to nothing but an opaque sealed box
      assert.deepEqual(Object.keys(decodePackPrefix(p.bytes.subarray(0, PACK_PREFIX_BYTES))), ['sealedKeyInfo'])
      assert.equal(PACK_PREFIX_BYTES, 9 + SEALED_KEY_INFO_BYTES)
      // with the secret key, the sealed info gives the exact blob-area end
      const reader = new PackReader(sodium, alice, new SingleStorePackStore(new MemoryShareStore()))
      assert.equal(reader.openKey(p.bytes.subarray(0, PACK_PREFIX_BYTES)).headerOffset, p.blobEnd)
      const last = reader.parsePack(p.bytes).entries.at(-1)
      assert.equal((last?.offset ?? 0) + (last?.length ?? 0), p.blobEnd)
    }
    assert.deepEqual(small.bytes.subarray(0, 9), large.bytes.subarray(0, 9), 'the cleartext fields are identical')
  })

  it('without the user\'s secret key the header cannot be located or read', () => {
    const asBob = new PackReader(sodium, bob, new SingleStorePackStore(new MemoryShareStore()))
    assert.throws(() => asBob.parsePack(small.bytes), unauthenticated)
    const writeOnly = new PackReader(sodium, writeOnlyIdentity(alice), new SingleStorePackStore(new MemoryShareStore()))
    assert.throws(() => writeOnly.parsePack(small.bytes), { code: 'ERR_WRITE_ONLY' })
  })

  it('flipping any byte of the sealed key info makes the header unreadable (UnauthenticatedError)', async () => {
    const reader = new PackReader(sodium, alice, new SingleStorePackStore(new MemoryShareStore()))
    for (let at = 9; at < PACK_PREFIX_BYTES; at++) {
      const bad = small.bytes.slice()
      bad[at] = (bad[at] as number) ^ 0x01
      assert.throws(() => reader.parsePack(bad), unauthenticated, `byte ${at}`)
    }
    // the same through a stored pack and readHeader (index rebuild)
    const packs = new SingleStorePackStore(new MemoryShareStore())
    const bad = large.bytes.slice()
    bad[50] = (bad[50] as number) ^ 0x80
    const id = asPackId(contentHash(bad))
    await packs.putPack(id, bad)
    await assert.rejects(new PackReader(sodium, alice, packs).readHeader(id), unauthenticated)
  })

  it('the pack ends with the header\'s AEAD tag: no byte after the blobs is cleartext', () => {
    const reader = new PackReader(sodium, alice, new SingleStorePackStore(new MemoryShareStore()))
    const positions = [small.blobEnd, small.blobEnd + 23, small.blobEnd + 24]
    for (let at = small.blobEnd + 100; at < small.bytes.byteLength; at += 4093) positions.push(at)
    for (let k = 1; k <= 8; k++) positions.push(small.bytes.byteLength - k)
    for (const at of positions) {
      const bad = small.bytes.slice()
      bad[at] = (bad[at] as number) ^ 0x01
      assert.throws(() => reader.parsePack(bad), unauthenticated, `byte ${at}`)
    }
  })

  it('a key info sealed by someone else with a bad header offset is a typed failure', () => {
    const reader = new PackReader(sodium, alice, new SingleStorePackStore(new MemoryShareStore()))
    const forge = (offset: number): Uint8Array => {
      const out = small.bytes.slice()
      out.set(encodePackPrefix(sodium.seal(encodeKeyInfo(new Uint8Array(32).fill(9), offset), alice.boxPublicKey)), 0)
      return out
    }
    assert.throws(() => reader.parsePack(forge(65536 - 39)), formatError, 'header shorter than nonce + tag')
    assert.throws(() => reader.parsePack(forge(70_000)), formatError, 'offset past the end')
    assert.throws(() => reader.parsePack(forge(small.blobEnd)), unauthenticated, 'right place, wrong key')
    // a 32-byte sealed plaintext (the old layout) does not fit the 84-byte field
    assert.throws(() => encodePackPrefix(sodium.seal(new Uint8Array(32), alice.boxPublicKey)), formatError)
  })

  it('readHeader reads the prefix once and then only the header, from headerOffset to the end', async () => {
    const inner = new SingleStorePackStore(new MemoryShareStore())
    const id: PackId = asPackId(contentHash(large.bytes))
    await inner.putPack(id, large.bytes)
    const { store, ranges } = countingStore(inner)
    const reader = new PackReader(sodium, alice, store)
    const entries = await reader.readHeader(id)
    assert.deepEqual(entries.map(e => e.length), [6_040, 5_040, 4_040])
    assert.deepEqual(ranges, [[0, PACK_PREFIX_BYTES], [large.blobEnd, 65536 - large.blobEnd]])
    await reader.readHeader(id)
    assert.equal(ranges.length, 3, 'the key info is cached')
    assert.deepEqual(await reader.packKey(id), reader.parsePack(large.bytes).key)
    assert.equal(ranges.length, 3)
  })
})
